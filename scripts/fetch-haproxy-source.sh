#!/usr/bin/env bash
# fetch-haproxy-source.sh VERSION DEST_DIR
# Puts haproxy-VERSION.tar.gz into DEST_DIR, verified against haproxy/checksums.txt.
# Tries upstream (haproxy.org) first, then Debian's source archive, whose
# haproxy_VERSION.orig.tar.gz is the same upstream tarball. Reuses a verified file.
set -euo pipefail

version=${1:?usage: fetch-haproxy-source.sh VERSION DEST_DIR}
dest=${2:?usage: fetch-haproxy-source.sh VERSION DEST_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
verify="$here/haproxy/verify-tarball.sh"
DEBIAN_POOL=${DEBIAN_POOL:-http://deb.debian.org/debian/pool/main/h/haproxy}

log() { printf 'fetch-haproxy-source: %s\n' "$*" >&2; }

mkdir -p "$dest"
out="$dest/haproxy-$version.tar.gz"
if [ -f "$out" ] && "$verify" "$version" "$out" >/dev/null 2>&1; then
  log "reusing verified $out"
  exit 0
fi

urls=(
  "https://www.haproxy.org/download/${version%.*}/src/haproxy-$version.tar.gz"
  "$DEBIAN_POOL/haproxy_$version.orig.tar.gz"
)
for url in "${urls[@]}"; do
  if curl -fsSL --connect-timeout 10 --max-time 300 -o "$out.part" "$url"; then
    mv "$out.part" "$out"
    "$verify" "$version" "$out" >&2
    log "fetched $url"
    exit 0
  fi
  log "not reachable: $url"
done
rm -f "$out.part"
log "no source for HAProxy $version could be fetched"
exit 1
