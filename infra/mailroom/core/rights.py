"""The rights and settings of a shared mailbox, each declared once: one row says everything about it.

Plans (label, whether removing it takes access away), comparison (which MailboxSpec attribute holds
it), the tenant read (cmdlet and field), the tenant write (how it is written), drift attribution
(which audited cmdlets cause it) and the access matrix (its mark) all read this table, so adding a
right, or asking "where is Send As granted?", means reading one row.

There are seven ways a right is written (``Write``):

- ``PermissionPair``: one person's grant, added and removed by a pair of cmdlets (Full Access, Send As).
  A changed option of a grant (AutoMapping) cannot be set in place: the grant is removed and added again.
- ``MailboxList``: a multi-valued Set-Mailbox parameter, changed with ``@{Add=...; Remove=...}``.
- ``MailboxSetting``: a scalar parameter of Set-Mailbox (or Set-CASMailbox: the protocols), set to its
  absolute value; all of one cmdlet's settings go in one call.
- ``UserProperty``: a property of the mailbox's own Entra user, through Graph (possibly inverted).
- ``RuleSwitch``: a rule in the mailbox (a forwarding inbox rule) that is disabled, never deleted.
- ``FolderPermission``: one entry of a folder's permissions (a calendar delegate): added, changed in place
  with Set (never removed and added again), removed; the folder's Default and Anonymous entries only Set.
- ``Lifecycle``: the mailbox itself, created and deleted.

Pure data: no I/O, no imports from the rest of mailroom.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

Call = tuple[str, dict[str, Any]]  # (cmdlet, parameters), as ExchangeClient.batch takes them


class Shape(str, Enum):
    """What the right looks like on a MailboxSpec, which decides how two specs are compared."""

    MAILBOX = "mailbox"  # the mailbox itself (created, adopted, deleted)
    GRANT = "grant"  # a set of people who hold it
    OPTION = "option"  # a per-person option of another right's grant (AutoMapping of a member)
    ADDRESSES = "addresses"  # a set of the mailbox's own secondary addresses
    SETTING = "setting"  # one value
    RULES = "rules"  # things of the mailbox the file never declares, only switches off (forwarding inbox rules)
    FOLDER = "folder"  # an entry of a folder's permissions: a person's role there, or the Default/Anonymous one


@dataclass(frozen=True)
class Read:
    """How the tenant reports it: the cmdlet (or Graph object) and the field of each row."""

    source: str
    field: str
    absent: Any = None  # what a row without the field means (for settings)


@dataclass(frozen=True)
class PermissionPair:
    add: str
    remove: str
    person: str  # the parameter that names the person (User, Trustee)
    access: str  # the AccessRights value the pair grants; also how a read row is recognised
    extra: tuple[tuple[str, Any], ...] = ()
    option: str | None = None  # the parameter an add carries the grant's option in (AutoMapping)

    def call(self, add: bool, identity: str, person: str, option: Any = None) -> Call:
        params: dict[str, Any] = {"Identity": identity, self.person: person, "AccessRights": [self.access],
                                  **dict(self.extra), "Confirm": False}
        if add and self.option and option is not None:
            params[self.option] = bool(option)
        return (self.add if add else self.remove), params


@dataclass(frozen=True)
class MailboxList:
    param: str
    proxies: bool = False  # values are written as secondary proxy addresses (``smtp:``), not as people


SET_MAILBOX = "Set-Mailbox"
SET_CAS = "Set-CASMailbox"
GET_CAS = "Get-CASMailbox"


@dataclass(frozen=True)
class MailboxSetting:
    param: str
    cmdlet: str = SET_MAILBOX
    # The file's value is the negation of Exchange's (smtp_auth on = SmtpClientAuthenticationDisabled
    # false); None passes through both ways (the organisation's setting decides).
    inverted: bool = False
    proxy: bool = False  # an SMTP proxy address (ForwardingSmtpAddress), reported as ``smtp:x@y``

    def wire(self, value: Any) -> Any:
        """The parameter value that writes the file's ``value`` (no text: $null, which clears it)."""
        if value is None or value == "":
            return None
        return not value if self.inverted else value

    def value(self, wire: Any) -> Any:
        """The file's value of what the tenant reports (inverse of ``wire``)."""
        if self.inverted:
            return None if wire is None else not bool(wire)
        if self.proxy:  # "smtp:x@y" → "x@y"
            text = str(wire or "")
            return text[5:] if text[:5].lower() == "smtp:" else text
        return bool(wire)


@dataclass(frozen=True)
class UserProperty:
    prop: str
    inverted: bool = False  # the right is on when the property is false (sign-in blocked = not accountEnabled)

    def value(self, on: Any) -> bool:
        return not bool(on) if self.inverted else bool(on)


@dataclass(frozen=True)
class RuleSwitch:
    """A rule of the mailbox, never deleted: removing it from the mailbox's state disables it."""

    disable: str
    causes: tuple[str, ...]  # the audited cmdlets that make a rule forward (attribution)

    def call(self, identity: str, subject: str) -> Call:
        return self.disable, {"Identity": rule_id(subject), "Mailbox": identity, "Confirm": False}


def rule_id(subject: str) -> str:
    """The RuleIdentity a forwarding rule's subject starts with (``<RuleIdentity>: "name" → ...``)."""
    return subject.partition(":")[0].strip()


# Folder access roles (add-mailboxfolderpermission -AccessRights): the file's name, Exchange's, the access-matrix
# abbreviation. The order is how policy compares them (policy.max_default_calendar_access): each one shows or
# allows more than the one before; a role that may write is broader than any that only reads.
FOLDER_ROLES: tuple[tuple[str, str, str], ...] = (
    ("none", "None", ""), ("availability_only", "AvailabilityOnly", "AO"),
    ("limited_details", "LimitedDetails", "LD"), ("reviewer", "Reviewer", "R"), ("contributor", "Contributor", "C"),
    ("non_editing_author", "NonEditingAuthor", "NEA"), ("author", "Author", "A"),
    ("publishing_author", "PublishingAuthor", "PA"), ("editor", "Editor", "E"),
    ("publishing_editor", "PublishingEditor", "PE"), ("owner", "Owner", "O"))
ROLE_NAMES: tuple[str, ...] = tuple(r for r, _, _ in FOLDER_ROLES)
EXCHANGE_ROLE: dict[str, str] = {r: x for r, x, _ in FOLDER_ROLES}
FILE_ROLE: dict[str, str] = {x.casefold(): r for r, x, _ in FOLDER_ROLES}
CALENDAR_ONLY = ("availability_only", "limited_details")  # free/busy: no mailbox audit record shows their use
READS = "reads"  # Right.used of an access only reads show (exchange-features.md §5)
# The two entries every folder has (they can only be Set), as Get-MailboxFolderPermission names them.
DEFAULT_ENTRY, ANONYMOUS_ENTRY = "Default", "Anonymous"
SPECIAL_ENTRIES = (DEFAULT_ENTRY, ANONYMOUS_ENTRY)
# The delegate flags (SharingPermissionFlags), only with Editor on a calendar; private items needs delegate.
DELEGATE, PRIVATE_ITEMS = "delegate", "private_items"


def access(role: str, delegate: bool = False, private_items: bool = False) -> str:
    """One entry's access as plans, findings and the state hold it: ``editor+delegate+private_items``."""
    return "+".join([role] + ([DELEGATE] if delegate else []) + ([PRIVATE_ITEMS] if private_items else []))


def parse_access(text: str) -> tuple[str, bool, bool]:
    """The inverse of ``access``: (role, delegate, private_items)."""
    role, *flags = str(text).split("+")
    return role, DELEGATE in flags, PRIVATE_ITEMS in flags


def show_access(text: str) -> str:
    """``editor+delegate+private_items`` → ``editor (delegate, private items)``."""
    role, delegate, private = parse_access(text)
    flags = [f for f, on in (("delegate", delegate), ("private items", private)) if on]
    return f"{role} ({', '.join(flags)})" if flags else role


def role_rank(role: str) -> int:
    """Where ``role`` stands in FOLDER_ROLES (unknown: broadest, so a policy never lets it pass)."""
    return ROLE_NAMES.index(role) if role in ROLE_NAMES else len(ROLE_NAMES)


# The folders the file names, by their key (``calendar``, and under ``folders:`` the others): Exchange's
# FolderType (English whatever the mailbox's language, so a folder is found by type, never by its localized name).
FOLDERS: dict[str, str] = {"calendar": "Calendar", "inbox": "Inbox", "contacts": "Contacts"}
OTHER_FOLDERS = tuple(k for k in FOLDERS if k != "calendar")  # the keys of ``folders:``

# A folder a user made (Exchange has no admin cmdlet that makes one in another mailbox, so mailroom only manages
# the permissions of one that exists) is named by a path: a well-known folder's key, or ``root`` (the top of the
# information store), then the names below it, ``/``-separated: ``inbox/Reports`` is /Posteingang/Reports in a
# German mailbox. Its FolderType is "User Created"; its rows are the ``folder`` rows, the path is part of each
# entry (FolderGrant.folder, Change.folder). Not under the calendar: a calendar's subfolder is another calendar,
# whose free/busy roles the ``folder`` rows do not have.
PATH_ROOTS: dict[str, str] = {"inbox": "Inbox", "contacts": "Contacts", "root": ""}
PATH_FOLDER = "folder"  # the key of the rows every path folder shares
PATH_KEY = "<path>"  # stands for the folder's path in those rows' file_key (folders.<path>.reviewer)
USER_CREATED = "User Created"
PATH_SEP = "/"


def is_path(folder: str) -> bool:
    """A folder key that is a path (``inbox/Reports``), not a well-known folder's key."""
    return PATH_SEP in folder


def folder_family(folder: str) -> str:
    """The rows a folder's entries are: its own (calendar, inbox, contacts), or the ``folder`` rows of a path."""
    return PATH_FOLDER if is_path(folder) else folder


def folder_path(folder: str, names: dict[str, str]) -> str:
    """The FolderPath Get-MailboxFolderStatistics shows for the path ``folder``, given the names (by FolderType)
    the mailbox's well-known folders have: ``inbox/Reports`` with {"Inbox": "Posteingang"} →
    ``/Posteingang/Reports``; ``root/Projects`` → ``/Projects``."""
    first, _, rest = folder.partition(PATH_SEP)
    kind = PATH_ROOTS[first]
    return PATH_SEP + PATH_SEP.join(([names[kind]] if kind else []) + rest.split(PATH_SEP))


def folder_default(folder: str, entry: str) -> str:
    """What Exchange gives a folder's Default or Anonymous entry: the calendar's Default shows free/busy."""
    return "availability_only" if folder == "calendar" and entry == DEFAULT_ENTRY else "none"


@dataclass(frozen=True)
class FolderPermission:
    folder: str  # the file's key (calendar)
    role: str | None  # the role a person's entry of this row has; None: the folder's Default/Anonymous entry
    entry: str | None = None  # DEFAULT_ENTRY or ANONYMOUS_ENTRY
    add: str = "Add-MailboxFolderPermission"
    set: str = "Set-MailboxFolderPermission"
    remove: str = "Remove-MailboxFolderPermission"

    def call(self, op: str, folder: str, person: str, value: str | None = None) -> Call:
        """``folder``: the folder as Exchange addresses it (``<mailbox>:<FolderId>``); ``value``: the access
        (``access``) an add or set gives. Never -SendNotificationToUser: it sends a sharing invitation, and
        on Set it resets the delegate flags (set-mailboxfolderpermission)."""
        params: dict[str, Any] = {"Identity": folder, "User": person}
        if op != "remove":
            role, delegate, private = parse_access(value or "none")
            params["AccessRights"] = [EXCHANGE_ROLE[role]]
            if role == "editor" and self.folder == "calendar":  # flags exist only there: None clears them
                params["SharingPermissionFlags"] = ",".join(
                    [f for f, on in (("Delegate", delegate), ("CanViewPrivateItems", private)) if on]) or "None"
        return {"add": self.add, "set": self.set, "remove": self.remove}[op], {**params, "Confirm": False}


@dataclass(frozen=True)
class Lifecycle:

    create: str
    delete: str


Write = PermissionPair | MailboxList | MailboxSetting | UserProperty | RuleSwitch | FolderPermission | Lifecycle


class _NotFixed:
    def __repr__(self) -> str:
        return "NOT_FIXED"


NOT_FIXED: Any = _NotFixed()  # a setting New-Mailbox leaves with no fixed value (None can be a value)


@dataclass(frozen=True)
class Right:
    key: str  # the name in Changes, findings, the audit log and the state
    label: str  # how plans and reports name it
    takes_access: bool  # removing it takes access away: what the mass-removal guard counts
    shape: Shape
    attr: str  # the MailboxSpec attribute that holds it
    file_key: str  # where the file says it (dotted: a nested key; ``members[].automap``: in an entry)
    read: Read
    write: Write
    mark: tuple[str, str] | None = None  # access-matrix mark and what it stands for
    fresh: Any = NOT_FIXED  # what New-Mailbox -Shared leaves (settings with a fixed initial value)
    control: str | None = None  # the CIS / CISA SCuBA baseline control a finding on it relates to
    person: bool = False  # a setting whose value names a recipient (resolved and shown like a grant's person)
    exfiltration: bool = False  # a way for mail to leave the mailbox: drift reports it at high severity
    # The delegate action of the unified audit log that shows this access used (SendAs); READS when only
    # reading shows it (FolderBind, MailItemsAccessed); None when no record does (free/busy) or it is no access.
    used: str | None = None

    @property
    def is_address(self) -> bool:
        """Its value is an SMTP address (compared case-insensitively, as every address is)."""
        return self.person or (isinstance(self.write, MailboxSetting) and self.write.proxy)

    @property
    def causes(self) -> tuple[tuple[str, ...], str | None]:
        """The audited Exchange cmdlets that change it, and the parameter that names its person or value.

        A Graph user property is audited by Graph, not by Exchange: no cmdlets."""
        w = self.write
        if isinstance(w, PermissionPair):
            return (w.add, w.remove), w.person
        if isinstance(w, MailboxList):
            return (SET_MAILBOX,), w.param
        if isinstance(w, MailboxSetting):
            return (w.cmdlet,), w.param
        if isinstance(w, Lifecycle):
            return (w.create, w.delete), None
        if isinstance(w, RuleSwitch):
            return w.causes, None
        if isinstance(w, FolderPermission):
            return (w.add, w.set, w.remove), "User"
        return (), None


_FULL_ACCESS = PermissionPair("Add-MailboxPermission", "Remove-MailboxPermission", "User", "FullAccess",
                              extra=(("InheritanceType", "All"),), option="AutoMapping")
_SEND_AS = PermissionPair("Add-RecipientPermission", "Remove-RecipientPermission", "Trustee", "SendAs")


def _setting(key: str, label: str, field: str, file_key: str, fresh: Any) -> Right:
    """A scalar Set-Mailbox setting: Exchange reads and writes it under the same name."""
    return Right(key, label, False, Shape.SETTING, key, file_key, Read("Get-Mailbox", field, fresh),
                 MailboxSetting(field), fresh=fresh)


def _protocol(key: str, label: str, field: str, fresh: Any = True, inverted: bool = False,
              control: str | None = None) -> Right:
    """A client protocol of the mailbox (Get-/Set-CASMailbox). Exchange turns every one on for a new
    mailbox (set-casmailbox: each defaults to $true; SmtpClientAuthenticationDisabled to $null)."""
    write = MailboxSetting(field, SET_CAS, inverted)
    return Right(key, label, False, Shape.SETTING, key, f"protocols.{key}", Read(GET_CAS, field, write.wire(fresh)),
                 write, fresh=fresh, control=control)


# Forwarding (exchange-features.md §3): CIS 6.2.1 asks that no mail be forwarded out, SCuBA MS.EXO.1.1v2
# that automatic forwarding to external domains be off (agency-approved domains allowed).
_FORWARDING = "CIS 6.2.1, SCuBA MS.EXO.1.1v2"


def _folder(folder: str, label: str, mark: str) -> tuple[Right, ...]:
    """A folder's rows: one per role a person may hold there (so the access matrix marks each role), then its
    Default and Anonymous entries (always there, only Set)."""
    roles = [(r, x, a) for r, x, a in FOLDER_ROLES if r != "none" and (folder == "calendar" or r not in CALENDAR_ONLY)]
    read = Read("Get-MailboxFolderPermission", "User")
    # Where the file writes it: ``calendar.<role>``, ``folders.inbox.<role>``; a path folder's under its path,
    # which a removal names (file/edit.py's Removal.folder).
    at = folder if folder == "calendar" else f"folders.{folder if folder != PATH_FOLDER else PATH_KEY}"
    people = tuple(Right(f"{folder}_{r}", f"{label} {r.replace('_', ' ')}", True, Shape.FOLDER, "folder_grants",
                         f"{at}.{r}", read, FolderPermission(folder, r), mark=(f"{mark}:{a}", f"{label} {x}"),
                         used=None if r in CALENDAR_ONLY else READS)
                   for r, x, a in roles)
    return people + (
        Right(f"{folder}_default", f"{label} Default (everyone in the organisation)", False, Shape.FOLDER,
              "folder_grants", f"{at}.default", read, FolderPermission(folder, None, DEFAULT_ENTRY)),
        Right(f"{folder}_anonymous", f"{label} Anonymous (people outside the organisation)", False, Shape.FOLDER,
              "folder_grants", f"{at}.anonymous", read, FolderPermission(folder, None, ANONYMOUS_ENTRY)))


TABLE: tuple[Right, ...] = (

    Right("mailbox", "mailbox", True, Shape.MAILBOX, "state", "address",
          Read("Get-Mailbox", "PrimarySmtpAddress"), Lifecycle("New-Mailbox", "Remove-Mailbox")),
    Right("member", "member", True, Shape.GRANT, "members", "members",
          Read("Get-MailboxPermission", "User"), _FULL_ACCESS, mark=("FA", "Full Access"), used=READS),
    # Exchange Online does not report AutoMapping (see live.live_spec): read only when a row has it.
    Right("automap", "AutoMapping", False, Shape.OPTION, "members", "members[].automap",
          Read("Get-MailboxPermission", "AutoMapping"), _FULL_ACCESS),
    Right("send_as", "Send As", True, Shape.GRANT, "send_as", "send_as",
          Read("Get-RecipientPermission", "Trustee"), _SEND_AS, mark=("SA", "Send As"), used="SendAs"),
    Right("send_on_behalf", "Send on Behalf", True, Shape.GRANT, "send_on_behalf", "send_on_behalf",
          Read("Get-Mailbox", "GrantSendOnBehalfTo"), MailboxList("GrantSendOnBehalfTo"),
          mark=("SoB", "Send on Behalf"), used="SendOnBehalf"),
    Right("alias", "alias", False, Shape.ADDRESSES, "aliases", "aliases",
          Read("Get-Mailbox", "EmailAddresses"), MailboxList("EmailAddresses", proxies=True)),
    # New-Mailbox is given the file's display name: no fixed initial value.
    Right("display_name", "display name", False, Shape.SETTING, "display_name", "display_name",
          Read("Get-Mailbox", "DisplayName", ""), MailboxSetting("DisplayName")),
    _setting("hidden_from_gal", "hidden from GAL", "HiddenFromAddressListsEnabled", "hidden_from_gal", False),
    _setting("copy_send_as", "copy Send As to Sent Items", "MessageCopyForSentAsEnabled",
             "sent_items.copy_send_as", False),
    _setting("copy_send_on_behalf", "copy Send on Behalf to Sent Items", "MessageCopyForSendOnBehalfEnabled",
             "sent_items.copy_send_on_behalf", False),
    _setting("audit_enabled", "auditing", "AuditEnabled", "audit.enabled", True),
    # A new shared mailbox's Entra account can sign in; with no user read, sign-in counts as not blocked.
    Right("sign_in_blocked", "sign-in blocked", False, Shape.SETTING, "sign_in_blocked", "sign_in_blocked",
          Read("Graph user", "accountEnabled", False), UserProperty("accountEnabled", inverted=True), fresh=False,
          control="CIS 1.2.2"),
    # A recipient of the organisation, read as its identity (Name) and resolved like a grant's person.
    Right("forwarding_address", "forwarding to", False, Shape.SETTING, "forwarding_address", "forwarding.to",
          Read("Get-Mailbox", "ForwardingAddress", ""), MailboxSetting("ForwardingAddress"), fresh="",
          control=_FORWARDING, person=True, exfiltration=True),
    # An SMTP address, unchecked by Exchange; ignored while ForwardingAddress is set (set-mailbox).
    Right("forwarding_smtp", "forwarding to external", False, Shape.SETTING, "forwarding_smtp", "forwarding.to",
          Read("Get-Mailbox", "ForwardingSmtpAddress", ""), MailboxSetting("ForwardingSmtpAddress", proxy=True),
          fresh="", control=_FORWARDING, exfiltration=True),
    _setting("forward_keep_copy", "keep a copy when forwarding", "DeliverToMailboxAndForward", "forwarding.keep_copy",
             False),
    # An enabled inbox rule that forwards, redirects or forwards as attachment, hidden ones included; read by
    # drift only (Get-InboxRule is not in the View-Only roles a plan runs with), disabled by drift --remediate.
    Right("forward_rule", "forwarding inbox rule", False, Shape.RULES, "forward_rules", "(not in the file)",
          Read("Get-InboxRule", "RuleIdentity"),
          RuleSwitch("Disable-InboxRule", ("New-InboxRule", "Set-InboxRule", "Enable-InboxRule")),
          control=_FORWARDING, exfiltration=True),
    _protocol("pop", "POP", "PopEnabled"),
    _protocol("imap", "IMAP", "ImapEnabled"),
    _protocol("activesync", "ActiveSync", "ActiveSyncEnabled"),
    # EWS is being retired in Exchange Online (blocked from 2026-10-01, shut down 2027-04-01).
    _protocol("ews", "EWS", "EwsEnabled"),
    # SMTP AUTH is basic authentication: SCuBA asks for it off (org level, which a mailbox overrides).
    _protocol("smtp_auth", "SMTP AUTH", "SmtpClientAuthenticationDisabled", None, inverted=True,
              control="SCuBA MS.EXO.5.1v1"),
    _protocol("owa", "Outlook on the web", "OWAEnabled"),
    _protocol("mapi", "MAPI (Outlook)", "MAPIEnabled"),
    # Calendar delegates and the calendar's Default/Anonymous entries (exchange-features.md §1).
    *_folder("calendar", "calendar", "Cal"),
    *_folder("inbox", "inbox", "Inb"),
    *_folder("contacts", "contacts", "Con"),
    # Folders a user made, named by path (``inbox/Reports``): one row per role for all of them.
    *_folder(PATH_FOLDER, "folder", "Fld"),
)

BY_KEY: dict[str, Right] = {r.key: r for r in TABLE}
SETTINGS: tuple[Right, ...] = tuple(r for r in TABLE if r.shape is Shape.SETTING)
GRANTS: tuple[Right, ...] = tuple(r for r in TABLE if r.shape is Shape.GRANT)
ADDRESSES: tuple[Right, ...] = tuple(r for r in TABLE if r.shape is Shape.ADDRESSES)
PROTOCOLS: tuple[Right, ...] = tuple(r for r in TABLE if r.read.source == GET_CAS)
RULES: tuple[Right, ...] = tuple(r for r in TABLE if r.shape is Shape.RULES)
FOLDER_RIGHTS: tuple[Right, ...] = tuple(r for r in TABLE if r.shape is Shape.FOLDER)


def folder_right(folder: str, person: str, role: str) -> Right:
    """The row of one folder entry: its Default/Anonymous row, or the row of the role a person holds."""
    family = folder_family(folder)
    if person in SPECIAL_ENTRIES:
        return BY_KEY[f"{family}_{person.casefold()}"]
    return BY_KEY[f"{family}_{role}"]


def folder_label(row: Right, folder: str | None) -> str:
    """How a plan names a folder row: a path folder's rows by its path (``inbox/Reports reviewer``)."""
    if folder and isinstance(row.write, FolderPermission) and row.write.folder == PATH_FOLDER:
        return folder + row.label[len(PATH_FOLDER):]
    return row.label
# grant right → the option its grants carry (member → automap), by the attribute both live in
OPTION_OF: dict[str, Right] = {g.key: o for g in GRANTS for o in TABLE if o.shape is Shape.OPTION and o.attr == g.attr}


def right(key: str) -> Right:
    return BY_KEY[key]


def label(key: str | None) -> str:
    """The plan label of ``key``; an unknown key is shown as itself."""
    row = BY_KEY.get(key or "")
    return row.label if row else (key or "")
