#!/bin/sh
# with-extra-ca.sh COMMAND [ARG...]
# Runs COMMAND (pip, in the Dockerfile's build stages) trusting an extra CA bundle when the build
# was given one as the secret `extra_ca` (a TLS-inspecting proxy between the build and PyPI).
# The combined bundle lives only for the command's duration, outside any layer.
set -eu
secret=/run/secrets/extra_ca
if [ -s "$secret" ]; then
  bundle=$(mktemp /tmp/pip-ca.XXXXXX)
  trap 'rm -f "$bundle"' EXIT
  cat /etc/ssl/certs/ca-certificates.crt "$secret" >"$bundle"
  PIP_CERT=$bundle
  export PIP_CERT
fi
"$@"
