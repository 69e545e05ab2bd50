"""`mailroom plan`: what apply would change, grant by grant, for a reviewer; saved with --out."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from mailroom import output
from mailroom.cli import error_handler, options
from mailroom.core.textsafe import printable
from mailroom.engine import planner
from mailroom.engine.plan import Plan
from mailroom.engine.planner import Planned
from mailroom.engine.runner import Invalid, Run, prepare
from mailroom.m365.tenant import Tenant

EPILOG = """exit codes:
  0   no changes: the tenant matches the file (existing shared mailboxes that already match it are
      listed as "= adopt": the next apply brings them under management with no tenant write)
  1   error (invalid file, engine or tenant failure, or a mailbox refused: its address belongs to a
      person's mailbox, a room or a group); nothing was changed
  2   changes pending
  64  usage error

--json prints one document: {"format_version": 1, "command": "plan", "has_changes", "summary",
"removals", "releases", "adopted", "refusals", "mailboxes": [{"address", "op", "changes": [{"mailbox", "op",
"right", "subject", "before", "after"}], "refused"?}]}, also when there are no changes.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="show what apply would change, grant by grant",
                       description="Compare the file with the stack's state (and, with --refresh, with the "
                                   "tenant, read in one bulk scan) and print, per mailbox, every grant and "
                                   "setting that would change. Makes no write request; without --refresh, an "
                                   "unchanged file makes no tenant request at all.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_common(p)
    p.add_argument("--refresh", action="store_true",
                   help="read every managed mailbox first (one bulk read), so changes made outside git show "
                        "in the plan")
    p.add_argument("--out", metavar="FILE",
                   help="save the exact plan (file digest, stack, the live state each change assumed) for "
                        "`mailroom apply FILE`, which applies exactly that plan or refuses")
    options.add_json(p, "the plan")
    options.add_markdown(p, "the plan (a pull-request comment)")
    p.set_defaults(func=run)


def make_plan(run: Run, *, refresh: bool, rules: bool = False) -> Planned:
    """The plan of this run: the stack's state, and one bulk read of what it needs from the tenant."""
    output.progress(f"mailroom: planning stack {run.stack} ({len(run.desired.mailboxes)} mailboxes)"
                    + (" against live state" if refresh else ""))
    engine = run.engine()  # opened first: a stack it cannot open stops the run before any tenant request
    # The stack's state is exported (an engine process) while the tenant is read.
    return _on_tenant(run, lambda t: planner.make_plan(t, run.desired, asyncio.to_thread(engine.export), run.stack,
                                                       refresh=refresh, progress=output.bar, rules=rules))


def check_saved_plan(run: Run, saved: Planned) -> Planned:
    """A saved plan, checked against this run's file, stack and the live state of what it changes."""
    output.progress(f"mailroom: checking the saved plan against stack {run.stack}")
    return _on_tenant(run, lambda t: planner.check_saved(t, run.desired, saved, run.stack, output.bar))


def _on_tenant(run: Run, work: Callable[[Tenant], Awaitable[Planned]]) -> Planned:
    """``work`` on this run's tenant, opened for it (no request until ``work`` makes one)."""
    async def go() -> Planned:
        async with Tenant(run.tenant) as t:
            return await work(t)
    return asyncio.run(go())


def run(args: argparse.Namespace) -> int:
    return plan(args.file, options.stack(args.stack), refresh=args.refresh, as_json=args.json,
                markdown=args.markdown, out=args.out)


def plan_document(result: Plan) -> dict[str, object]:
    """The plan as the body of a --json document (apply and drift --remediate embed it too)."""
    body: dict[str, object] = json.loads(result.to_json())
    body.pop("format_version", None)
    return body


def plan(file: str, stack: str, *, refresh: bool = False, as_json: bool = False, markdown: str | None = None,
         out: str | None = None) -> int:
    """Preview ``file`` on ``stack``; print the plan; 0 no changes, 2 changes pending, 1 refused."""
    try:
        prepared = prepare(file, stack)
    except Invalid as exc:
        # The findings are the result of a plan of an invalid file: stdout, as validate prints them.
        return error_handler.invalid("plan", file, exc, as_json, "planned")
    planned = make_plan(prepared, refresh=refresh)
    result = planned.plan
    if out:
        planned.save(Path(out), prepared.file)
        print(f"mailroom plan: saved to {printable(out)}; apply it with `mailroom apply {printable(out)}`",
              file=sys.stderr)
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
