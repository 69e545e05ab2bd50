"""The reviewer's plan: engine preview steps turned into grant-level lines per mailbox.

The engine decides *which* mailboxes change (its diff is the provider's, which
is ``mailroom.compare``); this module says *what* changes, line by line, from
the same comparison of the step's desired inputs with its last known outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mailroom.compare import Change, changes
from mailroom.spec import MailboxSpec

RESOURCE_TYPE = "pulumi-python:dynamic/mailroom:SharedMailbox"


@dataclass
class MailboxPlan:
    address: str
    op: str  # create | update | delete (= release) | same
    changes: list[Change] = field(default_factory=list)


@dataclass
class Plan:
    mailboxes: list[MailboxPlan] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [c for m in self.mailboxes for c in m.changes]

    @property
    def released(self) -> list[str]:
        return [m.address for m in self.mailboxes if m.op == "release"]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.released)

    @property
    def removals(self) -> list[Change]:
        return [c for c in self.changes if c.is_removal]

    def summary(self) -> str:
        adds = sum(c.op in ("add", "create") for c in self.changes)
        removes = sum(c.op in ("remove", "delete") for c in self.changes)
        sets = sum(c.op == "set" for c in self.changes)
        touched = sum(1 for m in self.mailboxes if m.changes or m.op == "release")
        return (f"{touched} mailbox(es) change: {adds} to add, {sets} to change, {removes} to remove"
                + (f", {len(self.released)} to release from management" if self.released else ""))

    def render_text(self) -> str:
        if not self.has_changes:
            return "No changes. The tenant matches the file.\n"
        width = max(len(m.address) for m in self.mailboxes)
        lines = []
        for m in self.mailboxes:
            if m.op == "release":
                lines.append(f"{m.address:<{width}}  - release from management (mailbox and access are kept)")
            for c in m.changes:
                lines.append(f"{m.address:<{width}}  {c.line()}")
        return "\n".join(lines) + f"\n\n{self.summary()}\n"

    def render_markdown(self) -> str:
        if not self.has_changes:
            return "### mailroom plan\n\nNo changes. The tenant matches the file.\n"
        out = ["### mailroom plan", "", self.summary(), ""]
        for m in self.mailboxes:
            if not m.changes and m.op != "release":
                continue
            out += [f"#### `{m.address}`", "", "```diff"]
            if m.op == "release":
                out.append("- release from management (mailbox and access are kept)")
            out += [c.line() for c in m.changes]
            out += ["```", ""]
        if self.removals:
            out.append(f"**{len(self.removals)} removal(s)** of access or mailboxes.")
        return "\n".join(out) + "\n"

    def to_json(self) -> str:
        return json.dumps({
            "has_changes": self.has_changes,
            "summary": self.summary(),
            "removals": len(self.removals),
            "mailboxes": [{"address": m.address, "op": m.op, "changes": [c.to_dict() for c in m.changes]}
                          for m in self.mailboxes if m.changes or m.op == "release"],
        }, indent=2)


def _props(state: Any, key: str) -> dict[str, Any] | None:
    if state is None:
        return None
    value = getattr(state, key, None)
    return dict(value) if value else None


def step_plan(op: str, old: Any, new: Any) -> MailboxPlan | None:
    """One engine step (ResourcePreEvent metadata) → the mailbox's plan, or None if not ours."""
    inputs = _props(new, "inputs")
    previous = _props(old, "outputs") or _props(old, "inputs")
    if op in ("delete", "delete-replaced", "discard"):
        if previous is None:
            return None
        return MailboxPlan(str(previous.get("address")), "release")
    if inputs is None or "address" not in inputs:
        return None
    desired = MailboxSpec.from_props(inputs)
    before = MailboxSpec.from_props(previous) if previous and previous.get("address") else None
    if op == "same":
        return MailboxPlan(desired.address, "same")
    return MailboxPlan(desired.address, op, changes(desired, before))


class PlanCollector:
    """An ``on_event`` callback for Engine.preview that builds the Plan."""

    def __init__(self) -> None:
        self.plan = Plan()
        self.diagnostics: list[str] = []
        self._seen: set[str] = set()

    def __call__(self, event: Any) -> None:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None and getattr(pre.metadata, "type", "") == RESOURCE_TYPE:
            meta = pre.metadata
            op = getattr(meta.op, "value", str(meta.op))
            # A preview with refresh first emits a `refresh` step per resource (old outputs,
            # before the read); the step that says what will change comes after it.
            if op in ("refresh", "read") or meta.urn in self._seen:
                return
            self._seen.add(meta.urn)
            planned = step_plan(op, meta.old, meta.new)
            if planned is not None:
                self.plan.mailboxes.append(planned)
        diag = getattr(event, "diagnostic_event", None)
        if diag is not None and diag.severity in ("error", "warning"):
            self.diagnostics.append(diag.message)

    def finish(self) -> Plan:
        self.plan.mailboxes.sort(key=lambda m: m.address.casefold())
        return self.plan
