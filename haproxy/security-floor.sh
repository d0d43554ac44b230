#!/bin/sh
# security-floor.sh COMMAND VERSION [JSON_OUT]
# Checks an HAProxy release against its branch's security floor (haproxy/security-floor.txt).
#   check VERSION [JSON_OUT]  exit 0 at or above the floor; below it, exit 1 with the missing
#                             fixes, unless HAPROXY_ALLOW_BELOW_FLOOR=1 (then a loud WARNING).
#                             An allowed below-floor build must also pass the missing ids in
#                             HAPROXY_BELOW_FLOOR_MISSING (the image's label), exactly as `missing`
#                             prints them, so that the label cannot differ from the truth.
#                             JSON_OUT: the patch level as JSON, baked into the image and read
#                             by `ray-serve-haproxy check`, `status` and the bill of materials.
#   missing VERSION           the ids of the fixes VERSION lacks, comma-separated ("" if none)
#   floor VERSION             the floor of VERSION's branch
# Used inside the Docker build (stage haproxy-builder) and by scripts/build-image.sh.
# Env: SECURITY_FLOOR_TABLE (default: security-floor.txt beside this script).
set -eu
command=${1:-}
version=${2:-}
json_out=${3:-}
table=${SECURITY_FLOOR_TABLE:-$(dirname "$0")/security-floor.txt}
allow=${HAPROXY_ALLOW_BELOW_FLOOR:-0}
acknowledged=${HAPROXY_BELOW_FLOOR_MISSING:-}

usage() {
  echo "usage: security-floor.sh check|missing|floor VERSION [JSON_OUT]" >&2
  exit 2
}
[ -n "$version" ] || usage
case $command in check|missing|floor) ;; *) usage ;; esac
case $allow in 0|1|"") ;; *)
  echo "ERROR: HAPROXY_ALLOW_BELOW_FLOOR='$allow': allowed values are 0 and 1." >&2
  exit 2 ;;
esac
if ! echo "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+$'; then
  echo "ERROR: HAProxy version '$version' is not a release number (MAJOR.MINOR.PATCH)." >&2
  exit 2
fi
if [ ! -r "$table" ]; then
  echo "ERROR: security floor table $table not found." >&2
  exit 2
fi
branch=${version%.*}

# One awk pass: validates the table, then prints "floor F", "missing|row..." and "open|row...".
# Fields: 1 branch, 2 fixed in, 3 id, 4 severity, 5 basis, 6 reach, 7 summary, 8 source.
report=$(awk -F'|' -v version="$version" -v branch="$branch" '
  function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
  function vcmp(a, b,   x, y, i, n) {
    n = split(a, x, "."); split(b, y, ".")
    for (i = 1; i <= 3; i++) { if (x[i] + 0 < y[i] + 0) return -1; if (x[i] + 0 > y[i] + 0) return 1 }
    return 0
  }
  /^[ \t]*(#|$)/ { next }
  {
    if (NF != 8) { printf "error|line %d has %d fields, not 8\n", NR, NF; bad = 1; next }
    for (i = 1; i <= 8; i++) f[i] = trim($i)
    if (f[2] != "none-known" && f[2] !~ /^[0-9]+\.[0-9]+\.[0-9]+$/) {
      printf "error|line %d: fixed-in \"%s\" is not a release\n", NR, f[2]; bad = 1; next
    }
    if (f[4] !~ /^(critical|high|medium|low)$/ || f[5] !~ /^(verified|inferred|debian)$/) {
      printf "error|line %d: severity \"%s\" or basis \"%s\" unknown\n", NR, f[4], f[5]; bad = 1; next
    }
    if ($0 ~ /["\\]/) { printf "error|line %d has a quote or backslash\n", NR; bad = 1; next }
    row = f[3] "|" f[2] "|" f[4] "|" f[5] "|" f[6] "|" f[7] "|" f[8]
    if (f[2] == "none-known") { if (f[1] == "*" || f[1] == branch) print "open|" row; next }
    if (f[1] != branch) next
    known = 1
    if (floor == "" || vcmp(f[2], floor) > 0) floor = f[2]
    if (vcmp(version, f[2]) < 0) print "missing|" row
  }
  END {
    if (bad) exit 3
    if (!known) { print "nobranch|"; exit 0 }
    print "floor|" floor
  }
' "$table") || {
  echo "ERROR: the security floor table $table is malformed:" >&2
  echo "$report" | sed -n 's/^error|/       /p' >&2
  exit 2
}

if echo "$report" | grep -q '^nobranch|'; then
  echo "ERROR: no security floor is recorded for HAProxy $branch (version $version)" \
       "in $(basename "$table")." >&2
  echo "       Known branches: $(awk -F'|' '!/^[ \t]*(#|$)/ { gsub(/ /, "", $1); if ($1 != "*") print $1 }' "$table" | sort -uV | tr '\n' ' ')" >&2
  exit 1
fi
floor=$(echo "$report" | sed -n 's/^floor|//p')
missing=$(echo "$report" | awk -F'|' '$1 == "missing" { printf "%s%s", sep, $2; sep = "," }')
open=$(echo "$report" | awk -F'|' '$1 == "open" { printf "%s%s", sep, $2; sep = "," }')

case $command in
  floor) echo "$floor"; exit 0 ;;
  missing) echo "$missing"; exit 0 ;;
esac

below=false
[ -z "$missing" ] || below=true
if $below; then
  echo "HAProxy $version is below the security floor of its branch $branch ($floor); it lacks:" >&2
  echo "$report" | awk -F'|' '$1 == "missing" {
    printf "       %s (%s, fixed in %s [%s], reach: %s): %s [source: %s]\n", $2, $4, $3, $5, $6, $7, $8 }' >&2
  if [ "$allow" != 1 ]; then
    echo "ERROR: refusing to build HAProxy $version below the security floor $floor." >&2
    echo "       Build $floor or newer (haproxy/checksums.txt lists the known releases), or set" >&2
    echo "       the build argument HAPROXY_ALLOW_BELOW_FLOOR=1 (with HAPROXY_BELOW_FLOOR_MISSING=$missing)" >&2
    echo "       to build it anyway; the image then says so. docs/haproxy-patch-level.md" >&2
    exit 1
  fi
  if [ "$acknowledged" != "$missing" ]; then
    echo "ERROR: HAPROXY_ALLOW_BELOW_FLOOR=1 needs HAPROXY_BELOW_FLOOR_MISSING=$missing" >&2
    echo "       (the image's label io.ray-serve-haproxy.haproxy.below-security-floor);" >&2
    echo "       got '$acknowledged'. scripts/build-image.sh fills it in." >&2
    exit 1
  fi
  echo "WARNING: building HAProxy $version BELOW its security floor $floor, as allowed by" \
       "HAPROXY_ALLOW_BELOW_FLOOR=1; the image reports the missing fixes: $missing" >&2
else
  if [ -n "$acknowledged" ]; then
    echo "ERROR: HAPROXY_BELOW_FLOOR_MISSING='$acknowledged' is set, but HAProxy $version is at or" \
         "above its security floor $floor: leave it empty." >&2
    exit 1
  fi
  echo "HAProxy $version is at or above the security floor of its branch $branch ($floor)"
fi
if [ -n "$open" ]; then
  echo "NOTE: fixes no upstream release was known to carry when the table was written: $open" >&2
fi

if [ -n "$json_out" ]; then
  table_sha256=$(sha256sum "$table" | cut -d' ' -f1)
  echo "$report" | awk -F'|' -v version="$version" -v branch="$branch" -v floor="$floor" \
      -v below="$below" -v allowed="$( [ "$allow" = 1 ] && echo true || echo false )" \
      -v table_sha256="$table_sha256" '
    function item(   s) {
      s = sprintf("{\"id\": \"%s\", \"fixed_in\": \"%s\", \"severity\": \"%s\", \"basis\": \"%s\", ", $2, $3, $4, $5)
      return s sprintf("\"reach\": \"%s\", \"summary\": \"%s\", \"source\": \"%s\"}", $6, $7, $8)
    }
    $1 == "missing" { missing = missing (missing ? ",\n    " : "") item() }
    $1 == "open" { open = open (open ? ",\n    " : "") item() }
    END {
      printf "{\n  \"schema\": 1,\n  \"version\": \"%s\",\n  \"branch\": \"%s\",\n", version, branch
      printf "  \"floor\": \"%s\",\n  \"below_floor\": %s,\n  \"allowed_below_floor\": %s,\n", floor, below, allowed
      printf "  \"floor_table_sha256\": \"%s\",\n", table_sha256
      printf "  \"missing\": [%s%s%s],\n", (missing ? "\n    " : ""), missing, (missing ? "\n  " : "")
      printf "  \"open\": [%s%s%s]\n}\n", (open ? "\n    " : ""), open, (open ? "\n  " : "")
    }' >"$json_out"
fi
