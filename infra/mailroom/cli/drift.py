"""`mailroom drift`: live tenant vs the file, with first/last seen, who did it, and reports."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone

from mailroom import output
from mailroom.cli import apply as apply_cmd
from mailroom.cli import error_handler, options
from mailroom.core.identity import smtp_key
from mailroom.core.textsafe import printable
from mailroom.drift import run as drift_run
from mailroom.engine.runner import Invalid, Run, prepare
from mailroom.views import report
from mailroom.views.page import Provenance, commit_of

EPILOG = """exit codes:
  0   no drift
  1   error: the file is invalid, or a mailbox could not be read (it is reported, never as clean);
      --remediate: the apply failed, refused a mailbox, or was not confirmed (no terminal and no --yes)
  2   drift found (with --remediate: and reverted; forwarding inbox rules are disabled, never deleted)
  3   --remediate: apply refused by the mass-removal guard; nothing was changed
  64  usage error

--json prints one document: {"format_version": 1, "command": "drift", "drift": bool, "summary",
"findings": [{"mailbox", "kind", "right", "subject", "expected", "actual", "detail", "first_seen",
"last_seen", "changed_by", "changed_at", "control", "severity"}], "resolved": [...], "scan": {"mailboxes", "unmanaged",
"exchange_requests", "graph_requests", "retries", "throttled", "errors", "inbox_rules"}, "remediation": null |
<apply's document without format_version and command>}. --json FILE writes it to FILE instead
(and prints the text report).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="compare the live tenant with the file and report every difference",
                       description="Scan every shared mailbox in bulk and report missing grants, unmanaged "
                                   "access, changed settings, missing or unmanaged mailboxes and stale access, "
                                   "each with when it was first seen and who made the change.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_common(p)
    # --json as everywhere; an optional FILE keeps the older `--json drift.json` working.
    options.add_json_or_file(p, "the report")
    options.add_markdown(p, "the report")
    options.add_html(p, "the report: provenance, findings, and every mailbox's access (managed and unmanaged), "
                        "print-ready")
    p.add_argument("--csv", metavar="FILE",
                   help="also write every grant as CSV to FILE: one row per mailbox × person × right (columns "
                        "mailbox, managed, owner, person, right, label, status, in_file, in_tenant, removed_by)")
    p.add_argument("--remediate", action="store_true",
                   help="revert managed drift through apply: the same plan, confirmation and mass-removal guard")
    apply_cmd.add_confirmation(p)
    p.add_argument("--concurrency", type=int, default=32,
                   help="most requests in flight (default 32); the request rate adapts to throttling by itself")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = options.stack(args.stack)
    as_json = args.json == "-"
    try:
        prepared = prepare(args.file, stack)
    except Invalid as exc:
        return error_handler.invalid("drift", args.file, exc, as_json, "scanned")
    log = prepared.audit_log()
    log.start_run(detail="drift", context={"file": str(prepared.file)})
    output.progress(f"mailroom: scanning stack {prepared.stack} ({len(prepared.desired.mailboxes)} managed "
                    "mailboxes)")
    try:
        done = asyncio.run(drift_run.drift(prepared, args.concurrency, output.bar, bool(args.html or args.csv)))
    except BaseException as exc:  # recorded, then reported by the one error handler
        log.end_run("failed", {"error": str(exc)})
        raise
    found, resolved, result, stats = done.found, done.resolved, done.result, done.stats
    if result.rules_unread:  # said every run: forwarding rules are not checked, so no news is not good news
        print(f"mailroom drift: forwarding inbox rules were not checked: {result.rules_unread}; give the drift "
              "identity a role with Get-InboxRule (Mail Recipients) to check them", file=sys.stderr)
    managed = {mb.key for mb in prepared.desired.mailboxes}
    unread = sorted(a for a in result.errors if smtp_key(a) not in managed)
    if unread:  # read for --html/--csv only, so no finding names them; still an error: the report lacks them
        print(f"mailroom drift: {len(unread)} shared mailbox(es) the file does not manage could not be read for the "
              f"report: {', '.join(printable(a) for a in unread[:10])}", file=sys.stderr)
    drift_run.record(prepared, log, found, resolved)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if not as_json:
        sys.stdout.write(report.render_text(found, resolved))
    if args.json and not as_json:
        output.write_file(args.json, report.render_json(found, resolved, stats))
    if args.markdown:
        output.write_file(args.markdown, report.render_markdown(found, resolved))
    if args.html:
        made = Provenance(prepared.stack, prepared.tenant.tenant_id, commit_of(prepared.file.parent), generated,
                          report.coverage(prepared.desired, result), "mailroom drift")
        output.write_file(args.html, report.render_html(found, prepared.desired, result, generated, made))
    if args.csv:
        output.write_file(args.csv, report.render_csv(found, prepared.desired, result))
    code = error_handler.ERROR if result.errors else (error_handler.CHANGES if found else error_handler.OK)
    log.end_run("error" if result.errors else ("drift" if found else "clean"), {"findings": len(found), **stats})
    remediation: apply_cmd.Applied | None = None
    if args.remediate and found and not result.errors:
        remediation = _remediate(args, prepared, as_json)
        if remediation.code != error_handler.OK:  # reverted: still 2, drift was found
            code = remediation.code
    if as_json:
        body = json.loads(report.render_json(found, resolved, stats))
        body["remediation"] = remediation.document() if remediation is not None else None
        output.print_document("drift", body)
    return code


def _remediate(args: argparse.Namespace, drifted: Run, as_json: bool) -> apply_cmd.Applied:
    """Revert managed drift with apply itself: its plan, confirmation and mass-removal guard."""
    output.progress("mailroom: --remediate: applying the file")
    prepared = prepare(args.file, drifted.stack)  # a run of its own in the audit log
    # Inbox rules are read too: remediation disables (never deletes) those that forward, as changes of the
    # plan shown, guarded, confirmed and checked by the provider like any other.
    done = apply_cmd.apply(prepared, yes=args.yes, allow_mass_removal=args.allow_mass_removal,
                           show=apply_cmd.show_plan(as_json, args.yes), detail="drift --remediate", rules=True)
    if not as_json:
        sys.stdout.write(done.render_text())
    return done
