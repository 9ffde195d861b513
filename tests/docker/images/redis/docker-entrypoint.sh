#!/bin/sh
# Look-alike of the official redis image's entrypoint: arguments starting with `-` or a *.conf file go to
# redis-server; as root, /data is handed to the `redis` user and the server runs as that user.
set -eu
case "${1:-}" in -*|*.conf) set -- redis-server "$@" ;; esac

# The official image is built with protected mode off by default (the container's network is the boundary);
# valkey's default is on, so say it unless the arguments or the config file decide.
if [ "${1:-}" = redis-server ]; then
  case "$*" in
    *protected-mode*) ;;
    *) if ! { [ -n "${2:-}" ] && grep -qs '^protected-mode' "$2"; }; then set -- "$@" --protected-mode no; fi ;;
  esac
fi

if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi

exec "$@"
