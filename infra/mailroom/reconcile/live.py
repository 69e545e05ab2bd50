"""The live side of a mailbox: what the tenant has, as a MailboxSpec in the file's spelling.

``live_spec`` is pure and shared by the one-mailbox read (provider read and
update) and the bulk scan (drift), so both see a mailbox the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import access_rights, is_internal, managed_addresses, permission_kind, smtp_key
from mailroom.core.model import Mailbox
from mailroom.core.rights import GET_CAS, MailboxSetting, PermissionPair, UserProperty
from mailroom.core.spec import FolderGrant, Grant, MailboxSpec
from mailroom.core.textsafe import printable
from mailroom.errors import NotFound
from mailroom.m365.directory import Directory
from mailroom.m365.exchange import CmdletResult, ExchangeClient

SHARED = "SharedMailbox"
# An inbox rule's forwarding actions, and how a plan line says each (new-inboxrule).
RULE_ACTIONS = (("ForwardTo", "forwards to"), ("RedirectTo", "redirects to"),
                ("ForwardAsAttachmentTo", "forwards as attachment to"))
_RULE_TARGET = re.compile(r"\[(?:SMTP|smtp):([^\]]+)\]")
# How each is read: the rights table (cmdlet and field).
_MAILBOX, _MEMBER, _AUTOMAP, _SEND_AS, _SEND_ON_BEHALF, _ALIAS, _RULES, _FOLDER_READ = (
    rights.right(k) for k in ("mailbox", "member", "automap", "send_as", "send_on_behalf", "alias", "forward_rule",
                              "calendar_default"))


@dataclass
class LiveMailbox:
    spec: MailboxSpec
    identity: str  # what Exchange calls take: the mailbox Guid
    object_id: str  # its Entra user
    # canonical address key → how the tenant names that trustee (for Remove-* calls)
    trustees: dict[str, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)  # trustees that no longer resolve (deleted)
    kind: str = SHARED  # RecipientTypeDetails: mailroom manages SharedMailbox only
    # Read, never managed (so neither kept in a plan nor compared): explicit grants to deleted accounts as
    # (right, SID), which drift reports as stale access and import as a comment; and how many permission
    # rows of each other kind (self, inherited, deny, system) were skipped.
    orphans: list[tuple[str, str]] = field(default_factory=list)
    denied: list[tuple[str, str]] = field(default_factory=list)  # explicit Deny entries as (right, trustee)
    skipped: dict[str, int] = field(default_factory=dict)
    # folder key → how Exchange addresses the folder (``<mailbox>:<FolderId>``), for the folders read
    folder_ids: dict[str, str] = field(default_factory=dict)

    def refusal(self) -> str | None:
        """Why mailroom must not touch this mailbox (it belongs to a person, a room, ...), or None."""
        return refusal(self.spec.address, self.kind, self.spec.display_name)

    def to_dict(self) -> dict[str, Any]:
        """As a saved plan and the engine's provider keep it (JSON)."""
        return {"spec": self.spec.to_props(), "identity": self.identity, "object_id": self.object_id,
                "trustees": self.trustees, "unresolved": self.unresolved, "kind": self.kind,
                "folder_ids": self.folder_ids}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> LiveMailbox:
        return cls(MailboxSpec.from_props(doc["spec"]), str(doc["identity"]), str(doc["object_id"]),
                   {str(k): str(v) for k, v in dict(doc.get("trustees") or {}).items()},
                   [str(u) for u in doc.get("unresolved") or []], str(doc.get("kind") or SHARED),
                   folder_ids={str(k): str(v) for k, v in dict(doc.get("folder_ids") or {}).items()})


def recipient_kind(row: dict[str, Any]) -> str:
    """A Get-Mailbox row's RecipientTypeDetails; a row without one is never taken for a shared mailbox."""
    return str(row.get("RecipientTypeDetails") or "unknown recipient type")


def refusal(address: str, kind: str, display_name: str = "") -> str | None:
    """Why mailroom must not touch the mailbox ``address`` of type ``kind``, or None for a shared one."""
    if kind == SHARED:
        return None
    name = f' "{printable(display_name)}"' if display_name else ""
    return (f"{address} is a {printable(kind)}{name}, not a shared mailbox; mailroom manages "
            "shared mailboxes only and changes nothing on it")


def missing_folders(mb: Mailbox, live: LiveMailbox | None) -> str:
    """Why the plan of ``mb`` cannot be made, or "": a path folder (``folders: inbox/Reports``) the mailbox, as
    just read, does not have. Exchange lets no admin make a folder in another mailbox (New-MailboxFolder works on
    the caller's own only), so mailroom manages folders that exist and never skips one silently."""
    paths = [key for key, _ in mb.folders if rights.is_path(key)]
    missing = [key for key in paths if live is None or key not in live.folder_ids]
    if not missing:
        return ""
    origin = mb.origin
    where = [f"{origin.file}:{origin.folder_line(key)}: " if origin else "" for key in missing]
    why = "it does not exist yet" if live is None else "Get-MailboxFolderStatistics lists no such folder"
    return "; ".join(
        f"{at}{mb.address}: folders: {key}: the mailbox has no folder {key} ({why}). mailroom sets the permissions "
        "of a folder that exists and cannot create one in another mailbox: have someone with access to the "
        "mailbox create it in Outlook, or fix the path" for at, key in zip(where, missing, strict=True))


def live_spec(mailbox: dict[str, Any], full_access: Sequence[dict[str, Any]], send_as: Sequence[dict[str, Any]],
              account_enabled: bool | None, directory: Directory, written: dict[str, str],
              domains: Sequence[str], automap: Mapping[str, bool] | None = None,
              cas: Mapping[str, Any] | None = None,
              rules: Sequence[Mapping[str, Any]] | None = None,
              folders: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
              folder_ids: Mapping[str, str] | None = None) -> LiveMailbox:
    """``automap``: the last known AutoMapping per member (address key), used when the row has none.
    ``folders``: per folder key (calendar), its Get-MailboxFolderPermission rows, and ``folder_ids`` how each
    is addressed; folders not read are not compared.
    ``cas``: the mailbox's Get-CASMailbox row (its protocols); None: not read, taken as Exchange leaves a
    new mailbox (every protocol on). ``rules``: its Get-InboxRule rows (hidden ones included); None: not read."""
    primary = str(mailbox.get(_MAILBOX.read.field) or "")
    trustees: dict[str, str] = {}
    unresolved: list[str] = []

    def canon(identity: str) -> str:
        address = directory.canonical(identity, written)
        if directory.lookup(identity) is None:
            unresolved.append(identity)
        trustees[smtp_key(address)] = identity
        return address

    known = automap or {}
    orphans: list[tuple[str, str]] = []
    denied: list[tuple[str, str]] = []
    skipped: dict[str, int] = {}
    for right, rows in ((_MEMBER, full_access), (_SEND_AS, send_as)):
        holding = {id(row) for row in _of_right(rows, right)}
        for row in rows:
            kind = permission_kind(row)
            if kind in ("orphan", "deny") and id(row) in holding:
                (orphans if kind == "orphan" else denied).append((right.key, str(row[right.read.field])))
            if kind != "grant":
                skipped[kind] = skipped.get(kind, 0) + 1
    members = []
    for row in _granted(full_access, _MEMBER):
        # Exchange Online does not report AutoMapping in Get-MailboxPermission (it is the
        # msExchDelegateListLink attribute, which the admin API does not expose), so a grant's
        # AutoMapping is the one last set through mailroom; a row that does carry it wins.
        address = canon(str(row[_MEMBER.read.field]))
        value = row.get(_AUTOMAP.read.field, known.get(smtp_key(address), True))  # True: Exchange's default
        members.append(Grant(address, bool(value)))
    senders = [canon(str(row[_SEND_AS.read.field])) for row in _granted(send_as, _SEND_AS)]
    on_behalf = [canon(str(name)) for name in mailbox.get(_SEND_ON_BEHALF.read.field) or ()]
    aliases = [a for k, a in managed_addresses(mailbox.get(_ALIAS.read.field) or (), domains).items()
               if k != smtp_key(primary)]
    settings = {r.attr: _setting(r, cas or {} if r.read.source == GET_CAS else mailbox, account_enabled)
                for r in rights.SETTINGS}
    for r in rights.SETTINGS:
        if r.person and settings[r.attr]:  # a recipient (ForwardingAddress): in the file's spelling
            settings[r.attr] = canon(settings[r.attr])
    entries = [g for folder, rows in sorted((folders or {}).items())
               for g in folder_grants(folder, rows, canon, orphans)]
    spec = MailboxSpec(
        address=primary,
        forward_rules=tuple(forward_rules(rules or (), directory, domains)),
        folder_grants=tuple(sorted(entries, key=lambda g: (g.folder, not g.special, smtp_key(g.person)))),
        aliases=tuple(sorted(aliases, key=smtp_key)),
        members=tuple(sorted(members, key=lambda g: smtp_key(g.address))),
        send_as=tuple(sorted(senders, key=smtp_key)),
        send_on_behalf=tuple(sorted(on_behalf, key=smtp_key)),
        domains=tuple(domains),
        **settings,
    )
    return LiveMailbox(spec, str(mailbox.get("Guid") or mailbox.get("ExchangeObjectId") or primary),
                       str(mailbox.get("ExternalDirectoryObjectId") or ""), trustees, unresolved,
                       recipient_kind(mailbox), sorted(orphans), sorted(denied), skipped, dict(folder_ids or {}))


def folder_grants(folder: str, rows: Sequence[Mapping[str, Any]], canon: Any,
                  orphans: list[tuple[str, str]] | None = None) -> list[FolderGrant]:
    """A folder's Get-MailboxFolderPermission rows as entries: ``User`` is "Default", "Anonymous" or the display
    name of a person or group (``canon`` turns it into the file's address); AccessRights one role, or
    individual rights that make none (kept as ``custom:<rights>``, which no file role equals). An entry of a
    deleted account (``NT:<SID>``, an orphaned MAPI permission) is never managed, as an orphaned Full Access
    entry is not: it goes to ``orphans`` as (right, SID), for drift's stale access and import's note."""
    out = []
    for row in rows:
        user = str(row.get(_FOLDER_READ.read.field) or "")
        if not user:
            continue
        if user.upper().startswith("NT:"):
            granted_role = rights.FILE_ROLE.get(str((row.get("AccessRights") or ["custom"])[0]).casefold(), "")
            family = rights.folder_family(folder)
            key = f"{family}_{granted_role}" if f"{family}_{granted_role}" in rights.BY_KEY else f"{family}_default"
            if orphans is not None:
                orphans.append((key, user[3:]))
            continue
        granted = [str(a) for a in row.get("AccessRights") or ()]
        role = rights.FILE_ROLE.get(granted[0].casefold()) if len(granted) == 1 else None
        flags = str(row.get("SharingPermissionFlags") or "").casefold()
        value = rights.access(role, "delegate" in flags, "canviewprivateitems" in flags) if role else \
            "custom:" + ",".join(sorted(granted))
        person = user if user in rights.SPECIAL_ENTRIES else canon(user)
        out.append(FolderGrant(folder, person, value))
    return out


def _scope(folder: str) -> str:
    """The FolderScope that lists ``folder``: its type's (a scope holds that folder and its subfolders); a path
    under the top of the information store needs All."""
    if rights.is_path(folder):
        return rights.PATH_ROOTS[folder.partition(rights.PATH_SEP)[0]] or "All"
    return rights.FOLDERS[folder]


def folder_stats_call(identity: str, folders: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """Get-MailboxFolderStatistics of the folders ``folders`` name: their one scope if they share it, else All.
    (Get-MailboxFolder would see only the caller's own mailbox.)"""
    scopes = {_scope(f) for f in folders}
    return "Get-MailboxFolderStatistics", {"Identity": identity, "FolderScope": scopes.pop() if len(scopes) == 1
                                           else "All"}


def _well_known(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """FolderType → the localized name of that type's root folder (of several, the one nearest the top)."""
    out: dict[str, tuple[int, str]] = {}
    for r in rows:
        kind, path = str(r.get("FolderType") or ""), str(r.get("FolderPath") or "")
        if kind and kind != rights.USER_CREATED and (kind not in out or path.count("/") < out[kind][0]):
            out[kind] = (path.count("/"), str(r.get("Name") or path.rsplit("/", 1)[-1]))
    return {k: name for k, (_, name) in out.items()}


def folder_addresses(identity: str, rows: Sequence[Mapping[str, Any]], folders: Sequence[str]) -> dict[str, str]:
    """Each folder as Exchange addresses it, ``<mailbox>:<FolderId>``. A well-known one is found by its
    FolderType, never by its name (a German mailbox's calendar is "Kalender"); of several folders of a type, the
    root one (CIPP #467). A path folder (``inbox/Reports``) is the "User Created" one whose FolderPath is the
    path under its parent's localized name (/Posteingang/Reports). A folder not found is left out."""
    out = {}
    names = _well_known(rows)
    for folder in folders:
        if rights.is_path(folder):
            kind = rights.PATH_ROOTS[folder.partition(rights.PATH_SEP)[0]]
            if kind and kind not in names:
                continue
            want = rights.folder_path(folder, names).casefold()
            found = [r for r in rows if str(r.get("FolderType") or "") == rights.USER_CREATED and r.get("FolderId")
                     and str(r.get("FolderPath") or "").casefold() == want]
        else:
            found = [r for r in rows if str(r.get("FolderType") or "") == rights.FOLDERS[folder]
                     and r.get("FolderId")]
        if found:
            root = min(found, key=lambda r: str(r.get("FolderPath") or "").count("/"))
            out[folder] = f"{identity}:{root['FolderId']}"
    return out


def user_folders(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The path (``inbox/Reports``) of every folder a user made under a folder a path may start at (rights.
    PATH_ROOTS), from Get-MailboxFolderStatistics -FolderScope All: what import reads to write them back."""
    names = _well_known(rows)
    under = {names[kind].casefold(): key for key, kind in rights.PATH_ROOTS.items() if kind and kind in names}
    others = {name.casefold() for name in names.values()}
    out = []
    for r in rows:
        if str(r.get("FolderType") or "") != rights.USER_CREATED:
            continue
        parts = str(r.get("FolderPath") or "").strip("/").split("/")
        if len(parts) > 1 and parts[0].casefold() in under:
            out.append(rights.PATH_SEP.join([under[parts[0].casefold()], *parts[1:]]))
        elif parts[0] and parts[0].casefold() not in others:  # under the top of the information store
            out.append(rights.PATH_SEP.join(["root", *parts]))
    return out


def folder_perms_call(folder: str) -> tuple[str, dict[str, Any]]:
    return _FOLDER_READ.read.source, {"Identity": folder}


def rule_target(value: str) -> str:
    """A forwarding action's recipient as Get-InboxRule shows it (``"Name" [SMTP:x@y]``) → ``x@y``."""
    found = _RULE_TARGET.search(value)
    return (found.group(1) if found else value).strip()


def forward_rules(rows: Sequence[Mapping[str, Any]], directory: Directory, domains: Sequence[str]) -> list[str]:
    """The enabled rules that send mail elsewhere, each as ``<RuleIdentity>: "name" <action> <address>
    (internal|external)``: what the plan shows and apply's reviewed plan holds."""
    out = []
    for row in rows:
        if row.get("Enabled") is False:
            continue
        sends = []
        for field_name, verb in RULE_ACTIONS:
            for value in row.get(field_name) or ():
                address = rule_target(str(value))
                found = directory.lookup(address)
                where = "internal" if is_internal(address, found.kind if found else None, domains) else "external"
                sends.append(f"{verb} {address} ({where})")
        if sends:
            name = printable(str(row.get("Name") or ""))
            out.append(f'{row.get("RuleIdentity") or row.get("Identity")}: "{name}" {", ".join(sends)}')
    return sorted(out)


def _of_right(rows: Sequence[dict[str, Any]], right: rights.Right) -> list[dict[str, Any]]:
    """The rows of a permission list that carry ``right`` (FullAccess, SendAs), whoever they name."""
    assert isinstance(right.write, PermissionPair)
    access = right.write.access.casefold()
    return [row for row in rows if access in access_rights(row)]


def _granted(rows: Sequence[dict[str, Any]], right: rights.Right) -> list[dict[str, Any]]:
    """The rows of a permission list that grant ``right``: explicit, allowed, not a system principal."""
    return [row for row in _of_right(rows, right) if permission_kind(row) == "grant"]


def _setting(right: rights.Right, mailbox: Mapping[str, Any], account_enabled: bool | None) -> Any:
    """A setting as the tenant reports it; a missing field means what the table says it means."""
    if isinstance(right.write, UserProperty):  # read from Graph, not from Get-Mailbox
        return right.read.absent if account_enabled is None else right.write.value(account_enabled)
    value = mailbox.get(right.read.field, right.read.absent)
    if isinstance(right.read.absent, str):
        return right.write.value(value) if isinstance(right.write, MailboxSetting) and right.write.proxy \
            else str(value or "")
    return right.write.value(value) if isinstance(right.write, MailboxSetting) else bool(value)


async def read_mailbox(exchange: ExchangeClient, graph: Any, directory: Directory, address: str,
                       people: Sequence[str], domains: Sequence[str],
                       automap: Mapping[str, bool] | None = None, rules: bool = False,
                       folders: Sequence[str] = ()) -> LiveMailbox | None:
    """Read one mailbox (one $batch for mailbox, both permission lists and its protocols, and with ``rules``
    its inbox rules; one Graph GET). ``folders``: the folders whose permissions to read too (their statistics
    in that $batch, then one more $batch of their permissions)."""
    assert isinstance(_SEND_AS.write, PermissionPair)
    mbx, fa, sa, cas, *inbox = await exchange.batch([
        (_MAILBOX.read.source, {"Identity": address}),
        (_MEMBER.read.source, {"Identity": address}),
        (_SEND_AS.read.source, {"Identity": address, "AccessRights": _SEND_AS.write.access}),
        (GET_CAS, {"Identity": address}),
        *([rules_call(address)] if rules else []),
        *([folder_stats_call(address, folders)] if folders else []),
    ])
    stats = inbox.pop() if folders else None
    if isinstance(mbx, NotFound) or (isinstance(mbx, CmdletResult) and not mbx.value):
        return None
    for result in (mbx, fa, sa, cas, *inbox):
        if not isinstance(result, CmdletResult):
            raise result
    assert isinstance(mbx, CmdletResult) and isinstance(fa, CmdletResult) and isinstance(sa, CmdletResult)
    assert isinstance(cas, CmdletResult)
    row = mbx.value[0]
    # Only the people of real grants are looked up: the inherited entries name Exchange's own groups.
    names = [str(r.get(_MEMBER.read.field)) for r in _granted(fa.value, _MEMBER)]
    names += [str(r.get(_SEND_AS.read.field)) for r in _granted(sa.value, _SEND_AS)]
    names += [str(n) for n in row.get(_SEND_ON_BEHALF.read.field) or ()]
    names += [str(row[r.read.field]) for r in rights.SETTINGS if r.person and row.get(r.read.field)]
    rule_rows = [r for result in inbox if isinstance(result, CmdletResult) for r in result.value]
    names += [rule_target(str(v)) for r in rule_rows for f, _ in RULE_ACTIONS for v in r.get(f) or ()]
    ids: dict[str, str] = {}
    folder_rows: dict[str, list[dict[str, Any]]] = {}
    if isinstance(stats, CmdletResult):
        ids = folder_addresses(address, stats.value, folders)
        answers = await exchange.batch([folder_perms_call(f) for f in ids.values()])
        for folder, answer in zip(ids, answers, strict=True):
            if not isinstance(answer, CmdletResult):
                raise answer
            folder_rows[folder] = answer.value
    elif stats is not None:
        raise stats
    await directory.resolve(list(people) + names)
    await resolve_folder_people(directory, folder_rows.values())
    user = await graph.get_user(str(row.get("ExternalDirectoryObjectId"))) if row.get("ExternalDirectoryObjectId") \
        else None
    enabled = None if user is None else bool(user.get("accountEnabled"))
    return live_spec(row, fa.value, sa.value, enabled, directory, directory.written_by_id(people), domains, automap,
                     cas.value[0] if cas.value else None, rule_rows, folder_rows if folders else None, ids)


async def resolve_folder_people(directory: Directory, tables: Any) -> None:
    """Folder entries name people by display name, which Get-Recipient -Identity does not take: one the file's
    people did not already make known is found in the full recipient list (listed once per run)."""
    shown = {str(r.get(_FOLDER_READ.read.field) or "") for rows in tables for r in rows}
    unknown = [n for n in shown if n and n not in rights.SPECIAL_ENTRIES and not n.startswith("NT:")
               and directory.lookup(n) is None]
    if unknown and not directory.complete:
        await directory.preload()


def rules_call(identity: str) -> tuple[str, dict[str, Any]]:
    """Get-InboxRule of one mailbox, hidden rules included (what a MAPI client or an attacker left)."""
    return _RULES.read.source, {"Mailbox": identity, "IncludeHidden": True}
