"""`mailroom audit`: verify and inspect the tamper-evident audit log."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from mailroom import output, paths
from mailroom.audit import anchor as anchor_mod
from mailroom.audit import log as audit
from mailroom.cli import error_handler, options

_FILE_HELP = (f"the audit log (default: ${paths.AUDIT_LOG_ENV}, else {paths.AUDIT_LOG_NAME} in the state directory: "
              f"${paths.STATE_DIR_ENV}, else .mailroom in the project; where apply writes it)")

AUDIT_EPILOG = """\
The audit log is append-only JSON Lines; every line carries `prev`, the SHA-256
of the line before it (the first line: SHA-256 of the empty string), and `seq`,
its 1-based line number. Editing, deleting, inserting or reordering lines breaks
the chain. Deleting or editing only the last line(s) does not: keep the head hash
that `mailroom audit verify` prints (e.g. as a CI artifact) and pass it back
with --expect-head next time.

exit codes (see each sub-command's --help):
  0   success
  1   the log is broken, missing or cannot be read
  64  usage error (bad arguments)
"""

VERIFY_EPILOG = """\
Prints `head: HASH` - the SHA-256 of the last line. Store it outside the log
(CI artifact, job output) and pass it to --expect-head on the next run: that
also catches deleted or edited last lines, which the chain alone cannot.
Lines appended after the anchored one are accepted.

examples:
  mailroom audit verify
  mailroom audit verify .mailroom/audit.jsonl --expect-head "$(cat audit-head.txt)"
  mailroom audit verify --json > verify.json && jq -r .head verify.json > audit-head.txt

--json prints one document: {"format_version": 1, "command": "audit verify", "path", "ok",
"lines_checked", "head", "first_bad_line", "reason"} (the keys of the result).

exit codes:
  0   the chain is intact (and contains the --expect-head entry, if given)
  1   the log is broken (the first bad line and the reason are printed), or there is no log at
      FILE, or it cannot be read
  64  usage error: bad arguments, malformed --expect-head
"""

SHOW_EPILOG = """\
Filters combine (AND). --since takes an ISO date or date-time (UTC unless it
has an offset: 2024-05-01, 2024-05-01T09:30Z) or an age: 90s, 30m, 24h, 7d, 2w.
--kind may be repeated or comma-separated. show does not check the chain; use
`mailroom audit verify` for that.

examples:
  mailroom audit show --mailbox Sales@Contoso.com --since 7d
  mailroom audit show --kind change,change_failed --json | jq '.entries[]'

--json prints one document: {"format_version": 1, "command": "audit show", "path", "entries":
[entry, ...]}, each entry as it is in the log; --jsonl prints the entries as JSON Lines instead.

exit codes:
  0   success (also when nothing matches)
  1   no log at FILE, or the log cannot be read (a line is not JSON, ...)
  64  usage error: bad arguments
"""


def _hash_arg(value: str) -> str:
    try:
        return audit.normalise_hash(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _since_arg(value: str) -> datetime:
    try:
        return audit.parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_KINDS = [kind.value for kind in audit.Kind]


def _kinds_arg(value: str) -> list[str]:
    kinds = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [kind for kind in kinds if kind not in _KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"invalid kind {', '.join(unknown) or repr(value)} (choose from {', '.join(_KINDS)})"
        )
    return kinds


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="verify and inspect the tamper-evident audit log",
        description="Verify and inspect the hash-chained audit log that plan/apply/drift write.",
        epilog=AUDIT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")

    def _no_subcommand(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return error_handler.USAGE

    parser.set_defaults(func=_no_subcommand)

    verify = sub.add_parser(
        "verify",
        help="check the hash chain; print the head hash",
        description="Check that the audit log's hash chain is intact and print its head hash.",
        epilog=VERIFY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("file", nargs="?", metavar="FILE", help=_FILE_HELP)
    options.add_stack(verify)
    verify.add_argument(
        "--expect-head",
        metavar="HASH",
        type=_hash_arg,
        help="head hash from an earlier verify: fail unless that entry is still in the log",
    )
    verify.add_argument(
        "--require-anchor",
        action="store_true",
        help=f"fail unless at least one anchor of this log is in {anchor_mod.REF} (a pipeline that has "
             "anchored before: without it, deleting the notes ref and rewriting the log would pass)",
    )
    options.add_json(verify)
    verify.set_defaults(func=run_verify)

    anchor = sub.add_parser(
        "anchor",
        help="record the chain's head in git (refs/notes/mailroom-audit on HEAD)",
        description="Verify the stack's log and record its head (seq and SHA-256 of the last line) as a git "
                    f"note on HEAD under {anchor_mod.REF}, a second trust domain: `audit verify` then checks "
                    "the log against every anchor. Push the ref afterwards.",
        epilog="exit codes:\n  0   anchored\n  1   the log is broken or missing, or git refused\n  64  usage error\n\n"
               '--json prints {"format_version": 1, "command": "audit anchor", "stack", "log", "seq", "head", '
               '"commit", "ref"}.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_stack(anchor)
    options.add_json(anchor)
    anchor.set_defaults(func=run_anchor, file=None)

    export = sub.add_parser(
        "export",
        help="the log for a SIEM (Sentinel, Splunk): JSON Lines or CEF",
        description="Verify the log, then write its entries at or after --since as JSON Lines (each line as "
                    "in the log, so its hash can be recomputed) or as CEF lines (ArcSight Common Event Format), "
                    "for a SIEM to ingest. A broken log is not exported.",
        epilog="exit codes:\n  0   exported\n  1   the log is broken, missing or unreadable\n  64  usage error",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("file", nargs="?", metavar="FILE", help=_FILE_HELP)
    options.add_stack(export)
    export.add_argument("--since", metavar="TIME", type=_since_arg, help="only entries at or after TIME")
    export.add_argument("--format", choices=("jsonl", "cef"), default="jsonl", help="jsonl (default) or cef")
    export.add_argument("--out", metavar="FILE", help="write to FILE (owner-only) instead of stdout")
    export.set_defaults(func=run_export)

    show = sub.add_parser(
        "show",
        help="list audit entries, filtered",
        description="List audit log entries, oldest first.",
        epilog=SHOW_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("file", nargs="?", metavar="FILE", help=_FILE_HELP)
    options.add_stack(show)
    show.add_argument("--mailbox", metavar="SMTP", help="only this mailbox (case-insensitive)")
    show.add_argument("--since", metavar="TIME", type=_since_arg, help="only entries at or after TIME")
    show.add_argument(
        "--kind",
        metavar="KIND",
        type=_kinds_arg,
        action="extend",
        help=f"only these kinds: {', '.join(_KINDS)}",
    )
    output_format = show.add_mutually_exclusive_group()
    options.add_json(output_format, "the matching entries")
    output_format.add_argument("--jsonl", action="store_true", help="print the matching entries as JSON Lines")
    show.set_defaults(func=run_show)


def _location(args: argparse.Namespace) -> Path | str:
    # audit.default_path is paths.audit_log: the log apply writes, also under $MAILROOM_STATE_DIR, or the
    # shared store ($MAILROOM_STORE), where each stack has its own log.
    return Path(args.file) if args.file else audit.default_path()


@contextlib.contextmanager
def _opened(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(what to call the log, a local file holding it): a store's log is read through a private copy."""
    location = _location(args)
    if isinstance(location, str):
        stack = options.stack(args.stack)
        with audit.local_copy(location, stack) as copy:
            yield f"{location} (stack {stack})", copy
    else:
        yield str(location), location


def run_verify(args: argparse.Namespace) -> int:
    with _opened(args) as (name, path):
        return _verify(args, name, path)


def _anchors(args: argparse.Namespace) -> list[anchor_mod.Anchor]:
    """The anchors of the default log (no FILE given) in the repository around the current directory."""
    if args.file:
        return []
    location = _location(args)
    if isinstance(location, str):  # a store keeps one log per stack: its anchors are that stack's
        return anchor_mod.read(options.stack(args.stack), location, Path.cwd())
    # One local file holds every stack's entries: each anchor of it holds, whichever stack anchored it, so
    # verifying it needs no stack (and in CI must not refuse for want of one).
    return anchor_mod.read(options.named_stack(args.stack), str(location), Path.cwd())


def run_export(args: argparse.Namespace) -> int:
    from mailroom.audit import export

    render = export.cef if args.format == "cef" else export.jsonl
    with _opened(args) as (name, path):
        try:
            result = audit.verify(path, anchors=[(a.seq, a.head) for a in _anchors(args)])
        except FileNotFoundError:
            raise error_handler.FatalError(f"no audit log at {name}") from None
        if not result.ok:
            print(f"mailroom audit export: refused: {name} is broken: {result.reason}", file=sys.stderr)
            return error_handler.ERROR
        lines = [render(entry) + "\n" for entry in audit.read(path, since=args.since)]
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it names who has access to what
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
    else:
        sys.stdout.writelines(lines)
    print(f"exported {len(lines)} entr{'y' if len(lines) == 1 else 'ies'} of {name}", file=sys.stderr)
    return error_handler.OK


def run_anchor(args: argparse.Namespace) -> int:
    stack = options.stack(args.stack)
    with _opened(args) as (name, path):
        try:
            result = audit.verify(path)
        except FileNotFoundError:
            raise error_handler.FatalError(f"no audit log at {name}") from None
    if not result.ok:
        print(f"mailroom audit anchor: refused: {name} is broken: {result.reason}", file=sys.stderr)
        return error_handler.ERROR
    anchor = anchor_mod.Anchor(stack, str(_location(args)), result.head_seq, result.head, audit.utc_now())
    try:
        commit = anchor_mod.add(anchor, Path.cwd())
    except (RuntimeError, OSError) as exc:
        raise error_handler.FatalError(str(exc)) from None
    if args.json:
        output.print_document("audit anchor", {"stack": stack, "log": anchor.log, "seq": anchor.seq,
                                               "head": anchor.head, "commit": commit, "ref": anchor_mod.REF})
    else:
        print(f"anchored entry #{anchor.seq} ({anchor.head}) of {name} on {commit} in {anchor_mod.REF}; "
              f"push it: git push origin {anchor_mod.REF}")
    return error_handler.OK


def _verify(args: argparse.Namespace, name: str, path: Path) -> int:
    try:
        anchors = _anchors(args)
        result = audit.verify(path, expect_head=args.expect_head, anchors=[(a.seq, a.head) for a in anchors])
        if result.ok and args.require_anchor and not anchors:
            result = dataclasses.replace(result, ok=False, reason=f"no anchor of this log in {anchor_mod.REF} "
                                         "(--require-anchor): fetch the notes ref; the chain itself is intact")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        if args.expect_head is None:
            print(f"mailroom audit verify: no audit log at {name}", file=sys.stderr)
            return error_handler.ERROR
        result = audit.VerifyResult(
            ok=False,
            lines_checked=0,
            first_bad_line=1,
            reason=f"line 1: the log does not exist but the anchored entry {args.expect_head} was expected",
        )
    except OSError as exc:
        print(f"mailroom audit verify: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return error_handler.ERROR
    if args.json:
        output.print_document("audit verify", {"path": name, **result.to_dict(), "anchors": len(anchors)})
    elif result.ok:
        print(f"OK: {name}: {result.lines_checked} line(s), chain intact, {len(anchors)} anchor(s) in "
              f"{anchor_mod.REF} hold")
        print(f"head: {result.head}")
    else:
        where = f"{name}:{result.first_bad_line}" if result.first_bad_line is not None else name
        print(f"BROKEN: {where}: {result.reason}")
        print(f"lines 1..{result.lines_checked} verified; head of the intact part: {result.head}")
    return 0 if result.ok else 1


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_COLUMNS = ("TIME", "KIND", "MAILBOX", "RIGHT", "SUBJECT", "BEFORE -> AFTER", "RESULT", "ACTOR", "DETAIL")


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    before, after = entry.get("before"), entry.get("after")
    change = "" if before is None and after is None else f"{_cell(before)} -> {_cell(after)}"
    actor = entry.get("actor")
    who = actor.get("name") if isinstance(actor, dict) else None
    return (
        _cell(entry.get("time")),
        _cell(entry.get("kind")),
        _cell(entry.get("mailbox")),
        _cell(entry.get("right")),
        _cell(entry.get("subject")),
        change,
        _cell(entry.get("result")),
        _cell(who),
        "" if entry.get("detail") is None else _cell(entry.get("detail")),
    )


def run_show(args: argparse.Namespace) -> int:
    with _opened(args) as (name, path):
        return _show(args, name, path)


def _show(args: argparse.Namespace, name: str, path: Path) -> int:
    try:
        entries = audit.read(path, mailbox=args.mailbox, since=args.since, kinds=args.kind)
        if args.json:
            matching = list(entries)
            count = len(matching)
            output.print_document("audit show", {"path": name, "entries": matching})
        elif args.jsonl:
            count = 0
            for entry in entries:
                print(audit.canonical_json(entry))
                count += 1
        else:
            rows = [_row(entry) for entry in entries]
            count = len(rows)
            if rows:
                widths = [max(len(cells[i]) for cells in (_COLUMNS, *rows)) for i in range(len(_COLUMNS))]
                for cells in (_COLUMNS, *rows):
                    print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        print(f"mailroom audit show: no audit log at {path}", file=sys.stderr)
        return error_handler.ERROR
    except audit.AuditError as exc:
        print(f"mailroom audit show: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"mailroom audit show: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if count == 0:
        print("no matching entries", file=sys.stderr)
    return 0
