#!/bin/sh
# ci/build.sh {step} {target}: what every CI job runs, once per step taskshard assigns it (TARGET is a
# package name: `turbo run build --filter=TARGET`, which builds its dependencies first) and once for
# the universe at the end (TARGET `all`: every package). The self-hosted remote cache carries one
# job's results to the others:
#   TURBO_API, TURBO_TOKEN, TURBO_TEAM   the cache server every job shares (required)
#   TURBO_RUNS_DIR           optional: keep each invocation's run summary there as STEP.json
#   TASKSHARD_EVIDENCE_FILE  set by `taskshard peer --build-tool` / `--verify builtin:turbo`:
#                            the run summary is copied there for the peer to read
set -eu
: "${TURBO_API:?set TURBO_API to the shared cache server, e.g. http://127.0.0.1:3000}"
: "${TURBO_TOKEN:?set TURBO_TOKEN to the cache server token}"
: "${TURBO_TEAM:?set TURBO_TEAM to the cache team name}"
# No telemetry, no update checks: CI machines often cannot (and should not) reach turbo's hosts.
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1 TURBO_NO_UPDATE_NOTIFIER=1
cd "$(dirname "$0")/.."
step=$1
target=$2
if [ "$target" = all ]; then filter=; else filter="--filter=$target"; fi
rm -rf .turbo/runs
# One task at a time, so a step really uses one core and wall time means something on small machines.
./node_modules/.bin/turbo run build $filter --concurrency=1 --summarize --output-logs=new-only
summary=$(ls .turbo/runs/*.json)
if [ -n "${TURBO_RUNS_DIR:-}" ]; then cp "$summary" "$TURBO_RUNS_DIR/$step.json"; fi
if [ -n "${TASKSHARD_EVIDENCE_FILE:-}" ]; then cp "$summary" "$TASKSHARD_EVIDENCE_FILE"; fi
