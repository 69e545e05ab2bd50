"""What counts as equal: the one place plan, drift and import take their comparisons from.

- SMTP addresses compare case-insensitively (Exchange treats proxy addresses so);
  the written case is kept for display.
- People are compared by canonical identity (the Entra object id) once resolved,
  so a UPN, an alias and a display name for the same person are one person.
- System entries are never managed: ``NT AUTHORITY\\SELF``, inherited and deny
  ACEs, and addresses outside the file's accepted domains (the tenant's
  ``onmicrosoft.com`` address, SIP/X500 proxies).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# RFC 5321-ish: what Exchange accepts for a proxy address; deliberately no quoted local parts.
_SMTP = re.compile(
    r"^(?=.{3,320}$)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?=.{1,255}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)

SELF_PRINCIPALS = frozenset({"nt authority\\self", "s-1-5-10"})
# A domain account's SID (S-1-5-21-<domain>-<RID>): an explicit entry that shows one instead of a name
# names an account that no longer exists (an orphaned ACE), not one of the well-known system SIDs.
_ACCOUNT_SID = re.compile(r"^s-1-5-21(?:-\d+){4}$")
# Exchange's own principals that show up in permission lists but are never a person's grant.
_SYSTEM_PREFIXES = ("nt authority\\", "s-1-5-", "nam", "eur", "apc")


def smtp_key(address: str) -> str:
    """Comparison key of an SMTP address: no ``smtp:`` prefix, no spaces, case folded."""
    value = address.strip()
    if value[:5].lower() == "smtp:":
        value = value[5:]
    return value.casefold()


def is_valid_smtp(address: str) -> bool:
    return bool(_SMTP.match(address.strip()))


def domain_of(address: str) -> str:
    return smtp_key(address).rpartition("@")[2]


def exchange_alias(address: str) -> str:
    """The Exchange alias mailroom gives a mailbox: its address's local part, in the case written."""
    value = address.strip()
    if value[:5].lower() == "smtp:":
        value = value[5:]
    return value.rpartition("@")[0]


def local_part(address: str) -> str:
    """The comparison key of ``exchange_alias`` (Exchange aliases are unique regardless of case)."""
    return exchange_alias(address).casefold()


def in_domains(address: str, domains: Iterable[str]) -> bool:
    dom = domain_of(address)
    return any(dom == d.casefold() for d in domains)


def proxy(address: str, *, primary: bool) -> str:
    """Exchange proxy-address form: ``SMTP:`` marks the primary, ``smtp:`` a secondary."""
    bare = address.strip()
    if bare[:5].lower() == "smtp:":
        bare = bare[5:]
    return ("SMTP:" if primary else "smtp:") + bare


def parse_proxy(value: str) -> tuple[str, str, bool]:
    """``SMTP:a@b`` → (``smtp``, ``a@b``, primary). Non-SMTP proxies keep their type."""
    kind, sep, rest = value.partition(":")
    if not sep:
        return "smtp", value, False
    return kind.lower(), rest, kind == "SMTP"


# Recipients whose mail is delivered outside the organisation whatever their address (exchange-features.md §3):
# forwarding to one is forwarding out.
EXTERNAL_RECIPIENTS = frozenset({"MailContact", "MailUser", "GuestMailUser"})


def is_internal(address: str, kind: str | None, domains: Iterable[str]) -> bool:
    """Mail to ``address`` stays in the organisation: an accepted domain, and a recipient of the organisation
    (``kind``: its RecipientTypeDetails; None: no such recipient) that is not a contact or mail user."""
    return in_domains(address, domains) and kind is not None and kind not in EXTERNAL_RECIPIENTS


def is_system_principal(name: str) -> bool:
    """``NT AUTHORITY\\SELF`` and friends, which every mailbox carries implicitly."""
    key = name.strip().casefold()
    return key in SELF_PRINCIPALS or key.startswith("nt authority\\") or key.startswith("s-1-5-")


def is_orphaned_sid(name: str) -> bool:
    """A trustee shown as a domain account's bare SID: its account was deleted (an orphaned grant)."""
    return bool(_ACCOUNT_SID.match(name.strip().casefold()))


def permission_kind(row: Mapping[str, object]) -> str:
    """What a permission row is: ``grant`` (a delegation mailroom manages) or why it is not one:
    ``self`` (NT AUTHORITY\\SELF), ``inherited``, ``deny``, ``orphan`` (an explicit grant to a deleted
    account, shown as its SID) or ``system`` (another system principal)."""
    who = str(row.get("User") or row.get("Trustee") or "")
    if who.strip().casefold() in SELF_PRINCIPALS:
        return "self"
    if row.get("IsInherited") is True:
        return "inherited"
    if row.get("Deny") is True or str(row.get("AccessControlType", "Allow")).casefold() == "deny":
        return "deny"
    if is_orphaned_sid(who):
        return "orphan"
    return "grant" if who and not is_system_principal(who) else "system"


def is_managed_permission(row: Mapping[str, object]) -> bool:
    """A permission row mailroom manages: explicit, allow, not a system principal."""
    return permission_kind(row) == "grant"


def access_rights(row: Mapping[str, object]) -> set[str]:
    """Rights of a permission row; elements may be comma-joined (``"FullAccess, ReadPermission"``)."""
    raw = row.get("AccessRights") or []
    items = [raw] if isinstance(raw, str) else list(raw)  # type: ignore[call-overload]
    return {part.strip().casefold() for item in items for part in str(item).split(",") if part.strip()}


def managed_addresses(proxies: Iterable[str], domains: Iterable[str]) -> dict[str, str]:
    """The user-managed SMTP addresses among ``proxies``: key → written form.

    Only ``smtp``-type addresses in the accepted domains count; the
    ``onmicrosoft.com`` routing address, SIP, X500 and the like are left alone.
    """
    doms = {d.casefold() for d in domains}
    out: dict[str, str] = {}
    for p in proxies:
        kind, addr, _ = parse_proxy(p)
        if kind == "smtp" and domain_of(addr) in doms:
            out[smtp_key(addr)] = addr
    return out
