#!/usr/bin/env bash
# The linters the pipeline templates are checked with (tests/test_pipelines.py calls this):
#   actionlint  built from its Go module into ${MAILROOM_CACHE:-~/.cache/mailroom}/bin (Go ≥ 1.24)
#   zizmor      GitHub Actions security audits, a binary wheel installed into the project's .venv
# Idempotent: a second run only checks versions (well under a second). Prints one line per linter:
# "name path". Fails, never skips, when a linter cannot be installed, so `make test` cannot pass unlinted.
set -euo pipefail

ACTIONLINT_VERSION=1.7.12
ZIZMOR_VERSION=1.32.0

here=$(cd "$(dirname "$0")/.." && pwd)
cache=${MAILROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailroom}
bin=$cache/bin
venv_python=${MAILROOM_VENV_PYTHON:-$here/.venv/bin/python}
mkdir -p "$bin"

actionlint=$bin/actionlint
if ! { [ -x "$actionlint" ] && "$actionlint" -version 2>/dev/null | head -n1 | grep -qx "v\?$ACTIONLINT_VERSION"; }; then
  command -v go >/dev/null 2>&1 || { echo "install-linters: go is needed to build actionlint" >&2; exit 1; }
  echo "install-linters: building actionlint v$ACTIONLINT_VERSION (once) ..." >&2
  # The Go caches of ci/build-pulumi.sh: outside the clone, so CI keeps them between runs.
  GOMODCACHE=$cache/pulumi-build/gomod GOCACHE=$cache/pulumi-build/gocache GOBIN=$bin GOFLAGS=-buildvcs=false \
    go install "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION" >&2
fi
echo "actionlint $actionlint"

zizmor=$(dirname "$venv_python")/zizmor
if ! { [ -x "$zizmor" ] && "$zizmor" --version 2>/dev/null | grep -q " $ZIZMOR_VERSION\$"; }; then
  [ -x "$venv_python" ] || { echo "install-linters: no virtual environment at $venv_python (run make setup)" >&2; exit 1; }
  echo "install-linters: installing zizmor $ZIZMOR_VERSION into $(dirname "$(dirname "$venv_python")") ..." >&2
  "$venv_python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "zizmor==$ZIZMOR_VERSION" >&2
fi
echo "zizmor $zizmor"
