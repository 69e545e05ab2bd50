"""Who can open or send as which mailbox: every grant of the files and of the tenant, in one list.

Pure: built from the desired model and one bulk read (``reconcile.bulk.scan`` with the unmanaged
mailboxes included), never a request per mailbox. A grant is one row (mailbox, right, holder) with where
it stands: written in the files, held in the tenant, or both; on a mailbox the files manage or not. The
rights are the rights table's GRANT rows (``MailboxSpec.grants``), so a grant row added there is indexed
with no change here.

``grants(...)`` lists them all (the drift report's CSV, one row per mailbox × person × right);
``for_person(...)`` keeps one person's, directly and through groups (nested: ``parents`` maps each
principal to the groups it is a direct member of, and a chain is followed up to ``MAX_NESTING``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired, State
from mailroom.core.spec import MailboxSpec

# Groups nested deeper than this are not followed (Entra has no limit; a cycle must not loop forever).
MAX_NESTING = 16

# Where a grant stands, and what removes it.
IN_FILE = "in-file"  # written in the files and held in the tenant
PENDING = "pending"  # written in the files, not (yet) in the tenant: the next apply grants it
UNDECLARED = "undeclared"  # held on a managed mailbox, not written in the files: drift --remediate removes it
UNMANAGED = "unmanaged"  # held on a mailbox the files do not manage: a manual step (or import, then revoke)
NOT_READ = "not-read"  # written in the files; the tenant was not read (offline)

STATUS_TEXT = {IN_FILE: "in the files and the tenant", PENDING: "in the files, not yet in the tenant",
               UNDECLARED: "in the tenant only (not in the files)",
               UNMANAGED: "on a mailbox the files do not manage", NOT_READ: "in the files (tenant not read)"}
REMOVED_BY = {IN_FILE: "revoke", PENDING: "revoke", NOT_READ: "revoke", UNDECLARED: "drift --remediate",
              UNMANAGED: "manual"}


@dataclass(frozen=True)
class Access:
    mailbox: str  # the mailbox's address
    right: str  # a rights-table key of a grant (GRANT rows, a folder role: MailboxSpec.grants)
    holder: str  # the address the grant names: the person, or a group the person is in
    managed: bool  # the files manage the mailbox
    declared: bool  # written in the files
    live: bool | None  # held in the tenant; None: the tenant was not read
    where: str = ""  # file:line of the mailbox's entry, when the files manage it
    owner: str | None = None  # the mailbox's owner in the files
    via: tuple[str, ...] = ()  # for_person: the group chain from the holder down to the person; () direct

    @property
    def status(self) -> str:
        if not self.managed:
            return UNMANAGED
        if self.declared:
            return NOT_READ if self.live is None else (IN_FILE if self.live else PENDING)
        return UNDECLARED

    @property
    def removed_by(self) -> str:
        return REMOVED_BY[self.status]

    @property
    def label(self) -> str:
        return rights.label(self.right)

    def to_dict(self) -> dict[str, Any]:
        return {"mailbox": self.mailbox, "right": self.right, "label": self.label, "holder": self.holder,
                "via": list(self.via), "managed": self.managed, "declared": self.declared, "live": self.live,
                "status": self.status, "removed_by": self.removed_by, "where": self.where, "owner": self.owner}


def grants(desired: Desired, live: Mapping[str, Any] | None, ident: Callable[[str], str]) -> list[Access]:
    """Every grant of the files and of the tenant. ``live``: mailbox key → ``LiveMailbox`` for every mailbox
    read (the managed ones and, with ``scan(others=...)``, the unmanaged ones); None: the tenant was not
    read. ``ident``: an address → one key per principal (its object id once resolved), so that two
    spellings of one person are one holder."""
    out: list[Access] = []
    managed = set()
    for mb in desired.mailboxes:
        managed.add(mb.key)
        if mb.state is State.ABSENT:
            continue
        where = f"{mb.origin.file}:{mb.origin.line}" if mb.origin else ""
        declared = {(r, ident(p)): p for r, p in MailboxSpec.from_model(mb, desired.domains).grants()}
        held: dict[tuple[str, str], str] = {}
        one = None if live is None else live.get(mb.key)
        if one is not None:
            held = {(r, ident(p)): p for r, p in one.spec.grants()}
        for both in sorted(declared.keys() | held.keys()):
            out.append(Access(mb.address, both[0], declared.get(both) or held[both], True, both in declared,
                              None if live is None else both in held, where, mb.owner))
    for key, one in sorted((live or {}).items()):
        if key in managed:
            continue
        for r, p in one.spec.grants():
            out.append(Access(one.spec.address, r, p, False, False, True))
    return out


def chains(start: Iterable[str], parents: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    """Every principal reachable from ``start`` through ``parents`` (principal → the groups it is a direct
    member of): group → the shortest chain of groups from it down to a start (the group itself first)."""
    out: dict[str, tuple[str, ...]] = {s: () for s in start}
    frontier = list(out)
    for _ in range(MAX_NESTING):
        nxt = []
        for node in frontier:
            for group in parents.get(node, ()):
                if group not in out:
                    out[group] = (group, *out[node])
                    nxt.append(group)
        if not nxt:
            break
        frontier = nxt
    return out


def for_person(all_grants: Iterable[Access], person: Iterable[str], parents: Mapping[str, Iterable[str]],
               ident: Callable[[str], str], name: Callable[[str], str] = lambda k: k) -> list[Access]:
    """The grants ``person`` (its keys: object id and every spelling) holds, directly or through groups.
    ``name``: a principal key → how to show a group of the chain."""
    reach = chains({smtp_key(p) if "@" in p else p for p in person}, parents)
    out = []
    for a in all_grants:
        chain = reach.get(ident(a.holder))
        if chain is None:
            chain = reach.get(smtp_key(a.holder))
        if chain is not None:
            out.append(replace(a, via=tuple(name(g) for g in chain)))
    return sorted(out, key=lambda a: (a.status != IN_FILE, not a.managed, smtp_key(a.mailbox), a.right))
