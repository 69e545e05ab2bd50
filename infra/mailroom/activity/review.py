"""The access review: for each managed mailbox and each person or group with access, a verdict from the audit
records seen and the audit settings that decide which records exist (exchange-features.md §5).

- ``active``: a delegate action by the person on the mailbox in the window (the evidence: its kind and time);
- ``unused``: none, and the mailbox records the action that would show this access used;
- ``unknown``: none, but the mailbox does not record that action, so no record proves nothing. Said with
  the audit setting that would fix it.

Which action shows which access: Send As → SendAs; Send on Behalf → SendOnBehalf. Full Access and folder
entries (calendar, inbox, contacts) may only read, which only FolderBind (not a default delegate action) or
MailItemsAccessed (Audit Premium only) show: without one of them a reader is ``unknown``, never ``unused``.
Any other delegate action on the mailbox (create, update, move, delete; not sending, which needs no Full
Access) still shows such access ``active``.
Groups: audit records name the person who acted, never the group. With the group's members read (nested
ones included: Graph ``transitiveMembers``, GroupMember.Read.All), a group's access is judged as the access of
all its members together, which is what an auditor asks of a group grant ("does anyone use it through this
group?"): ``active`` when a record names any member acting on the mailbox as the right shows (the evidence names
that member); ``unused`` when no member did and the mailbox records that action (the same rule as for a person:
nobody in the group used it, so the grant can go); ``unknown`` otherwise. A member who also holds the right
directly counts for both rows, since a record does not say which grant was used, and a member's actions make
them no unlisted sender. Without the membership (not read) a group is ``unknown``: review its members.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mailroom.activity.usage import Seen, Usage
from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired, Mailbox

VERDICTS = ("active", "unused", "unknown")
READS = ("FolderBind", "MailItemsAccessed")
# What shows each right used is its rights-table row's ``used``: an action (SendAs), rights.READS, or None.
SENDS = frozenset(r.used for r in rights.TABLE if r.used and r.used != rights.READS)  # no evidence of reading


def _used(right: str) -> str | None:
    row = rights.BY_KEY.get(right)
    return row.used if row is not None else None


@dataclass(frozen=True)
class AuditSettings:
    """What a mailbox records, from Get-Mailbox: AuditEnabled and the AuditDelegate actions."""

    enabled: bool
    delegate: frozenset[str]

    @classmethod
    def from_mailbox(cls, row: Mapping[str, Any]) -> AuditSettings:
        return cls(bool(row.get("AuditEnabled", True)), frozenset(str(a) for a in row.get("AuditDelegate") or ()))


UNREAD = AuditSettings(False, frozenset())  # a mailbox whose settings could not be read: nothing is known


@dataclass
class Row:
    mailbox: str
    person: str
    right: str  # a rights-table key (member, send_as, send_on_behalf, calendar_editor, folder_reviewer ...)
    verdict: str
    reviewer: str | None  # the mailbox's owner
    last_activity: str | None = None
    evidence: str | None = None  # the kind of the newest record, and how many there were
    fix: str | None = None  # for unknown: the audit setting that would show it
    is_group: bool = False
    member: str | None = None  # a group's row: the member whose record is the evidence
    folder: str | None = None  # a path folder's path (its rows are shared by every path folder)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sender:
    """Someone who acted on a managed mailbox as a delegate without being granted access in the file."""

    mailbox: str
    person: str
    last_activity: str
    operations: list[str]
    count: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    """A managed mailbox nobody acted on as a delegate and nobody mailed in the window."""

    mailbox: str
    reviewer: str | None
    inbound_checked: bool  # False: message trace not read (the verdict rests on audit records alone)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Review:
    since_days: int
    rows: list[Row] = field(default_factory=list)
    senders: list[Sender] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)

    @property
    def unused(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "unused"]


def _fix(mailbox: str, settings: AuditSettings, reads: bool) -> str:
    if not settings.enabled:
        return f"Set-Mailbox -Identity {mailbox} -AuditEnabled $true (unlicensed shared mailboxes must say so " \
               "explicitly for their actions to reach the unified audit log)"
    if reads:
        return f"Set-Mailbox -Identity {mailbox} -AuditDelegate @{{Add='FolderBind'}} (reads are recorded only " \
               "as FolderBind, or MailItemsAccessed with Audit Premium)"
    return ""


def verdict(right: str, settings: AuditSettings, seen: Seen | None, reads_recorded: bool,
            is_group: bool = False) -> tuple[str, str | None]:
    """(verdict, fix for unknown). ``is_group``: a group whose members were not read (a group whose members
    were read is judged on their records, like a person)."""
    signal = _used(right)
    if seen is not None and shows(right, seen):
        return "active", None
    if is_group:
        return "unknown", ("the group's members were not read (Graph GroupMember.Read.All) and records name the "
                           "member who acted, not the group: review its members")
    if not settings.enabled:
        return "unknown", None
    if signal is None:
        return "unknown", "free/busy access: no mailbox audit record shows its use"
    if signal != rights.READS:
        if signal in settings.delegate:
            return "unused", None
        return "unknown", f"Set-Mailbox -AuditDelegate @{{Add='{signal}'}}"
    observable = "FolderBind" in settings.delegate or (reads_recorded and "MailItemsAccessed" in settings.delegate)
    return ("unused", None) if observable else ("unknown", None)


def _grants(mb: Mailbox) -> Iterable[tuple[str, str, bool, str | None]]:
    """(right, person as written, is a group, a path folder's path) of every access the file grants on ``mb``."""
    for m in mb.members:
        yield "member", m.address, m.is_group, None
    for p in mb.send_as:
        yield "send_as", p, False, None
    for p in mb.send_on_behalf:
        yield "send_on_behalf", p, False, None
    folders = ([("calendar", mb.calendar)] if mb.calendar is not None else []) + list(mb.folders)
    for key, access in folders:
        for d in access.people:  # the rights-table row of the folder's role (calendar_editor): removable like a grant
            row = rights.folder_right(key, d.address, d.role)
            yield row.key, d.address, False, key if rights.is_path(key) else None


def shows(right: str, seen: Seen) -> bool:
    """Whether ``seen`` shows ``right`` used (its row's ``used``: that action, or for a reader any delegate
    action but sending, which needs no access to the mailbox's items)."""
    signal = _used(right)
    if signal is None:
        return False
    return signal in seen.operations if signal != rights.READS else bool(seen.operations - SENDS)


def group_seen(usage: Usage, box: str, members: Iterable[str], right: str) -> tuple[Seen | None, str | None]:
    """The newest record of a member of a group on ``box``, preferring one that shows ``right`` used: (what was
    seen, the member), or (None, None) when no member acted."""
    found = [(seen, m) for m in members if (seen := usage.pairs.get((box, m))) is not None]
    if not found:
        return None, None
    return max(found, key=lambda x: (shows(right, x[0]), x[0].last))


def granted_people(desired: Desired) -> set[str]:
    """Everyone (and every group) the files grant anything on a present managed mailbox, as written."""
    return {p for mb in desired.mailboxes if mb.state.value == "present" for _, p, _, _ in _grants(mb)}


def build(desired: Desired, settings: Mapping[str, AuditSettings], usage: Usage, since_days: int,
          canonical: Callable[[str], str] = smtp_key, is_group: Callable[[str], bool] = lambda _: False,
          inbound: set[str] | None = None, group_members: Mapping[str, frozenset[str]] | None = None) -> Review:
    """The review of every present managed mailbox. ``canonical``: a person or mailbox as the file writes it
    → the key ``usage`` holds it under. ``inbound``: mailboxes that received mail in the window (None: the
    message trace was not read). ``group_members``: a group's key → its members' keys (transitive); a group
    missing from it was not read."""
    members_of = group_members or {}
    review = Review(since_days)
    granted: set[tuple[str, str]] = set()
    for mb in desired.mailboxes:
        if mb.state.value != "present":
            continue
        box = canonical(mb.address)
        audit = settings.get(box, UNREAD)
        reads = box in usage.reads_recorded
        for right, person, group, folder in _grants(mb):
            who = canonical(person)
            granted.add((box, who))
            group = group or who in members_of or is_group(person)
            members = members_of.get(who) if group else None
            by = None
            if members is not None:  # the group's access is its members' (docstring)
                granted.update((box, m) for m in members)
                seen, by = group_seen(usage, box, members, right)
            else:
                seen = usage.pairs.get((box, who))
            v, fix = verdict(right, audit, seen, reads, group and members is None)
            if v == "unknown" and fix is None:
                fix = _fix(mb.address, audit, _used(right) == rights.READS)
            row = Row(mb.address, person, right, v, mb.owner, is_group=group, fix=fix or None, member=by,
                      folder=folder)
            if seen is not None:
                row.last_activity, row.evidence = seen.last, f"{seen.operation} ({seen.count} in the window)"
                if by is not None:
                    row.evidence = f"{seen.operation} by {by}, a member ({seen.count} in the window)"
            review.rows.append(row)
        if audit.enabled and box not in usage.mailboxes and (inbound is None or box not in inbound):
            review.candidates.append(Candidate(mb.address, mb.owner, inbound is not None))
    managed = {canonical(mb.address): mb.address for mb in desired.mailboxes}
    for (box, who), seen in sorted(usage.pairs.items()):
        if box in managed and (box, who) not in granted:
            review.senders.append(Sender(managed[box], who, seen.last, sorted(seen.operations), seen.count))
    order = {v: i for i, v in enumerate(("unused", "unknown", "active"))}
    review.rows.sort(key=lambda r: (order[r.verdict], smtp_key(r.mailbox), rights.label(r.right), smtp_key(r.person)))
    return review
