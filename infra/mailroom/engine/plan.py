"""The reviewer's plan: grant-level lines per mailbox, its renderings, and the approval the provider keeps to.

``engine/planner.py`` makes it (the file against the stack's state and one bulk read of the tenant,
through ``mailroom.core.compare``, which is also the provider's diff); this module holds it, renders it
(text, pull-request Markdown, JSON) and turns it into the ``Approval`` every write is checked against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mailroom.core.compare import Change
from mailroom.core.identity import smtp_key
from mailroom.core.textsafe import md_fence, md_inline_code, printable
from mailroom.errors import TenantError


@dataclass
class MailboxPlan:
    address: str
    op: str  # create | adopt | update | release | same
    changes: list[Change] = field(default_factory=list)
    refused: str = ""  # why this mailbox cannot be applied (its address belongs to a person, ...)

    @property
    def adopted_as_is(self) -> bool:
        """An existing shared mailbox that already is as the file says: apply brings it under management
        (mailroom is authoritative for it from then on) with no tenant write, so it is no change."""
        return self.op == "adopt" and not self.changes

    @property
    def shown(self) -> bool:
        """A reviewer sees this mailbox in the plan."""
        return bool(self.changes) or self.op == "release" or bool(self.refused) or self.adopted_as_is


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
    def adopted(self) -> list[str]:
        """Existing shared mailboxes the next apply adopts as they are (no tenant write)."""
        return [m.address for m in self.mailboxes if m.adopted_as_is]

    @property
    def has_changes(self) -> bool:
        return bool(self.changes or self.released)

    @property
    def removals(self) -> list[Change]:
        return [c for c in self.changes if c.is_removal]

    @property
    def guarded(self) -> int:
        """What the mass-removal guard counts: removed grants and mailboxes, and releases from management
        (a truncated file releases every mailbox it lost)."""
        return len(self.removals) + len(self.released)

    @property
    def refusals(self) -> list[str]:
        return [m.refused for m in self.mailboxes if m.refused]

    def summary(self) -> str:
        adds = sum(c.op in ("add", "create") for c in self.changes)
        removes = sum(c.op in ("remove", "delete") for c in self.changes)
        sets = sum(c.op == "set" for c in self.changes)
        adopts = sum(c.op == "adopt" for c in self.changes) + len(self.adopted)
        touched = sum(1 for m in self.mailboxes if m.changes or m.op == "release")
        changed = (f"{touched} mailbox(es) change: {adds} to add, {sets} to change, {removes} to remove"
                   if self.has_changes else "No changes to the tenant")
        return (changed + (f", {adopts} existing shared mailbox(es) to adopt" if adopts else "")
                + (f" ({len(self.adopted)} as they are, with no write)" if self.adopted and self.has_changes else "")
                + (f", {len(self.released)} to release from management" if self.released else ""))

    def _adopted_note(self) -> str:
        return (f"\nThe next apply brings {len(self.adopted)} existing shared mailbox(es) that already match the "
                "file under management, with no write to the tenant: from then on mailroom is authoritative "
                "for them.\n")

    def render_text(self) -> str:
        if not self.has_changes and not self.adopted:
            return "No changes. The tenant matches the file.\n"
        width = max(len(printable(m.address)) for m in self.mailboxes)
        lines = []
        for m in self.mailboxes:
            address = printable(m.address)
            if m.op == "release":
                lines.append(f"{address:<{width}}  - release from management (mailbox and access are kept)")
            if m.adopted_as_is:
                lines.append(f"{address:<{width}}  = adopt existing shared mailbox as it is (no tenant change)")
            for c in m.changes:
                lines.append(f"{address:<{width}}  {printable(c.line())}")
            if m.refused:
                lines.append(f"{address:<{width}}  ! refused: {printable(m.refused)}")
        return "\n".join(lines) + f"\n\n{self.summary()}\n" + (self._adopted_note() if self.adopted else "")

    def render_markdown(self) -> str:
        if not self.has_changes and not self.adopted:
            return "### mailroom plan\n\nNo changes. The tenant matches the file.\n"
        # Every value from the file or the tenant goes through textsafe: a display name can never close
        # the fence, open an HTML comment that hides the removals below it, or carry escape codes.
        out = ["### mailroom plan", "", self.summary(), ""]
        for m in self.mailboxes:
            if not m.shown:
                continue
            body = ["- release from management (mailbox and access are kept)"] if m.op == "release" else []
            body += ["= adopt existing shared mailbox as it is (no tenant change)"] if m.adopted_as_is else []
            body += [c.line() for c in m.changes]
            body += [f"! refused: {m.refused}"] if m.refused else []
            out += [f"#### {md_inline_code(m.address)}", "", *md_fence(body, "diff"), ""]
        if self.removals or self.released:
            out.append(f"**{len(self.removals)} removal(s)** of access or mailboxes"
                       + (f", **{len(self.released)} release(s)** from management" if self.released else "") + ".")
        if self.adopted:
            out.append(self._adopted_note().strip())
        return "\n".join(out) + "\n"

    def to_json(self) -> str:
        from mailroom.output import FORMAT_VERSION

        return json.dumps({
            "format_version": FORMAT_VERSION,
            "has_changes": self.has_changes,
            "summary": self.summary(),
            "removals": len(self.removals),
            "releases": len(self.released),
            "adopted": len(self.adopted),
            "refusals": self.refusals,
            "mailboxes": [{"address": m.address, "op": m.op, "changes": [c.to_dict() for c in m.changes],
                           **({"refused": m.refused} if m.refused else {})}
                          for m in self.mailboxes if m.shown],
        }, indent=2)


# -- the reviewed plan, as the provider enforces it during apply ------------------------------------

PLAN_ENV = "MAILROOM_PLAN"  # path of the approved plan, set by `mailroom apply` for the engine's provider


class PlanMismatch(TenantError):
    """The engine was about to do something the reviewed plan does not hold."""


def _key(c: Change) -> tuple[str, str, str, str, str]:
    # A path folder's entry is approved for its folder only (its rights-table row is every path folder's).
    right = f"{c.right}@{c.folder.casefold()}" if c.folder else c.right
    return (c.op, right, smtp_key(c.subject) if c.subject else "", json.dumps(c.before), json.dumps(c.after))


@dataclass
class Approval:
    """What a reviewer saw, per mailbox: its operation and its changes.

    The provider checks every mailbox against it right before writing, with the live state it just
    read: a change the plan does not hold (the tenant moved, or the engine decided differently) is
    refused, so what was shown and guarded is the most that is applied.
    """

    mailboxes: dict[str, tuple[str, frozenset[tuple[str, str, str, str, str]]]]

    @classmethod
    def from_plan(cls, plan: Plan) -> Approval:
        return cls({smtp_key(m.address): (m.op, frozenset(_key(c) for c in m.changes)) for m in plan.mailboxes})

    def save(self, path: Path) -> None:
        doc = {"format_version": 1, "mailboxes": {k: {"op": op, "changes": sorted(map(list, keys))}
                                                  for k, (op, keys) in self.mailboxes.items()}}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc))  # dumps: the C encoder; dump streams through Python

    @classmethod
    def load(cls, path: str) -> Approval:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls({k: (v["op"], frozenset(tuple(c) for c in v["changes"])) for k, v in doc["mailboxes"].items()})

    def check(self, address: str, todo: Sequence[Change]) -> None:
        entry = self.mailboxes.get(smtp_key(address))
        if entry is None:
            raise PlanMismatch(f"{address}: not in the reviewed plan; nothing was changed on it")
        extra = [c for c in todo if _key(c) not in entry[1]]
        if extra:
            what = "; ".join(printable(c.line()) for c in extra)
            raise PlanMismatch(f"{address}: the tenant changed since the plan was made ({what} was not in the "
                               "reviewed plan); nothing was changed on this mailbox. Run plan again.")

    def check_release(self, address: str) -> None:
        entry = self.mailboxes.get(smtp_key(address))
        if entry is None or entry[0] != "release":
            raise PlanMismatch(f"{address}: its release from management is not in the reviewed plan")


@cache
def _approval(path: str) -> Approval:
    return Approval.load(path)


def approved() -> Approval | None:
    """The approved plan of this apply (None outside `mailroom apply`, e.g. `pulumi up` by hand)."""
    path = os.environ.get(PLAN_ENV)
    return _approval(path) if path else None
