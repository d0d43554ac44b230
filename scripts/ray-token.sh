#!/usr/bin/env bash
# The cluster's token for Ray's token authentication (docs/token-auth.md): creates a
# random one once, then the copy the containers read. Safe to run again: the token stays.
#
# Usage: scripts/ray-token.sh [DIR]        DIR defaults to .secrets in the repository (git-ignored)
#   DIR/ray_token       the token, 64 random hex digits, mode 0600, owned by you: what you hand to
#                       the dashboard, `ray job submit` and `serve deploy` (docs/token-auth.md).
#   DIR/ray_token.node  the same token for the containers (compose.yaml's `secrets:`), mode 0400,
#                       owned by uid 1000, the image's user. A compose file secret is a bind mount
#                       that keeps the host file's owner and mode, and the runtime refuses a token
#                       file that group or others may read.
# DIR is mode 0700: nobody else on the host reaches either file (host uid 1000 may be another user).
# Prints the path of DIR/ray_token.node (compose's RSH_RAY_TOKEN_FILE).
# Env: RSH_IMAGE (default ray-serve-haproxy:latest): when you are neither root nor uid 1000, a
#      throwaway container of it (as root, no network) gives the copy to uid 1000.
set -euo pipefail

log() { printf 'ray-token: %s\n' "$*" >&2; }

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$repo/.secrets}
image=${RSH_IMAGE:-ray-serve-haproxy:latest}
node_uid=1000

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
token=$dir/ray_token
node=$dir/ray_token.node

if [ ! -s "$token" ]; then
  tmp=$(mktemp "$dir/.ray_token.XXXXXX")
  # 32 random bytes as hex: 256 bits, like `ray get-auth-token --generate`.
  od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$tmp"
  printf '\n' >>"$tmp"
  mv "$tmp" "$token"
  log "created a new token: $token"
fi
chmod 600 "$token"

uid=$(id -u)
if [ "$uid" = 0 ] || [ "$uid" = "$node_uid" ]; then
  if ! { [ -f "$node" ] && cmp -s "$token" "$node" &&
    [ "$(stat -c '%u %a' "$node")" = "$node_uid 400" ]; }; then
    rm -f "$node"
    if [ "$uid" = 0 ]; then
      install -o "$node_uid" -g "$node_uid" -m 0400 "$token" "$node"
    else
      install -m 0400 "$token" "$node"
    fi
  fi
else
  # Only root may give a file away: root in a throwaway container does (you are in the docker
  # group, or docker would not run for you). DIR is yours, so you can replace the copy later.
  rm -f "$node"
  docker run --rm --network none --user 0:0 --entrypoint install \
    -v "$dir:/secrets" "$image" \
    -o "$node_uid" -g "$node_uid" -m 0400 /secrets/ray_token /secrets/ray_token.node
fi
printf '%s\n' "$node"
