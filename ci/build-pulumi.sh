#!/usr/bin/env bash
# Build the Pulumi CLI (engine) from Go modules, offline except for the Go module proxy. Idempotent: a second
# run with a finished build exits at once.
#
# Output: $CACHE/pulumi-v<VER>/bin with
#   pulumi                         github.com/pulumi/pulumi/pkg/v3/cmd/pulumi @ v<VER>
#   pulumi-resource-pulumi-python  script from github.com/pulumi/pulumi/sdk/v3 @ v<SCRIPTS_VERSION>
# No language host: mailroom runs its program inline (the Automation API serves the language runtime in the
# mailroom process), so the engine only starts the dynamic-provider plugin, this script.
# CACHE = ${MAILROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailroom}. The Go module cache and build cache
# used for the build live under $CACHE/pulumi-build (gomod/, gocache/), so CI can cache that one directory.
#
# stdout: only the absolute bin dir, as the last line. Progress and errors go to stderr.
# If `pulumi` on PATH already prints v$PINNED_VERSION or newer (e.g. an official install), its directory is
# printed instead and nothing is built.
set -euo pipefail

# The version the project pins (Python SDK pulumi==3.272.0): the engine must be at least this one (an engine
# newer than the SDK is the supported pairing, an older one is not).
PINNED_VERSION=3.272.0
# The newest github.com/pulumi/pulumi/pkg/v3 the module proxy serves that is >= PINNED_VERSION (checked
# 2026-12-01 with `go list -m -versions`: v3.274.0 ... v3.276.0 download; v3.260.0-v3.273.x answer 403).
# ci/pulumi/go.mod requires the same version.
VERSION=3.276.0
# The run-time script is taken from the sdk/v3 module at the Python SDK's version.
SCRIPTS_VERSION=3.272.0
SCRIPTS_SUM="h1:MoJElH3Y/VwV1tfTVNCh2BJuc3HxB7OPmvvYzaDe89c="

log() { printf 'build-pulumi: %s\n' "$*" >&2; }

install_hint() {
  cat >&2 <<EOF
build-pulumi: could not provide a Pulumi CLI.
  Install Pulumi officially (https://www.pulumi.com/docs/install/), v$PINNED_VERSION or newer,
  and put its directory (the one holding pulumi and pulumi-resource-pulumi-python) on PATH.
EOF
}

SRC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pulumi"
CACHE="${MAILROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailroom}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
OUT="$CACHE/pulumi-v$VERSION"
BIN="$OUT/bin"
BUILD="$CACHE/pulumi-build"
export PULUMI_SKIP_UPDATE_CHECK=true

# at_least A B: version A >= version B (both without the leading v).
at_least() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }

# 1. A pulumi on PATH of at least the pinned version wins.
if path_pulumi="$(command -v pulumi 2>/dev/null)"; then
  path_version="$(timeout 20 "$path_pulumi" version 2>/dev/null || true)"
  if [[ "$path_version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] && at_least "${path_version#v}" "$PINNED_VERSION"; then
    dir="$(cd "$(dirname "$path_pulumi")" && pwd)"
    log "using pulumi $path_version found on PATH"
    echo "$dir"
    exit 0
  fi
fi

# The stamp ties a build to the sources it came from.
stamp() {
  {
    echo "version=$VERSION scripts=$SCRIPTS_VERSION/$SCRIPTS_SUM"
    cat "$SRC_DIR/go.mod" "$SRC_DIR/go.sum"
  } | sha256sum | cut -d' ' -f1
}
WANT_STAMP="$(stamp)"

cached_ok() {
  local f
  for f in pulumi pulumi-resource-pulumi-python; do
    [ -x "$BIN/$f" ] || return 1
  done
  [ "$(cat "$BIN/.stamp" 2>/dev/null)" = "$WANT_STAMP" ] || return 1
  [ "$("$BIN/pulumi" version 2>/dev/null)" = "v$VERSION" ] || return 1
}

# 2. A finished build of the right version.
if cached_ok; then
  echo "$BIN"
  exit 0
fi

trap 'rc=$?; [ $rc -eq 0 ] || install_hint; exit $rc' EXIT

if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed (needed to build Pulumi from Go modules)."
  exit 1
fi

mkdir -p "$BUILD"
# One build at a time (two CI jobs sharing a cache, say).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BUILD/.lock"
  flock 9
  if cached_ok; then echo "$BIN"; exit 0; fi
fi

export GOMODCACHE="$BUILD/gomod" GOCACHE="$BUILD/gocache"
export GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
need_go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$SRC_DIR/go.mod")"
have_go="$(go env GOVERSION | sed 's/^go//')"
if ! at_least "$have_go" "$need_go"; then
  log "Go $need_go or newer is needed, found $have_go."
  exit 1
fi

start=$(date +%s)
log "building Pulumi v$VERSION from Go modules into $BIN (first build: several minutes on 2 cores)"
log "Go caches: GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"

# Wrapper module: a copy of ci/pulumi (go.mod/go.sum pin every module and checksum).
rm -rf "$BUILD/src"
mkdir -p "$BUILD/src"
cp -R "$SRC_DIR/." "$BUILD/src/"
cd "$BUILD/src"

STAGE="$OUT/bin.tmp"
rm -rf "$STAGE"
mkdir -p "$STAGE"
LDFLAGS="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$VERSION"
build() {
  go build -trimpath -tags osusergo,grpcnotrace -ldflags "$LDFLAGS" -o "$STAGE/$1" "$2"
}
log "downloading modules and compiling pulumi (the engine; the longest step)..."
build pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi

log "fetching the dynamic-provider script from github.com/pulumi/pulumi/sdk/v3@v$SCRIPTS_VERSION..."
tmpmod="$(mktemp -d)"
json="$(cd "$tmpmod" && GOFLAGS=-modcacherw go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$SCRIPTS_VERSION")"
rm -rf "$tmpmod"
sum="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')"
dir="$(printf '%s\n' "$json" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ "$sum" != "$SCRIPTS_SUM" ] || [ ! -d "$dir" ]; then
  log "unexpected sdk/v3@v$SCRIPTS_VERSION download (sum '$sum', want '$SCRIPTS_SUM'):"
  printf '%s\n' "$json" >&2
  exit 1
fi
install -m 0755 "$dir/python/dist/pulumi-resource-pulumi-python" "$STAGE/pulumi-resource-pulumi-python"

got="$("$STAGE/pulumi" version)"
if [ "$got" != "v$VERSION" ]; then
  log "built pulumi reports '$got', expected v$VERSION"
  exit 1
fi
echo "$WANT_STAMP" >"$STAGE/.stamp"
rm -rf "$BIN"
mv "$STAGE" "$BIN"
log "done in $(( $(date +%s) - start ))s: $BIN"
echo "$BIN"
