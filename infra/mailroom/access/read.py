"""The reads behind ``who`` and ``revoke``: one bulk scan of every shared mailbox, managed or not, and the
person's groups in one listing. No request per mailbox beyond the scan's own (``reconcile.bulk``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mailroom.access.index import Access, for_person, grants
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.errors import GraphError, TenantError
from mailroom.m365.directory import Directory
from mailroom.m365.tenant import Tenant
from mailroom.reconcile import bulk


class PersonNotFound(TenantError):
    """The tenant knows no recipient by that name (and the files do not name one)."""


@dataclass(frozen=True)
class Person:
    query: str  # as given on the command line
    id: str  # Entra object id; the address key when unknown to the tenant
    address: str  # primary SMTP address
    name: str
    kind: str  # RecipientTypeDetails, "" when unknown
    keys: frozenset[str]  # every spelling that names the person, case-folded

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "id": self.id, "address": self.address, "name": self.name, "kind": self.kind,
                "spellings": sorted(self.keys)}

    @classmethod
    def offline(cls, query: str) -> Person:
        """The person as written (no tenant read): only this spelling is matched."""
        key = smtp_key(query)
        return cls(query, key, query.strip(), "", "", frozenset({key}))


@dataclass
class Found:
    """One person's access, and what the reads covered."""

    person: Person
    access: list[Access]
    groups: list[dict[str, Any]] = field(default_factory=list)  # the person's groups: {id, name, mail}
    groups_unread: str = ""  # why group membership was not read ("" when it was)
    stats: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # mailbox → why it could not be read


def ident_of(directory: Directory) -> Callable[[str], str]:
    """An address → its principal's object id (else its address key): one key per principal."""
    def ident(address: str) -> str:
        found = directory.lookup(address)
        return found.id if found is not None else smtp_key(address)
    return ident


def resolve(directory: Directory, query: str) -> Person:
    found = directory.lookup(query)
    if found is None:
        raise PersonNotFound(f"{query}: no recipient of the tenant has this address, alias or name")
    return Person(query, found.id, found.primary_smtp, found.name, found.kind, frozenset(found.keys))


async def read_person(tenant: Tenant, desired: Desired, query: str,
                      progress: bulk.Progress | None = None) -> Found:
    """Every mailbox ``query`` can open or send as: the bulk scan (unmanaged mailboxes included), the person
    resolved from the directory it preloads, and the person's groups (nested) in one Graph listing, with one
    memberOf listing per group for the chain."""
    result = await bulk.scan(tenant, desired, progress, others=lambda _key: True)
    directory = tenant.directory
    person = resolve(directory, query)
    parents: dict[str, list[str]] = {}
    groups: list[dict[str, Any]] = []
    unread = ""
    try:
        rows = await tenant.graph.transitive_member_of(person.id)
    except GraphError as exc:  # no GroupMember.Read.All, or a service without the listing: said, not hidden
        unread = f"group membership could not be read ({exc.status} {exc.code})"
    else:
        groups = [_group(directory, r) for r in rows]
        parents = await _nesting(tenant, person.id, [g["id"] for g in groups])
    names = {g["id"]: g["mail"] or g["name"] for g in groups}
    ident = ident_of(directory)
    every = grants(desired, result.live, ident)
    mine = for_person(every, [person.id], parents, ident, lambda k: names.get(k, k))
    stats = {"mailboxes": len(result.rows), "managed": len(desired.mailboxes), "unmanaged": len(result.unmanaged),
             "errors": len(result.errors), "exchange_requests": tenant.transport.stats.requests,
             "graph_requests": tenant.graph.requests}
    return Found(person, mine, groups, unread, stats, dict(result.errors))


def _group(directory: Directory, row: dict[str, Any]) -> dict[str, Any]:
    """A group of the listing: {id, name, mail}. With User.Read.All but no GroupMember.Read.All, Graph gives the
    id alone (other properties null): the name and address then come from the directory already read."""
    gid = str(row.get("id") or "")
    known = directory.lookup(gid) if gid else None
    return {"id": gid, "name": str(row.get("displayName") or (known.name if known else "")),
            "mail": str(row.get("mail") or (known.primary_smtp if known else ""))}


async def _nesting(tenant: Tenant, person_id: str, group_ids: list[str]) -> dict[str, list[str]]:
    """principal → the groups it is a direct member of, for the person and each of the person's groups:
    the chain ``who`` shows (finance-team <- payroll-team). Graph lists transitive groups flat, so each step
    is one memberOf listing per group the person is in (not per mailbox). If a step cannot be read, every
    group is put one step from the person: the access is still found, its chain is shorter."""
    if not group_ids:
        return {}
    mine = set(group_ids)
    try:
        ups = await asyncio.gather(tenant.graph.member_of(person_id),
                                   *(tenant.graph.member_of(g, group=True) for g in group_ids))
    except GraphError:
        return {person_id: list(group_ids)}
    ids = [[str(r.get("id") or "") for r in rows] for rows in ups]
    return {k: [g for g in found if g in mine] for k, found in zip([person_id, *group_ids], ids, strict=True)}


def offline(desired: Desired, query: str) -> Found:
    """``query``'s grants as the files write them, without reading the tenant (by that spelling only)."""
    person = Person.offline(query)
    every = grants(desired, None, smtp_key)
    return Found(person, for_person(every, person.keys, {}, smtp_key), [], "the tenant was not read (--offline)")
