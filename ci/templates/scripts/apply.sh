#!/usr/bin/env bash
# apply.sh [PLAN]: apply exactly the reviewed saved plan (default $OUT/plan.json), anchor the audit chain's
# head on this commit (git note, pushed to origin) and verify the store's log against the anchors
# (--require-anchor: a deleted notes ref fails, it does not pass unchecked).
# Exit: apply's own code when it did not succeed (1 failed, 3 the mass-removal guard, 4 a stale plan:
# plan again), else verify's. The anchor and the verification run after a failed apply too: its
# failed changes are in the log.
source "$(dirname "$0")/lib.sh"
plan=${1:-$OUT/plan.json}
fetch_anchors
code=0
"$MAILROOM" apply "$plan" --yes || code=$?
if [ "$code" -eq 4 ]; then
  echo "mailroom: the reviewed plan is stale (the file, the stack or the tenant moved): nothing changed; plan again" >&2
fi
"$MAILROOM" audit anchor
git push --quiet origin "$NOTES"
"$MAILROOM" audit verify --require-anchor | tee "$OUT/audit-verify.txt"
exit "$code"
