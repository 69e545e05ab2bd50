"""The desired model: what the file says, defaults applied, entries in one shape.

Plan, drift and import all read this model; comparison keys come from
``mailroom.core.identity`` so the rules for equality live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from mailroom.core.identity import exchange_alias, smtp_key


class State(str, Enum):
    PRESENT = "present"
    ABSENT = "absent"


@dataclass(frozen=True)
class Origin:
    """Where a mailbox is written: file and index in that file's ``mailboxes`` list."""

    file: str
    index: int
    line: int = 0
    folders: tuple[tuple[str, int], ...] = ()  # the line of each ``folders:`` entry, by its key (a path's error)

    def folder_line(self, key: str) -> int:
        return dict(self.folders).get(key, self.line)


@dataclass(frozen=True)
class Member:
    address: str  # as written
    automap: bool
    is_group: bool = False
    automap_explicit: bool = False

    @property
    def key(self) -> str:
        return smtp_key(self.address)


@dataclass(frozen=True)
class SentItems:
    copy_send_as: bool = True
    copy_send_on_behalf: bool = True


@dataclass(frozen=True)
class Protocols:
    """Which client protocols may open the mailbox (Set-CASMailbox). The defaults are the secure profile
    for a shared mailbox: people open it through Outlook (MAPI) and Outlook on the web with their own
    sign-in, so POP, IMAP, ActiveSync, EWS (being retired in Exchange Online) and SMTP AUTH stay off.
    Exchange starts every new mailbox with all of them on. ``smtp_auth`` None: the organisation's
    setting decides (Exchange's own default, SmtpClientAuthenticationDisabled $null)."""

    pop: bool = False
    imap: bool = False
    activesync: bool = False
    ews: bool = False
    smtp_auth: bool | None = False
    owa: bool = True
    mapi: bool = True


@dataclass(frozen=True)
class Forwarding:
    """Mail to the mailbox is forwarded to ``to`` (Set-Mailbox ForwardingAddress for a recipient of the
    organisation, ForwardingSmtpAddress for an allowed external address); ``keep_copy``: a copy stays in
    the mailbox too (DeliverToMailboxAndForward)."""

    to: str
    keep_copy: bool = True


@dataclass(frozen=True)
class FolderDelegate:
    """One person's (or group's) entry on a folder: its role, and for a calendar editor the delegate flags
    (SharingPermissionFlags: ``delegate`` receives meeting requests, ``private_items`` sees private ones)."""

    address: str
    role: str
    delegate: bool = False
    private_items: bool = False

    @property
    def key(self) -> str:
        return smtp_key(self.address)


@dataclass(frozen=True)
class FolderAccess:
    """Who may open one folder of the mailbox (``calendar``), found by its type whatever its localized name.
    ``default`` (everyone in the organisation) and ``anonymous``: None is what Exchange gives a new mailbox
    (rights.folder_default). Nobody else holds an entry on the folder: one the tenant has is removed."""

    default: str | None = None
    anonymous: str | None = None
    people: tuple[FolderDelegate, ...] = ()


@dataclass(frozen=True)
class Defaults:
    sign_in_blocked: bool = True
    automap: bool = True
    sent_items: SentItems = SentItems()
    audit_enabled: bool = True
    hidden_from_gal: bool = False
    protocols: Protocols = Protocols()


# The one declaration of the defaults: a mailbox the file says nothing more about, and what spec.py's
# MailboxSpec assumes for a value its state lacks.
DEFAULTS = Defaults()


@dataclass(frozen=True)
class Policy:
    require_owner: bool = False
    max_members: int | None = None
    send_as_requires_member: bool = False
    allow_external_members: bool = False
    max_removals_per_apply: int = 10
    # A mailbox may not set `protocols` apart from `defaults.protocols` (the organisation's profile).
    protocols_at_profile: bool = False
    # Domains outside tenant.domains that a mailbox may forward to (CIS 6.2.1, SCuBA MS.EXO.1.1: none).
    allowed_forward_domains: tuple[str, ...] = ()
    # The broadest role a calendar's Default or Anonymous entry may have (rights.FOLDER_ROLES order); None: any.
    max_default_calendar_access: str | None = None


POLICY = Policy()  # the policy of a file that states none


@dataclass(frozen=True)
class Mailbox:
    address: str
    display_name: str
    owner: str | None = None
    aliases: tuple[str, ...] = ()
    members: tuple[Member, ...] = ()
    send_as: tuple[str, ...] = ()
    send_on_behalf: tuple[str, ...] = ()
    hidden_from_gal: bool = DEFAULTS.hidden_from_gal
    sent_items: SentItems = DEFAULTS.sent_items
    audit_enabled: bool = DEFAULTS.audit_enabled
    sign_in_blocked: bool = DEFAULTS.sign_in_blocked
    protocols: Protocols = DEFAULTS.protocols
    forwarding: Forwarding | None = None  # none: no forwarding of any kind
    calendar: FolderAccess | None = None  # none: the calendar's permissions are not managed
    # other folders by key (inbox, contacts, or a path to a folder a user made: inbox/Reports): each one managed
    folders: tuple[tuple[str, FolderAccess], ...] = ()
    state: State = State.PRESENT
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        return smtp_key(self.address)

    @property
    def alias(self) -> str:
        """The Exchange alias mailroom gives the mailbox: the local part of its address."""
        return exchange_alias(self.address)


@dataclass(frozen=True)
class Desired:
    domains: tuple[str, ...]
    defaults: Defaults
    policy: Policy
    mailboxes: tuple[Mailbox, ...]
    files: tuple[str, ...]

    def by_key(self) -> dict[str, Mailbox]:
        return {m.key: m for m in self.mailboxes}
