"""`mailroom plan`: the engine preview, rendered at grant level for a reviewer."""

from __future__ import annotations

import argparse
import sys

from mailroom.errors import TenantError
from mailroom.plan import Plan, PlanCollector
from mailroom.runner import Invalid, Run, prepare, progress

EPILOG = """exit codes:
  0  no changes: the tenant matches the file
  1  error (invalid file, engine or tenant failure); nothing was changed
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
    return collector.finish()


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
    return 2 if plan.has_changes else 0
