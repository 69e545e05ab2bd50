"""`mailroom plan`: the engine preview, rendered at grant level for a reviewer."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mailroom.compare import Change, changes
from mailroom.errors import TenantError
from mailroom.identity import smtp_key
from mailroom.live import read_mailbox
from mailroom.plan import MailboxPlan, Plan, PlanCollector
from mailroom.runner import Invalid, Run, prepare, progress
from mailroom.spec import MailboxSpec
from mailroom.tenant import Tenant
from mailroom.textsafe import printable

EPILOG = """exit codes:
  0  no changes: the tenant matches the file
  1  error (invalid file, engine or tenant failure, or a mailbox refused: its address belongs to a
     person's mailbox, a room or a group); nothing was changed
  2  changes pending
"""


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", default="mailboxes.yaml", help="the mailboxes file (default: mailboxes.yaml)")
    p.add_argument("--stack", default="local",
                   help="Pulumi stack; `local` (default) is the embedded local tenant, others name a real tenant "
                        "in Pulumi.<stack>.yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show what apply would change, grant by grant",
                       description="Run the Pulumi engine's preview and print, per mailbox, every grant and "
                                   "setting that would change. Makes no write request; without --refresh, an "
                                   "unchanged file makes no tenant request at all.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--refresh", action="store_true",
                   help="read every managed mailbox first, so changes made outside git show in the plan")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the plan as Markdown (a pull-request comment)")
    p.set_defaults(func=run)


def make_plan(run: Run, *, refresh: bool) -> Plan:
    collector = PlanCollector()
    progress(f"mailroom: previewing stack {run.stack} ({len(run.desired.mailboxes)} mailboxes)"
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
    try:
        prepared = prepare(args.file, args.stack)
        plan = make_plan(prepared, refresh=args.refresh)
    except Invalid as exc:
        sys.stdout.write(str(exc))
        print(f"{args.file}: invalid; nothing was planned", file=sys.stderr)
        return 1
    except (TenantError, Exception) as exc:  # the engine raises CommandError with its own output
        print(f"mailroom plan: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(plan.to_json() + "\n" if args.json else plan.render_text())
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(plan.render_markdown())
    if plan.refusals:
        print(f"mailroom plan: {len(plan.refusals)} mailbox(es) refused; apply would change nothing", file=sys.stderr)
        return 1
    return 2 if plan.has_changes else 0
