"""`mailroom review`: who uses the access the file grants, from the unified audit log; unused access as a
proposed change to the file."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import datetime, timedelta, timezone

from mailroom import output
from mailroom.activity.collect import collect
from mailroom.cli import error_handler, options
from mailroom.core.textsafe import printable
from mailroom.engine.runner import Invalid, prepare
from mailroom.file.edit import Removal, grant_rights, propose_removals, read_texts
from mailroom.views import review as view
from mailroom.views.page import Provenance, commit_of

EPILOG = """verdicts, per mailbox and per person or group with access (Full Access, Send As, Send on Behalf,
folder entries: calendar, inbox, contacts):
  active   a delegate action by them on the mailbox in the window (the evidence: its kind and time)
  unused   none, while the mailbox records the action that would show it (SendAs, SendOnBehalf; for
           Full Access and delegates, who may only read: FolderBind, or MailItemsAccessed with Audit Premium)
  unknown  the mailbox does not record that action: the review says which audit setting would fix it
A group's access is its members' (nested included): active when a record names any member (the evidence
names them), unused when none acted and the action is recorded, unknown when the members could not be read.
Decommission candidates: mailboxes with no delegate action and no inbound mail (message trace) in the window.

exit codes:
  0   no unused access and nobody acted without access in the file
  1   error: the file is invalid, or the tenant could not be read
  2   unused access found, or someone acted on a mailbox without access in the file
  64  usage error

--json prints one document: {"format_version": 1, "command": "review", "since_days", "summary": {"active",
"unused", "unknown", "unmanaged_senders", "decommission_candidates"}, "access": [{"mailbox", "person", "right",
"verdict", "reviewer", "last_activity", "evidence", "fix", "is_group", "member"}], "unmanaged_senders": [...],
"decommission_candidates": [...], "scan": {...}, "proposal": null | {"file", "removed", "missing", "manual"}}.
--propose FILE writes the removal of every unused grant as a patch (`git apply FILE`), comments and order of
the YAML kept, headed by the owners of the mailboxes as reviewers (folder entries too: their role's row).
Reads need the Graph permissions AuditLogsQuery-Exchange.Read.All, ExchangeMessageTrace.Read.All and
GroupMember.Read.All.
"""

_SINCE = re.compile(r"^(\d{1,3})d$")
MAX_DAYS = 180  # Audit (Standard) keeps records 180 days


def since(text: str) -> timedelta:
    m = _SINCE.match(text.strip())
    if not m or not 1 <= int(m.group(1)) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of days from 1 to {MAX_DAYS}, e.g. 90d")
    return timedelta(days=int(m.group(1)))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="who uses their access, from the unified audit log; propose removing the "
                                      "unused", description=__doc__, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_common(p)
    p.add_argument("--since", type=since, default=timedelta(days=90), metavar="DAYS",
                   help="the window, in days (default 90d; at most 180d, what Audit Standard keeps)")
    options.add_json_or_file(p, "the review")
    options.add_markdown(p, "the review")
    options.add_html(p, "the review")
    p.add_argument("--propose", metavar="FILE", help="write the removal of unused access as a patch to FILE")
    p.add_argument("--no-trace", action="store_true",
                   help="do not read message traces (decommission candidates then rest on audit records alone)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = options.stack(args.stack)
    as_json = args.json == "-"
    try:
        prepared = prepare(args.file, stack)
    except Invalid as exc:
        return error_handler.invalid("review", args.file, exc, as_json, "read")
    output.progress(f"mailroom: reviewing access on stack {prepared.stack} ({len(prepared.desired.mailboxes)} "
                    f"managed mailboxes, last {args.since.days} days)")
    result, stats = asyncio.run(collect(prepared.desired, prepared.tenant, args.since, traces=not args.no_trace,
                                        progress=_records_bar))
    proposal = None
    if args.propose:
        proposable = {r.key for r in grant_rights()}
        removed = [r for r in result.unused if r.right in proposable]
        made = propose_removals(read_texts(prepared.desired.files),
                                [Removal(r.mailbox, r.right, r.person, r.folder) for r in removed])
        text = view.proposal_header(result, removed) + made.diff(prepared.file.parent)
        with open(args.propose, "w", encoding="utf-8") as fh:
            fh.write(text)
        proposal = {"file": args.propose, "removed": [x.to_dict() for x in made.removed],
                    "missing": [x.to_dict() for x in made.missing], "manual": [x.to_dict() for x in made.manual]}
        print(f"mailroom review: {len(made.removed)} removals written to {printable(args.propose)} "
              "(apply with git apply)", file=sys.stderr)
    body = view.render_json(result, stats.to_dict(), proposal)
    if as_json:
        output.print_document("review", body)
    else:
        sys.stdout.write(view.render_text(result))
        if args.json:
            output.write_file(args.json, output.document("review", body) + "\n")
    if args.markdown:
        output.write_file(args.markdown, view.render_markdown(result))
    if args.html:
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        coverage = (f"{stats.mailboxes} shared mailboxes read", f"{stats.records:,} audit records",
                    f"{stats.trace_queries} message trace queries")
        provenance = Provenance(prepared.stack, prepared.tenant.tenant_id, commit_of(prepared.file.parent), generated,
                                coverage, f"mailroom review --since {args.since.days}d")
        output.write_file(args.html, view.render_html(result, provenance))
    return error_handler.CHANGES if result.unused or result.senders else error_handler.OK


def _records_bar(done: int, total: int) -> None:
    """Audit records read so far, redrawn in place on a terminal only (a log gets nothing)."""
    if output.is_terminal(sys.stderr):
        width = 30
        filled = int(width * done / max(total, 1))
        print(f"\r  reading audit records [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}", end="",
              file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)
