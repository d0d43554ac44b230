#!/bin/sh
# verify-tarball.sh VERSION TARBALL [CHECKSUMS]
# Checks TARBALL against the sha256 recorded for VERSION in the checksum table.
# Used inside the Docker build (before anything is extracted) and by scripts/.
set -eu
version=$1
tarball=$2
table=${3:-$(dirname "$0")/checksums.txt}

expected=$(awk -v v="$version" '$1 == v { print $2 }' "$table")
if [ -z "$expected" ]; then
  echo "ERROR: HAProxy version '$version' has no known sha256 in $(basename "$table")." >&2
  echo "       Known versions: $(awk '!/^#/ && NF { printf "%s ", $1 }' "$table")" >&2
  echo "       Add the upstream tarball's checksum to haproxy/checksums.txt to build it." >&2
  exit 1
fi
if [ ! -f "$tarball" ]; then
  echo "ERROR: HAProxy source tarball for $version not found at $tarball." >&2
  exit 1
fi
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then
  echo "ERROR: checksum mismatch for HAProxy $version tarball $(basename "$tarball"):" >&2
  echo "       expected sha256 $expected" >&2
  echo "       got      sha256 $actual" >&2
  exit 1
fi
echo "HAProxy $version tarball verified (sha256 $actual)"
