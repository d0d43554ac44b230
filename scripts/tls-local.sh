#!/usr/bin/env bash
# A local CA and a certificate for localhost/127.0.0.1/::1, for the local cluster with TLS
# (scripts/cluster-up.sh --tls, compose.tls.yaml; docs/tls.md). Safe to run again: the CA stays,
# the server certificate is made again only when missing or within 30 days of expiry.
#
# Usage: scripts/tls-local.sh [DIR]     DIR defaults to .secrets/tls in the repository (git-ignored)
#   DIR/ca.crt       the local CA: what clients trust (curl --cacert DIR/ca.crt, grpcio's
#                    root_certificates). Never a disabled verification.
#   DIR/ca.key       its key (mode 0600): stays here, in no container.
#   DIR/server.pem   the entry's certificate chain and key; DIR/client.pem a client certificate
#                    from the same CA, to try mutual TLS.
#   DIR/entry/       what the entry container mounts (compose.tls.yaml): server.pem and ca.crt,
#                    owned by uid 1000 (the image's user), the directory mode 0700, files 0400.
#                    A directory, not single-file mounts: a replaced file reaches the container,
#                    and the entry's watcher loads it without a restart.
# The certificates are made by the image's own Python (ray_serve_haproxy.tls_local_ca, with
# `cryptography`), in a throwaway container without network, as you.
# Prints DIR/ca.crt. Env: RSH_IMAGE (default ray-serve-haproxy:latest).
set -euo pipefail
log() { printf 'tls-local: %s\n' "$*" >&2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$repo/.secrets/tls}
image=${RSH_IMAGE:-ray-serve-haproxy:latest}
node_uid=1000
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
docker run --rm --network none --user "$(id -u):$(id -g)" -v "$dir:/tls" \
  --entrypoint python "$image" -m ray_serve_haproxy.tls_local_ca /tls localhost 127.0.0.1 ::1 |
  sed 's|/tls/|'"$dir"'/|' >&2
# The entry's copies, given to uid 1000 (only root may give a file away: root in a throwaway
# container does when you are not root). $1: the directory, $2: the uid.
# shellcheck disable=SC2016 # expanded by the inner sh, from its arguments
give='set -e; mkdir -p "$1/entry"; chown "$2:$2" "$1/entry"; chmod 700 "$1/entry"
for f in server.pem ca.crt; do
  if ! cmp -s "$1/$f" "$1/entry/$f"; then
    install -o "$2" -g "$2" -m 0400 "$1/$f" "$1/entry/.$f.new"
    mv -f "$1/entry/.$f.new" "$1/entry/$f"
  fi
done'
if [ "$(id -u)" = 0 ]; then
  sh -c "$give" sh "$dir" "$node_uid"
else
  docker run --rm --network none --user 0:0 --entrypoint sh -v "$dir:/tls" "$image" \
    -c "$give" sh /tls "$node_uid"
fi
printf '%s\n' "$dir/ca.crt"
