"""Import: every shared mailbox of the tenant as the file's model, from the one bulk scan.

``read`` runs ``bulk.scan`` over the whole tenant (``others``) and ``adopt`` turns each live mailbox into a
``Mailbox`` of the file's model plus what the format cannot say (notes, written as comments). ``adopt`` is
pure. What is not a delegation is skipped and counted (``LiveMailbox.skipped``: SELF, inherited, deny,
system principals); a grant to a deleted account (an orphaned SID) becomes a note, never a member.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import domain_of, in_domains, is_valid_smtp, smtp_key
from mailroom.core.model import (
    DEFAULTS,
    POLICY,
    Defaults,
    Desired,
    FolderAccess,
    FolderDelegate,
    Forwarding,
    Mailbox,
    Member,
    Protocols,
    SentItems,
)
from mailroom.core.spec import MailboxSpec
from mailroom.core.textsafe import UNSAFE, printable
from mailroom.m365.directory import Directory
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.bulk import Automap, Progress, ScanResult, scan
from mailroom.reconcile.live import LiveMailbox

# Mailboxes Exchange makes for itself (exchange-features.md §9): never a shared mailbox of the organisation's.
SYSTEM_MAILBOXES = ("discoverysearchmailbox*", "systemmailbox*", "searchinsightsgen01*", "healthmailbox*",
                    "migration.*", "federatedemail.*")
# The split of `--split-by`: where a mailbox's group comes from.
DEPARTMENT = "department"
CUSTOM = "custom-attribute:"


@dataclass(frozen=True)
class Adopted:
    mailbox: Mailbox  # defaults applied: every value as the tenant has it
    group: str = ""  # its department or custom attribute (the file it goes to), "" for none
    notes: tuple[str, ...] = ()  # what the format cannot say: written as comments on the mailbox


@dataclass
class Imported:
    domains: tuple[str, ...]
    mailboxes: list[Adopted] = field(default_factory=list)  # by address
    skipped: dict[str, int] = field(default_factory=dict)  # kind → permission rows (or mailboxes) skipped
    warnings: list[str] = field(default_factory=list)  # per mailbox: not imported, and why
    stats: dict[str, int] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # address keys that could not be read (left as they are)


def matcher(patterns: Sequence[str]) -> Any:
    """``--mailbox PATTERN``: shell patterns on the address, case-insensitive; none: every mailbox."""
    wanted = [p.casefold() for p in patterns]
    return lambda key: not wanted or any(fnmatch.fnmatchcase(key, p) for p in wanted)


def is_system_mailbox(row: Mapping[str, Any]) -> bool:
    names = (str(row.get("Name") or ""), str(row.get("Alias") or ""), str(row.get("PrimarySmtpAddress") or ""))
    return any(fnmatch.fnmatchcase(n.casefold(), p) for n in names for p in SYSTEM_MAILBOXES)


def routable(domains: Iterable[str]) -> tuple[str, ...]:
    """The accepted domains a file names: all but the tenant's ``*.onmicrosoft.com`` routing domains, whose
    addresses Exchange gives every mailbox by itself (mailroom leaves them alone)."""
    return tuple(sorted({d.casefold() for d in domains if d and not d.casefold().endswith(".onmicrosoft.com")}))


async def read(tenant: Tenant, desired: Desired, patterns: Sequence[str] = (), progress: Progress | None = None,
               automap: Automap | None = None) -> ScanResult:
    """Every shared mailbox of the tenant matching ``patterns``, in one bulk scan (``desired``: the file's
    mailboxes, read in the file's spelling of people and with its AutoMapping)."""
    return await scan(tenant, desired, progress, automap=automap, others=matcher(patterns), all_folders=True)


def adopt(result: ScanResult, directory: Directory, domains: tuple[str, ...], split: str = "none",
          patterns: Sequence[str] = ()) -> Imported:
    """The tenant's shared mailboxes as the file's model (pure: reads only the scan and the directory)."""
    out = Imported(domains, unreadable={smtp_key(a) for a in result.errors})
    wanted = matcher(patterns)
    for key in sorted(result.rows):
        row = result.rows[key]
        if not wanted(key):
            continue
        address = str(row.get("PrimarySmtpAddress") or key)
        if is_system_mailbox(row):
            _count(out.skipped, "system_mailbox")
            continue
        if address in result.errors:
            out.warnings.append(f"{address}: not imported, it could not be read ({result.errors[address]})")
            continue
        live = result.live.get(key)
        if live is None:
            continue
        if not in_domains(address, domains):
            _count(out.skipped, "outside_domains")
            out.warnings.append(f"{address}: not imported, its address is outside the accepted domains "
                                f"({', '.join(domains)})")
            continue
        for kind, n in live.skipped.items():
            _count(out.skipped, kind, n)
        user = result.users.get(live.object_id) or {}
        out.mailboxes.append(_adopted(live, directory, _group(split, row, user)))
    return out


def _count(counts: dict[str, int], kind: str, n: int = 1) -> None:
    if n:
        counts[kind] = counts.get(kind, 0) + n


def _group(split: str, row: Mapping[str, Any], user: Mapping[str, Any]) -> str:
    if split == DEPARTMENT:
        return str(user.get("department") or "").strip()
    if split.startswith(CUSTOM):
        return str(row.get(f"CustomAttribute{split[len(CUSTOM):]}") or "").strip()
    return ""


def _adopted(live: LiveMailbox, directory: Directory, group: str) -> Adopted:
    spec = live.spec
    notes: list[str] = []
    labels = {r.key: r.mark[1] if r.mark else r.label for r in rights.TABLE}

    def person(right: str, name: str) -> str | None:
        """The address to write for a grant, or None (with a note) when it has none."""
        address = smtp_key(name)
        if is_valid_smtp(address):
            return address
        notes.append(f"not imported: {labels[right]} for {printable(name)}, which has no SMTP address "
                     "(a deleted account?)")
        return None

    members = []
    for grant in spec.members:
        address = person("member", grant.address)
        if address is not None:
            recipient = directory.lookup(address)
            members.append(Member(address, grant.automap, bool(recipient and recipient.is_group)))
    send_as = [a for a in (person("send_as", p) for p in spec.send_as) if a]
    on_behalf = [a for a in (person("send_on_behalf", p) for p in spec.send_on_behalf) if a]
    for right, sid in live.orphans:
        notes.append(f"not imported: {labels[right]} for {sid}, an account that no longer exists (orphaned "
                     "SID); remove it in Exchange")
    for right, who in live.denied:
        notes.append(f"not expressible: {labels[right]} denied to {printable(who)} (an explicit Deny entry; "
                     "the file has no deny)")
    forwarding = None
    target = spec.forwarding_address or spec.forwarding_smtp
    if target:
        forwarding = Forwarding(smtp_key(target), spec.forward_keep_copy)
        if spec.forwarding_address and spec.forwarding_smtp:
            notes.append(f"not imported: forwarding to {printable(spec.forwarding_smtp)} (ForwardingSmtpAddress, which "
                         "Exchange ignores while ForwardingAddress is set); apply clears it")
    display = spec.display_name
    if UNSAFE.search(display):
        display = UNSAFE.sub("", display)
        notes.append(f"display name {printable(spec.display_name)} holds characters the file refuses; "
                     "written without them (plan will show the rename)")
    mailbox = Mailbox(
        address=smtp_key(spec.address), display_name=display,
        aliases=tuple(sorted({smtp_key(a) for a in spec.aliases})),
        members=tuple(sorted(members, key=lambda m: m.key)),
        send_as=tuple(sorted(set(send_as))), send_on_behalf=tuple(sorted(set(on_behalf))),
        hidden_from_gal=spec.hidden_from_gal,
        sent_items=SentItems(spec.copy_send_as, spec.copy_send_on_behalf),
        audit_enabled=spec.audit_enabled, sign_in_blocked=spec.sign_in_blocked,
        protocols=Protocols(**{r.attr: getattr(spec, r.attr) for r in rights.PROTOCOLS}), forwarding=forwarding,
        calendar=adopt_folder(spec, "calendar", notes),
        folders=tuple((key, access) for key in (*rights.OTHER_FOLDERS, *_paths(spec))
                      if (access := adopt_folder(spec, key, notes)) is not None))
    return Adopted(mailbox, group, tuple(notes))


def _paths(spec: MailboxSpec) -> list[str]:
    """The folders a user made that the read found (import reads them all), by path."""
    return sorted({g.folder for g in spec.folder_grants if rights.is_path(g.folder)}, key=str.casefold)


def adopt_folder(spec: MailboxSpec, folder: str, notes: list[str]) -> FolderAccess | None:
    """A folder's entries as the file writes them; None when it is as Exchange leaves a new mailbox's (Default
    and Anonymous at their values, nobody else), so the file stays short. What no file role says (individual
    rights, a deleted account) becomes a note."""
    entries = [g for g in spec.folder_grants if g.folder == folder]
    special = {g.person: g.access for g in entries if g.special}
    people = []
    for g in entries:
        if g.special:
            continue
        role, delegate, private = rights.parse_access(g.access)
        address = smtp_key(g.person)
        if role not in rights.ROLE_NAMES or role == "none" or not is_valid_smtp(address):
            why = "rights that make no role" if role not in rights.ROLE_NAMES else \
                "no rights" if role == "none" else "no SMTP address (a deleted account?)"
            notes.append(f"not imported: {folder} entry for {printable(g.person)} ({printable(g.access)}): {why}")
            continue
        people.append(FolderDelegate(address, role, delegate, private))

    def given(entry: str) -> str | None:
        value = special.get(entry, rights.folder_default(folder, entry))
        if value not in rights.ROLE_NAMES:
            notes.append(f"not imported: the {folder}'s {entry} entry ({printable(value)}: rights that make no role); "
                         "plan sets it to Exchange's value unless the file names a role")
            return None
        return None if value == rights.folder_default(folder, entry) else value

    access = FolderAccess(given(rights.DEFAULT_ENTRY), given(rights.ANONYMOUS_ENTRY),
                          tuple(sorted(people, key=lambda d: (rights.role_rank(d.role), d.key))))
    return None if access == FolderAccess() else access


def common_defaults(mailboxes: Sequence[Mailbox]) -> Defaults:
    """The defaults that keep the file shortest: each setting's most common value (ties: the model's)."""
    if not mailboxes:
        return DEFAULTS

    def most(values: list[bool], default: bool) -> bool:
        return not default if values.count(not default) > values.count(default) else default

    def commonest(values: list[bool | None], default: bool | None) -> bool | None:
        """The most common value (smtp_auth has three); ties: the model's."""
        return max(dict.fromkeys([default, *values]), key=values.count)

    automaps = [m.automap for mb in mailboxes for m in mb.members if not m.is_group]
    protocols: dict[str, Any] = {r.attr: commonest([getattr(m.protocols, r.attr) for m in mailboxes],
                                                   getattr(DEFAULTS.protocols, r.attr)) for r in rights.PROTOCOLS}
    return Defaults(
        sign_in_blocked=most([m.sign_in_blocked for m in mailboxes], DEFAULTS.sign_in_blocked),
        automap=most(automaps, DEFAULTS.automap),
        sent_items=SentItems(most([m.sent_items.copy_send_as for m in mailboxes], DEFAULTS.sent_items.copy_send_as),
                             most([m.sent_items.copy_send_on_behalf for m in mailboxes],
                                  DEFAULTS.sent_items.copy_send_on_behalf)),
        audit_enabled=most([m.audit_enabled for m in mailboxes], DEFAULTS.audit_enabled),
        hidden_from_gal=most([m.hidden_from_gal for m in mailboxes], DEFAULTS.hidden_from_gal),
        protocols=Protocols(**protocols))


def needs_external(imported: Imported) -> bool:
    """True when some grant names a person outside the accepted domains (policy must then allow it)."""
    return any(not in_domains(p, imported.domains) for a in imported.mailboxes
               for p in [m.address for m in a.mailbox.members] + list(a.mailbox.send_as)
               + list(a.mailbox.send_on_behalf)
               + [d.address for f in _accesses(a.mailbox) for d in f.people])


def _accesses(mb: Mailbox) -> list[FolderAccess]:
    """Every folder entry the mailbox writes (its calendar, its other folders)."""
    return ([mb.calendar] if mb.calendar else []) + [access for _, access in mb.folders]


def forward_domains(imported: Imported) -> tuple[str, ...]:
    """The domains outside the accepted ones that imported mailboxes forward to (policy must allow them)."""
    return tuple(sorted({domain_of(a.mailbox.forwarding.to) for a in imported.mailboxes
                         if a.mailbox.forwarding and not in_domains(a.mailbox.forwarding.to, imported.domains)}))


def within_policy(imported: Imported, allowed: Sequence[str]) -> Imported:
    """For ``import --merge``: forwarding to a domain the existing file's policy does not allow is left out of the
    merged entry, with a note, so the file still validates. The policy is what the organisation reviewed (CIS
    6.2.1: no external forwarding); an import widening it to fit what the tenant does would approve the very
    thing an auditor wants flagged. Left out, the next plan shows the forwarding's removal and drift reports it
    at high severity until someone decides: allow the domain in policy, or let apply remove it."""
    out = []
    for a in imported.mailboxes:
        fwd = a.mailbox.forwarding
        if fwd is None or in_domains(fwd.to, imported.domains) or in_domains(fwd.to, allowed):
            out.append(a)
            continue
        note = (f"not imported: forwarding to {printable(fwd.to)}: {domain_of(fwd.to)!r} is not in "
                "policy.allowed_forward_domains (CIS 6.2.1), so the next apply removes it; to keep it, add the "
                "domain there and write `forwarding:`")
        out.append(replace(a, mailbox=replace(a.mailbox, forwarding=None), notes=(*a.notes, note)))
    return replace(imported, mailboxes=out)


def empty(domains: tuple[str, ...]) -> Desired:
    """The model of a file with no mailboxes yet: what a first import scans against."""
    return Desired(domains, DEFAULTS, POLICY, (), ())

