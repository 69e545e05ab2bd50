"""The cmdlets the emulator implements: parameter binding -> model call -> rendered rows.

Each handler gets a :class:`Ctx` (open transaction, tenant, caller, page budget and the
continuation cursor) and returns a :class:`Result`. Listing cmdlets fetch one row more
than the page budget to learn whether the result is truncated.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localtenant.common import Caller
from localtenant.directory import (
    MAILBOX_TYPES,
    DirectoryError,
    DirObject,
    Tenant,
    addresses_of,
    get_by_seq,
    resolve,
)
from localtenant.exchange import folders, models, render
from localtenant.exchange.models import CmdletError
from localtenant.exchange.params import Params, binding_error

RECIPIENT_TYPES = ("UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox", "LinkedMailbox",
                   "SchedulingMailbox", "TeamMailbox", "GroupMailbox", "MailUser", "GuestMailUser",
                   "MailContact", "MailUniversalDistributionGroup", "MailUniversalSecurityGroup",
                   "DynamicDistributionGroup", "RoomList", "DiscoveryMailbox", "User", "DisabledUser")
NO_CHANGE = "The command completed successfully but no settings of '{0}' have been modified."
ACE_PRESENT = 'The appropriate access control entry is already present on the object "{0}" for account "{1}".'
ACE_MISSING = ("Can't remove the access control entry on the object \"{0}\" for the user account because the "
               "ACE doesn't exist on the object.")


@dataclass
class Ctx:
    conn: sqlite3.Connection
    tenant: Tenant
    caller: Caller
    limit: int
    cursor: Any = None


@dataclass
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    more: bool = False
    cursor: Any = None
    target: DirObject | None = None


Handler = Callable[[Ctx, Params], Result]


@dataclass(frozen=True)
class Cmdlet:
    name: str
    run: Handler
    params: frozenset[str]
    mandatory: tuple[str, ...] = ()
    write: bool = False
    result_size_max: int | None = None


def enum_values(name: str, values: list[str], valid: tuple[str, ...]) -> list[str]:
    """Bind enum values case-insensitively; the error lists the valid values, as Exchange does."""
    canon = {v.lower(): v for v in valid}
    out = []
    for value in values:
        if value.lower() not in canon:
            raise binding_error(
                f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                f'"{value}" to type "{name}". Error: "Unable to match the identifier name {value} to a valid '
                f'enumerator name. Specify one of the following enumerator names and try again: {", ".join(valid)}"'
            )
        out.append(canon[value.lower()])
    return out


def mailbox_arg(ctx: Ctx, identity: str, *, soft: bool = False) -> DirObject:
    obj = resolve(ctx.conn, identity, scope="soft" if soft else "live")
    if not obj.is_mailbox:
        raise DirectoryError(DirectoryError.NOT_FOUND, identity)
    return obj


def trustee_arg(ctx: Ctx, identity: str) -> DirObject:
    obj = resolve(ctx.conn, identity)
    if not models.group_or_mailbox(obj):
        raise DirectoryError(DirectoryError.NOT_FOUND, identity)
    return obj


def _page(ctx: Ctx, items: list[Any], key: Callable[[Any], Any]) -> tuple[list[Any], bool, Any]:
    more = len(items) > ctx.limit
    items = items[: ctx.limit]
    return items, more, (key(items[-1]) if items else ctx.cursor)


def _mailbox_rows(ctx: Ctx, objs: list[DirObject], with_display_names: bool) -> list[dict[str, Any]]:
    seqs = [o.seq for o in objs]
    addrs = addresses_of(ctx.conn, seqs)
    sob = models.send_on_behalf_of(ctx.conn, seqs)
    return [render.mailbox(o, addrs[o.seq], sob[o.seq], ctx.tenant, with_display_names) for o in objs]


# ---------------------------------------------------------------- mailboxes & recipients


def get_mailbox(ctx: Ctx, p: Params) -> Result:
    soft = p.switch("SoftDeletedMailbox")
    wanted = p.strings("RecipientTypeDetails")
    types = enum_values("RecipientTypeDetails", wanted, RECIPIENT_TYPES) if wanted else list(MAILBOX_TYPES)
    with_names = p.switch("IncludeGrantSendOnBehalfToWithDisplayNames")
    identity = p.string("Identity")
    if identity is not None:
        obj = mailbox_arg(ctx, identity, soft=soft)
        if obj.rtd not in types:
            raise DirectoryError(DirectoryError.NOT_FOUND, identity)
        return Result(rows=_mailbox_rows(ctx, [obj], with_names))
    types = [t for t in types if t in MAILBOX_TYPES]
    objs = models.list_recipients(ctx.conn, types=types, soft=soft, after=ctx.cursor or 0, limit=ctx.limit + 1)
    objs, more, cursor = _page(ctx, objs, lambda o: o.seq)
    return Result(rows=_mailbox_rows(ctx, objs, with_names), more=more, cursor=cursor)


def get_recipient(ctx: Ctx, p: Params) -> Result:
    wanted = p.strings("RecipientTypeDetails")
    types = enum_values("RecipientTypeDetails", wanted, RECIPIENT_TYPES) if wanted else None
    identity = p.string("Identity")
    if identity is not None:
        objs = [resolve(ctx.conn, identity)]
        if types is not None and objs[0].rtd not in types:
            raise DirectoryError(DirectoryError.NOT_FOUND, identity)
        more, cursor = False, None
    else:
        objs = models.list_recipients(ctx.conn, types=types, soft=False, after=ctx.cursor or 0, limit=ctx.limit + 1)
        objs, more, cursor = _page(ctx, objs, lambda o: o.seq)
    addrs = addresses_of(ctx.conn, [o.seq for o in objs])
    return Result(rows=[render.recipient(o, addrs[o.seq], ctx.tenant) for o in objs], more=more, cursor=cursor)


def new_mailbox(ctx: Ctx, p: Params) -> Result:
    if not p.switch("Shared"):
        # The emulator models shared mailboxes only; user mailboxes come from the seed file.
        raise binding_error("The emulator supports New-Mailbox only with -Shared.")
    obj = models.new_shared_mailbox(
        ctx.conn, ctx.tenant, name=p.require("Name"), display_name=p.string("DisplayName"),
        primary=p.string("PrimarySmtpAddress"), alias=p.string("Alias"),
    )
    return Result(rows=_mailbox_rows(ctx, [obj], False), target=obj)


def set_mailbox(ctx: Ctx, p: Params) -> Result:
    identity = p.require("Identity")
    mbx = mailbox_arg(ctx, identity)
    changed = False
    display = p.string("DisplayName")
    if display is not None:
        changed |= models.set_display_name(ctx.conn, mbx, display)
    addresses = p.multivalue("EmailAddresses")
    if addresses is not None:
        current = addresses_of(ctx.conn, [mbx.seq])[mbx.seq]
        changed |= models.set_addresses(ctx.conn, mbx, models.new_address_list(current, addresses, ctx.tenant))
    delegates = p.multivalue("GrantSendOnBehalfTo")
    if delegates is not None:
        current_sob = models.send_on_behalf_of(ctx.conn, [mbx.seq])[mbx.seq]
        if delegates.replace is not None:
            new = [resolve(ctx.conn, x) for x in delegates.replace]
        else:
            gone = {resolve(ctx.conn, x).seq for x in delegates.remove}
            new = [t for t in current_sob if t.seq not in gone] + [resolve(ctx.conn, x) for x in delegates.add]
        changed |= models.set_send_on_behalf(ctx.conn, mbx, new)
    props = dict(mbx.props)
    for attribute in models.CUSTOM_ATTRIBUTES:
        text = p.string(attribute)
        if text is not None or p.has(attribute):  # $null clears it
            props[attribute] = text or ""
    for flag in models.MAILBOX_FLAGS:
        value = p.boolean(flag)
        if value is not None:
            props[flag] = value
    if p.has("ForwardingAddress"):  # $null clears it
        target = p.string("ForwardingAddress")
        props["ForwardingAddress"] = resolve(ctx.conn, target).name if target else None
    if p.has("ForwardingSmtpAddress"):
        smtp = p.string("ForwardingSmtpAddress")
        props["ForwardingSmtpAddress"] = _proxy_address("ForwardingSmtpAddress", smtp) if smtp else None
    for audit_set, valid in models.AUDIT_VALID.items():
        change = p.multivalue(audit_set)
        if change is not None:
            change.add = enum_values(audit_set, change.add, valid)
            change.remove = enum_values(audit_set, change.remove, valid)
            if change.replace is not None:
                change.replace = enum_values(audit_set, change.replace, valid)
            props[audit_set] = change.apply(list(props.get(audit_set, models.AUDIT_DEFAULTS[audit_set])))
    changed |= props != mbx.props
    if changed:
        models.update_object(ctx.conn, mbx, props=props)
    return Result(warnings=[] if changed else [NO_CHANGE.format(identity)], target=mbx)


def _proxy_address(name: str, value: str) -> str:
    """A ProxyAddress parameter: ``x@y`` or ``smtp:x@y``, kept as ``smtp:x@y``."""
    bare = value.strip()[5:] if value.strip().lower().startswith("smtp:") else value.strip()
    local, at, domain = bare.partition("@")
    if not (local and at and "." in domain and " " not in bare):
        raise binding_error(f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
                            f'"{value}" to type "Microsoft.Exchange.Data.ProxyAddress". Error: "The address '
                            f"'{bare}' is invalid.\"")
    return "smtp:" + bare


def remove_mailbox(ctx: Ctx, p: Params) -> Result:
    identity = p.require("Identity")
    permanently = p.switch("PermanentlyDelete")
    try:
        mbx = mailbox_arg(ctx, identity)
    except DirectoryError:
        if not permanently:
            raise
        mbx = mailbox_arg(ctx, identity, soft=True)
    models.remove_mailbox(ctx.conn, mbx, permanently=permanently)
    return Result(target=mbx)


def _new_mail_recipient(rtd: str) -> Handler:
    def run(ctx: Ctx, p: Params) -> Result:
        obj = models.new_mail_recipient(
            ctx.conn, ctx.tenant, rtd=rtd, name=p.require("Name"), display_name=p.string("DisplayName"),
            external=p.require("ExternalEmailAddress").removeprefix("SMTP:").removeprefix("smtp:"),
            primary=p.string("PrimarySmtpAddress"), upn=p.string("MicrosoftOnlineServicesID"))
        addrs = addresses_of(ctx.conn, [obj.seq])
        return Result(rows=[render.recipient(obj, addrs[obj.seq], ctx.tenant)], target=obj)
    return run


# ---------------------------------------------------------------- client protocols


def get_cas_mailbox(ctx: Ctx, p: Params) -> Result:
    """One mailbox, or every mailbox of any type (not only shared ones) in pages, as Exchange lists them."""
    identity = p.string("Identity")
    if identity is not None:
        objs = [mailbox_arg(ctx, identity)]
        more, cursor = False, None
    else:
        objs = models.list_recipients(ctx.conn, types=list(MAILBOX_TYPES), soft=False, after=ctx.cursor or 0,
                                      limit=ctx.limit + 1)
        objs, more, cursor = _page(ctx, objs, lambda o: o.seq)
    addrs = addresses_of(ctx.conn, [o.seq for o in objs])
    return Result(rows=[render.cas_mailbox(o, addrs[o.seq]) for o in objs], more=more, cursor=cursor)


def set_cas_mailbox(ctx: Ctx, p: Params) -> Result:
    identity = p.require("Identity")
    mbx = mailbox_arg(ctx, identity)
    props = dict(mbx.props)
    for flag in models.CAS_FLAGS:
        value = p.boolean(flag)
        if value is not None:
            props[flag] = value
    if p.has(models.SMTP_AUTH_DISABLED):  # $null is a value here: the organisation's setting decides
        props[models.SMTP_AUTH_DISABLED] = p.boolean(models.SMTP_AUTH_DISABLED)
    if models.cas_settings(props) == models.cas_settings(mbx.props):
        return Result(warnings=[NO_CHANGE.format(identity)], target=mbx)
    models.update_object(ctx.conn, mbx, props=props)
    return Result(target=mbx)


# ---------------------------------------------------------------- inbox rules


def rule_target(conn: sqlite3.Connection, value: str) -> str:
    """A forwarding action's recipient as Get-InboxRule shows it: a recipient of the organisation by its
    display name and primary address, anything else that is an SMTP address as itself."""
    try:
        obj = resolve(conn, value)
        return f'"{obj.display_name}" [SMTP:{obj.mail}]'
    except DirectoryError:
        if not _looks_smtp(value):
            raise
    bare = value.strip()
    return f'"{bare}" [SMTP:{bare}]'


def _looks_smtp(value: str) -> bool:
    local, at, domain = value.strip().partition("@")
    return bool(local and at and "." in domain and " " not in value.strip())


def rule_actions(conn: sqlite3.Connection, p: Params) -> dict[str, list[str]]:
    return {a: [rule_target(conn, v) for v in p.strings(a) or []] for a in models.FORWARD_ACTIONS if p.has(a)}


def new_inbox_rule(ctx: Ctx, p: Params) -> Result:
    mbx = mailbox_arg(ctx, p.require("Mailbox"))
    enabled = p.boolean("Enabled")
    rule = models.new_inbox_rule(ctx.conn, mbx, p.require("Name"), rule_actions(ctx.conn, p),
                                 enabled=True if enabled is None else enabled)
    return Result(rows=[render.inbox_rule(rule)], target=mbx)


def _rule_arg(ctx: Ctx, p: Params) -> tuple[DirObject, models.InboxRule]:
    identity = p.require("Identity")
    owner = p.string("Mailbox") or (identity.partition("\\")[0] if "\\" in identity else None)
    if owner is None:
        raise binding_error("The Mailbox parameter is required when the Identity does not name the mailbox.")
    mbx = mailbox_arg(ctx, owner)
    rule = models.find_inbox_rule(ctx.conn, mbx, identity)
    if rule is None:
        raise DirectoryError(DirectoryError.NOT_FOUND, identity)
    return mbx, rule


def get_inbox_rule(ctx: Ctx, p: Params) -> Result:
    if p.has("Identity"):
        mbx, rule = _rule_arg(ctx, p)
        return Result(rows=[render.inbox_rule(rule)])
    mbx = mailbox_arg(ctx, p.require("Mailbox"))
    rules = models.inbox_rules(ctx.conn, mbx, hidden=p.switch("IncludeHidden"))
    return Result(rows=[render.inbox_rule(r) for r in rules])


def _switch_inbox_rule(enabled: bool) -> Handler:
    def run(ctx: Ctx, p: Params) -> Result:
        mbx, rule = _rule_arg(ctx, p)
        changed = models.set_inbox_rule_enabled(ctx.conn, rule, enabled)
        return Result(warnings=[] if changed else [NO_CHANGE.format(p.require("Identity"))], target=mbx)
    return run


def remove_inbox_rule(ctx: Ctx, p: Params) -> Result:
    mbx, rule = _rule_arg(ctx, p)
    ctx.conn.execute("DELETE FROM inbox_rules WHERE seq = ?", (rule.seq,))
    return Result(target=mbx)


# ---------------------------------------------------------------- FullAccess


def get_mailbox_permission(ctx: Ctx, p: Params) -> Result:
    mbx = mailbox_arg(ctx, p.require("Identity"))
    user = p.string("User")
    trustee = resolve(ctx.conn, user) if user else None
    rows = [] if trustee else [render.mailbox_permission_self(mbx)]
    rows += [render.mailbox_permission(mbx, g, ctx.tenant) for g in models.mailbox_grants(ctx.conn, mbx, trustee)]
    if trustee is None:  # -User names one trustee: the organisation's inherited entries are not theirs
        rows += render.mailbox_permission_inherited(mbx)
    start = int(ctx.cursor or 0)
    page = rows[start: start + ctx.limit]
    return Result(rows=page, more=start + ctx.limit < len(rows), cursor=start + len(page))


def _mailbox_permission_args(ctx: Ctx, p: Params) -> tuple[DirObject, DirObject, list[str]]:
    mbx = mailbox_arg(ctx, p.require("Identity"))
    trustee = trustee_arg(ctx, p.require("User"))
    rights = enum_values("AccessRights", p.strings("AccessRights") or [], models.MAILBOX_RIGHTS)
    if not rights:
        raise binding_error("Cannot validate argument on parameter 'AccessRights'. The argument is null or empty.")
    return mbx, trustee, rights


def _inheritance(p: Params, default: str | None) -> str | None:
    value = p.string("InheritanceType")
    return default if value is None else enum_values("InheritanceType", [value], models.INHERITANCE_TYPES)[0]


def add_mailbox_permission(ctx: Ctx, p: Params) -> Result:
    mbx, trustee, rights = _mailbox_permission_args(ctx, p)
    inheritance = _inheritance(p, "All") or "All"
    automapping = p.boolean("AutoMapping")
    added = models.add_mailbox_grant(ctx.conn, mbx, trustee, rights, inheritance,
                                     True if automapping is None else automapping)
    if not added:
        return Result(warnings=[ACE_PRESENT.format(mbx.name, trustee.principal_name)], target=mbx)
    grant = models.MailboxGrant(trustee, tuple(added), inheritance)
    return Result(rows=[render.mailbox_permission(mbx, grant, ctx.tenant)], target=mbx)


def remove_mailbox_permission(ctx: Ctx, p: Params) -> Result:
    mbx, trustee, rights = _mailbox_permission_args(ctx, p)
    removed = models.remove_mailbox_grant(ctx.conn, mbx, trustee, rights, _inheritance(p, None))
    return Result(warnings=[] if removed else [ACE_MISSING.format(mbx.name)], target=mbx)


# ---------------------------------------------------------------- SendAs


def get_recipient_permission(ctx: Ctx, p: Params) -> Result:
    identity = p.string("Identity")
    mbx = mailbox_arg(ctx, identity) if identity else None
    trustee_id = p.string("Trustee")
    trustee = resolve(ctx.conn, trustee_id) if trustee_id else None
    enum_values("AccessRights", p.strings("AccessRights") or [], models.RECIPIENT_RIGHTS)
    after = tuple(ctx.cursor) if ctx.cursor else (-1, -1)
    pairs = models.recipient_grants(ctx.conn, mailbox=mbx, trustee=trustee, after=(after[0], after[1]),
                                    limit=ctx.limit + 1)
    pairs, more, cursor = _page(ctx, pairs, lambda mt: [mt[0].seq, mt[1].seq if mt[1] else models.SELF_SEQ])
    return Result(rows=[render.recipient_permission(m, t, ctx.tenant) for m, t in pairs], more=more, cursor=cursor)


def _recipient_permission_args(ctx: Ctx, p: Params) -> tuple[DirObject, DirObject, list[str]]:
    mbx = mailbox_arg(ctx, p.require("Identity"))
    trustee = trustee_arg(ctx, p.require("Trustee"))
    rights = enum_values("AccessRights", p.strings("AccessRights") or [], models.RECIPIENT_RIGHTS)
    if not rights:
        raise binding_error("Cannot validate argument on parameter 'AccessRights'. The argument is null or empty.")
    return mbx, trustee, rights


def add_recipient_permission(ctx: Ctx, p: Params) -> Result:
    mbx, trustee, rights = _recipient_permission_args(ctx, p)
    if not models.add_recipient_grant(ctx.conn, mbx, trustee, rights):
        return Result(warnings=[ACE_PRESENT.format(mbx.name, trustee.principal_name)], target=mbx)
    return Result(rows=[render.recipient_permission(mbx, trustee, ctx.tenant)], target=mbx)


def remove_recipient_permission(ctx: Ctx, p: Params) -> Result:
    mbx, trustee, rights = _recipient_permission_args(ctx, p)
    removed = models.remove_recipient_grant(ctx.conn, mbx, trustee, rights)
    return Result(warnings=[] if removed else [ACE_MISSING.format(mbx.name)], target=mbx)


# ---------------------------------------------------------------- folders and folder permissions


def set_mailbox_regional_configuration(ctx: Ctx, p: Params) -> Result:
    """Only what mailroom's tests need: -Language, and with -LocalizeDefaultFolderName the well-known folders
    take that language's names ([doc: set-mailboxregionalconfiguration])."""
    identity = p.require("Identity")
    mbx = mailbox_arg(ctx, identity)
    lang = p.string("Language")
    props = dict(mbx.props)
    if lang is not None:
        props["RegionalLanguage"] = lang
        if p.switch("LocalizeDefaultFolderName"):
            props["Language"] = lang
    if props == mbx.props:
        return Result(warnings=[NO_CHANGE.format(identity)], target=mbx)
    models.update_object(ctx.conn, mbx, props=props)
    return Result(target=mbx)


def get_mailbox_folder_statistics(ctx: Ctx, p: Params) -> Result:
    """Another mailbox's folders (Get-MailboxFolder only sees the caller's own mailbox), with the English
    FolderType that finds a calendar whatever its localized Name."""
    mbx = mailbox_arg(ctx, p.require("Identity"))
    scope = p.string("FolderScope")
    kind = enum_values("FolderScope", [scope], folders.FOLDER_SCOPES)[0] if scope else "All"
    # [doc: get-mailboxfolderstatistics -FolderScope] a scope is the folder of that type and its subfolders.
    rows = [folders.statistics_row(f) for f in folders.folders(mbx, ctx.conn)
            if kind == "All" or f.folder_type == kind or (f.folder_type == folders.USER_CREATED and f.top == kind)]
    return Result(rows=rows)


def _folder_arg(ctx: Ctx, p: Params) -> folders.Folder:
    identity = p.require("Identity")
    owner, sep, suffix = identity.partition(":")
    if not sep:
        raise folders.not_found(identity)
    try:
        mbx = mailbox_arg(ctx, owner)
    except DirectoryError as err:
        raise folders.not_found(identity) from err
    return folders.find_folder(mbx, identity, suffix, ctx.conn)


def _folder_user(ctx: Ctx, p: Params) -> tuple[int, DirObject | None, str]:
    """-User: Default, Anonymous, or a mailbox user, mail user or mail-enabled security group."""
    name = p.require("User")
    special = {v.lower(): k for k, v in folders.SPECIAL.items()}.get(name.strip().lower())
    if special is not None:
        return special, None, folders.SPECIAL[special]
    try:
        trustee = trustee_arg(ctx, name)
    except DirectoryError as err:
        # The folder cmdlets also take the display name Get-MailboxFolderPermission shows (MailboxFolderUserId);
        # two recipients with that name make it ambiguous, as CIPP #244 met.
        if err.reason != DirectoryError.NOT_FOUND:
            raise
        rows = ctx.conn.execute("SELECT seq FROM objects WHERE lower(display_name) = ? AND rtd IS NOT NULL "
                                "AND soft_deleted = 0", (name.strip().lower(),)).fetchall()
        if len(rows) != 1:
            raise DirectoryError(DirectoryError.AMBIGUOUS if rows else DirectoryError.NOT_FOUND, name) from err
        found = get_by_seq(ctx.conn, int(rows[0][0]))
        if found is None or not models.group_or_mailbox(found):
            raise DirectoryError(DirectoryError.NOT_FOUND, name) from err
        trustee = found
    return trustee.seq, trustee, trustee.display_name


def _folder_principal(ctx: Ctx, trustee: DirObject | None) -> str:
    """A folder entry names its person by display name; a deleted one as ``NT:<SID>`` ([infer] as an orphaned
    MAPI permission shows)."""
    if trustee is None:
        return ""
    return "NT:" + render.principal(trustee, ctx.tenant) if trustee.user_deleted else trustee.display_name


def _folder_rows(ctx: Ctx, folder: folders.Folder, only: int | None = None) -> list[dict[str, Any]]:
    return [folders.permission_row(folder, e, _folder_principal(ctx, e.trustee))
            for e in folders.entries(ctx.conn, folder) if only is None or e.trustee_seq == only]


def get_mailbox_folder_permission(ctx: Ctx, p: Params) -> Result:
    folder = _folder_arg(ctx, p)
    if not p.has("User"):
        return Result(rows=_folder_rows(ctx, folder))
    seq, _, name = _folder_user(ctx, p)
    rows = _folder_rows(ctx, folder, seq)
    if not rows:
        raise folders.missing_error(name)
    return Result(rows=rows)


def _access(p: Params, folder: folders.Folder) -> tuple[frozenset[str], tuple[str, ...] | None]:
    rights = folders.parse_rights(p.strings("AccessRights") or [], folder)
    flags = folders.parse_flags(p.strings("SharingPermissionFlags"))
    if p.boolean("SendNotificationToUser"):
        folders.check_notification(rights)
    return rights, flags


def add_mailbox_folder_permission(ctx: Ctx, p: Params) -> Result:
    folder = _folder_arg(ctx, p)
    seq, trustee, name = _folder_user(ctx, p)
    if folders.find_entry(ctx.conn, folder, seq) is not None or trustee is None:  # Default/Anonymous always exist
        raise folders.exists_error(name)
    rights, flags = _access(p, folder)
    folders.check_flags(folder, rights, flags or ())
    folders.write(ctx.conn, folder, seq, rights, flags or ())
    return Result(rows=_folder_rows(ctx, folder, seq), target=folder.mailbox)


def set_mailbox_folder_permission(ctx: Ctx, p: Params) -> Result:
    """Changes the entry in place. [doc: set-mailboxfolderpermission] -SendNotificationToUser (either value)
    resets SharingPermissionFlags to None; [uncertain] unless the same call names SharingPermissionFlags."""
    folder = _folder_arg(ctx, p)
    seq, _, name = _folder_user(ctx, p)
    entry = folders.find_entry(ctx.conn, folder, seq)
    if entry is None:
        raise folders.missing_error(name)
    rights, flags = _access(p, folder)
    if flags is None:
        keep = rights == folders.ROLES["Editor"] and not p.has("SendNotificationToUser")
        flags = entry.flags if keep else ()
    folders.check_flags(folder, rights, flags)
    if (rights, flags) == (entry.rights, entry.flags):
        return Result(warnings=[NO_CHANGE.format(p.require("Identity"))], target=folder.mailbox)
    folders.write(ctx.conn, folder, seq, rights, flags)
    return Result(target=folder.mailbox)


def remove_mailbox_folder_permission(ctx: Ctx, p: Params) -> Result:
    """All of one user's rights on the folder; the Default and Anonymous entries can only be Set."""
    folder = _folder_arg(ctx, p)
    seq, _, name = _folder_user(ctx, p)
    if seq in folders.SPECIAL:
        # [uncertain] exception type and text: the entries exist on every folder and cannot be removed.
        raise CmdletError(400, "Microsoft.Exchange.Management.StoreTasks.CannotRemoveSpecialUserException",
                          f"The {name} permission entry can't be removed. Use Set-MailboxFolderPermission to "
                          "change its access rights.")
    if folders.find_entry(ctx.conn, folder, seq) is None:
        raise folders.missing_error(name)
    folders.delete(ctx.conn, folder, seq)
    return Result(target=folder.mailbox)


# ---------------------------------------------------------------- audit log
# Search-AdminAuditLog and New-AdminAuditLogSearch were retired in Exchange Online on 2024-09-15
# (aka.ms/AdminAuditCmdletBlog): the service no longer has them, so the local tenant answers them as any cmdlet
# it does not have (a non-JSON 403, wire reference A). Admin actions are in the unified audit log
# (graph/auditlog.py: ExchangeAdmin records, searched through the Graph audit log query API).


def get_accepted_domain(ctx: Ctx, p: Params) -> Result:
    identity = p.string("Identity")
    domains = [d for d in ctx.tenant.accepted_domains if identity is None or d == identity.lower()]
    if identity is not None and not domains:
        raise DirectoryError(DirectoryError.NOT_FOUND, identity)
    return Result(rows=[render.accepted_domain(d, ctx.tenant) for d in domains])


def _cmdlet(name: str, run: Handler, params: str, mandatory: tuple[str, ...] = (), write: bool = False,
            result_size_max: int | None = None) -> Cmdlet:
    return Cmdlet(name, run, frozenset(params.lower().split()), mandatory, write, result_size_max)


_PERM = "Identity User AccessRights InheritanceType Deny"
_FOLDER_PERM = "Identity User AccessRights SharingPermissionFlags SendNotificationToUser"
CMDLETS: dict[str, Cmdlet] = {c.name.lower(): c for c in (
    _cmdlet("Get-Mailbox", get_mailbox, "Identity RecipientTypeDetails ResultSize SoftDeletedMailbox "
            "IncludeGrantSendOnBehalfToWithDisplayNames"),
    _cmdlet("New-Mailbox", new_mailbox, "Shared Name DisplayName PrimarySmtpAddress Alias", ("Name",), True),
    _cmdlet("Set-Mailbox", set_mailbox, "Identity DisplayName EmailAddresses GrantSendOnBehalfTo "
            + " ".join(models.MAILBOX_FLAGS) + " " + " ".join(models.AUDIT_VALID) + " "
            + " ".join(models.FORWARDING) + " "
            + " ".join(models.CUSTOM_ATTRIBUTES), ("Identity",), True),
    _cmdlet("Remove-Mailbox", remove_mailbox, "Identity PermanentlyDelete", ("Identity",), True),
    _cmdlet("New-MailContact", _new_mail_recipient("MailContact"), "Name DisplayName ExternalEmailAddress Alias",
            ("Name", "ExternalEmailAddress"), True),
    # Password is a SecureString on the wire (RSA-encrypted by the module); the local tenant takes any value.
    _cmdlet("New-MailUser", _new_mail_recipient("MailUser"), "Name DisplayName ExternalEmailAddress Alias "
            "MicrosoftOnlineServicesID PrimarySmtpAddress Password", ("Name", "ExternalEmailAddress"), True),
    _cmdlet("Get-CASMailbox", get_cas_mailbox, "Identity ResultSize"),
    _cmdlet("New-InboxRule", new_inbox_rule, "Mailbox Name Enabled From SubjectContainsWords StopProcessingRules "
            + " ".join(models.FORWARD_ACTIONS), ("Name",), True),
    _cmdlet("Get-InboxRule", get_inbox_rule, "Mailbox Identity IncludeHidden ResultSize"),
    _cmdlet("Enable-InboxRule", _switch_inbox_rule(True), "Identity Mailbox AlwaysDeleteOutlookRulesBlob",
            ("Identity",), True),
    _cmdlet("Disable-InboxRule", _switch_inbox_rule(False), "Identity Mailbox AlwaysDeleteOutlookRulesBlob",
            ("Identity",), True),
    _cmdlet("Remove-InboxRule", remove_inbox_rule, "Identity Mailbox AlwaysDeleteOutlookRulesBlob",
            ("Identity",), True),
    _cmdlet("Set-CASMailbox", set_cas_mailbox, "Identity " + " ".join(models.CAS_FLAGS) + " "
            + models.SMTP_AUTH_DISABLED, ("Identity",), True),
    _cmdlet("Get-Recipient", get_recipient, "Identity RecipientTypeDetails ResultSize"),
    _cmdlet("Get-MailboxPermission", get_mailbox_permission, "Identity User ResultSize", ("Identity",)),
    _cmdlet("Add-MailboxPermission", add_mailbox_permission, _PERM + " AutoMapping",
            ("Identity", "User", "AccessRights"), True),
    _cmdlet("Remove-MailboxPermission", remove_mailbox_permission, _PERM + " BypassMasterAccountSid",
            ("Identity", "User", "AccessRights"), True),
    _cmdlet("Get-RecipientPermission", get_recipient_permission, "Identity Trustee AccessRights ResultSize"),
    _cmdlet("Add-RecipientPermission", add_recipient_permission, "Identity Trustee AccessRights",
            ("Identity", "Trustee", "AccessRights"), True),
    _cmdlet("Remove-RecipientPermission", remove_recipient_permission, "Identity Trustee AccessRights",
            ("Identity", "Trustee", "AccessRights"), True),
    _cmdlet("Get-AcceptedDomain", get_accepted_domain, "Identity ResultSize"),
    _cmdlet("Set-MailboxRegionalConfiguration", set_mailbox_regional_configuration,
            "Identity Language LocalizeDefaultFolderName DateFormat TimeFormat TimeZone", ("Identity",), True),
    _cmdlet("Get-MailboxFolderStatistics", get_mailbox_folder_statistics, "Identity FolderScope ResultSize",
            ("Identity",)),
    _cmdlet("Get-MailboxFolderPermission", get_mailbox_folder_permission, "Identity User ResultSize", ("Identity",)),
    _cmdlet("Add-MailboxFolderPermission", add_mailbox_folder_permission, _FOLDER_PERM,
            ("Identity", "User", "AccessRights"), True),
    _cmdlet("Set-MailboxFolderPermission", set_mailbox_folder_permission, _FOLDER_PERM,
            ("Identity", "User", "AccessRights"), True),
    _cmdlet("Remove-MailboxFolderPermission", remove_mailbox_folder_permission,
            "Identity User SendNotificationToUser ResetDelegateUserCollection", ("Identity", "User"), True),
)}


def not_found_error(identity: str) -> CmdletError:
    return CmdletError(
        404, "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        f"The operation couldn't be performed because object '{identity}' couldn't be found on "
        "'EMUPR01A001DC001.EMUPR01A001.PROD.OUTLOOK.COM'.", "Ex6F9304",
    )


def as_cmdlet_error(err: DirectoryError) -> CmdletError:
    """Map a directory failure to the Exchange exception a real tenant reports (A.6)."""
    if err.reason == DirectoryError.NOT_FOUND:
        return not_found_error(err.text)
    if err.reason == DirectoryError.AMBIGUOUS:
        return CmdletError(500, "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
                           f"The operation couldn't be performed because '{err.text}' matches multiple entries.")
    if err.reason == DirectoryError.PROXY_EXISTS:
        # [uncertain] error-id prefix and namespace; clients match on the type name.
        return CmdletError(400, "Microsoft.Exchange.Configuration.ObjectModel.ProxyAddressExistsException", err.text)
    if err.reason in (DirectoryError.NAME_EXISTS, DirectoryError.UPN_EXISTS):
        return CmdletError(400, "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException", err.text)
    return CmdletError(400, "Microsoft.Exchange.Data.DataValidationException", err.text)
