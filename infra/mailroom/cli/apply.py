"""`mailroom apply`: the engine update, behind the mass-removal guard and a confirmation.

``apply`` is the operation (``drift --remediate`` and ``demo`` call it too, so the guard and the
confirmation hold wherever apply runs); ``run`` parses and renders.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mailroom import output, paths
from mailroom.cli import error_handler, options
from mailroom.cli.plan import check_saved_plan, make_plan, plan_document
from mailroom.core.identity import smtp_key
from mailroom.core.textsafe import printable
from mailroom.engine.locks import explain
from mailroom.engine.plan import Approval, Plan
from mailroom.engine.planner import MAILBOX_TYPES, Planned, StalePlan, save_snapshot
from mailroom.engine.runner import Invalid, Run, prepare

EPILOG = """exit codes:
  0   applied (or nothing to do)
  1   failed: the output says what was and was not applied
  1   also: a mailbox was refused (its address belongs to a person's mailbox, a room or a group),
      the tenant changed between the plan and the update (a change not in the shown plan is
      never made; run again to see the new plan), or the changes were not confirmed (no terminal
      and no --yes, or not answered yes); in CI, no stack was named
  3   refused: the plan removes and releases more grants or mailboxes than
      policy.max_removals_per_apply (default 10) and --allow-mass-removal was not given; nothing
      was changed
  4   refused: the saved PLAN is stale (the file, the stack, or the live state of a mailbox it
      changes is not what the plan assumed); nothing was changed. Plan again.
  64  usage error

--json prints one document, also when there is nothing to do: {"format_version": 1, "command":
"apply", "result": "ok" | "failed" | "nothing_to_do" | "refused" | "cancelled" | "invalid",
"reason": null | "mailbox-refused" | "mass-removal" | "stale-plan" | "not-confirmed" | "not-a-terminal",
"applied": [mailbox], "failed": {mailbox: message}, "plan": <plan's document> | null}.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="make the tenant match the file, or apply a saved plan",
                       description="Without PLAN: read live state in one bulk scan, plan, show the plan, check the "
                                   "mass-removal guard, confirm, then run the Pulumi engine's update on exactly "
                                   "the mailboxes the plan changes. With PLAN (from `mailroom plan --out`): check "
                                   "that the file, the stack and the live state of every mailbox it changes are "
                                   "what it assumed, then apply exactly that plan. Every change is recorded in "
                                   "the audit log.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("saved", nargs="?", metavar="PLAN", help="a plan saved by `mailroom plan --out PLAN`")
    options.add_common(p)
    add_confirmation(p)
    options.add_json(p)
    p.set_defaults(func=run)


def add_confirmation(p: argparse.ArgumentParser) -> None:
    """The options of everything that applies (apply, drift --remediate)."""
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation (CI)")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="apply even when more than policy.max_removals_per_apply grants or mailboxes go")


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
        if out is not None and out.metadata.type in MAILBOX_TYPES:
            op = getattr(out.metadata.op, "value", str(out.metadata.op))
            name = out.metadata.urn.rsplit("::", 1)[-1]
            # Only steps that write: a refresh (`refresh`, `read`) or an unchanged mailbox is not "applied".
            if op in CHANGING_OPS and smtp_key(name) in self.changing:
                self.done += 1
                self.ok.append(name)
                output.progress(f"  [{self.done}] {name}: {op} done")
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


@dataclass
class Applied:
    """What an apply did; ``code`` is the exit code it stands for."""

    result: str  # ok, failed, nothing_to_do, refused, cancelled
    code: int
    plan: Plan
    reason: str | None = None  # refused: mailbox-refused, mass-removal; cancelled: not-a-terminal, not-confirmed
    applied: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"result": self.result, "reason": self.reason, "applied": self.applied, "failed": self.failed,
                "plan": plan_document(self.plan)}

    def render_text(self) -> str:
        return "".join([*(f"{printable(name)}: applied\n" for name in self.applied),
                        # a service's error text can quote tenant values
                        *(f"{printable(name)}: FAILED: {printable(why)}\n" for name, why in self.failed.items())])


def _confirm(question: str) -> bool | None:
    """Ask on the terminal (the question on stderr: stdout holds only results); None: no terminal."""
    if not output.is_terminal(sys.stdin):
        return None
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().casefold() in ("y", "yes")


def apply(prepared: Run, *, yes: bool, allow_mass_removal: bool, show: Callable[[Plan], None],
          detail: str = "apply", planned: Planned | None = None, rules: bool = False) -> Applied:
    """``_apply`` under the stack's lock (the shared store's lease, or a local flock): the plan is made
    and applied by one run at a time, so two runs never plan against each other's half-applied state.
    ``rules``: the plan reads inbox rules too and disables those that forward (drift --remediate)."""
    from mailroom.store.lock import StackLocked, stack_lock

    try:
        with stack_lock(prepared.stack, prepared.run_id, detail, prepared.project_dir):
            return _apply(prepared, yes=yes, allow_mass_removal=allow_mass_removal, show=show, detail=detail,
                          planned=planned, rules=rules)
    except StackLocked as exc:
        raise error_handler.FatalError(
            f"refused: {exc}. It is released when that run ends (a killed run's lease expires within a minute); "
            f"run again then, or set {paths.LOCK_WAIT_ENV}=SECONDS to wait. Nothing was changed.") from None


def _apply(prepared: Run, *, yes: bool, allow_mass_removal: bool, show: Callable[[Plan], None],
           detail: str = "apply", planned: Planned | None = None, rules: bool = False) -> Applied:
    """Plan against live state (or take the checked saved plan ``planned``), ``show`` it, guard, confirm
    (unless ``yes``), update exactly the plan's mailboxes, record.

    Every refusal happens before any write and is recorded in the audit log.
    """
    log = prepared.audit_log()
    if planned is None:
        planned = make_plan(prepared, refresh=True, rules=rules)
    plan = planned.plan
    show(plan)
    context = {"file": str(prepared.file)}
    if plan.refusals:
        print(f"mailroom {detail}: refused: {len(plan.refusals)} mailbox(es) cannot be applied (see `! refused` "
              "in the plan). Nothing was changed.", file=sys.stderr)
        log.start_run(detail=detail, context=context)
        log.end_run("refused", {"refusals": plan.refusals})
        return Applied("refused", error_handler.ERROR, plan, "mailbox-refused")
    limit = prepared.desired.policy.max_removals_per_apply
    if plan.guarded > limit and not allow_mass_removal:
        print(f"mailroom {detail}: refused: the plan removes {len(plan.removals)} grants or mailboxes and releases "
              f"{len(plan.released)} from management, more than policy.max_removals_per_apply ({limit}). If that "
              "is intended, run again with --allow-mass-removal. Nothing was changed.", file=sys.stderr)
        log.start_run(detail=detail, context=context)
        log.end_run("refused", {"removals": len(plan.removals), "releases": len(plan.released), "limit": limit})
        return Applied("refused", error_handler.GUARD, plan, "mass-removal")
    if not plan.has_changes and not planned.resync:
        print(f"mailroom {detail}: nothing to do", file=sys.stderr)
        return Applied("nothing_to_do", error_handler.OK, plan)
    if not yes and plan.has_changes:
        answer = _confirm("Apply these changes?")
        if answer is None:
            print(f"mailroom {detail}: not a terminal; pass --yes to apply without confirmation. Nothing was "
                  "changed.", file=sys.stderr)
            return Applied("cancelled", error_handler.ERROR, plan, "not-a-terminal")
        if not answer:
            print(f"mailroom {detail}: cancelled; nothing was changed", file=sys.stderr)
            return Applied("cancelled", error_handler.ERROR, plan, "not-confirmed")
    from pulumi.automation.errors import CommandError  # with the engine: not paid for by --help

    # The engine's provider keeps to this plan: it refuses any change the reviewer was not shown. It
    # converges against the live state read for the plan, and the engine touches only the plan's mailboxes.
    approval, snapshot = prepared.plan_path("approved"), prepared.plan_path("live")
    Approval.from_plan(plan).save(approval)
    save_snapshot(snapshot, planned.snapshot())
    log.start_run(detail=detail, context={**context, "changes": len(plan.changes)})
    tracker = _Progress({smtp_key(m.address) for m in plan.mailboxes if m.changes or m.op == "release"})
    output.progress(f"mailroom: applying {len(plan.changes)} change(s) to stack {prepared.stack}")
    result = "failed"
    try:
        prepared.update(planned, tracker, approval, snapshot)
        result = "ok"
    except CommandError as exc:  # the engine ran and failed: say what, keep the summary of what was applied
        if "currently locked" in str(exc):
            print(f"mailroom {detail}: {explain(prepared.backend_url(), prepared.stack)} Nothing was changed.",
                  file=sys.stderr)
        else:
            lines = [ln for ln in str(exc).splitlines() if "error" in ln.lower()][-5:]
            print(f"mailroom {detail}: the engine reported a failure:\n  " + "\n  ".join(lines), file=sys.stderr)
    finally:
        approval.unlink(missing_ok=True)
        snapshot.unlink(missing_ok=True)
        # Also when something unexpected ends the run: the log says the run ended, and how far it got.
        log.end_run(result, {"applied": tracker.ok, "failed": tracker.failed,
                             **({"adopted": plan.adopted} if plan.adopted and result == "ok" else {})})
    ok = result == "ok" and not tracker.failed
    return Applied("ok" if ok else "failed", error_handler.OK if ok else error_handler.ERROR, plan,
                   applied=tracker.ok, failed=tracker.failed)


def show_plan(as_json: bool, yes: bool) -> Callable[[Plan], None]:
    """How an apply shows its plan: on stdout as text; with --json on stderr, and only when a person
    is asked to confirm it (stdout then holds only the JSON document)."""
    def show(plan: Plan) -> None:
        if not as_json:
            sys.stdout.write(plan.render_text())
        elif not yes and output.is_terminal(sys.stdin):
            sys.stderr.write(plan.render_text())
    return show


def run(args: argparse.Namespace) -> int:
    if args.saved:
        return apply_saved(args.saved, None if args.file == paths.DEFAULT_FILE else args.file, args.stack, yes=args.yes,
                           allow_mass_removal=args.allow_mass_removal, as_json=args.json)
    return apply_file(args.file, options.stack(args.stack), yes=args.yes,
                      allow_mass_removal=args.allow_mass_removal, as_json=args.json)


def apply_saved(saved_path: str, file: str | None, stack: str | None, *, yes: bool, allow_mass_removal: bool,
                as_json: bool) -> int:
    """`mailroom apply PLAN`: the saved plan, checked against the file, the stack and the tenant, applied."""
    try:
        saved, saved_file = Planned.load(Path(saved_path))
    except ValueError as exc:
        raise error_handler.FatalError(str(exc)) from exc
    # The plan names its stack; a stack named as well must be that one.
    named = stack or os.environ.get(paths.STACK_ENV, "").strip() or saved.stack
    if named != saved.stack:
        print(f"mailroom apply: refused: {printable(saved_path)} was planned for stack {printable(saved.stack)}, "
              f"not {printable(named)}. Nothing was changed.", file=sys.stderr)
        return _stale(saved, as_json)
    return apply_file(file or saved_file, named, yes=yes, allow_mass_removal=allow_mass_removal, as_json=as_json,
                      saved=saved)


def _stale(saved: Planned, as_json: bool) -> int:
    """A saved plan refused as stale (the reason is on stderr already): the --json document, exit 4."""
    if as_json:
        output.print_document("apply", Applied("refused", error_handler.STALE, saved.plan, "stale-plan").document())
    return error_handler.STALE


def apply_file(file: str, stack: str, *, yes: bool, allow_mass_removal: bool = False, as_json: bool = False,
               saved: Planned | None = None) -> int:
    """`mailroom apply`: prepare, apply (``saved``: that plan, once checked), print the result; the exit code."""
    try:
        prepared = prepare(file, stack)
    except Invalid as exc:
        return error_handler.invalid("apply", file, exc, as_json, "applied", {
            "result": "invalid", "reason": None, "applied": [], "failed": {}, "plan": None})
    planned = None
    limit = prepared.desired.policy.max_removals_per_apply
    if saved is not None and (saved.plan.refusals or (saved.plan.guarded > limit and not allow_mass_removal)):
        planned = saved  # refused by apply() below for what the reviewed plan holds, whatever the tenant did since
    elif saved is not None:
        try:
            planned = check_saved_plan(prepared, saved)
        except StalePlan as exc:
            print(f"mailroom apply: refused: the saved plan is stale: {printable(str(exc))}. Nothing was changed; "
                  "run `mailroom plan --out FILE` again.", file=sys.stderr)
            log = prepared.audit_log()
            log.start_run(detail="apply", context={"file": str(prepared.file), "saved_plan": saved.digest})
            log.end_run("refused", {"reason": "stale-plan", "detail": str(exc)})
            return _stale(saved, as_json)
    done = apply(prepared, yes=yes, allow_mass_removal=allow_mass_removal, show=show_plan(as_json, yes),
                 planned=planned)
    if as_json:
        output.print_document("apply", done.document())
    else:
        sys.stdout.write(done.render_text())
    return done.code
