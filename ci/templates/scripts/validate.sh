#!/usr/bin/env bash
# validate.sh github|azure-devops|gitlab|text: annotations for the CI system; for gitlab also
# $OUT/gl-code-quality-report.json (artifacts: reports: codequality). Exit as `mailroom validate --strict`.
source "$(dirname "$0")/lib.sh"
format=${1:-text}
case "$format" in
  gitlab) "$MAILROOM" validate --strict --format gitlab --out "$OUT/gl-code-quality-report.json" ;;
  text) "$MAILROOM" validate --strict ;;
  *) "$MAILROOM" validate --strict --format "$format" ;;
esac
