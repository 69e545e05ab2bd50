# Sourced by every pipeline script: strict mode, where mailroom is, where the outputs go.
set -euo pipefail
MAILROOM=${MAILROOM:-.venv/bin/mailroom}   # the CLI `make setup` installs
OUT=${MAILROOM_OUT:-mailroom-out}          # what the pipeline uploads (plan, reports, logs)
NOTES=refs/notes/mailroom-audit            # where `mailroom audit anchor` records the chain's head
mkdir -p "$OUT"

# The anchors live in git (a second trust domain beside the store); a repository without them yet is fine.
fetch_anchors() {
  git fetch --quiet origin "+$NOTES:$NOTES" 2>/dev/null || echo "mailroom: no audit anchors on origin yet" >&2
}
