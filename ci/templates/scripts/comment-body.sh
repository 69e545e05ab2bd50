#!/usr/bin/env bash
# comment-body.sh PLAN.md [LINK] [LIMIT]: PLAN.md as a pull-request comment body on stdout, whole when it
# fits in LIMIT bytes (default 65536, GitHub's comment limit, counted in characters; bytes are never
# fewer), else cut at a line boundary with a note that links to the whole plan (the uploaded artifact).
set -euo pipefail
plan=$1 link=${2:-} limit=${3:-65536}
size=$(wc -c < "$plan")
if [ "$size" -le "$limit" ]; then cat "$plan"; exit 0; fi
note=$'\n\n---\n'"**The plan is $size bytes, more than a comment holds ($limit): it is cut here.**"
if [ -n "$link" ]; then note+=" The whole plan: [plan.md]($link)"; else note+=" The whole plan is in the run's artifacts."; fi
note+=$'\n'
# LC_ALL=C: awk counts bytes. A cut inside a ``` block closes it, so the note is not shown as code.
LC_ALL=C awk -v budget=$((limit - ${#note} - 8)) '
  { if (used + length($0) + 1 > budget) exit
    used += length($0) + 1; print
    if ($0 ~ /^```/) fenced = !fenced }
  END { if (fenced) print "```" }' "$plan"
printf '%s' "$note"
