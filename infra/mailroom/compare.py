"""Pure comparison of a desired and a live MailboxSpec into grant-level changes.

The provider's diff, the plan, drift and the apply guard all use ``changes``,
so "what differs" is decided in exactly one place, with the equality rules of
``mailroom.identity`` (case-insensitive SMTP; people already canonicalised).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.identity import smtp_key
from mailroom.spec import MailboxSpec

# right → (label in plans, whether removing it takes access away)
RIGHTS: dict[str, tuple[str, bool]] = {
    "mailbox": ("mailbox", True),
    "member": ("member", True),
    "automap": ("AutoMapping", False),
    "send_as": ("Send As", True),
    "send_on_behalf": ("Send on Behalf", True),
    "alias": ("alias", False),
    "display_name": ("display name", False),
    "hidden_from_gal": ("hidden from GAL", False),
    "copy_send_as": ("copy Send As to Sent Items", False),
    "copy_send_on_behalf": ("copy Send on Behalf to Sent Items", False),
    "audit_enabled": ("auditing", False),
    "sign_in_blocked": ("sign-in blocked", False),
}
SETTINGS = ("display_name", "hidden_from_gal", "copy_send_as", "copy_send_on_behalf", "audit_enabled",
            "sign_in_blocked")


@dataclass(frozen=True)
class Change:
    mailbox: str
    op: str  # create | adopt | delete | add | remove | set
    right: str
    subject: str | None = None
    before: Any = None
    after: Any = None

    @property
    def is_removal(self) -> bool:
        """Takes access or a mailbox away: what the mass-removal guard counts."""
        return (self.op == "remove" and RIGHTS[self.right][1]) or (self.op == "delete" and self.right == "mailbox")

    def line(self) -> str:
        label = RIGHTS[self.right][0]
        if self.op == "create":
            return f'+ create shared mailbox "{self.after}"' if self.after else "+ create shared mailbox"
        if self.op == "adopt":
            return f'~ adopt existing shared mailbox "{self.before}"' if self.before else \
                "~ adopt existing shared mailbox"
        if self.op == "delete":
            return "- delete mailbox (soft-delete, recoverable for 30 days)"
        if self.op in ("add", "remove"):
            sign = "+" if self.op == "add" else "-"
            extra = "" if self.after is None or self.right != "member" else f" (AutoMapping {_show(self.after)})"
            return f"{sign} {label}  {self.subject}{extra}"
        who = f" {self.subject}" if self.subject else ""
        return f"~ {label}{who} {_show(self.before)} → {_show(self.after)}"

    def to_dict(self) -> dict[str, Any]:
        return {"mailbox": self.mailbox, "op": self.op, "right": self.right, "subject": self.subject,
                "before": self.before, "after": self.after, "removal": self.is_removal}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _diff_set(mailbox: str, right: str, want: Iterable[str], have: Iterable[str]) -> list[Change]:
    wanted = {smtp_key(a): a for a in want}
    present = {smtp_key(a): a for a in have}
    out = [Change(mailbox, "add", right, wanted[k]) for k in wanted if k not in present]
    out += [Change(mailbox, "remove", right, present[k]) for k in present if k not in wanted]
    return out


def changes(desired: MailboxSpec, live: MailboxSpec | None) -> list[Change]:
    """What must change for ``live`` (None: does not exist) to become ``desired``."""
    mb = desired.address
    if desired.state == "absent":
        return [] if live is None or live.state == "absent" else [Change(mb, "delete", "mailbox")]
    out: list[Change] = []
    if live is None or live.state == "absent":
        out.append(Change(mb, "create", "mailbox", None, None, desired.display_name))
        # What New-Mailbox -Shared leaves: the display name it was given, no sent-items copies,
        # visible in the GAL, audited, and an Entra account that can sign in.
        live = MailboxSpec(address=desired.address, display_name=desired.display_name, hidden_from_gal=False,
                           copy_send_as=False, copy_send_on_behalf=False, audit_enabled=True, sign_in_blocked=False)
    for name in SETTINGS:
        before, after = getattr(live, name), getattr(desired, name)
        if before != after:
            out.append(Change(mb, "set", name, None, before, after))
    primary = smtp_key(desired.address)
    out += _diff_set(mb, "alias", [a for a in desired.aliases if smtp_key(a) != primary],
                     [a for a in live.aliases if smtp_key(a) != primary])
    want = {smtp_key(g.address): g for g in desired.members}
    have = {smtp_key(g.address): g for g in live.members}
    out += [Change(mb, "add", "member", g.address, None, g.automap) for k, g in want.items() if k not in have]
    out += [Change(mb, "remove", "member", g.address, g.automap, None) for k, g in have.items() if k not in want]
    out += [Change(mb, "set", "automap", g.address, have[k].automap, g.automap)
            for k, g in want.items() if k in have and have[k].automap != g.automap]
    out += _diff_set(mb, "send_as", desired.send_as, live.send_as)
    out += _diff_set(mb, "send_on_behalf", desired.send_on_behalf, live.send_on_behalf)
    return out


def removals(all_changes: Sequence[Change]) -> list[Change]:
    return [c for c in all_changes if c.is_removal]
