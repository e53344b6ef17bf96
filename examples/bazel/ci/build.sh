#!/bin/sh
# ci/build.sh {step} {target}: what every CI job runs, once per step taskshard assigns it and once
# for the universe at the end. The remote cache is what carries one job's results to the others.
#   BAZEL_REMOTE_CACHE   the HTTP cache every job shares (required), e.g. http://127.0.0.1:9090
#   BAZEL_OUTPUT_BASE    this job's output base (optional; each CI machine has its own anyway)
#   BAZEL_EXEC_LOG_DIR   optional: keep each invocation's execution log there as STEP.json
#   TASKSHARD_EVIDENCE_FILE  set by `taskshard peer` with --verify or --build-tool: the execution
#                        log goes there, for the built-in verifier and the cache evidence
set -eu
: "${BAZEL_REMOTE_CACHE:?set BAZEL_REMOTE_CACHE to the shared HTTP cache, e.g. http://127.0.0.1:9090}"
cd "$(dirname "$0")/.."
step=$1
target=$2
log=${TASKSHARD_EVIDENCE_FILE:-}
if [ -z "$log" ] && [ -n "${BAZEL_EXEC_LOG_DIR:-}" ]; then log=$BAZEL_EXEC_LOG_DIR/$step.json; fi
status=0
bazel ${BAZEL_OUTPUT_BASE:+--output_base="$BAZEL_OUTPUT_BASE"} build --config=ci \
  --remote_cache="$BAZEL_REMOTE_CACHE" ${log:+--execution_log_json_file="$log"} -- "$target" || status=$?
if [ -n "${TASKSHARD_EVIDENCE_FILE:-}" ] && [ -n "${BAZEL_EXEC_LOG_DIR:-}" ] && [ -f "$log" ]; then
  cp "$log" "$BAZEL_EXEC_LOG_DIR/$step.json"
fi
exit $status
