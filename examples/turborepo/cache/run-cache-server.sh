#!/bin/sh
# run-cache-server.sh PORT DIR TOKEN: the self-hosted turbo remote cache (npm turborepo-remote-cache,
# installed by this example's package.json) on 127.0.0.1:PORT, storing artifacts under DIR, accepting
# `Authorization: Bearer TOKEN`. Runs in the foreground (stop it by its pid; it is this process after
# the exec).
set -eu
if [ $# -ne 3 ]; then echo "usage: run-cache-server.sh PORT DIR TOKEN" >&2; exit 2; fi
case $1 in
  ''|*[!0-9]*) echo "run-cache-server.sh: PORT must be a number, got '$1'" >&2; exit 2 ;;
esac
mkdir -p "$2"
here=$(cd "$(dirname "$0")/.." && pwd)
export HOST=127.0.0.1 PORT="$1" STORAGE_PROVIDER=local STORAGE_PATH="$(cd "$2" && pwd)" \
  STORAGE_PATH_USE_TMP_FOLDER=false TURBO_TOKEN="$3" LOG_LEVEL=warn NODE_ENV=production
exec node "$here/node_modules/turborepo-remote-cache/dist/cli.js"
