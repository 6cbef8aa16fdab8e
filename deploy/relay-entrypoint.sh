#!/bin/sh
# Entrypoint of the relay image: runs /usr/local/bin/relay as the relay user
# (uid/gid 10001), with the arguments given to the container.
#
# As non-root (the image's default USER 10001, Kubernetes, `docker run --user`)
# it simply execs the relay. As root (the `root-start` build target, used on
# Fly.io, or Railway with RAILWAY_RUN_UID=0) it first hands RELAY_DATA_DIR to the
# relay user, because those platforms mount their volumes owned by root, then
# drops to uid/gid 10001 with no capabilities and no_new_privs. Either way the
# relay ends up as PID 1 and receives SIGTERM itself.
set -eu

RELAY=/usr/local/bin/relay
RELAY_UID=10001
RELAY_GID=10001

if [ "$(id -u)" != 0 ]; then
  exec "$RELAY" "$@"
fi

if [ -n "${RELAY_DATA_DIR:-}" ]; then
  mkdir -p "$RELAY_DATA_DIR"
  chown "$RELAY_UID:$RELAY_GID" "$RELAY_DATA_DIR"
  chmod 0750 "$RELAY_DATA_DIR"
  # relay.db and its -wal/-shm files, should an earlier run have created them as root.
  find "$RELAY_DATA_DIR" -maxdepth 1 -name 'relay.db*' ! -user "$RELAY_UID" \
    -exec chown "$RELAY_UID:$RELAY_GID" {} +
fi
exec setpriv --reuid="$RELAY_UID" --regid="$RELAY_GID" --clear-groups --inh-caps=-all \
  --no-new-privs -- "$RELAY" "$@"
