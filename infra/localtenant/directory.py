"""The directory both services share: objects, SMTP proxy addresses, identity resolution
and the Entra audit trail.

A real tenant keeps one identity per person in Entra ID and mirrors it into Exchange
Online; here both views are one row in ``objects`` (Graph ``id`` ==
``ExternalDirectoryObjectId``), so a change through either API is seen by the other at once
(the real service converges within minutes; the emulator chooses "at once").
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from localtenant.common import (
    EXCHANGE_APP_ID,
    EXCHANGE_APP_NAME,
    Caller,
    is_guid,
    new_guid,
    stable_guid,
    stamp,
)
from localtenant.store import set_meta

# Every mailbox Get-Mailbox shows, people's and resources' included, as a real tenant does.
MAILBOX_TYPES = ("UserMailbox", "SharedMailbox", "RoomMailbox", "EquipmentMailbox")
RESOURCE_TYPES = ("RoomMailbox", "EquipmentMailbox")
GROUP_TYPE = "MailUniversalSecurityGroup"

COLUMNS = (
    "seq, id, kind, upn, display_name, mail, account_enabled, user_deleted, rtd, name, alias, guid, "
    "exchange_guid, soft_deleted, when_soft_deleted, created, changed, props"
)

O_COLUMNS = ", ".join("o." + column for column in COLUMNS.split(", "))

_ADDRESS_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class DirectoryError(Exception):
    """A semantic failure; each service maps ``reason`` to its own wire error."""

    NOT_FOUND = "not_found"
    AMBIGUOUS = "ambiguous"
    PROXY_EXISTS = "proxy_exists"
    NAME_EXISTS = "name_exists"
    UPN_EXISTS = "upn_exists"
    INVALID = "invalid"

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    initial_domain: str
    accepted_domains: tuple[str, ...]

    def matches(self, segment: str) -> bool:
        """Exchange and the token endpoint accept the tenant GUID or any accepted domain."""
        low = segment.lower()
        return low == self.id or low in self.accepted_domains or low in ("common", "organizations")

    def accepts(self, domain: str) -> bool:
        return domain.lower() in self.accepted_domains


def load_tenant(conn: sqlite3.Connection) -> Tenant | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'tenant'").fetchone()
    if row is None:
        return None
    data = json.loads(row[0])
    return Tenant(
        id=data["id"],
        name=data["name"],
        initial_domain=data["initial_domain"],
        accepted_domains=tuple(data["accepted_domains"]),
    )


def save_tenant(conn: sqlite3.Connection, tenant: Tenant) -> None:
    doc = {
        "id": tenant.id,
        "name": tenant.name,
        "initial_domain": tenant.initial_domain,
        "accepted_domains": list(tenant.accepted_domains),
    }
    set_meta(conn, "tenant", json.dumps(doc))


@dataclass
class DirObject:
    seq: int
    id: str
    kind: str
    upn: str | None
    display_name: str
    mail: str | None
    account_enabled: bool
    user_deleted: bool
    rtd: str | None
    name: str | None
    alias: str | None
    guid: str | None
    exchange_guid: str | None
    soft_deleted: bool
    when_soft_deleted: str | None
    created: str
    changed: str
    props: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: sqlite3.Row | Sequence[Any]) -> DirObject:
        return cls(
            seq=row[0],
            id=row[1],
            kind=row[2],
            upn=row[3],
            display_name=row[4],
            mail=row[5],
            account_enabled=bool(row[6]),
            user_deleted=bool(row[7]),
            rtd=row[8],
            name=row[9],
            alias=row[10],
            guid=row[11],
            exchange_guid=row[12],
            soft_deleted=bool(row[13]),
            when_soft_deleted=row[14],
            created=row[15],
            changed=row[16],
            props=json.loads(row[17]),
        )

    @property
    def is_mailbox(self) -> bool:
        return self.rtd in MAILBOX_TYPES

    @property
    def principal_name(self) -> str:
        """How permission rows name a trustee: the UPN for users, the Name for groups."""
        return (self.upn if self.kind == "user" else self.name) or self.display_name


Scope = Literal["live", "soft", "any"]


def get_by_seq(conn: sqlite3.Connection, seq: int) -> DirObject | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM objects WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else DirObject.from_row(row)


def get_many(conn: sqlite3.Connection, seqs: Iterable[int]) -> dict[int, DirObject]:
    wanted = sorted(set(seqs))
    if not wanted:
        return {}
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(f"SELECT {COLUMNS} FROM objects WHERE seq IN ({marks})", wanted)
    return {obj.seq: obj for obj in map(DirObject.from_row, rows)}


def strip_smtp(value: str) -> str:
    return value[5:] if value[:5].lower() == "smtp:" else value


def resolve(conn: sqlite3.Connection, identity: str, *, scope: Scope = "live") -> DirObject:
    """Resolve an Exchange identity (SMTP address, UPN, Guid, ExternalDirectoryObjectId,
    Name or Alias), case-insensitively, among recipients in ``scope``."""
    found = find_recipients(conn, identity, scope)
    if not found:
        raise DirectoryError(DirectoryError.NOT_FOUND, identity)
    if len(found) > 1:
        raise DirectoryError(DirectoryError.AMBIGUOUS, identity)
    return found[0]


def find_recipients(conn: sqlite3.Connection, identity: str, scope: Scope) -> list[DirObject]:
    text = identity.strip()
    low = text.lower()
    where = {"live": "AND o.soft_deleted = 0", "soft": "AND o.soft_deleted = 1", "any": ""}[scope]
    base = f"SELECT {O_COLUMNS} FROM objects o "
    cond = f"o.rtd IS NOT NULL {where}"
    if is_guid(text):
        g = low.strip("{}")
        rows = conn.execute(base + f"WHERE (o.id = ? OR o.guid = ? OR o.exchange_guid = ?) AND {cond}", (g, g, g))
    elif "@" in text:
        addr = strip_smtp(low)
        rows = conn.execute(
            base + f"JOIN addresses a ON a.object_seq = o.seq WHERE a.address_l = ? AND {cond} "
            f"UNION SELECT {O_COLUMNS} FROM objects o WHERE o.upn_l = ? AND {cond}",
            (addr, addr),
        )
    else:
        rows = conn.execute(base + f"WHERE o.name_l = ? AND {cond}", (low,))
        found = [DirObject.from_row(r) for r in rows]
        if found:
            return found
        rows = conn.execute(base + f"WHERE o.alias_l = ? AND {cond}", (low,))
    unique: dict[int, DirObject] = {}
    for row in rows:
        unique.setdefault(row[0], DirObject.from_row(row))
    return list(unique.values())


def get_user(conn: sqlite3.Connection, key: str) -> DirObject:
    """Graph addressing: ``/users/{id | userPrincipalName}`` among existing (not deleted) users."""
    low = key.strip().lower()
    column = "id" if is_guid(low) else "upn_l"
    row = conn.execute(
        f"SELECT {COLUMNS} FROM objects WHERE {column} = ? AND kind = 'user' AND user_deleted = 0", (low,)
    ).fetchone()
    if row is None:
        raise DirectoryError(DirectoryError.NOT_FOUND, key)
    return DirObject.from_row(row)


# ---------------------------------------------------------------- addresses


def addresses_of(conn: sqlite3.Connection, seqs: Iterable[int]) -> dict[int, list[str]]:
    """Prefixed proxy addresses (``SMTP:`` primary, ``smtp:`` secondary) per object, in order."""
    wanted = sorted(set(seqs))
    out: dict[int, list[str]] = {seq: [] for seq in wanted}
    if not wanted:
        return out
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT object_seq, address, is_primary FROM addresses WHERE object_seq IN ({marks}) "
        "ORDER BY object_seq, pos",
        wanted,
    )
    for seq, address, primary in rows:
        out[seq].append(("SMTP:" if primary else "smtp:") + address)
    return out


def parse_proxy(value: str, tenant: Tenant) -> tuple[str, bool]:
    """``SMTP:x`` is the primary, ``smtp:x`` (or a bare address) a secondary. Only SMTP
    proxies are modelled; other types (SIP:, X500:) are refused rather than silently dropped."""
    text = value.strip()
    prefix, sep, rest = text.partition(":")
    if sep and "@" not in prefix:
        if prefix.lower() != "smtp":
            raise DirectoryError(
                DirectoryError.INVALID, f'The proxy address type "{prefix}" isn\'t supported by the emulator.'
            )
        address, primary = rest, prefix == "SMTP"
    else:
        address, primary = text, False
    check_address(address, tenant)
    return address, primary


def check_address(address: str, tenant: Tenant) -> None:
    if not _ADDRESS_RE.match(address):
        raise DirectoryError(
            DirectoryError.INVALID,
            f'The email address "{address}" isn\'t correct. Please use this format: user name, the @ sign, '
            "followed by the domain name. For example, tonysmith@contoso.com or tony.smith@contoso.com.",
        )
    domain = address.rpartition("@")[2]
    if not tenant.accepts(domain):
        # [infer] wording of the real message for a domain outside the accepted domains.
        raise DirectoryError(
            DirectoryError.INVALID,
            f"The domain {domain} isn't an accepted domain for your organization, so it can't be used "
            f'for the email address "{address}".',
        )


def ensure_free(conn: sqlite3.Connection, address: str, owner_seq: int | None) -> None:
    row = conn.execute(
        "SELECT a.object_seq, o.name, o.display_name FROM addresses a JOIN objects o ON o.seq = a.object_seq "
        "WHERE a.address_l = ?",
        (address.lower(),),
    ).fetchone()
    if row is not None and row[0] != owner_seq:
        raise DirectoryError(
            DirectoryError.PROXY_EXISTS,
            f'The proxy address "SMTP:{address}" is already being used by the proxy addresses or '
            f'LegacyExchangeDN of "{row[1] or row[2]}". Please choose another proxy address.',
        )


def replace_addresses(conn: sqlite3.Connection, seq: int, wanted: Sequence[tuple[str, bool]]) -> str:
    """Make ``wanted`` the object's complete address list; returns the primary address.
    Proxy addresses are unique across every recipient, soft-deleted ones included."""
    seen: dict[str, tuple[str, bool]] = {}
    for address, primary in wanted:
        key = address.lower()
        prior = seen.get(key)
        seen[key] = (address, primary or (prior[1] if prior else False))
    primaries = [a for a, p in seen.values() if p]
    if len(primaries) != 1:
        raise DirectoryError(
            DirectoryError.INVALID,
            "The e-mail address list must contain exactly one primary SMTP address (prefix SMTP:)."
            if primaries
            else "The primary SMTP address must be specified (prefix SMTP:).",
        )
    for address, _ in seen.values():
        ensure_free(conn, address, seq)
    conn.execute("DELETE FROM addresses WHERE object_seq = ?", (seq,))
    conn.executemany(
        "INSERT INTO addresses(address_l, address, object_seq, is_primary, pos) VALUES (?, ?, ?, ?, ?)",
        [(a.lower(), a, seq, int(p), i) for i, (a, p) in enumerate(seen.values())],
    )
    conn.execute("UPDATE objects SET mail = ? WHERE seq = ?", (primaries[0], seq))
    return primaries[0]


def free_system_address(conn: sqlite3.Connection, alias: str, tenant: Tenant) -> str:
    """``alias@initial-domain``, numbered like an address policy does when it is taken."""
    n = 0
    while True:
        candidate = f"{alias}{n or ''}@{tenant.initial_domain}"
        if conn.execute("SELECT 1 FROM addresses WHERE address_l = ?", (candidate.lower(),)).fetchone() is None:
            return candidate
        n = n + 2 if n else 2


# ---------------------------------------------------------------- objects


def insert_object(
    conn: sqlite3.Connection,
    *,
    kind: str,
    display_name: str,
    upn: str | None = None,
    account_enabled: bool = True,
    rtd: str | None = None,
    name: str | None = None,
    alias: str | None = None,
    object_id: str | None = None,
    addresses: Sequence[tuple[str, bool]] = (),
    props: dict[str, Any] | None = None,
) -> DirObject:
    """Create a directory object, enforcing UPN, Name and proxy-address uniqueness."""
    if upn and conn.execute("SELECT 1 FROM objects WHERE upn_l = ?", (upn.lower(),)).fetchone():
        raise DirectoryError(
            DirectoryError.UPN_EXISTS,
            f"Another object with the same value for property userPrincipalName already exists: {upn}",
        )
    if name and rtd and conn.execute(
        "SELECT 1 FROM objects WHERE name_l = ? AND rtd IS NOT NULL AND soft_deleted = 0", (name.lower(),)
    ).fetchone():
        raise DirectoryError(DirectoryError.NAME_EXISTS,
                             f'The name "{name}" is already being used. Please try another name.')
    # Exchange Online also refuses an alias another recipient has (its admin center: "The
    # user name or alias ... must be unique"); the exact text here is [infer].
    holder = conn.execute(
        "SELECT name, display_name FROM objects WHERE alias_l = ? AND rtd IS NOT NULL AND soft_deleted = 0",
        (alias.lower() if alias else None,),
    ).fetchone() if alias and rtd else None
    if holder is not None:
        raise DirectoryError(DirectoryError.NAME_EXISTS,
                             f'The alias "{alias}" is already being used by "{holder[0] or holder[1]}". '
                             "Please try another alias.")
    now = stamp()
    oid = (object_id or new_guid()).lower()
    is_recipient = rtd is not None
    guid = new_guid() if is_recipient else None
    xguid = (new_guid() if rtd in MAILBOX_TYPES else "00000000-0000-0000-0000-000000000000") if is_recipient else None
    cur = conn.execute(
        "INSERT INTO objects(id, kind, upn, upn_l, display_name, mail, account_enabled, rtd, name, name_l, "
        "alias, alias_l, guid, exchange_guid, created, changed, props) "
        "VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            oid, kind, upn, upn.lower() if upn else None, display_name, int(account_enabled), rtd,
            name, name.lower() if name else None, alias, alias.lower() if alias else None,
            guid, xguid, now, now, json.dumps(props or {}),
        ),
    )
    seq = int(cur.lastrowid or 0)
    if addresses:
        replace_addresses(conn, seq, addresses)
    obj = get_by_seq(conn, seq)
    assert obj is not None
    return obj


def update_object(conn: sqlite3.Connection, obj: DirObject, **columns: Any) -> None:
    """Write changed columns (and props) back, bumping ``changed``."""
    columns["changed"] = stamp()
    if "props" in columns:
        columns["props"] = json.dumps(columns["props"])
    for lowered in ("upn", "name", "alias"):
        if lowered in columns:
            value = columns[lowered]
            columns[f"{lowered}_l"] = value.lower() if value else None
    assignments = ", ".join(f"{key} = ?" for key in columns)
    conn.execute(f"UPDATE objects SET {assignments} WHERE seq = ?", (*columns.values(), obj.seq))


def stable_object_id(tenant: Tenant, key: str) -> str:
    return stable_guid(tenant.id, key.lower())


# ---------------------------------------------------------------- Entra audit trail


def initiated_by(caller: Caller | None) -> dict[str, Any]:
    """``initiatedBy`` of a directoryAudit. ``None`` means Exchange did it on someone's behalf."""
    if caller is None:
        app = {"appId": EXCHANGE_APP_ID, "displayName": EXCHANGE_APP_NAME,
               "servicePrincipalId": stable_guid("sp", EXCHANGE_APP_ID), "servicePrincipalName": None}
        return {"user": None, "app": app}
    if caller.upn:
        user = {"id": caller.user_id, "displayName": None, "userPrincipalName": caller.upn,
                "ipAddress": "127.0.0.1", "userType": "Member", "homeTenantId": caller.tenant_id,
                "homeTenantName": None}
        return {"user": user, "app": None}
    app = {"appId": caller.app_id, "displayName": caller.app_name,
           "servicePrincipalId": stable_guid("sp", caller.app_id), "servicePrincipalName": None}
    return {"user": None, "app": app}


def record_directory_audit(
    conn: sqlite3.Connection,
    *,
    activity: str,
    operation: str,
    target: DirObject,
    caller: Caller | None,
    modified: Sequence[tuple[str, Any, Any]] = (),
) -> None:
    """Append a directoryAudit entry. Values use Entra's JSON-array-in-a-string format
    (``"[true]"``), which is [infer] from what the portal shows."""
    now = stamp()
    correlation = new_guid()
    doc = {
        "id": f"Directory_{correlation}_{new_guid()[:8].upper()}",
        "category": "UserManagement",
        "correlationId": correlation,
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": now,
        "loggedByService": "Core Directory",
        "operationType": operation,
        "initiatedBy": initiated_by(caller),
        "targetResources": [{
            "id": target.id, "displayName": None, "type": "User", "userPrincipalName": target.upn,
            "groupType": None,
            "modifiedProperties": [
                {"displayName": prop, "oldValue": None if old is None else json.dumps([old]),
                 "newValue": None if new is None else json.dumps([new])}
                for prop, old, new in modified
            ],
        }],
        "additionalDetails": [{"key": "UserType", "value": "Member"}],
    }
    conn.execute(
        "INSERT INTO directory_audit(activity_dt, target_id, doc) VALUES (?, ?, ?)",
        (now, target.id, json.dumps(doc)),
    )


# ---------------------------------------------------------------- group membership

# One membership store for both services: a group's direct members are object ids in its ``props``
# ("members"), in the order they were added. Graph's members/transitiveMembers/transitiveMemberOf read it;
# a deleted user drops out of every listing as Entra leaves it (the id stays, restorable, but is not shown).


def direct_member_ids(group: DirObject) -> list[str]:
    return [str(m) for m in group.props.get("members") or []]


def _live_by_id(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, DirObject]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT {COLUMNS} FROM objects WHERE id IN ({marks}) AND user_deleted = 0 "
                        "AND soft_deleted = 0", list(ids))
    return {obj.id: obj for obj in map(DirObject.from_row, rows)}


def group_members(conn: sqlite3.Connection, group: DirObject, transitive: bool = False) -> list[DirObject]:
    """A group's members (users and groups), direct or, with ``transitive``, through nested groups: each
    object once, breadth first, as Graph's flat transitiveMembers list has them."""
    seen: dict[str, DirObject] = {}
    frontier = [group]
    while frontier:
        wanted = [i for g in frontier for i in direct_member_ids(g) if i not in seen and i != group.id]
        found = _live_by_id(conn, list(dict.fromkeys(wanted)))
        nxt = []
        for oid in dict.fromkeys(wanted):
            obj = found.get(oid)
            if obj is not None and oid not in seen:
                seen[oid] = obj
                if obj.kind == "group":
                    nxt.append(obj)
        frontier = nxt if transitive else []
    return list(seen.values())


def member_of(conn: sqlite3.Connection, obj: DirObject, transitive: bool = False) -> list[DirObject]:
    """The groups ``obj`` is a member of: direct, or with ``transitive`` through nested groups too."""
    groups = [DirObject.from_row(r) for r in conn.execute(
        f"SELECT {COLUMNS} FROM objects WHERE kind = 'group' AND soft_deleted = 0 ORDER BY seq")]
    parents: dict[str, list[DirObject]] = {}
    for g in groups:
        for m in direct_member_ids(g):
            parents.setdefault(m, []).append(g)
    seen: dict[str, DirObject] = {}
    frontier = [obj.id]
    while frontier:
        nxt = []
        for oid in frontier:
            for g in parents.get(oid, []):
                if g.id not in seen and g.id != obj.id:
                    seen[g.id] = g
                    nxt.append(g.id)
        frontier = nxt if transitive else []
    return list(seen.values())


def add_member(conn: sqlite3.Connection, group: DirObject, member: DirObject) -> None:
    """Add a direct member. Refused as Entra refuses it: a member already there, the group itself, or a
    nesting that would make a cycle (the group would become its own member)."""
    if group.kind != "group":
        raise DirectoryError(DirectoryError.INVALID, f"{group.display_name} is not a group.")
    ids = direct_member_ids(group)
    if member.id in ids:
        raise DirectoryError(DirectoryError.INVALID, "One or more added object references already exist for the "
                             "following modified properties: 'members'.")
    if member.id == group.id or (member.kind == "group" and group.id in
                                 {g.id for g in group_members(conn, member, transitive=True)}):
        # [infer] wording: Entra refuses a group nested in itself, directly or through another group.
        raise DirectoryError(DirectoryError.INVALID, "A group cannot be a member of itself, directly or through "
                             "nested groups.")
    update_object(conn, group, props={**group.props, "members": [*ids, member.id]})
    group.props = {**group.props, "members": [*ids, member.id]}
