#!/usr/bin/env bash
# The arm64 release check, one command: build the release target's linux/arm64 image here (under
# qemu emulation where this machine is not arm64) and run it:
#   1. emulation      qemu-user-static registered for aarch64 (scripts/enable-emulation.sh)
#   2. base           the arm64 base image (scripts/base-image.sh linux/arm64)
#   3. build          `bake release` for linux/arm64 (scripts/build-image.sh), HAProxy verified
#   4. image          the image is arm64 and its bill of materials says so
#   5. haproxy -vv    the five features, an aarch64 build of the labelled version
#   6. check          `ray-serve-haproxy check` passes
#   7. serve          a one-node Serve app answers through HAProxy
#   8. stop           `docker stop` drains it cleanly
# Prints how long each step took, and exits non-zero at the first step that fails.
# Heavy (emulated builds and a Ray node): on a shared machine run it under the heavy lock.
#
# Emulation, not the image, needs one workaround in step 7. Ray 2.60 finds the local raylet by
# scanning command lines for a process whose argv[0] names "raylet" (ray/_private/services.py,
# _is_raylet_process). Under qemu user emulation every process's /proc/PID/cmdline starts with
# the qemu interpreter, so no Ray driver finds its raylet ("No node info found matching
# attributes"): not the runtime's serve-up, not the dashboard's `serve deploy` handler. Ray on
# real arm64 hardware, or on amd64, never sees this (ray-project/ray#43069: platform emulation is
# not supported; ray-project/ray#63935 proposes a GCS fallback for this discovery). So for step 7
# the check registers the same qemu a second time under a file name containing "raylet"
# (binfmt_misc tries the newest entry first), which Ray's scan accepts, and removes it after.
# And HAProxy's seamless reload (`-x` socket: the old process hands its listening sockets over
# with SCM_RIGHTS) fails under qemu ("We didn't get the expected number of sockets (expecting 4
# got 0)"; compare haproxy/haproxy#1413, where a C library could not pass 253 descriptors in one
# message): the new HAProxy exits and the routes never arrive. Under emulation the check sets
# Ray's RAY_SERVE_ENABLE_HAPROXY_OPTIMIZED_CONFIG=0, so Ray reloads with `-sf` alone.
#
# Usage: scripts/release-check-arm64.sh       Env: IMAGE, TAG (image IMAGE:TAG-arm64), and the
#        variables of scripts/build-image.sh; SERVE_TIMEOUT_S (default 900) bounds step 7.
set -euo pipefail
cd "$(dirname "$0")/.."

platform=linux/arm64
image="${IMAGE:-ray-serve-haproxy}:${TAG:-latest}-arm64"
serve_timeout_s=${SERVE_TIMEOUT_S:-900}
container="rsh-release-check-$$"
workdir=$(mktemp -d)
binfmt=/proc/sys/fs/binfmt_misc
compat_entry=rsh-raylet-compat-aarch64
compat_qemu=/usr/local/libexec/rsh/raylet-compat-qemu-aarch64
cleanup() {
  docker rm -f "$container" >/dev/null 2>&1 || true
  rm -rf "$workdir"
  if [ -f "$binfmt/$compat_entry" ]; then echo -1 >"$binfmt/$compat_entry"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT # so that cleanup runs when the check is stopped

# Registers qemu-aarch64 again, as $compat_qemu (see the header), with the same magic and flags.
register_raylet_compat() {
  local entry="$binfmt/qemu-aarch64" magic mask flags
  [ -f "$entry" ] || return 0 # native arm64: nothing to work around
  magic=$(sed -n 's/^magic //p' "$entry" | sed 's/../\\x&/g')
  mask=$(sed -n 's/^mask //p' "$entry" | sed 's/../\\x&/g')
  flags=$(sed -n 's/^flags: //p' "$entry")
  mkdir -p "$(dirname "$compat_qemu")"
  ln -sf "$(readlink -f "$(sed -n 's/^interpreter //p' "$entry")")" "$compat_qemu"
  [ ! -f "$binfmt/$compat_entry" ] || echo -1 >"$binfmt/$compat_entry"
  # Magic and mask as \xHH text, which the kernel decodes: raw bytes would stop at the first NUL
  # and match every 64-bit ELF, this machine's own programs included.
  printf ':%s:M:0:%s:%s:%s:%s' "$compat_entry" "$magic" "$mask" "$compat_qemu" "$flags" >"$binfmt/register"
  # Same magic as the original, or undone at once (bash builtins only: a wrong entry could stop
  # every other program from starting).
  local want got
  want=$(<"$entry")
  got=$(<"$binfmt/$compat_entry")
  if [ "${got#*magic }" != "${want#*magic }" ]; then
    echo -1 >"$binfmt/$compat_entry"
    fail "the compat entry's magic/mask differ from qemu-aarch64's: ${got#*magic }"
  fi
  echo "registered $compat_qemu for aarch64 (Ray's raylet discovery under emulation)"
}

check_start=$(date +%s)
timings=()
step_name=""
step_start=0
step() {
  step_name=$1
  step_start=$(date +%s)
  printf '\n=== release-check: %s\n' "$step_name"
}
done_step() {
  local took=$(($(date +%s) - step_start))
  timings+=("$(printf '%-14s %5ss  %s' "$step_name" "$took" "$1")")
  printf 'release-check: %s: OK in %ss (%s)\n' "$step_name" "$took" "$1"
}
fail() {
  printf 'release-check: %s: FAILED after %ss: %s\n' "$step_name" "$(($(date +%s) - step_start))" "$*" >&2
  exit 1
}
run() { docker run --rm --platform "$platform" "$@"; }

step emulation
bash scripts/enable-emulation.sh arm64
done_step "$(uname -m) host; qemu-aarch64 $(sed -n 's/^flags: /flags /p' /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || echo native)"

step base
base=$(bash scripts/base-image.sh "$platform")
done_step "$base ($(docker image inspect -f '{{.Architecture}}, {{.Size}} bytes' "$base"))"

step build
RELEASE_PLATFORMS=$platform bash scripts/build-image.sh release
done_step "$image"

step image
arch=$(docker image inspect -f '{{.Os}}/{{.Architecture}}' "$image")
[ "$arch" = "$platform" ] || fail "$image is $arch, not $platform"
size=$(docker image inspect -f '{{.Size}}' "$image")
bom_platform=$(run "$image" python -c 'import json
image = json.load(open("/opt/ray-serve-haproxy/sbom.cdx.json"))["metadata"]["component"]
print({p["name"]: p["value"] for p in image["properties"]}["ray-serve-haproxy:platform"])')
[ "$bom_platform" = "$platform" ] || fail "bill of materials names platform '$bom_platform'"
done_step "$arch, $((size / 1000000)) MB, bill of materials for $bom_platform"

step "haproxy -vv"
vv=$(run --entrypoint /usr/local/bin/haproxy "$image" -vv)
label=$(docker image inspect -f '{{ index .Config.Labels "io.ray-serve-haproxy.haproxy.version" }}' "$image")
echo "$vv" | head -n 4
echo "$vv" | grep -q "^HAProxy version $label" || fail "not HAProxy $label"
echo "$vv" | grep -q '^Running on: Linux .* aarch64$' || fail "not running as aarch64"
features=$(echo "$vv" | sed -n 's/^Feature list : //p')
for f in OPENSSL ZLIB PCRE LUA PROMEX; do
  echo "$features" | tr ' ' '\n' | grep -qx "+$f" || fail "haproxy -vv lacks +$f"
done
done_step "HAProxy $label, aarch64, +OPENSSL +ZLIB +PCRE +LUA +PROMEX"

step check
# Token authentication is on by default: the node reads the cluster's token from a secret file.
node_token=$(bash scripts/ray-token.sh "$workdir/secrets" | tail -n 1)
token_mount=(-v "$node_token:/run/secrets/ray_token:ro")
run "${token_mount[@]}" "$image" check
done_step "settings and environment OK"

step serve
cat >"$workdir/serve_config.yaml" <<'EOF'
applications:
  - name: hello
    route_prefix: /hello
    import_path: demo_app:hello_app
    deployments:
      - name: Hello
        num_replicas: 1
        ray_actor_options:
          num_cpus: 0.5
EOF
chmod 0755 "$workdir"
chmod 0644 "$workdir/serve_config.yaml"
register_raylet_compat
emulation_env=()
if [ "$(uname -m)" != aarch64 ]; then
  emulation_env=(-e RAY_SERVE_ENABLE_HAPROXY_OPTIMIZED_CONFIG=0)
fi
docker run -d --name "$container" --platform "$platform" --shm-size 512m \
  -e RAY_USAGE_STATS_ENABLED=0 -e RAY_SERVE_HAPROXY_HARD_STOP_AFTER_S=20 \
  -e RSH_SERVE_CONFIG=/etc/release-check/serve_config.yaml \
  -e RSH_PYTHONPATH=/opt/ray-serve-haproxy/examples/demo \
  -e RSH_SERVE_DEPLOY_TIMEOUT_S="$serve_timeout_s" \
  "${emulation_env[@]}" \
  -v "$workdir/serve_config.yaml:/etc/release-check/serve_config.yaml:ro" "${token_mount[@]}" \
  -p 127.0.0.1::8000 "$image" head >/dev/null
port=$(docker port "$container" 8000/tcp | head -n 1 | sed 's/.*://')
for _ in $(seq 1 60); do
  raylet=$(docker exec "$container" pgrep -f 'ray/raylet/raylet' 2>/dev/null | head -n 1) && break
  sleep 2
done
[ -n "${raylet:-}" ] && echo "raylet command line: $(docker exec "$container" cat "/proc/$raylet/cmdline" \
  | tr '\0' ' ' | cut -c1-160)..."
answer=""
deadline=$(($(date +%s) + serve_timeout_s))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if answer=$(curl -fsS --max-time 10 "http://127.0.0.1:$port/hello" 2>/dev/null); then
    break
  fi
  answer=""
  [ "$(docker inspect -f '{{.State.Running}}' "$container")" = true ] \
    || { docker logs --tail 40 "$container" >&2; fail "the head container exited"; }
  sleep 5
done
[ -n "$answer" ] || { docker logs --tail 60 "$container" >&2; fail "no answer on /hello within ${serve_timeout_s}s"; }
echo "GET /hello -> $answer"
status=$(docker exec "$container" ray-serve-haproxy status)
echo "$status"
docker top "$container" -eo pid,comm | awk 'NR > 1 { print $2 }' | grep -qx haproxy \
  || fail "no haproxy process in the container"
done_step "HTTP 200 from /hello through HAProxy on 127.0.0.1:$port"

step stop
docker stop -t 60 "$container" >/dev/null
if [ -f "$binfmt/$compat_entry" ]; then echo -1 >"$binfmt/$compat_entry"; fi
code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
logs=$(docker logs "$container" 2>&1)
case "$code" in 0 | 143) ;; *) echo "$logs" | tail -n 30 >&2; fail "exit code $code" ;; esac
echo "$logs" | grep -q "ray-serve-haproxy: Ray stopped" || fail "Ray was not stopped cleanly"
done_step "exit code $code, Ray stopped"

printf '\n=== release-check: linux/arm64 passed in %ss\n' "$(($(date +%s) - check_start))"
printf '%s\n' "${timings[@]}"
