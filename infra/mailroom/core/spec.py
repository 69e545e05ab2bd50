"""MailboxSpec: the one comparable shape of a shared mailbox.

Desired (from the file) and live (read from the tenant, people already mapped
to the addresses the file uses for them) are both MailboxSpecs; they are also
the Pulumi resource's inputs and outputs, so the engine's state, the plan,
drift and import speak the same language.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import in_domains, smtp_key
from mailroom.core.model import DEFAULTS, FolderAccess, Mailbox


@dataclass(frozen=True)
class Grant:
    address: str
    automap: bool = DEFAULTS.automap


@dataclass(frozen=True)
class FolderGrant:
    """One entry of a folder's permissions: ``person`` an address (or rights.DEFAULT_ENTRY/ANONYMOUS_ENTRY),
    ``access`` as rights.access writes it (``editor+delegate``)."""

    folder: str
    person: str
    access: str

    @property
    def special(self) -> bool:
        return self.person in rights.SPECIAL_ENTRIES

    @property
    def role(self) -> str:
        return rights.parse_access(self.access)[0]

    @property
    def right(self) -> str:
        """The rights-table row of this entry."""
        return rights.folder_right(self.folder, self.person, self.role).key


@dataclass(frozen=True)
class MailboxSpec:
    address: str
    display_name: str = ""
    aliases: tuple[str, ...] = ()
    members: tuple[Grant, ...] = ()
    send_as: tuple[str, ...] = ()
    send_on_behalf: tuple[str, ...] = ()
    # The file's defaults (model.DEFAULTS): also what a state written without a value means.
    hidden_from_gal: bool = DEFAULTS.hidden_from_gal
    copy_send_as: bool = DEFAULTS.sent_items.copy_send_as
    copy_send_on_behalf: bool = DEFAULTS.sent_items.copy_send_on_behalf
    audit_enabled: bool = DEFAULTS.audit_enabled
    sign_in_blocked: bool = DEFAULTS.sign_in_blocked
    # Client protocols (rights.PROTOCOLS); smtp_auth None: the organisation's setting decides.
    pop: bool = DEFAULTS.protocols.pop
    imap: bool = DEFAULTS.protocols.imap
    activesync: bool = DEFAULTS.protocols.activesync
    ews: bool = DEFAULTS.protocols.ews
    smtp_auth: bool | None = DEFAULTS.protocols.smtp_auth
    owa: bool = DEFAULTS.protocols.owa
    mapi: bool = DEFAULTS.protocols.mapi
    # Forwarding: to a recipient of the organisation (its address as the file writes it) or to an external
    # SMTP address; "" for none (what a new mailbox has, and what the file means by no `forwarding`).
    forwarding_address: str = ""
    forwarding_smtp: str = ""
    forward_keep_copy: bool = False
    # Enabled inbox rules that send mail elsewhere, as ``<RuleIdentity>: "name" → target (internal|external)``;
    # the file never declares any, so a live one is always drift. Read by drift only.
    forward_rules: tuple[str, ...] = ()
    # Entries of the folders the file manages (a folder is managed when the file names it: its Default and
    # Anonymous entries are always among them).
    folder_grants: tuple[FolderGrant, ...] = ()
    state: str = "present"
    # Accepted domains: which addresses of the mailbox are the file's to manage.
    domains: tuple[str, ...] = field(default=(), compare=False)

    def grants(self) -> list[tuple[str, str]]:
        """Every (right, person) the mailbox gives: Full Access, Send As, Send on Behalf, and each person's role
        on a managed folder (the Default and Anonymous entries name nobody)."""
        return [(r.key, held.address if isinstance(held, Grant) else held)
                for r in rights.GRANTS for held in getattr(self, r.attr)] + \
            [(g.right, g.person) for g in self.folder_grants if not g.special]

    def folders(self) -> tuple[str, ...]:
        """The folders whose permissions are managed (their keys: calendar)."""
        return tuple(sorted({g.folder for g in self.folder_grants}))

    def people(self) -> list[str]:
        """Everyone the mailbox names: its grants' people and the recipient it forwards to."""
        return [person for _, person in self.grants()] + [getattr(self, r.attr) for r in rights.SETTINGS
                                                          if r.person and getattr(self, r.attr)]

    def automap_by_key(self) -> dict[str, bool]:
        """AutoMapping per member, keyed by address (what Exchange does not report back)."""
        return {smtp_key(g.address): g.automap for g in self.members}

    def to_props(self) -> dict[str, Any]:
        # A shallow walk, not dataclasses.asdict: its deep copy of every value cost a second a plan at
        # 1,000 mailboxes (bench/reconcile.py), and the values here are strings, booleans and tuples.
        props = {name: getattr(self, name) for name in _FIELDS}
        props["members"] = [{"address": g.address, "automap": g.automap} for g in self.members]
        for key in ("aliases", "send_as", "send_on_behalf", "domains", "forward_rules"):
            props[key] = list(props[key])
        props["folder_grants"] = [{"folder": g.folder, "person": g.person, "access": g.access}
                                  for g in self.folder_grants]
        for r in rights.PROTOCOLS:
            if props[r.attr] is None:
                props[r.attr] = UNSET_PROP
        return props

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> MailboxSpec:
        # A state written before mailroom managed protocols never set them: they are as Exchange left the
        # mailbox (its fresh value), not the profile, so a plan without refresh shows the change still to make.
        protocols: dict[str, Any] = {r.attr: _maybe(props[r.attr] if r.attr in props else r.fresh)
                                     for r in rights.PROTOCOLS}
        return cls(
            address=str(props["address"]),
            display_name=str(props.get("display_name") or ""),
            aliases=tuple(props.get("aliases") or ()),
            members=tuple(Grant(str(m["address"]), bool(m.get("automap", _BLANK_GRANT.automap)))
                          for m in props.get("members") or ()),
            send_as=tuple(props.get("send_as") or ()),
            send_on_behalf=tuple(props.get("send_on_behalf") or ()),
            hidden_from_gal=bool(props.get("hidden_from_gal", _BLANK.hidden_from_gal)),
            copy_send_as=bool(props.get("copy_send_as", _BLANK.copy_send_as)),
            copy_send_on_behalf=bool(props.get("copy_send_on_behalf", _BLANK.copy_send_on_behalf)),
            audit_enabled=bool(props.get("audit_enabled", _BLANK.audit_enabled)),
            sign_in_blocked=bool(props.get("sign_in_blocked", _BLANK.sign_in_blocked)),
            state=str(props.get("state") or "present"),
            domains=tuple(props.get("domains") or ()),
            forwarding_address=str(props.get("forwarding_address") or ""),
            forwarding_smtp=str(props.get("forwarding_smtp") or ""),
            forward_keep_copy=bool(props.get("forward_keep_copy", _BLANK.forward_keep_copy)),
            forward_rules=tuple(props.get("forward_rules") or ()),
            folder_grants=tuple(FolderGrant(str(g["folder"]), str(g["person"]), str(g["access"]))
                                for g in props.get("folder_grants") or ()),
            **protocols,
        )

    @classmethod
    def from_model(cls, mb: Mailbox, domains: tuple[str, ...]) -> MailboxSpec:
        return cls(
            address=mb.address, display_name=mb.display_name, aliases=mb.aliases,
            members=tuple(Grant(m.address, m.automap) for m in mb.members),
            send_as=mb.send_as, send_on_behalf=mb.send_on_behalf, hidden_from_gal=mb.hidden_from_gal,
            copy_send_as=mb.sent_items.copy_send_as, copy_send_on_behalf=mb.sent_items.copy_send_on_behalf,
            audit_enabled=mb.audit_enabled, sign_in_blocked=mb.sign_in_blocked, state=mb.state.value,
            domains=domains, **{r.attr: getattr(mb.protocols, r.attr) for r in rights.PROTOCOLS},
            **_forwarding(mb, domains),
            folder_grants=_folder_grants("calendar", mb.calendar) + tuple(
                g for key, access in mb.folders for g in _folder_grants(key, access)),
        )


def _folder_grants(folder: str, declared: FolderAccess | None) -> tuple[FolderGrant, ...]:
    """A folder the file names, as entries: its Default and Anonymous ones (Exchange's value unless the file says
    another) and each person's."""
    if declared is None:
        return ()
    entries = ((rights.DEFAULT_ENTRY, declared.default), (rights.ANONYMOUS_ENTRY, declared.anonymous))
    special = [FolderGrant(folder, who, value or rights.folder_default(folder, who)) for who, value in entries]
    return tuple(special + [FolderGrant(folder, d.address, rights.access(d.role, d.delegate, d.private_items))
                            for d in declared.people])


def _forwarding(mb: Mailbox, domains: tuple[str, ...]) -> dict[str, Any]:
    """How the file's ``forwarding`` is written: an address in the accepted domains is a recipient of the
    organisation (ForwardingAddress, which Exchange checks exists); any other is an SMTP address."""
    fwd = mb.forwarding
    if fwd is None:
        return {}
    target = "forwarding_address" if in_domains(fwd.to, domains) else "forwarding_smtp"
    return {target: fwd.to, "forward_keep_copy": fwd.keep_copy}


# How a switch left to the organisation (smtp_auth None) is kept in the resource's properties: the engine
# drops a null property, and a missing one means "the default" (a state from before the field existed).
UNSET_PROP = "organisation"


def _maybe(value: Any) -> bool | None:
    """A switch that may be unset (None: the organisation's setting, for smtp_auth)."""
    return None if value is None or value == UNSET_PROP else bool(value)


# A value the state lacks (written by an older mailroom) is the field's default, not a second copy of it.
_BLANK = MailboxSpec(address="")
_BLANK_GRANT = Grant(address="")
_FIELDS = tuple(f.name for f in fields(MailboxSpec))
