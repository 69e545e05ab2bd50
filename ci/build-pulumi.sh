#!/usr/bin/env bash
# Build the Pulumi CLI (engine) and a Python language host from Go modules, offline except for the
# Go module proxy. Idempotent: a second run with a finished build exits at once.
#
# Output: $CACHE/pulumi-v<VER>/bin with
#   pulumi                         github.com/pulumi/pulumi/pkg/v3/cmd/pulumi @ v<VER>
#   pulumi-language-python         ci/pulumi/pulumi-language-python (our minimal host, see ci/pulumi/README.md)
#   pulumi-language-python-exec    script from github.com/pulumi/pulumi/sdk/v3 @ v<SCRIPTS_VERSION>
#   pulumi-resource-pulumi-python  script from github.com/pulumi/pulumi/sdk/v3 @ v<SCRIPTS_VERSION>
# CACHE = ${MAILROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailroom}. The Go module cache and build cache
# used for the build live under $CACHE/pulumi-build (gomod/, gocache/), so CI can cache that one directory.
#
# stdout: only the absolute bin dir, as the last line. Progress and errors go to stderr.
# If `pulumi` on PATH already prints the pinned version (v$PINNED_VERSION, e.g. an official install),
# its directory is printed instead and nothing is built.
set -euo pipefail

# The version the project pins (Python SDK pulumi==3.272.0). An official CLI of this version is preferred.
PINNED_VERSION=3.272.0
# The newest github.com/pulumi/pulumi/pkg/v3 the module proxy serves (3.260.0 and later answer 403).
VERSION=3.259.0
# Run-time scripts are taken from the sdk/v3 module at the Python SDK's version.
SCRIPTS_VERSION=3.272.0
SCRIPTS_SUM="h1:MoJElH3Y/VwV1tfTVNCh2BJuc3HxB7OPmvvYzaDe89c="

log() { printf 'build-pulumi: %s\n' "$*" >&2; }

install_hint() {
  cat >&2 <<EOF
build-pulumi: could not provide a Pulumi CLI.
  Install Pulumi officially (https://www.pulumi.com/docs/install/), version v$PINNED_VERSION if possible,
  and put its directory (the one holding pulumi and pulumi-language-python) on PATH.
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

# 1. A pulumi of the pinned version on PATH wins.
if path_pulumi="$(command -v pulumi 2>/dev/null)"; then
  if [ "$(timeout 20 "$path_pulumi" version 2>/dev/null || true)" = "v$PINNED_VERSION" ]; then
    dir="$(cd "$(dirname "$path_pulumi")" && pwd)"
    log "using pulumi v$PINNED_VERSION found on PATH"
    echo "$dir"
    exit 0
  fi
fi

# The stamp ties a build to the sources it came from.
stamp() {
  {
    echo "version=$VERSION scripts=$SCRIPTS_VERSION/$SCRIPTS_SUM"
    cat "$SRC_DIR/go.mod" "$SRC_DIR/go.sum"
    find "$SRC_DIR" -name '*.go' -type f | LC_ALL=C sort | xargs cat
  } | sha256sum | cut -d' ' -f1
}
WANT_STAMP="$(stamp)"

cached_ok() {
  local f
  for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
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
if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
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
log "compiling pulumi-language-python..."
build pulumi-language-python ./pulumi-language-python

log "fetching run-time scripts from github.com/pulumi/pulumi/sdk/v3@v$SCRIPTS_VERSION..."
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
install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$STAGE/pulumi-language-python-exec"
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
