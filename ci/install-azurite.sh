#!/usr/bin/env bash
# Azurite (Microsoft's Azure Storage emulator, from npm) for the shared-store tests. Idempotent; prints
# the azurite-blob binary's path. The tests start it themselves on a free loopback port.
set -euo pipefail
VERSION=3.37.0
DIR="${MAILROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailroom}/azurite-$VERSION"
BIN="$DIR/node_modules/.bin/azurite-blob"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
command -v npm >/dev/null 2>&1 || { echo "install-azurite: npm is missing (Node.js 18+ is needed)" >&2; exit 1; }
echo "install-azurite: installing azurite@$VERSION from npm (once; about a minute) ..." >&2
mkdir -p "$DIR"
npm install --silent --no-audit --no-fund --prefix "$DIR" "azurite@$VERSION" >&2
echo "$BIN"
