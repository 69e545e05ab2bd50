"""Semantic rules over the desired model: what the schema cannot say.

Every rule reports through the document that holds the offending value, so
each finding carries the right file, line and JSON pointer.

Address syntax is the schema's to report (its SMTP and domain patterns are
``identity``'s, and it words the finding with ``address_problem`` below): the
mailboxes and domains in the model have passed it, and of a mailbox with a
schema error only the addresses that are valid take part in the checks here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from mailroom.core import rights
from mailroom.core.compare import show
from mailroom.core.identity import domain_of, in_domains, is_valid_smtp, local_part, smtp_key
from mailroom.core.model import Desired, FolderAccess, FolderDelegate, Mailbox, State
from mailroom.core.textsafe import UNSAFE
from mailroom.file.findings import Finding, Severity, quote
from mailroom.file.source import Document, describe_char

Path = tuple[str | int, ...]
# The file's plain lists of people with a grant (Send As, Send on Behalf): the grants with no per-person
# option, unlike `members` (AutoMapping), from the rights table.
GRANT_LISTS = tuple(r.file_key for r in rights.GRANTS if r.key not in rights.OPTION_OF)


class _Ctx:
    def __init__(self, desired: Desired, docs: Mapping[str, Document]) -> None:
        self.desired = desired
        self.docs = docs
        self.findings: list[Finding] = []

    def report(self, mb: Mailbox, parts: Path, code: str, message: str,
               severity: Severity = Severity.ERROR, key: bool = False) -> None:
        assert mb.origin is not None
        doc = self.docs[mb.origin.file]
        self.findings.append(doc.finding(("mailboxes", mb.origin.index) + parts, code, message, severity, key=key))

    def where(self, mb: Mailbox, parts: Path) -> str:
        assert mb.origin is not None
        line, _ = self.docs[mb.origin.file].locate(("mailboxes", mb.origin.index) + parts)
        return f"{mb.origin.file}:{line}"


def _people(mb: Mailbox) -> Iterator[tuple[Path, str]]:
    for j, m in enumerate(mb.members):
        yield ("members", j) + (("group" if m.is_group else "user",) if _is_object(mb, j) else ()), m.address
    for name in GRANT_LISTS:
        for j, addr in enumerate(getattr(mb, name)):
            yield (name, j), addr


def _is_object(mb: Mailbox, j: int) -> bool:
    m = mb.members[j]
    return m.is_group or m.automap_explicit


def _addresses(mb: Mailbox) -> Iterator[tuple[Path, str]]:
    yield ("address",), mb.address
    for j, alias in enumerate(mb.aliases):
        yield ("aliases", j), alias


def check(desired: Desired, docs: Mapping[str, Document], partial: Sequence[Mailbox] = ()) -> list[Finding]:
    """All rule findings. ``partial``: mailboxes with schema errors, of which only the addresses
    are checked (a duplicate address is worth knowing while the shape is being fixed)."""
    ctx = _Ctx(desired, docs)
    seen_address: dict[str, tuple[Mailbox, Path]] = {}
    seen_alias: dict[str, tuple[Mailbox, Path]] = {}
    people: dict[str, tuple[Mailbox, Path]] = {}  # address key -> first use as a person (owner, member, sender)
    domains = desired.domains
    order = {path: n for n, path in enumerate(docs)}
    incomplete = set(map(id, partial))
    everything = sorted([*desired.mailboxes, *partial],
                        key=lambda m: (order.get(m.origin.file, 0), m.origin.index) if m.origin else (0, 0))
    for mb in everything:
        checked = id(mb) not in incomplete  # its addresses passed the schema's SMTP pattern
        _check_addresses(ctx, mb, domains, seen_address, checked)
        _check_exchange_alias(ctx, mb, seen_alias, checked)
        if not checked:
            continue
        _check_people(ctx, mb, people)
        if mb.state is State.PRESENT:
            _check_policy(ctx, mb)
            _check_warnings(ctx, mb)
    _check_addresses_of_people(ctx, seen_address, people)
    return ctx.findings


def _non_ascii(value: str) -> str:
    """Names the first character outside ASCII, since it usually looks exactly like the ASCII one."""
    pos, ch = next((i, c) for i, c in enumerate(value) if not c.isascii())
    return f"holds {describe_char(ch)} at position {pos + 1}, which is not ASCII (a look-alike letter?)"


def address_problem(value: str, *, domain: bool = False) -> tuple[str, str] | None:
    """(code, message) for a value that is no SMTP address (``domain``: no accepted domain), with a
    look-alike letter named; None when it holds an unsafe character, which the loader already named."""
    if UNSAFE.search(value):
        return None
    if not value.isascii():
        if domain:
            return "address-not-ascii", (f"domain {quote(value)} {_non_ascii(value)}; write an internationalized "
                                         "domain in its xn-- (punycode) form")
        return "address-not-ascii", f"address {quote(value)} {_non_ascii(value)}; addresses must be ASCII"
    spaces = " (without the spaces around it)" if value != value.strip() else ""
    if domain:
        return "address-syntax", f"{quote(value)} is not a valid domain name such as contoso.com{spaces}"
    return "address-syntax", f"{quote(value)} is not a valid SMTP address{spaces}"


def _check_addresses(ctx: _Ctx, mb: Mailbox, domains: tuple[str, ...],
                     seen: dict[str, tuple[Mailbox, Path]], checked: bool) -> None:
    for parts, addr in _addresses(mb):
        if not checked and not is_valid_smtp(addr):
            continue
        if domains and not in_domains(addr, domains):
            ctx.report(mb, parts, "domain-not-accepted",
                       f"{addr} uses domain {domain_of(addr)!r}, which is not in tenant.domains "
                       f"({', '.join(domains)})")
        key = smtp_key(addr)
        if key in seen:
            other, other_parts = seen[key]
            ctx.report(mb, parts, "duplicate-address",
                       f"{addr} is already used at {ctx.where(other, other_parts)} "
                       f"(as {'the address' if other_parts == ('address',) else 'an alias'} of "
                       f"{other.address}); addresses are compared without regard to case")
        else:
            seen[key] = (mb, parts)


def _check_exchange_alias(ctx: _Ctx, mb: Mailbox, seen: dict[str, tuple[Mailbox, Path]], checked: bool) -> None:
    if not checked and not is_valid_smtp(mb.address):
        return
    alias = local_part(mb.address)
    if alias in seen:
        other, _ = seen[alias]
        if smtp_key(other.address) != mb.key:  # same address is duplicate-address's to report
            ctx.report(mb, ("address",), "alias-collision",
                       f"{mb.address} and {other.address} ({ctx.where(other, ('address',))}) would both get "
                       f"the Exchange alias {alias!r}; Exchange aliases must be unique in the tenant")
    else:
        seen[alias] = (mb, ("address",))


def _check_people(ctx: _Ctx, mb: Mailbox, people: dict[str, tuple[Mailbox, Path]]) -> None:
    lists: dict[str, dict[str, int]] = {}
    for parts, addr in _people(mb):
        seen = lists.setdefault(str(parts[0]), {})
        key = smtp_key(addr)
        if key in seen:
            ctx.report(mb, parts, "duplicate-entry",
                       f"{addr} is listed twice in {parts[0]} (first as entry {seen[key] + 1})")
        else:
            seen[key] = int(parts[1])
            people.setdefault(key, (mb, parts))
    if mb.owner is not None:
        people.setdefault(smtp_key(mb.owner), (mb, ("owner",)))


_ROLES = {"owner": "the owner", "members": "a Full Access member", "send_as": "a Send As holder",
          "send_on_behalf": "a Send on Behalf holder"}


def _check_addresses_of_people(ctx: _Ctx, addresses: Mapping[str, tuple[Mailbox, Path]],
                               people: Mapping[str, tuple[Mailbox, Path]]) -> None:
    """Warn when a mailbox's address (or alias) is used elsewhere in the file as a person. Without tenant
    access that is the one sign that the address belongs to a user's mailbox (or a group), which apply
    would refuse to adopt: mailroom manages only shared mailboxes."""
    for key in addresses.keys() & people.keys():
        mb, parts = addresses[key]
        other, other_parts = people[key]
        role = _ROLES.get(str(other_parts[0]), "a person")
        ctx.report(mb, parts, "address-is-person",
                   f"{mb.address if parts == ('address',) else 'this alias'} is also used as {role} of "
                   f"{other.address} ({ctx.where(other, other_parts)}), so it looks like a person's (or a group's) "
                   "address. mailroom manages only shared mailboxes and will refuse to adopt a user's mailbox",
                   Severity.WARNING)


def _check_policy(ctx: _Ctx, mb: Mailbox) -> None:
    policy = ctx.desired.policy
    if policy.require_owner and not mb.owner:
        if _owner_unknown(ctx, mb):  # `owner: null`, as import writes it: a review task, not a mistake
            ctx.report(mb, ("owner",), "owner-unknown", f"{mb.address} has no owner yet (`owner: null`): name "
                       "one; policy.require_owner is on", Severity.WARNING)
        else:
            ctx.report(mb, (), "owner-required", f"{mb.address} has no `owner`; policy.require_owner is on")
    if policy.max_members is not None and len(mb.members) > policy.max_members:
        ctx.report(mb, ("members",), "too-many-members",
                   f"{mb.address} has {len(mb.members)} members; policy.max_members is {policy.max_members}")
    if policy.send_as_requires_member:
        member_keys = {m.key for m in mb.members}
        for name in GRANT_LISTS:
            for j, addr in enumerate(getattr(mb, name)):
                if smtp_key(addr) not in member_keys:
                    right = rights.label(name)
                    ctx.report(mb, (name, j), "send-requires-member",
                               f"{addr} has {right} on {mb.address} but is not a member; "
                               "policy.send_as_requires_member is on")
    if mb.forwarding is not None:
        _check_forwarding(ctx, mb)
    if mb.calendar is not None:
        _check_folder(ctx, mb, "calendar", mb.calendar, ("calendar",))
    paths: dict[str, str] = {}
    for key, access in mb.folders:
        if rights.is_path(key):  # Exchange's folder names are case-insensitive: one folder, two entries
            same = paths.setdefault(key.casefold(), key)
            if same != key:
                ctx.report(mb, ("folders", key), "duplicate-folder",
                           f"{key} and {same} are the same folder (folder names are case-insensitive); "
                           "give its entries once", key=True)
                continue
        _check_folder(ctx, mb, key, access, ("folders", key))
    if policy.protocols_at_profile:
        profile = ctx.desired.defaults.protocols
        for r in rights.PROTOCOLS:
            mine, theirs = getattr(mb.protocols, r.attr), getattr(profile, r.attr)
            if mine != theirs:
                ctx.report(mb, ("protocols", r.attr), "protocols-off-profile",
                           f"{mb.address} sets {r.label} {show(mine)}, but defaults.protocols says {show(theirs)}; "
                           "policy.protocols_at_profile is on")
    if not policy.allow_external_members and ctx.desired.domains:
        for parts, addr in _people(mb):
            if not in_domains(addr, ctx.desired.domains):
                ctx.report(mb, parts, "external-member",
                           f"{addr} is outside the tenant's domains; policy.allow_external_members is off")
        owner = mb.owner
        if owner and not in_domains(owner, ctx.desired.domains):
            ctx.report(mb, ("owner",), "external-member",
                       f"owner {owner} is outside the tenant's domains; policy.allow_external_members is off")


def _check_forwarding(ctx: _Ctx, mb: Mailbox) -> None:
    """Mail may leave only for a domain the file allows: checked here, before any tenant request. Whether
    an address in an accepted domain is really internal (not a mail contact or mail user) is plan's to check."""
    assert mb.forwarding is not None
    to = mb.forwarding.to
    if smtp_key(to) in {smtp_key(a) for a in (mb.address, *mb.aliases)}:
        ctx.report(mb, ("forwarding", "to"), "forward-to-self", f"{mb.address} would forward its mail to itself")
        return
    allowed = ctx.desired.policy.allowed_forward_domains
    if ctx.desired.domains and not in_domains(to, ctx.desired.domains) and not in_domains(to, allowed):
        ctx.report(mb, ("forwarding", "to"), "forward-external",
                   f"{mb.address} would forward its mail to {to}, outside the organisation: {domain_of(to)!r} is "
                   "neither in tenant.domains nor in policy.allowed_forward_domains (CIS 6.2.1, SCuBA MS.EXO.1.1)")


def folder_people(access: FolderAccess) -> Iterator[tuple[Path, FolderDelegate]]:
    """Each person of a folder's entry with where the file writes it (``editor``, index in that list)."""
    index: dict[str, int] = {}
    for d in access.people:
        j = index[d.role] = index.get(d.role, -1) + 1
        yield (d.role, j), d


def _check_folder(ctx: _Ctx, mb: Mailbox, folder: str, access: FolderAccess, where: Path) -> None:
    """One entry per person, the delegate flags' rule (a calendar's only), roles the folder has, people inside
    the organisation, and the calendar's Default and Anonymous entries within policy.max_default_calendar_access.
    ``where``: the folder's place in the mailbox (``calendar``, ``folders/inbox``)."""
    seen: dict[str, Path] = {}
    domains = ctx.desired.domains
    if folder != "calendar":
        for entry, given in (("default", access.default), ("anonymous", access.anonymous)):
            if given in rights.CALENDAR_ONLY:
                ctx.report(mb, where + (entry,), "calendar-only-role",
                           f"{given} is a calendar's role (free/busy); the {folder} folder has none such")
    for (role, j), d in folder_people(access):
        at: Path = where + (role, j)
        if folder != "calendar" and role in rights.CALENDAR_ONLY:
            ctx.report(mb, at, "calendar-only-role",
                       f"{role} is a calendar's role (free/busy); the {folder} folder has none such")
        if folder != "calendar" and (d.delegate or d.private_items):
            ctx.report(mb, at, "delegate-calendar-only",
                       f"{d.address}: delegate and private_items exist on a calendar only (SharingPermissionFlags)")
            continue
        if d.key in seen:
            first = seen[d.key]
            ctx.report(mb, at, "duplicate-entry", f"{d.address} is listed twice in {folder} (first as "
                       f"{first[0]} entry {int(first[1]) + 1}); a person has one role on a folder")
            continue
        seen[d.key] = (role, j)
        if d.private_items and not d.delegate:
            ctx.report(mb, at + ("private_items",), "private-items-needs-delegate",
                       f"{d.address} may see private items only as a delegate (Exchange's CanViewPrivateItems needs "
                       "Delegate): add `delegate: true`")
        if domains and not ctx.desired.policy.allow_external_members and not in_domains(d.address, domains):
            ctx.report(mb, at, "external-member",
                       f"{d.address} is outside the tenant's domains; policy.allow_external_members is off")
    limit = ctx.desired.policy.max_default_calendar_access
    if folder != "calendar" or limit is None:
        return
    for entry, given in ((rights.DEFAULT_ENTRY, access.default), (rights.ANONYMOUS_ENTRY, access.anonymous)):
        value = given or rights.folder_default(folder, entry)
        if rights.role_rank(value) > rights.role_rank(limit):
            said = "" if given else f" (Exchange's value, since the file gives none: write `{entry.lower()}:`)"
            ctx.report(mb, where + (entry.lower(),) if given else where, "calendar-access-above-policy",
                       f"the {entry} entry of {mb.address}'s calendar would be {value}{said}; "
                       f"policy.max_default_calendar_access allows at most {limit}")


def _owner_unknown(ctx: _Ctx, mb: Mailbox) -> bool:
    """The mailbox says ``owner: null``: it knows it has no owner yet (import writes this, since Exchange
    records none), unlike a mailbox that leaves the key out."""
    assert mb.origin is not None
    entries = ctx.docs[mb.origin.file].data.get("mailboxes") or []
    entry = entries[mb.origin.index] if mb.origin.index < len(entries) else {}
    return isinstance(entry, dict) and "owner" in entry and entry["owner"] is None


def _check_warnings(ctx: _Ctx, mb: Mailbox) -> None:
    for j, m in enumerate(mb.members):
        if m.is_group and m.automap_explicit:
            ctx.report(mb, ("members", j, "automap"), "automap-on-group",
                       f"automap on group {m.address} has no effect: Exchange ignores AutoMapping for groups",
                       Severity.WARNING)
    if mb.hidden_from_gal and (mb.send_as or mb.send_on_behalf):
        field = "send_as" if mb.send_as else "send_on_behalf"
        ctx.report(mb, (field,), "send-rights-hidden",
                   f"{mb.address} is hidden from the address list, so Outlook desktop users cannot pick it "
                   "in the From field to use Send As / Send on Behalf", Severity.WARNING)
