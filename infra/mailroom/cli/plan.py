"""`mailroom plan`: the engine preview, rendered at grant level for a reviewer."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mailroom import output
from mailroom.cli import options
from mailroom.core.compare import Change, changes
from mailroom.core.identity import smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.core.textsafe import printable
from mailroom.engine.plan import MailboxPlan, Plan, PlanCollector
from mailroom.engine.runner import Invalid, Run, prepare
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.live import read_mailbox

EPILOG = """exit codes:
  0   no changes: the tenant matches the file
  1   error (invalid file, engine or tenant failure, or a mailbox refused: its address belongs to a
      person's mailbox, a room or a group); nothing was changed
  2   changes pending
  64  usage error

--json prints one document: {"format_version": 1, "command": "plan", "has_changes", "summary",
"removals", "releases", "refusals", "mailboxes": [{"address", "op", "changes": [{"mailbox", "op",
"right", "subject", "before", "after"}], "refused"?}]}, also when there are no changes.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show what apply would change, grant by grant",
                       description="Run the Pulumi engine's preview and print, per mailbox, every grant and "
                                   "setting that would change. Makes no write request; without --refresh, an "
                                   "unchanged file makes no tenant request at all.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_common(p)
    p.add_argument("--refresh", action="store_true",
                   help="read every managed mailbox first, so changes made outside git show in the plan")
    options.add_json(p, "the plan")
    options.add_markdown(p, "the plan (a pull-request comment)")
    p.set_defaults(func=run)


def make_plan(run: Run, *, refresh: bool) -> Plan:
    collector = PlanCollector()
    output.progress(f"mailroom: previewing stack {run.stack} ({len(run.desired.mailboxes)} mailboxes)"
             + (" with a refresh of live state" if refresh else ""))
    run.engine().preview(collector, refresh=refresh)
    plan = collector.finish()
    unknown = [m for m in plan.mailboxes if m.op == "create"]
    if unknown:
        asyncio.run(_look_up_unmanaged(run, unknown))
    return plan


async def _look_up_unmanaged(run: Run, planned: list[MailboxPlan]) -> None:
    """A mailbox the engine does not manage yet may exist: the plan says "adopt" for a shared one (with
    the changes against what it holds), and refuses an address held by anything else (a person's
    mailbox, a room, a group), which ``create`` would otherwise take over."""
    specs = {smtp_key(mb.address): MailboxSpec.from_model(mb, run.desired.domains) for mb in run.desired.mailboxes}
    async with Tenant(run.tenant) as t:
        async def one(m: MailboxPlan) -> None:
            spec = specs[smtp_key(m.address)]
            live = await read_mailbox(t.exchange, t.graph, t.directory, spec.address, spec.people(), spec.domains)
            if live is None:
                holder = await t.exchange.get_recipient(spec.address)
                if holder is not None:
                    kind = printable(holder.get("RecipientTypeDetails") or "recipient")
                    m.changes, m.refused = [], (f"{spec.address} belongs to a {kind} that is not a mailbox; "
                                                "mailroom changes nothing on it")
                return
            refusal = live.refusal()
            if refusal:
                m.changes, m.refused = [], refusal
            elif spec.state == "present":
                m.op = "adopt"
                m.changes = [Change(spec.address, "adopt", "mailbox", None, live.spec.display_name),
                             *changes(spec, live.spec)]
            else:
                m.op, m.changes = "update", changes(spec, live.spec)

        await asyncio.gather(*(one(m) for m in planned))


def run(args: argparse.Namespace) -> int:
    return plan(args.file, options.stack(args.stack), refresh=args.refresh, as_json=args.json,
                markdown=args.markdown)


def plan_document(result: Plan) -> dict[str, object]:
    """The plan as the body of a --json document (apply and drift --remediate embed it too)."""
    body: dict[str, object] = json.loads(result.to_json())
    body.pop("format_version", None)
    return body


def plan(file: str, stack: str, *, refresh: bool = False, as_json: bool = False, markdown: str | None = None) -> int:
    """Preview ``file`` on ``stack``; print the plan; 0 no changes, 2 changes pending, 1 refused."""
    try:
        prepared = prepare(file, stack)
    except Invalid as exc:
        # The findings are the result of a plan of an invalid file: stdout, as validate prints them.
        if as_json:
            output.print_document("plan", {"valid": False, "findings": [f.to_dict() for f in exc.result.findings]})
        else:
            sys.stdout.write(str(exc))
        print(f"{printable(file)}: invalid; nothing was planned", file=sys.stderr)
        return 1
    result = make_plan(prepared, refresh=refresh)
    if as_json:
        output.print_document("plan", plan_document(result))
    else:
        sys.stdout.write(result.render_text())
    if markdown:
        with open(markdown, "w", encoding="utf-8") as fh:
            fh.write(result.render_markdown())
    if result.refusals:
        print(f"mailroom plan: {len(result.refusals)} mailbox(es) refused; apply would change nothing",
              file=sys.stderr)
        return 1
    return 2 if result.has_changes else 0
