#!/usr/bin/env bash
# Download KubeRay's RayCluster and RayService CRDs from their pinned release URLs and check
# them against tests/kuberay/crds/SHA256SUMS (the schemas tests/kuberay/test_schemas.py uses).
#
#   scripts/fetch-kuberay-crds.sh            download to a temporary directory and verify
#   scripts/fetch-kuberay-crds.sh --check    ... and compare with the copies in the repository
#   scripts/fetch-kuberay-crds.sh --update   replace the copies and SHA256SUMS (a new release)
#
# Env: KUBERAY_VERSION (default v1.7.0); KUBERAY_CRD_BASE_URL (default the tag's
# ray-operator/config/crd/bases/ on raw.githubusercontent.com; file:// works for a local mirror).
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERAY_VERSION=${KUBERAY_VERSION:-v1.7.0}
base=${KUBERAY_CRD_BASE_URL:-https://raw.githubusercontent.com/ray-project/kuberay/${KUBERAY_VERSION}/ray-operator/config/crd/bases}
crds=tests/kuberay/crds
files=(ray.io_rayclusters.yaml ray.io_rayservices.yaml)
mode=${1:-verify}
case "$mode" in verify|--check|--update) ;; *) echo "usage: $0 [--check|--update]" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for file in "${files[@]}"; do
  curl -fsSL --retry 3 --connect-timeout 10 -o "$tmp/$file" "$base/$file"
done

if [ "$mode" = --update ]; then
  (cd "$tmp" && sha256sum "${files[@]}") >"$crds/SHA256SUMS"
  cp "${files[@]/#/$tmp/}" "$crds/"
  echo "fetch-kuberay-crds: $crds updated to KubeRay ${KUBERAY_VERSION}"
  exit 0
fi
# Every downloaded byte must match the pinned sums.
sums="$PWD/$crds/SHA256SUMS"
if ! (cd "$tmp" && sha256sum --check --strict --quiet <"$sums"); then
  echo "fetch-kuberay-crds: the files at $base differ from $crds/SHA256SUMS" >&2
  exit 1
fi
echo "fetch-kuberay-crds: ${files[*]} of KubeRay ${KUBERAY_VERSION} match $crds/SHA256SUMS"
if [ "$mode" = --check ]; then
  for file in "${files[@]}"; do
    cmp -s "$tmp/$file" "$crds/$file" || { echo "fetch-kuberay-crds: $crds/$file differs" >&2; exit 1; }
  done
  echo "fetch-kuberay-crds: the copies in $crds are the same files"
fi
