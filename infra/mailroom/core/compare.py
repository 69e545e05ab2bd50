"""Pure comparison of a desired and a live MailboxSpec into grant-level changes.

The provider's diff, the plan, drift and the apply guard all use ``changes``,
so "what differs" is decided in exactly one place, with the equality rules of
``mailroom.core.identity`` (case-insensitive SMTP; people already canonicalised).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.spec import FolderGrant, Grant, MailboxSpec

# Derived from the rights table, kept under these names for their importers:
# right → (label in plans, whether removing it takes access away), and the settings compared one to one.
RIGHTS: dict[str, tuple[str, bool]] = {r.key: (r.label, r.takes_access) for r in rights.TABLE}
SETTINGS: tuple[str, ...] = tuple(r.key for r in rights.SETTINGS)


@dataclass(frozen=True)
class Change:
    mailbox: str
    op: str  # create | adopt | delete | add | remove | set
    right: str
    subject: str | None = None
    before: Any = None
    after: Any = None
    folder: str | None = None  # a path folder's entry: the folder (``inbox/Reports``), part of what it changes

    @property
    def is_removal(self) -> bool:
        """Takes access or a mailbox away: what the mass-removal guard counts."""
        return (self.op == "remove" and rights.right(self.right).takes_access) or \
            (self.op == "delete" and self.right == "mailbox")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Change:
        """The inverse of ``to_dict`` (a saved plan)."""
        return cls(str(doc["mailbox"]), str(doc["op"]), str(doc["right"]), doc.get("subject"), doc.get("before"),
                   doc.get("after"), doc.get("folder"))

    def line(self) -> str:
        label = rights.right(self.right).label
        if self.op == "create":
            return f'+ create shared mailbox "{self.after}"' if self.after else "+ create shared mailbox"
        if self.op == "adopt":
            return f'~ adopt existing shared mailbox "{self.before}"' if self.before else \
                "~ adopt existing shared mailbox"
        if self.op == "delete":
            return "- delete mailbox (soft-delete, recoverable for 30 days)"
        if self.op == "remove" and rights.right(self.right).shape is rights.Shape.RULES:
            return f"- disable {label}  {self.subject}"
        if rights.right(self.right).shape is rights.Shape.FOLDER:
            return self._folder_line()
        if self.op in ("add", "remove"):
            sign = "+" if self.op == "add" else "-"
            option = rights.OPTION_OF.get(self.right)
            extra = "" if self.after is None or option is None else f" ({option.label} {show(self.after)})"
            return f"{sign} {label}  {self.subject}{extra}"
        who = f" {self.subject}" if self.subject else ""
        return f"~ {label}{who} {show(self.before)} → {show(self.after)}"

    def _folder_line(self) -> str:
        """A folder entry: added or removed with its role, or its role changed in place."""
        row = rights.right(self.right)
        assert isinstance(row.write, rights.FolderPermission)
        label = rights.folder_label(row, self.folder)
        if self.op in ("add", "remove"):
            sign = "+" if self.op == "add" else "-"
            _, delegate, private = rights.parse_access(str(self.after if self.op == "add" else self.before))
            flags = ", ".join(f for f, on in (("delegate", delegate), ("private items", private)) if on)
            return f"{sign} {label}{f' ({flags})' if flags else ''}  {self.subject}"
        who = self.subject or label
        where = self.folder or row.write.folder
        return f"~ {where if self.subject else ''}{' ' if self.subject else ''}{who} " \
               f"{rights.show_access(str(self.before))} → {rights.show_access(str(self.after))}"

    def to_dict(self) -> dict[str, Any]:
        return {"mailbox": self.mailbox, "op": self.op, "right": self.right, "subject": self.subject,
                "before": self.before, "after": self.after, "removal": self.is_removal,
                **({"folder": self.folder} if self.folder else {})}


def show(value: Any) -> str:
    """How plans and reports show a value: a switch as on/off, text quoted, no value as the organisation's."""
    if value is None:
        return "organisation default"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _diff_set(mailbox: str, right: str, want: Iterable[str], have: Iterable[str]) -> list[Change]:
    wanted = {smtp_key(a): a for a in want}
    present = {smtp_key(a): a for a in have}
    out = [Change(mailbox, "add", right, wanted[k]) for k in wanted if k not in present]
    out += [Change(mailbox, "remove", right, present[k]) for k in present if k not in wanted]
    return out


def _diff_grants(mailbox: str, right: str, option: str, want: Iterable[Grant], have: Iterable[Grant]) -> list[Change]:
    """Grants that carry an option (Full Access and its AutoMapping): a changed option is its own change."""
    wanted = {smtp_key(g.address): g for g in want}
    present = {smtp_key(g.address): g for g in have}
    out = [Change(mailbox, "add", right, g.address, None, g.automap) for k, g in wanted.items() if k not in present]
    out += [Change(mailbox, "remove", right, g.address, g.automap, None) for k, g in present.items()
            if k not in wanted]
    out += [Change(mailbox, "set", option, g.address, present[k].automap, g.automap)
            for k, g in wanted.items() if k in present and present[k].automap != g.automap]
    return out


def _entry(g: FolderGrant) -> tuple[str, str]:
    return g.folder, g.person.casefold() if g.special else smtp_key(g.person)


def _diff_folders(mailbox: str, want: Iterable[FolderGrant], have: Iterable[FolderGrant]) -> list[Change]:
    """Entries of the folders ``want`` manages (a folder it does not name is left alone): a person's changed
    role or flags is one ``set`` (Set-MailboxFolderPermission in place, never remove and add), the Default and
    Anonymous entries are only ever set (to Exchange's value when the file gives none)."""
    wanted = {_entry(g): g for g in want}
    managed = {folder for folder, _ in wanted}
    present = {_entry(g): g for g in have if g.folder in managed}
    for folder in managed:
        for who in rights.SPECIAL_ENTRIES:
            present.setdefault((folder, who.casefold()), FolderGrant(folder, who, rights.folder_default(folder, who)))
    out = []
    for k, g in wanted.items():
        old = present.get(k)
        if old is None:
            out.append(Change(mailbox, "add", g.right, g.person, None, g.access, _path(g)))
        elif old.access != g.access:
            out.append(Change(mailbox, "set", g.right, None if g.special else g.person, old.access, g.access,
                              _path(g)))
    out += [Change(mailbox, "remove", g.right, g.person, g.access, None, _path(g))
            for k, g in present.items() if k not in wanted]
    return out


def _path(g: FolderGrant) -> str | None:
    """The folder a change names: a path folder's (its rows are shared), none for a well-known folder's."""
    return g.folder if rights.is_path(g.folder) else None


def changes(desired: MailboxSpec, live: MailboxSpec | None) -> list[Change]:
    """What must change for ``live`` (None: does not exist) to become ``desired``."""
    mb = desired.address
    if desired.state == "absent":
        return [] if live is None or live.state == "absent" else [Change(mb, "delete", "mailbox")]
    out: list[Change] = []
    if live is None or live.state == "absent":
        out.append(Change(mb, "create", "mailbox", None, None, desired.display_name))
        # What New-Mailbox -Shared leaves: the display name it was given, and each setting's initial value.
        live = MailboxSpec(address=desired.address, display_name=desired.display_name,
                           **{r.attr: r.fresh for r in rights.SETTINGS if r.fresh is not rights.NOT_FIXED})
    for r in rights.SETTINGS:
        before, after = getattr(live, r.attr), getattr(desired, r.attr)
        if (smtp_key(before) != smtp_key(after)) if r.is_address else (before != after):
            out.append(Change(mb, "set", r.key, None, before, after))
    primary = smtp_key(desired.address)
    for r in rights.ADDRESSES:  # the primary address is the mailbox's own, never one of its aliases
        out += _diff_set(mb, r.key, [a for a in getattr(desired, r.attr) if smtp_key(a) != primary],
                         [a for a in getattr(live, r.attr) if smtp_key(a) != primary])
    for r in rights.RULES:  # never declared: each one live is switched off
        out += _diff_set(mb, r.key, getattr(desired, r.attr), getattr(live, r.attr))
    for r in rights.GRANTS:
        option = rights.OPTION_OF.get(r.key)
        if option is None:
            out += _diff_set(mb, r.key, getattr(desired, r.attr), getattr(live, r.attr))
        else:
            out += _diff_grants(mb, r.key, option.key, getattr(desired, r.attr), getattr(live, r.attr))
    out += _diff_folders(mb, desired.folder_grants, live.folder_grants)
    return out


def removals(all_changes: Sequence[Change]) -> list[Change]:
    return [c for c in all_changes if c.is_removal]
