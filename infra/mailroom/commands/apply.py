"""`mailroom apply`: the engine update, behind the mass-removal guard."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from mailroom.commands.plan import add_common, make_plan
from mailroom.identity import smtp_key
from mailroom.locks import explain
from mailroom.plan import Approval
from mailroom.runner import Invalid, prepare, progress
from mailroom.textsafe import printable

EPILOG = """exit codes:
  0  applied (or nothing to do)
  1  failed: the output says what was and was not applied
  1  also: a mailbox was refused (its address belongs to a person's mailbox, a room or a group),
     or the tenant changed between the plan and the update (a change not in the shown plan is
     never made; run again to see the new plan)
  3  refused: the plan removes and releases more grants or mailboxes than
     policy.max_removals_per_apply (default 10) and --allow-mass-removal was not given; nothing
     was changed
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="make the tenant match the file",
                       description="Refresh live state, plan, check the mass-removal guard, then run the Pulumi "
                                   "engine's update. Every change is recorded in the audit log.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (CI)")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="apply even when more than policy.max_removals_per_apply grants or mailboxes go")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


CHANGING_OPS = ("create", "update", "delete", "replace", "create-replacement", "delete-replaced")


class _Progress:
    """Engine events → one line per mailbox as it finishes; failures kept for the summary."""

    def __init__(self, changing: set[str]) -> None:
        self.changing = changing  # the plan's mailboxes with a change (a state-only step writes nothing)
        self.done = 0
        self.failed: dict[str, str] = {}
        self.ok: list[str] = []

    def __call__(self, event: Any) -> None:
        out = getattr(event, "res_outputs_event", None)
        if out is not None and out.metadata.type.endswith("mailroom:SharedMailbox"):
            op = getattr(out.metadata.op, "value", str(out.metadata.op))
            name = out.metadata.urn.rsplit("::", 1)[-1]
            # Only steps that write: a refresh (`refresh`, `read`) or an unchanged mailbox is not "applied".
            if op in CHANGING_OPS and smtp_key(name) in self.changing:
                self.done += 1
                self.ok.append(name)
                progress(f"  [{self.done}] {name}: {op} done")
        failed = getattr(event, "res_op_failed_event", None)
        if failed is not None:
            name = failed.metadata.urn.rsplit("::", 1)[-1]
            self.failed.setdefault(name, "failed")
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity == "error" and diag.message.strip():
            line = _last_line(diag.message)
            if diag.urn:
                name = diag.urn.rsplit("::", 1)[-1]
            else:  # a provider's exception may come without a URN; its message starts with the mailbox
                match = _MAILBOX_IN_ERROR.match(line)
                name = match.group(1) if match else ""
            if name:
                self.failed[name] = line


_MAILBOX_IN_ERROR = re.compile(r"^[\w.]+: ([^\s:@]+@[^\s:]+):")


def _last_line(text: str) -> str:
    """The useful line of a provider error: the exception's message, not the traceback."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("mailroom.", "TenantError", "RetriesExhausted", "PlanMismatch")) or ": HTTP " in ln:
            return ln
    return lines[-1] if lines else "failed"


def run(args: argparse.Namespace) -> int:
    try:
        prepared = prepare(args.file, args.stack)
    except Invalid as exc:
        sys.stdout.write(str(exc))
        print(f"{args.file}: invalid; nothing was applied", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"mailroom apply: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    log = prepared.audit_log()
    try:
        plan = make_plan(prepared, refresh=True)
    except Exception as exc:
        print(f"mailroom apply: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(plan.render_text())
    if plan.refusals:
        print(f"mailroom apply: refused: {len(plan.refusals)} mailbox(es) cannot be applied (see `! refused` "
              "above). Nothing was changed.", file=sys.stderr)
        log.start_run(detail="apply", context={"file": str(prepared.file)})
        log.end_run("refused", {"refusals": plan.refusals})
        return 1
    limit = prepared.desired.policy.max_removals_per_apply
    if plan.guarded > limit and not args.allow_mass_removal:
        print(f"mailroom apply: refused: the plan removes {len(plan.removals)} grants or mailboxes and releases "
              f"{len(plan.released)} from management, more than policy.max_removals_per_apply ({limit}). If that "
              "is intended, run again with --allow-mass-removal. Nothing was changed.", file=sys.stderr)
        log.start_run(detail="apply", context={"file": str(prepared.file)})
        log.end_run("refused", {"removals": len(plan.removals), "releases": len(plan.released), "limit": limit})
        return 3
    if not plan.has_changes:
        print("mailroom apply: nothing to do", file=sys.stderr)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("mailroom apply: not a terminal; pass --yes to apply without confirmation", file=sys.stderr)
            return 1
        if input("Apply these changes? [y/N] ").strip().casefold() not in ("y", "yes"):
            print("mailroom apply: cancelled; nothing was changed", file=sys.stderr)
            return 1
    # The engine's provider keeps to this plan: it refuses any change the reviewer was not shown.
    approval = prepared.plan_path()
    Approval.from_plan(plan).save(approval)
    log.start_run(detail="apply", context={"file": str(prepared.file), "changes": len(plan.changes)})
    tracker = _Progress({smtp_key(m.address) for m in plan.mailboxes if m.changes or m.op == "release"})
    progress(f"mailroom: applying {len(plan.changes)} change(s) to stack {prepared.stack}")
    try:
        prepared.engine(approval).up(tracker, refresh=True)
        result = "ok"
    except Exception as exc:
        result = "failed"
        if "currently locked" in str(exc):
            print(f"mailroom apply: {explain(prepared.backend_url(), prepared.stack)} Nothing was changed.",
                  file=sys.stderr)
        else:
            detail = [ln for ln in str(exc).splitlines() if "error" in ln.lower()][-5:]
            print("mailroom apply: the engine reported a failure:\n  " + "\n  ".join(detail), file=sys.stderr)
    finally:
        approval.unlink(missing_ok=True)
    summary = {"applied": tracker.ok, "failed": tracker.failed}
    log.end_run(result, summary)
    if args.json:
        import json

        print(json.dumps({"result": result, **summary}, indent=2))
    else:
        for name in tracker.ok:
            print(f"{printable(name)}: applied")
        for name, why in tracker.failed.items():  # a service's error text can quote tenant values
            print(f"{printable(name)}: FAILED: {printable(why)}")
    return 0 if result == "ok" and not tracker.failed else 1
