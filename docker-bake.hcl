# docker buildx bake            -> target "default": the image, HAProxy 2.8 LTS
# docker buildx bake haproxy30  -> the same image with HAProxy 3.0 LTS
# docker buildx bake release    -> default for linux/amd64 and linux/arm64 (push with --push)
# docker buildx bake prometheus -> Prometheus for compose's observability profile (docs/monitoring.md)
# Every variable below can be set from the environment, e.g. RAY_VERSION=2.60.0.

# Plain `docker buildx bake` in the repository root also reads compose.yaml (bake's default file
# list), and compose turns its services (image only, no build) into an empty "default" group that
# hides the target below. HCL is read after compose, so this group takes that name back: with no
# target named, bake builds the image, and `docker compose` still reads compose.yaml untouched.
group "default" {
  targets = ["default"]
}

variable "IMAGE" {
  default = "ray-serve-haproxy"
}
variable "TAG" {
  default = "latest"
}
variable "RAY_VERSION" {
  default = "2.60.0"
}
variable "HAPROXY_VERSION" {
  default = "2.8.19"
}
variable "HAPROXY_30_VERSION" {
  default = "3.0.11"
}
variable "BASE_IMAGE" {
  default = "debian:bookworm-slim"
}
# Offline builds: a directory holding haproxy-<version>.tar.gz. Empty = download upstream.
variable "HAPROXY_SRC_DIR" {
  default = ""
}
# Extra CA bundle (PEM) for pip behind a TLS-inspecting proxy; passed as a secret.
variable "CA_BUNDLE" {
  default = ""
}

target "_common" {
  context    = "."
  dockerfile = "Dockerfile"
  target     = "runtime"
  args = {
    BASE_IMAGE    = BASE_IMAGE
    RAY_VERSION   = RAY_VERSION
    IMAGE_VERSION = TAG
  }
  contexts = { for name, dir in { "haproxy-src" = HAPROXY_SRC_DIR } : name => dir if dir != "" }
  secret   = [for path in [CA_BUNDLE] : "id=extra_ca,src=${path}" if path != ""]
}

target "default" {
  inherits = ["_common"]
  args = {
    HAPROXY_VERSION = HAPROXY_VERSION
  }
  tags = ["${IMAGE}:${TAG}", "${IMAGE}:ray${RAY_VERSION}-haproxy${HAPROXY_VERSION}"]
}

target "haproxy30" {
  inherits = ["_common"]
  args = {
    HAPROXY_VERSION = HAPROXY_30_VERSION
  }
  tags = ["${IMAGE}:${TAG}-haproxy3.0", "${IMAGE}:ray${RAY_VERSION}-haproxy${HAPROXY_30_VERSION}"]
}

target "release" {
  inherits  = ["default"]
  platforms = ["linux/amd64", "linux/arm64"]
}

# Debian's Prometheus with this project's scrape configuration and rules, on the same base.
target "prometheus" {
  context    = "."
  dockerfile = "monitoring/prometheus/Dockerfile"
  args = {
    BASE_IMAGE = BASE_IMAGE
  }
  tags = ["${IMAGE}-prometheus:${TAG}"]
}
