#!/usr/bin/env bash
# drift.sh: the drift report ($OUT/drift.{html,json,md}; first/last seen kept in the shared store), then
# the audit log verified against the anchors (at least one: apply.sh makes them). Exit: drift's code
# (2 = drift found, which fails the job on purpose), or verify's when drift found none and the log is
# broken or anchored nowhere.
source "$(dirname "$0")/lib.sh"
fetch_anchors
code=0
"$MAILROOM" drift --html "$OUT/drift.html" --json "$OUT/drift.json" --markdown "$OUT/drift.md" || code=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/drift.md" ]; then
  bash "$(dirname "$0")/comment-body.sh" "$OUT/drift.md" "" 1000000 >> "$GITHUB_STEP_SUMMARY"
fi
"$MAILROOM" audit verify --require-anchor | tee "$OUT/audit-verify.txt" || { [ "$code" -ne 0 ] || code=1; }
exit "$code"
