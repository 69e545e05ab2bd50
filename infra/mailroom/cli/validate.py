"""`mailroom validate`: every mistake in the file at once, with file, line and field."""

from __future__ import annotations

import argparse
import json
import sys

from mailroom import output, paths
from mailroom.cli import options
from mailroom.cli.error_handler import FatalError, UsageError
from mailroom.core.textsafe import printable
from mailroom.file.findings import Finding, Severity, render_text
from mailroom.file.load import LoadResult, load_desired
from mailroom.views.annotations import RENDERERS
from mailroom.views.annotations import github as render_github  # noqa: F401  (its older home, kept for callers)

EPILOG = """exit codes:
  0   valid (warnings allowed unless --strict)
  1   invalid: at least one error (or a warning with --strict)
  64  usage error

--format github|azure-devops|gitlab: annotations for the CI system: GitHub workflow commands
(::error file=,line=,col=,title=::), Azure DevOps logging commands (##vso[task.logissue ...]), a
GitLab Code Quality report (JSON; with --out FILE for `artifacts: reports: codequality`).

--json prints one document: {"format_version": 1, "command": "validate", "file", "valid",
"errors", "warnings", "mailboxes", "findings": [{"file", "line", "column", "pointer", "severity",
"code", "message"}]}. --format json is the older form: the list of findings alone.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate", help="check mailboxes.yaml and its includes without touching the tenant",
        description="Check the mailboxes file (schema, semantics, policy) and report every finding "
                    "with path:line:column and the field's JSON pointer. Makes no tenant request.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The positional is the older spelling of --file; both work, --file as on every other command.
    p.add_argument("path", nargs="?", metavar="FILE", help=f"the main file (default: {paths.DEFAULT_FILE})")
    p.add_argument("--file", help="the same as FILE")
    options.add_json(p, "the findings")
    p.add_argument("--format", choices=("text", "json", *RENDERERS), default="text",
                   help="text (default), json (the list of findings alone; prefer --json), github (workflow "
                        "commands), azure-devops (logging commands), gitlab (a Code Quality report)")
    p.add_argument("--out", metavar="FILE",
                   help="write the --format output to FILE instead of stdout (e.g. gl-code-quality-report.json); "
                        "the text findings then go to stdout, so the CI log still shows them")
    p.add_argument("--strict", action="store_true", help="fail on warnings too")
    p.set_defaults(func=run)


def _load(path: str) -> LoadResult:
    try:
        return load_desired(path)
    except (RecursionError, MemoryError) as exc:
        # The loader bounds depth and size before it builds anything, so this is a missed case; still
        # a located answer rather than a traceback, and still a failure.
        what = "nests too deeply" if isinstance(exc, RecursionError) else "needs too much memory"
        return LoadResult(None, [Finding(printable(path), 1, 1, "", Severity.ERROR, "file-too-complex",
                                         f"the file {what} to be checked")])


def run(args: argparse.Namespace) -> int:
    if args.path and args.file and args.path != args.file:
        raise UsageError(f"two files given: {args.path} and --file {args.file}")
    if args.out and (args.json or args.format == "text"):
        raise UsageError("--out takes the output of --format json, github, azure-devops or gitlab")
    return validate(args.file or args.path or paths.DEFAULT_FILE, fmt="json-document" if args.json else args.format,
                    strict=args.strict, out=args.out)


def validate(file: str, *, fmt: str = "text", strict: bool = False, out: str | None = None) -> int:
    """Check ``file``; print the findings as ``fmt`` (text, json-document, json, or a key of RENDERERS),
    or write them to ``out`` and print the text findings."""
    result = _load(file)
    findings = result.findings
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = len(findings) - errors
    valid = result.ok(strict=strict)
    if fmt == "json-document":
        output.print_document("validate", {
            "file": file, "valid": valid, "errors": errors, "warnings": warnings,
            "mailboxes": len(result.desired.mailboxes) if result.desired is not None else None,
            "findings": [f.to_dict() for f in findings]})
    elif fmt == "json" or fmt in RENDERERS:
        rendered = json.dumps([f.to_dict() for f in findings], indent=2) + "\n" if fmt == "json" \
            else RENDERERS[fmt](findings)
        if out is None:
            sys.stdout.write(rendered)
        else:
            _write(out, rendered)
            sys.stdout.write(render_text(findings))
    else:
        sys.stdout.write(render_text(findings))
        if result.desired is not None and not errors:
            print(f"{printable(file)}: valid, {len(result.desired.mailboxes)} mailboxes in "
                  f"{len(result.desired.files)} file(s), {warnings} warning(s)", file=sys.stderr)
        else:
            print(f"{printable(file)}: {errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 0 if valid else 1


def _write(path: str, text: str) -> None:
    """Write a report; a directory that is not there or a file that cannot be written is a known failure
    (exit 1, one line), not a traceback."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise FatalError(f"cannot write {printable(path)}: {exc.strerror or exc}") from None
