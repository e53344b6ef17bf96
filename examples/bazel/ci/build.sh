#!/bin/sh
# ci/build.sh {step} {target}: what every CI job runs, once per step taskshard assigns it and once
# for the universe at the end. The remote cache is what carries one job's results to the others.
#   BAZEL_REMOTE_CACHE   the HTTP cache every job shares (required), e.g. http://127.0.0.1:9090
#   BAZEL_OUTPUT_BASE    this job's output base (optional; each CI machine has its own anyway)
#   TASKSHARD_EVIDENCE_FILE  set by `taskshard peer --build-tool`: the universe build writes its
#                        execution log there, so the peer can report which steps were not cache hits
set -eu
: "${BAZEL_REMOTE_CACHE:?set BAZEL_REMOTE_CACHE to the shared HTTP cache, e.g. http://127.0.0.1:9090}"
cd "$(dirname "$0")/.."
step=$1
target=$2
log_flag=
if [ -n "${BAZEL_EXEC_LOG_DIR:-}" ]; then
  log_flag="--execution_log_json_file=$BAZEL_EXEC_LOG_DIR/$step.json"
elif [ "${TASKSHARD_PHASE:-}" = universe ] && [ -n "${TASKSHARD_EVIDENCE_FILE:-}" ]; then
  log_flag="--execution_log_json_file=$TASKSHARD_EVIDENCE_FILE"
fi
exec bazel ${BAZEL_OUTPUT_BASE:+--output_base="$BAZEL_OUTPUT_BASE"} build --config=ci \
  --remote_cache="$BAZEL_REMOTE_CACHE" $log_flag -- "$target"
