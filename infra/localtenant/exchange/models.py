"""Exchange Online semantics over the shared directory: mailboxes, recipients,
FullAccess / SendAs / SendOnBehalf grants and the admin audit log.

Functions take an open transaction (``conn``) and raise :class:`DirectoryError` or
:class:`CmdletError`; the wire layer (``responses.py``) turns those into envelopes.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from localtenant.common import stamp
from localtenant.directory import (
    GROUP_TYPE,
    MAILBOX_TYPES,
    O_COLUMNS,
    RESOURCE_TYPES,
    DirectoryError,
    DirObject,
    Tenant,
    addresses_of,
    check_address,
    ensure_free,
    free_system_address,
    get_many,
    insert_object,
    parse_proxy,
    record_directory_audit,
    replace_addresses,
    update_object,
)

# Exchange Online's default audit sets for a new mailbox (the "DefaultAuditSet").
AUDIT_DEFAULTS: dict[str, list[str]] = {
    "AuditAdmin": ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "SendAs", "SendOnBehalf",
                   "Create", "UpdateFolderPermissions", "UpdateInboxRules", "UpdateCalendarDelegation",
                   "ApplyRecord", "MailItemsAccessed", "Send"],
    "AuditDelegate": ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "SendAs", "SendOnBehalf",
                      "Create", "UpdateFolderPermissions", "UpdateInboxRules", "ApplyRecord",
                      "MailItemsAccessed"],
    "AuditOwner": ["Update", "MoveToDeletedItems", "SoftDelete", "HardDelete", "UpdateFolderPermissions",
                   "UpdateInboxRules", "UpdateCalendarDelegation", "ApplyRecord", "MailItemsAccessed", "Send"],
}
AUDIT_VALID: dict[str, tuple[str, ...]] = {
    "AuditAdmin": ("ApplyRecord", "AttachmentAccess", "Copy", "Create", "FolderBind", "HardDelete",
                   "MailItemsAccessed", "MessageBind", "Move", "MoveToDeletedItems", "RecordDelete", "Send",
                   "SendAs", "SendOnBehalf", "SoftDelete", "Update", "UpdateCalendarDelegation",
                   "UpdateComplianceTag", "UpdateFolderPermissions", "UpdateInboxRules"),
    "AuditDelegate": ("ApplyRecord", "AttachmentAccess", "Create", "FolderBind", "HardDelete",
                      "MailItemsAccessed", "Move", "MoveToDeletedItems", "RecordDelete", "SendAs",
                      "SendOnBehalf", "SoftDelete", "Update", "UpdateComplianceTag", "UpdateFolderPermissions",
                      "UpdateInboxRules"),
    "AuditOwner": ("ApplyRecord", "AttachmentAccess", "Create", "HardDelete", "MailboxLogin",
                   "MailItemsAccessed", "Move", "MoveToDeletedItems", "RecordDelete", "SearchQueryInitiated",
                   "Send", "SoftDelete", "Update", "UpdateCalendarDelegation", "UpdateComplianceTag",
                   "UpdateFolderPermissions", "UpdateInboxRules"),
}
MAILBOX_FLAGS = ("MessageCopyForSentAsEnabled", "MessageCopyForSendOnBehalfEnabled",
                 "HiddenFromAddressListsEnabled", "AuditEnabled", "DeliverToMailboxAndForward")
FLAG_DEFAULTS = {"MessageCopyForSentAsEnabled": False, "MessageCopyForSendOnBehalfEnabled": False,
                 "HiddenFromAddressListsEnabled": False, "AuditEnabled": True, "DeliverToMailboxAndForward": False}
# [doc: set-mailbox] ForwardingAddress names a recipient of the organisation (RecipientIdParameter: it must
# resolve); ForwardingSmtpAddress is any SMTP proxy address, unchecked. Get-Mailbox shows the first as the
# recipient's identity ([infer] its Name, as for GrantSendOnBehalfTo) and the second as "smtp:x@y".
FORWARDING = ("ForwardingAddress", "ForwardingSmtpAddress")

CUSTOM_ATTRIBUTES = tuple(f"CustomAttribute{n}" for n in range(1, 16))

# Client protocols of a mailbox (Get-/Set-CASMailbox). [doc: set-casmailbox] each switch defaults to $true
# for a new mailbox, shared ones included; SmtpClientAuthenticationDisabled defaults to $null (the
# organisation's Set-TransportConfig setting decides). A mailbox whose props lack one has that default.
CAS_FLAGS: dict[str, bool] = {"PopEnabled": True, "ImapEnabled": True, "ActiveSyncEnabled": True,
                              "EwsEnabled": True, "MAPIEnabled": True, "OWAEnabled": True, "ECPEnabled": True,
                              "OutlookMobileEnabled": True}
SMTP_AUTH_DISABLED = "SmtpClientAuthenticationDisabled"


def cas_settings(props: dict[str, Any]) -> dict[str, Any]:
    """A mailbox's protocol settings, defaults filled in."""
    flags: dict[str, Any] = {k: bool(props.get(k, v)) for k, v in CAS_FLAGS.items()}
    return {**flags, SMTP_AUTH_DISABLED: props.get(SMTP_AUTH_DISABLED)}


MAILBOX_RIGHTS = ("ChangeOwner", "ChangePermission", "DeleteItem", "ExternalAccount", "FullAccess",
                  "ReadPermission")
INHERITANCE_TYPES = ("None", "All", "Descendents", "SelfAndChildren", "Children")
RECIPIENT_RIGHTS = ("SendAs",)

_ALIAS_BAD = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]")


class CmdletError(Exception):
    """A cmdlet failure with Exchange's exception type; ``status`` is the HTTP status."""

    def __init__(self, status: int, exc_type: str, text: str, error_id: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.exc_type = exc_type
        self.text = text
        self.error_id = error_id


def mailbox_defaults() -> dict[str, Any]:
    props: dict[str, Any] = dict(FLAG_DEFAULTS)
    props.update({key: list(values) for key, values in AUDIT_DEFAULTS.items()})
    return props


def derive_alias(name: str, primary: str | None) -> str:
    """[doc: New-Mailbox] with no Alias, Exchange derives one; the emulator takes the
    local part of PrimarySmtpAddress when given, else Name without invalid characters."""
    source = primary.partition("@")[0] if primary else name
    alias = _ALIAS_BAD.sub("", source).strip(".")
    return alias or "mailbox"


# ---------------------------------------------------------------- listing


def list_recipients(
    conn: sqlite3.Connection, *, types: Sequence[str] | None, soft: bool, after: int, limit: int
) -> list[DirObject]:
    """Keyset page of recipients ordered by creation (seq): O(page) with objects_rtd."""
    sql = f"SELECT {O_COLUMNS} FROM objects o WHERE o.rtd IS NOT NULL AND o.soft_deleted = ? AND o.seq > ?"
    args: list[Any] = [int(soft), after]
    if types is not None:
        sql += f" AND o.rtd IN ({','.join('?' * len(types))})"
        args.extend(types)
    sql += " ORDER BY o.seq LIMIT ?"
    args.append(limit)
    return [DirObject.from_row(row) for row in conn.execute(sql, args)]


def send_on_behalf_of(conn: sqlite3.Connection, seqs: Iterable[int]) -> dict[int, list[DirObject]]:
    wanted = sorted(set(seqs))
    out: dict[int, list[DirObject]] = {seq: [] for seq in wanted}
    if not wanted:
        return out
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT mailbox_seq, trustee_seq FROM send_on_behalf WHERE mailbox_seq IN ({marks}) "
        "ORDER BY mailbox_seq, pos",
        wanted,
    ).fetchall()
    trustees = get_many(conn, (t for _, t in rows))
    for mailbox_seq, trustee_seq in rows:
        out[mailbox_seq].append(trustees[trustee_seq])
    return out


# ---------------------------------------------------------------- writes


def new_shared_mailbox(
    conn: sqlite3.Connection,
    tenant: Tenant,
    *,
    name: str,
    display_name: str | None,
    primary: str | None,
    alias: str | None,
    audit: bool = True,
    rtd: str = "SharedMailbox",
    object_id: str | None = None,
) -> DirObject:
    """New-Mailbox -Shared (or, for the seed, a room or equipment mailbox with ``rtd``). Like
    the real service it also creates the Entra user, with accountEnabled TRUE for a shared
    mailbox (blocking sign-in is the admin's job) and FALSE for a resource, and UPN
    alias@initial domain ([infer]: the wire reference's Graph example shows a shared mailbox
    UPN on .onmicrosoft.com while mail is the custom-domain address).

    Refused like Exchange refuses them: a PrimarySmtpAddress any recipient already has
    (ProxyAddressExistsException, checked first), then a Name or Alias in use by any
    recipient, users, rooms and groups included (ADObjectAlreadyExistsException)."""
    alias = alias or derive_alias(name, primary)
    if _ALIAS_BAD.search(alias):
        raise DirectoryError(DirectoryError.INVALID, f'The alias "{alias}" contains characters that aren\'t valid.')
    if primary:
        check_address(primary, tenant)
        ensure_free(conn, primary, None)
    system = free_system_address(conn, alias, tenant)
    if primary:
        addresses = [(primary, True)] + ([(system, False)] if system.lower() != primary.lower() else [])
    else:
        addresses = [(system, True)]
    upn = system
    obj = insert_object(
        conn, kind="user", display_name=display_name or name, upn=upn, account_enabled=rtd not in RESOURCE_TYPES,
        rtd=rtd, name=name, alias=alias, object_id=object_id, addresses=addresses, props=mailbox_defaults(),
    )
    if audit:
        record_directory_audit(conn, activity="Add user", operation="Add", target=obj, caller=None)
    return obj


@dataclass
class MultiValue:
    """A multi-valued parameter: a plain array replaces, a GenericHashTable adds/removes."""

    replace: list[str] | None = None
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def apply(self, current: list[str], key: Callable[[str], str] = str.lower) -> list[str]:
        if self.replace is not None:
            merged = list(self.replace)
        else:
            gone = {key(v) for v in self.remove}
            merged = [v for v in current if key(v) not in gone] + self.add
        return list({key(v): v for v in reversed(merged)}.values())[::-1]


def new_address_list(current: list[str], change: MultiValue, tenant: Tenant) -> list[tuple[str, bool]]:
    """Apply an EmailAddresses change. Adding ``SMTP:x`` makes x primary and demotes the old
    primary to a secondary, as Exchange does; removing the primary is refused."""
    parsed_current = [parse_proxy(v, tenant) for v in current]
    if change.replace is not None:
        return [parse_proxy(v, tenant) for v in change.replace]
    removing = {parse_proxy(v, tenant)[0].lower() for v in change.remove}
    primary = next(a for a, p in parsed_current if p)
    if primary.lower() in removing:
        raise DirectoryError(
            DirectoryError.INVALID,
            f'The primary SMTP address "{primary}" can\'t be removed. Set another primary address first.',
        )
    out = [(a, p) for a, p in parsed_current if a.lower() not in removing]
    for value in change.add:
        address, is_primary = parse_proxy(value, tenant)
        if is_primary:
            out = [(a, False) for a, _ in out]
        out = [(a, p) for a, p in out if a.lower() != address.lower()]
        out.append((address, is_primary))
    return out


def set_display_name(conn: sqlite3.Connection, obj: DirObject, value: str) -> bool:
    if value == obj.display_name:
        return False
    update_object(conn, obj, display_name=value)
    record_directory_audit(conn, activity="Update user", operation="Update", target=obj, caller=None,
                           modified=[("DisplayName", obj.display_name, value)])
    return True


def set_send_on_behalf(conn: sqlite3.Connection, mailbox: DirObject, trustees: Sequence[DirObject]) -> bool:
    current = [t.seq for t in send_on_behalf_of(conn, [mailbox.seq])[mailbox.seq]]
    wanted = list(dict.fromkeys(t.seq for t in trustees))
    if wanted == current:
        return False
    conn.execute("DELETE FROM send_on_behalf WHERE mailbox_seq = ?", (mailbox.seq,))
    conn.executemany(
        "INSERT INTO send_on_behalf(mailbox_seq, trustee_seq, pos) VALUES (?, ?, ?)",
        [(mailbox.seq, seq, pos) for pos, seq in enumerate(wanted)],
    )
    return True


def set_addresses(conn: sqlite3.Connection, mailbox: DirObject, wanted: list[tuple[str, bool]]) -> bool:
    current = addresses_of(conn, [mailbox.seq])[mailbox.seq]
    rendered = [("SMTP:" if p else "smtp:") + a for a, p in wanted]
    if rendered == current:
        return False
    replace_addresses(conn, mailbox.seq, wanted)
    return True


def remove_mailbox(conn: sqlite3.Connection, mailbox: DirObject, *, permanently: bool) -> None:
    """Soft delete (the default) keeps the object, its grants and its addresses: the
    addresses stay reserved, as with the real service's soft-deleted mailboxes, until
    ``-PermanentlyDelete`` purges it. The Entra user is deleted with the mailbox."""
    if permanently:
        conn.execute("DELETE FROM objects WHERE seq = ?", (mailbox.seq,))
        return
    update_object(conn, mailbox, soft_deleted=1, when_soft_deleted=stamp(), user_deleted=1)
    if mailbox.kind == "user" and not mailbox.user_deleted:
        record_directory_audit(conn, activity="Delete user", operation="Delete", target=mailbox, caller=None)


# ---------------------------------------------------------------- FullAccess


@dataclass(frozen=True)
class MailboxGrant:
    trustee: DirObject
    rights: tuple[str, ...]
    inheritance: str


def mailbox_grants(conn: sqlite3.Connection, mailbox: DirObject, trustee: DirObject | None) -> list[MailboxGrant]:
    sql = "SELECT trustee_seq, access_right, inheritance FROM mailbox_perms WHERE mailbox_seq = ?"
    args: list[Any] = [mailbox.seq]
    if trustee is not None:
        sql += " AND trustee_seq = ?"
        args.append(trustee.seq)
    rows = conn.execute(sql + " ORDER BY trustee_seq", args).fetchall()
    trustees = get_many(conn, (r[0] for r in rows))
    grouped: dict[tuple[int, str], list[str]] = {}
    for seq, right, inheritance in rows:
        grouped.setdefault((seq, inheritance), []).append(right)
    return [
        MailboxGrant(trustees[seq], tuple(sorted(rights, key=MAILBOX_RIGHTS.index)), inheritance)
        for (seq, inheritance), rights in grouped.items()
    ]


def add_mailbox_grant(
    conn: sqlite3.Connection, mailbox: DirObject, trustee: DirObject, rights: Sequence[str],
    inheritance: str, automapping: bool,
) -> list[str]:
    """Returns the rights actually added; an empty list means the ACE was already there."""
    added = []
    for right in rights:
        cur = conn.execute(
            "INSERT OR IGNORE INTO mailbox_perms(mailbox_seq, trustee_seq, access_right, inheritance, automapping) "
            "VALUES (?, ?, ?, ?, ?)",
            (mailbox.seq, trustee.seq, right, inheritance, int(automapping)),
        )
        if cur.rowcount:
            added.append(right)
    return added


def remove_mailbox_grant(
    conn: sqlite3.Connection, mailbox: DirObject, trustee: DirObject, rights: Sequence[str], inheritance: str | None,
) -> list[str]:
    removed = []
    for right in rights:
        sql = "DELETE FROM mailbox_perms WHERE mailbox_seq = ? AND trustee_seq = ? AND access_right = ?"
        args: list[Any] = [mailbox.seq, trustee.seq, right]
        if inheritance is not None:
            sql += " AND inheritance = ?"
            args.append(inheritance)
        if conn.execute(sql, args).rowcount:
            removed.append(right)
    return removed


# ---------------------------------------------------------------- SendAs


SELF_SEQ = 0  # the implicit NT AUTHORITY\SELF row sorts before every real trustee


def recipient_grants(
    conn: sqlite3.Connection, *, mailbox: DirObject | None, trustee: DirObject | None,
    after: tuple[int, int], limit: int,
) -> list[tuple[DirObject, DirObject | None]]:
    """SendAs rows as (mailbox, trustee); trustee None is the implicit SELF row every
    mailbox has. Without ``mailbox`` this walks the whole tenant in (mailbox, trustee)
    keyset order, so each page costs O(page)."""
    mailbox_filter = "o.seq = ?" if mailbox else f"o.rtd IN ({','.join('?' * len(MAILBOX_TYPES))})"
    mailbox_args: list[Any] = [mailbox.seq] if mailbox else list(MAILBOX_TYPES)
    parts: list[str] = []
    args: list[Any] = []
    if trustee is None:
        parts.append(f"SELECT o.seq AS m, {SELF_SEQ} AS t FROM objects o WHERE {mailbox_filter} AND o.soft_deleted = 0")
        args += mailbox_args
    trustee_filter = " AND p.trustee_seq = ?" if trustee else ""
    parts.append(
        f"SELECT p.mailbox_seq AS m, p.trustee_seq AS t FROM recipient_perms p JOIN objects o ON o.seq = p.mailbox_seq "
        f"WHERE {mailbox_filter} AND o.soft_deleted = 0{trustee_filter}"
    )
    args += mailbox_args + ([trustee.seq] if trustee else [])
    sql = f"SELECT m, t FROM ({' UNION ALL '.join(parts)}) WHERE (m, t) > (?, ?) ORDER BY m, t LIMIT ?"
    rows = conn.execute(sql, [*args, after[0], after[1], limit]).fetchall()
    objs = get_many(conn, [m for m, _ in rows] + [t for _, t in rows if t != SELF_SEQ])
    return [(objs[m], None if t == SELF_SEQ else objs[t]) for m, t in rows]


def add_recipient_grant(
    conn: sqlite3.Connection, mailbox: DirObject, trustee: DirObject, rights: Sequence[str]
) -> list[str]:
    added = []
    for right in rights:
        cur = conn.execute(
            "INSERT OR IGNORE INTO recipient_perms(mailbox_seq, trustee_seq, access_right) VALUES (?, ?, ?)",
            (mailbox.seq, trustee.seq, right),
        )
        if cur.rowcount:
            added.append(right)
    return added


def remove_recipient_grant(
    conn: sqlite3.Connection, mailbox: DirObject, trustee: DirObject, rights: Sequence[str]
) -> list[str]:
    removed = []
    for right in rights:
        cur = conn.execute(
            "DELETE FROM recipient_perms WHERE mailbox_seq = ? AND trustee_seq = ? AND access_right = ?",
            (mailbox.seq, trustee.seq, right),
        )
        if cur.rowcount:
            removed.append(right)
    return removed


def group_or_mailbox(obj: DirObject) -> bool:
    """Trustees must be security principals: users (any mailbox type) or security groups."""
    return obj.kind == "user" or obj.rtd == GROUP_TYPE


# ---------------------------------------------------------------- inbox rules

# [doc: new-inboxrule] the actions that send mail elsewhere; each takes RecipientIdParameter[] (a recipient
# of the organisation, or an SMTP address outside it).
FORWARD_ACTIONS = ("ForwardTo", "RedirectTo", "ForwardAsAttachmentTo")


@dataclass(frozen=True)
class InboxRule:
    seq: int
    mailbox: DirObject
    rule_id: str
    name: str
    enabled: bool
    hidden: bool
    actions: dict[str, list[str]]


def inbox_rules(conn: sqlite3.Connection, mailbox: DirObject, *, hidden: bool) -> list[InboxRule]:
    sql = "SELECT seq, rule_id, name, enabled, hidden, actions FROM inbox_rules WHERE mailbox_seq = ?"
    if not hidden:
        sql += " AND hidden = 0"
    return [InboxRule(r[0], mailbox, r[1], r[2], bool(r[3]), bool(r[4]), json.loads(r[5]))
            for r in conn.execute(sql + " ORDER BY seq", (mailbox.seq,))]


def new_inbox_rule(conn: sqlite3.Connection, mailbox: DirObject, name: str, actions: dict[str, list[str]],
                   *, enabled: bool = True, hidden: bool = False) -> InboxRule:
    """A rule's RuleIdentity is a 64-bit number in Exchange ([doc: get-inboxrule] "16752869479666417665")."""
    if any(r.name.lower() == name.lower() for r in inbox_rules(conn, mailbox, hidden=True)):
        raise CmdletError(400, "Microsoft.Exchange.Management.StoreTasks.InboxRuleOperationException",
                          f"An Inbox rule with the name {name} already exists.")
    cur = conn.execute("INSERT INTO inbox_rules(mailbox_seq, rule_id, name, enabled, hidden, actions) "
                       "VALUES (?, '', ?, ?, ?, ?)",
                       (mailbox.seq, name, int(enabled), int(hidden), json.dumps(actions)))
    seq = int(cur.lastrowid or 0)
    rule_id = str(16752869479666417665 + seq * 4096)  # deterministic, Exchange-shaped
    conn.execute("UPDATE inbox_rules SET rule_id = ? WHERE seq = ?", (rule_id, seq))
    return InboxRule(seq, mailbox, rule_id, name, enabled, hidden, actions)


def find_inbox_rule(conn: sqlite3.Connection, mailbox: DirObject, identity: str) -> InboxRule | None:
    """``identity``: the rule's name, its RuleIdentity, or ``Mailbox\\RuleIdentity``."""
    wanted = identity.rpartition("\\")[2].strip().lower()
    return next((r for r in inbox_rules(conn, mailbox, hidden=True)
                 if wanted in (r.rule_id, r.name.lower())), None)


def set_inbox_rule_enabled(conn: sqlite3.Connection, rule: InboxRule, enabled: bool) -> bool:
    if rule.enabled == enabled:
        return False
    conn.execute("UPDATE inbox_rules SET enabled = ? WHERE seq = ?", (int(enabled), rule.seq))
    return True


# ---------------------------------------------------------------- mail contacts and mail users


def new_mail_recipient(conn: sqlite3.Connection, tenant: Tenant, *, rtd: str, name: str, display_name: str | None,
                       external: str, primary: str | None, upn: str | None) -> DirObject:
    """New-MailContact (``rtd`` MailContact: its address is the outside one, no Entra user) or New-MailUser
    (MailUser: an Entra user with an address in an accepted domain whose mail goes to ``external``). Either
    way mail sent to it leaves the organisation ([doc: new-mailcontact, new-mailuser])."""
    if not _looks_address(external):
        raise DirectoryError(DirectoryError.INVALID, f'The email address "{external}" isn\'t correct.')
    alias = derive_alias(name, primary or upn)
    if rtd == "MailContact":
        ensure_free(conn, external, None)
        addresses = [(external, True)]
    else:
        primary = primary or upn or f"{alias}@{tenant.initial_domain}"
        check_address(primary, tenant)
        ensure_free(conn, primary, None)
        addresses = [(primary, True)]
    return insert_object(conn, kind="contact" if rtd == "MailContact" else "user", display_name=display_name or name,
                         upn=None if rtd == "MailContact" else (upn or primary), rtd=rtd, name=name, alias=alias,
                         addresses=addresses, props={"ExternalEmailAddress": "SMTP:" + external})


def _looks_address(value: str) -> bool:
    local, at, domain = value.partition("@")
    return bool(local and at and "." in domain and " " not in value)
