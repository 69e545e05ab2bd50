"""Mailbox folders and their permissions: Get-MailboxFolderStatistics, Get-/Add-/Set-/Remove-MailboxFolderPermission.

Sources: add-/set-/remove-/get-mailboxfolderpermission and get-mailboxfolderstatistics (exchange-features.md §1).
What the emulator models, and why:

- Every mailbox has its well-known folders, named in the mailbox's language: a German mailbox's calendar is
  "Kalender", so ``mbx:\\Calendar`` is not found there (the locale pitfall CIPP #3723 and M365DSC #4056 hit).
  The language comes from Set-MailboxRegionalConfiguration -LocalizeDefaultFolderName (or the seed's
  ``language``); FolderType is the English-only internal enum, and FolderId a stable id of the folder.
- A folder is addressed as ``<mailbox>:\\<localized name>`` or ``<mailbox>:<FolderId>``.
- The Default and Anonymous entries always exist and can only be Set (Remove and Add are refused); a new
  mailbox's calendar gives Default AvailabilityOnly, every other folder None ([infer] what Outlook shows
  for a new Exchange Online mailbox; Anonymous None everywhere).
- SharingPermissionFlags (Delegate, CanViewPrivateItems) only on a calendar folder and only with Editor;
  CanViewPrivateItems needs Delegate. On Set, -SendNotificationToUser resets the flags to None (the documented
  pitfall); AccessRights other than Editor drop them too.
- Folders a user made (``POST /_emulator/mapi/folders``, as Outlook makes them: New-MailboxFolder works only on
  the caller's own mailbox, so an admin cannot make one in a shared mailbox) sit under a well-known folder or at
  the top of the information store; FolderType "User Created", FolderPath ``/Posteingang/Reports`` (``/``
  separators, localized parent names), addressed as ``mbx:\\Posteingang\\Reports`` or by FolderId. Their
  permissions are those of any non-calendar folder ([doc: get-mailboxfolderstatistics] FolderType
  "User Created"). A name with ``\\`` or ``/`` is refused ([simplified]: Exchange shows ``/`` in a name as
  U+F8FF in FolderPath).
- [uncertain] exception type names and texts that the documentation does not quote are marked where raised.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from localtenant.directory import DirObject, get_many
from localtenant.exchange.models import CmdletError
from localtenant.exchange.params import binding_error

# FolderType → (ContainerClass, name per language). [doc: get-mailboxfolderstatistics] FolderType is not
# localized; Name and FolderPath are.
WELL_KNOWN: dict[str, tuple[str, dict[str, str]]] = {
    "Inbox": ("IPF.Note", {"en": "Inbox", "de": "Posteingang"}),
    "Calendar": ("IPF.Appointment", {"en": "Calendar", "de": "Kalender"}),
    "Contacts": ("IPF.Contact", {"en": "Contacts", "de": "Kontakte"}),
    "SentItems": ("IPF.Note", {"en": "Sent Items", "de": "Gesendete Elemente"}),
    "DeletedItems": ("IPF.Note", {"en": "Deleted Items", "de": "Gelöschte Elemente"}),
    "Drafts": ("IPF.Note", {"en": "Drafts", "de": "Entwürfe"}),
    "Tasks": ("IPF.Task", {"en": "Tasks", "de": "Aufgaben"}),
    "Notes": ("IPF.StickyNote", {"en": "Notes", "de": "Notizen"}),
}
LANGUAGES = {"en": "en-US", "de": "de-DE"}
# [doc: get-mailboxfolderstatistics -FolderScope] ElcFolderType values; All lists every folder.
FOLDER_SCOPES = ("All", "Calendar", "Contacts", "DeletedItems", "Drafts", "Inbox", "JunkEmail", "Journal",
                 "LegacyArchiveJournals", "ManagedCustomFolder", "NonIpmRoot", "Notes", "Outbox", "Personal",
                 "RecoverableItems", "RssSubscriptions", "SentItems", "SyncIssues", "Tasks")

# [doc: add-mailboxfolderpermission -AccessRights] the individual rights and the roles made of them.
RIGHTS = ("None", "CreateItems", "CreateSubfolders", "DeleteAllItems", "DeleteOwnedItems", "EditAllItems",
          "EditOwnedItems", "FolderContact", "FolderOwner", "FolderVisible", "ReadItems")
_EDITOR = frozenset({"CreateItems", "DeleteAllItems", "DeleteOwnedItems", "EditAllItems", "EditOwnedItems",
                     "FolderVisible", "ReadItems"})
ROLES: dict[str, frozenset[str]] = {
    "Owner": _EDITOR | {"CreateSubfolders", "FolderContact", "FolderOwner"},
    "PublishingEditor": _EDITOR | {"CreateSubfolders"},
    "Editor": _EDITOR,
    "PublishingAuthor": frozenset({"CreateItems", "CreateSubfolders", "DeleteOwnedItems", "EditOwnedItems",
                                   "FolderVisible", "ReadItems"}),
    "Author": frozenset({"CreateItems", "DeleteOwnedItems", "EditOwnedItems", "FolderVisible", "ReadItems"}),
    "NonEditingAuthor": frozenset({"CreateItems", "DeleteOwnedItems", "FolderVisible", "ReadItems"}),
    "Reviewer": frozenset({"FolderVisible", "ReadItems"}),
    "Contributor": frozenset({"CreateItems", "FolderVisible"}),
    # Calendar folders only: free/busy (and subject and location) without reading items.
    "AvailabilityOnly": frozenset({"AvailabilityOnly"}),
    "LimitedDetails": frozenset({"LimitedDetails"}),
    "None": frozenset(),
}
CALENDAR_ONLY = ("AvailabilityOnly", "LimitedDetails")
FLAGS = ("None", "Delegate", "CanViewPrivateItems")
# [doc: add-mailboxfolderpermission -SendNotificationToUser] valid only with these.
NOTIFY_ROLES = ("AvailabilityOnly", "LimitedDetails", "Reviewer", "Editor")
DEFAULT, ANONYMOUS = 0, -1
SPECIAL = {DEFAULT: "Default", ANONYMOUS: "Anonymous"}

_STORE = "Microsoft.Exchange.Management.StoreTasks."
NOT_FOUND_TYPE = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"


USER_CREATED = "User Created"  # [doc: get-mailboxfolderstatistics] the FolderType of a folder a user made
ROOT = ""  # the top of the information store, as a user-created folder's ``top``


@dataclass(frozen=True)
class Folder:
    mailbox: DirObject
    folder_type: str
    name: str
    folder_id: str
    top: str = ROOT  # a user-created folder: the FolderType of the well-known folder it is under (ROOT: none)
    path: tuple[str, ...] = ()  # its names from the top of the information store, localized parents included

    @property
    def is_calendar(self) -> bool:
        """A calendar folder: the calendar, or one a user made under it (a secondary calendar, IPF.Appointment)."""
        return self.container_class == WELL_KNOWN["Calendar"][0]

    @property
    def container_class(self) -> str:
        return WELL_KNOWN[self.folder_type if self.folder_type in WELL_KNOWN else self.top or "Inbox"][0]

    @property
    def names(self) -> tuple[str, ...]:
        return self.path or (self.name,)

    @property
    def perm_key(self) -> str:
        """The folder's key in folder_perms: a well-known folder's type, a user-created one's id."""
        return self.folder_id if self.folder_type == USER_CREATED else self.folder_type


@dataclass(frozen=True)
class Entry:
    trustee_seq: int  # DEFAULT, ANONYMOUS or the trustee's seq
    trustee: DirObject | None
    rights: frozenset[str]
    flags: tuple[str, ...]


def language(mailbox: DirObject) -> str:
    """The two-letter language its folders are named in ("en" unless localized)."""
    lang = str(mailbox.props.get("Language") or "en-US").partition("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def folders(mailbox: DirObject, conn: sqlite3.Connection | None = None) -> list[Folder]:
    """The well-known folders, then (with ``conn``) the ones users made, parents before children."""
    lang = language(mailbox)
    out = [Folder(mailbox, kind, names[lang], folder_id(mailbox, kind)) for kind, (_, names) in WELL_KNOWN.items()]
    if conn is not None:
        rows = conn.execute("SELECT folder_id, top, names FROM mailbox_folders WHERE mailbox_seq = ? ORDER BY seq",
                            (mailbox.seq,)).fetchall()
        for fid, top, names in rows:
            parts = tuple(str(names).split("\\"))
            head = (WELL_KNOWN[top][1][lang],) if top else ()
            out.append(Folder(mailbox, USER_CREATED, parts[-1], str(fid), str(top), head + parts))
    return out


def create_folder(conn: sqlite3.Connection, mailbox: DirObject, path: str) -> Folder:
    """A folder a user makes (Outlook, not a cmdlet). ``path``: ``/``-separated; its first name is a well-known
    folder by its localized name or its FolderType (``Posteingang/Reports``, ``Inbox/Reports``), else the folder
    is made at the top of the information store. The parent must exist; the name must be new under it."""
    parts = [p.strip() for p in path.strip("/").split("/")]
    if not parts or any(not p or "\\" in p for p in parts):
        raise ValueError(f"{path!r} is not a folder path (names separated by /, none empty, no backslash)")
    lang = language(mailbox)
    top = next((kind for kind, (_, names) in WELL_KNOWN.items()
                if parts[0].casefold() in (kind.casefold(), names[lang].casefold())), ROOT)
    below = parts[1:] if top else parts
    if not below:
        raise ValueError(f"{path!r} is a well-known folder, which every mailbox has")
    existing = {(f.top, tuple(n.casefold() for n in f.path[1 if f.top else 0:]))
                for f in folders(mailbox, conn) if f.folder_type == USER_CREATED}
    if len(below) > 1 and (top, tuple(n.casefold() for n in below[:-1])) not in existing:
        raise ValueError(f"the parent of {path!r} does not exist")
    if (top, tuple(n.casefold() for n in below)) in existing:
        raise ValueError(f"{path!r} already exists")
    fid = folder_id(mailbox, f"{top}|{'/'.join(below)}")
    conn.execute("INSERT INTO mailbox_folders(mailbox_seq, folder_id, top, names) VALUES (?, ?, ?, ?)",
                 (mailbox.seq, fid, top, "\\".join(below)))
    return next(f for f in folders(mailbox, conn) if f.folder_id == fid)


def folder_id(mailbox: DirObject, kind: str) -> str:
    """A stable, Exchange-shaped FolderId (base64 of an entry id; real ones start "LgAAAA")."""
    digest = hashlib.sha256(f"{mailbox.guid}|{kind}".encode()).digest()
    return base64.b64encode(b"\x2e\x00\x00\x00\x00" + digest + b"\x01\x00").decode()


def not_found(identity: str) -> CmdletError:
    """[doc: exchange-features.md §1] ``upn:\\Calendar`` on a mailbox in another language is not found."""
    return CmdletError(404, NOT_FOUND_TYPE, f"The operation couldn't be performed because '{identity}' couldn't "
                                            "be found.", "Ex6F9304")


def find_folder(mailbox: DirObject, identity: str, suffix: str, conn: sqlite3.Connection | None = None) -> Folder:
    """``suffix``: what follows ``<mailbox>:`` — ``\\Name[\\Sub]`` (localized names) or a FolderId."""
    text = suffix.strip()
    for folder in folders(mailbox, conn):
        if text.startswith("\\") or text.startswith("/"):
            wanted = [p.casefold() for p in text[1:].rstrip("\\/").replace("/", "\\").split("\\")]
            if wanted == [n.casefold() for n in folder.names]:
                return folder
        elif text == folder.folder_id:
            return folder
    raise not_found(identity)


def default_rights(folder: Folder, trustee_seq: int) -> frozenset[str]:
    return ROLES["AvailabilityOnly"] if folder.is_calendar and trustee_seq == DEFAULT else ROLES["None"]


def entries(conn: sqlite3.Connection, folder: Folder) -> list[Entry]:
    """Default and Anonymous first, then every other entry (by trustee)."""
    rows = conn.execute("SELECT trustee_seq, rights, flags FROM folder_perms WHERE mailbox_seq = ? AND folder = ?",
                        (folder.mailbox.seq, folder.perm_key)).fetchall()
    stored = {int(r[0]): (_split(r[1]), tuple(f for f in str(r[2]).split(",") if f)) for r in rows}
    people = get_many(conn, [s for s in stored if s > 0])
    special = {s: stored.get(s, (default_rights(folder, s), ())) for s in (DEFAULT, ANONYMOUS)}
    out = [Entry(s, None, rights, flags) for s, (rights, flags) in special.items()]
    out += [Entry(s, people[s], rights, flags) for s, (rights, flags) in sorted(stored.items()) if s > 0]
    return out


def _split(text: str) -> frozenset[str]:
    return frozenset(p for p in str(text).split(",") if p)


def access_rights(rights: frozenset[str]) -> list[str]:
    """How Get-MailboxFolderPermission shows a set of rights: the role's name when they make one, else each."""
    role = next((name for name, held in ROLES.items() if held == rights), None)
    return [role] if role else sorted(rights, key=RIGHTS.index)


def parse_rights(values: Sequence[str], folder: Folder) -> frozenset[str]:
    """AccessRights → the set of individual rights. Roles and rights bind case-insensitively."""
    names = {n.lower(): n for n in (*ROLES, *RIGHTS)}
    out: set[str] = set()
    for value in values:
        name = names.get(value.lower())
        if name is None:
            raise binding_error(f"Cannot process argument transformation on parameter 'AccessRights'. Cannot "
                                f'convert value "{value}" to type "Microsoft.Exchange.Management.StoreTasks.'
                                f'MailboxFolderAccessRight[]".')
        if name in CALENDAR_ONLY and not folder.is_calendar:
            # [uncertain] exception type and text; the documentation says these roles apply to calendars only.
            raise CmdletError(400, _STORE + "InvalidParamException",
                              f"The access right {name} is only valid for calendar folders.")
        out |= ROLES.get(name, frozenset() if name == "None" else {name})
    return frozenset(out)


def parse_flags(values: Sequence[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    names = {f.lower(): f for f in FLAGS}
    out = []
    for value in values:
        name = names.get(value.lower())
        if name is None:
            raise binding_error(f"Cannot process argument transformation on parameter 'SharingPermissionFlags'. "
                                f'Cannot convert value "{value}" to type "Microsoft.Exchange.Data.Storage.'
                                f'MailboxFolderPermissionFlags".')
        if name != "None":
            out.append(name)
    return tuple(f for f in FLAGS if f in out)


def check_flags(folder: Folder, rights: frozenset[str], flags: tuple[str, ...]) -> None:
    """[doc: add-mailboxfolderpermission -SharingPermissionFlags] calendar folders only, Editor only;
    CanViewPrivateItems requires Delegate. [uncertain] the exception type and texts."""
    if not flags:
        return
    if not folder.is_calendar:
        raise CmdletError(400, _STORE + "InvalidParamException",
                          "SharingPermissionFlags can only be set on calendar folders.")
    if rights != ROLES["Editor"]:
        raise CmdletError(400, _STORE + "InvalidParamException",
                          "SharingPermissionFlags can only be used with the Editor access right.")
    if "CanViewPrivateItems" in flags and "Delegate" not in flags:
        raise CmdletError(400, _STORE + "InvalidParamException",
                          "CanViewPrivateItems can only be set together with Delegate.")


def check_notification(rights: frozenset[str]) -> None:
    if not any(rights == ROLES[r] for r in NOTIFY_ROLES):
        # [uncertain] exception type and text.
        raise CmdletError(400, _STORE + "InvalidParamException",
                          "SendNotificationToUser can only be used with AvailabilityOnly, LimitedDetails, Reviewer "
                          "or Editor.")


def find_entry(conn: sqlite3.Connection, folder: Folder, trustee_seq: int) -> Entry | None:
    return next((e for e in entries(conn, folder) if e.trustee_seq == trustee_seq), None)


def exists_error(name: str) -> CmdletError:
    return CmdletError(400, _STORE + "UserAlreadyExistsInPermissionEntryException",
                       f"An existing permission entry was found for user: {name}.")


def missing_error(name: str) -> CmdletError:
    return CmdletError(400, _STORE + "UserNotFoundInPermissionEntryException",
                       f"There is no existing permission entry found for user: {name}.")


def write(conn: sqlite3.Connection, folder: Folder, trustee_seq: int, rights: frozenset[str],
          flags: tuple[str, ...]) -> None:
    conn.execute("INSERT INTO folder_perms(mailbox_seq, folder, trustee_seq, rights, flags) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT(mailbox_seq, folder, trustee_seq) DO UPDATE SET rights = excluded.rights, "
                 "flags = excluded.flags",
                 (folder.mailbox.seq, folder.perm_key, trustee_seq, ",".join(sorted(rights)), ",".join(flags)))


def delete(conn: sqlite3.Connection, folder: Folder, trustee_seq: int) -> None:
    conn.execute("DELETE FROM folder_perms WHERE mailbox_seq = ? AND folder = ? AND trustee_seq = ?",
                 (folder.mailbox.seq, folder.perm_key, trustee_seq))


def statistics_row(folder: Folder) -> dict[str, Any]:
    """Get-MailboxFolderStatistics' row ([doc] Name, FolderPath, FolderType, FolderId, ItemsInFolder...)."""
    return {"Identity": f"{folder.mailbox.name}\\{_BACKSLASH.join(folder.names)}", "Name": folder.name,
            "FolderPath": "/" + "/".join(folder.names), "FolderId": folder.folder_id,
            "FolderType": folder.folder_type,
            "ContainerClass": folder.container_class, "ItemsInFolder": 0, "FolderSize": "0 B (0 bytes)",
            "IsValid": True, "ObjectState": "Unchanged"}


_BACKSLASH = "\\"


def permission_row(folder: Folder, entry: Entry, principal: str) -> dict[str, Any]:
    """Get-MailboxFolderPermission's row. ``User`` is the entry's display name ("Default", "Anonymous", a
    person's or group's display name), as the cmdlet shows it. [uncertain] the REST API serialises the
    MailboxFolderUserId object as that string; SharingPermissionFlags as the enum's text, null for none."""
    name = SPECIAL.get(entry.trustee_seq) or principal
    return {"Identity": f"{folder.mailbox.name}:\\{_BACKSLASH.join(folder.names)}", "FolderName": folder.name,
            "User": name,
            "AccessRights@odata.type": "#Collection(String)", "AccessRights": access_rights(entry.rights),
            "SharingPermissionFlags": ", ".join(entry.flags) or None, "IsValid": True, "ObjectState": "Unchanged"}
