#!/bin/sh
# run-nginx.sh PORT PREFIX: serves a Bazel HTTP remote cache on 127.0.0.1:PORT from PREFIX/store,
# in the foreground (stop it by its pid; it is this process after the exec). Needs Debian's nginx
# (its http_dav_module). PREFIX is created if missing and holds the config, pid and temp files.
set -eu
if [ $# -ne 2 ]; then echo "usage: run-nginx.sh PORT PREFIX" >&2; exit 2; fi
port=$1
prefix=$(mkdir -p "$2" && cd "$2" && pwd)
case $port in
  ''|*[!0-9]*) echo "run-nginx.sh: PORT must be a number, got '$port'" >&2; exit 2 ;;
esac
mkdir -p "$prefix/store" "$prefix/tmp"
sed -e "s|@USER@|$(id -un) $(id -gn)|" -e "s|@PORT@|$port|" -e "s|@PREFIX@|$prefix|g" \
  "$(dirname "$0")/nginx.conf.template" > "$prefix/nginx.conf"
exec nginx -p "$prefix" -e stderr -c "$prefix/nginx.conf"
