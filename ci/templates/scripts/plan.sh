#!/usr/bin/env bash
# plan.sh: the saved plan ($OUT/plan.json, for apply.sh) and its Markdown ($OUT/plan.md, for review).
# Exit 0 when the plan was made (with or without changes); any other code of `mailroom plan` fails the
# step: 1 error or a refused mailbox, 64 usage, 70 a bug. Whether there are changes is written to
# $OUT/changes (true|false) and, on GitHub, to the step's outputs, so apply runs only when needed.
source "$(dirname "$0")/lib.sh"
code=0
"$MAILROOM" plan --refresh --out "$OUT/plan.json" --markdown "$OUT/plan.md" || code=$?
case "$code" in
  0) changes=false ;;
  2) changes=true ;;
  *) echo "mailroom: plan failed (exit $code)" >&2; exit "$code" ;;
esac
echo "$changes" > "$OUT/changes"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "changes=$changes" >> "$GITHUB_OUTPUT"; fi
echo "mailroom: plan saved, changes=$changes" >&2
