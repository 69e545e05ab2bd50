"""The Exchange side of bootstrap: each identity's service principal registered in Exchange, the shared
mailboxes' management scope, and exactly the role assignments ``identities.py`` declares.

``wanted`` and ``changes`` are pure; ``read`` and ``apply`` are the only I/O, through mailroom's own
Exchange client (the same InvokeCommand transport, pacing and retries as every mailbox change). Least
privilege is kept, not only reached: a role assignment on one of mailroom's service principals that the
declaration does not hold (added by hand, or left from an older declaration) is removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mailroom.bootstrap.identities import IDENTITIES, Identity, Scope
from mailroom.errors import NotFound, TenantError
from mailroom.m365.exchange import ExchangeClient


@dataclass(frozen=True)
class Principal:
    """An identity as Entra knows it: its application (client) id and its service principal's object id."""

    identity: Identity
    app_id: str
    object_id: str


@dataclass(frozen=True)
class Assignment:
    app_id: str
    role: str
    scope: str | None  # the write scope's name; None: the organisation

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.app_id.lower(), self.role.lower(), (self.scope or "").lower())


@dataclass(frozen=True)
class Wanted:
    principals: tuple[Principal, ...]
    scopes: tuple[Scope, ...]
    assignments: tuple[tuple[Principal, str, Assignment], ...]  # (principal, assignment name, assignment)


@dataclass(frozen=True)
class Live:
    principals: frozenset[str]  # app ids (lower case) registered in Exchange
    scopes: dict[str, str]  # scope name (lower) -> its filter
    assignments: tuple[tuple[str, Assignment], ...]  # (assignment name, assignment) on mailroom's principals


@dataclass(frozen=True)
class Change:
    """One line of the plan: ``op`` is ``+``, ``-`` or ``~``; ``cmdlet`` and ``params`` are how apply makes it."""

    op: str
    kind: str  # "service principal" | "management scope" | "role assignment"
    identity: str  # the identity's display name, or "" for a scope
    subject: str
    detail: str
    cmdlet: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "kind": self.kind, "identity": self.identity, "subject": self.subject,
                "detail": self.detail, "cmdlet": self.cmdlet}


def wanted(principals: Iterable[Principal]) -> Wanted:
    chosen = tuple(principals)
    scopes = {r.write_scope.name: r.write_scope for p in chosen for r in p.identity.exchange_roles if r.write_scope}
    assignments = tuple((p, p.identity.assignment_name(r),
                         Assignment(p.app_id, r.role, r.write_scope.name if r.write_scope else None))
                        for p in chosen for r in p.identity.exchange_roles)
    return Wanted(chosen, tuple(scopes.values()), assignments)


def _scope_detail(scope: str | None) -> str:
    return f"write scope {scope}" if scope else "organisation-wide (read only)"


def changes(want: Wanted, live: Live) -> list[Change]:
    """What apply does, in the order it does it: principals and scopes first, removals before additions."""
    out: list[Change] = []
    for p in want.principals:
        if p.app_id.lower() not in live.principals:
            out.append(Change("+", "service principal", p.identity.display_name, p.app_id,
                              f"object id {p.object_id}", "New-ServicePrincipal",
                              {"AppId": p.app_id, "ObjectId": p.object_id, "DisplayName": p.identity.display_name}))
    for s in want.scopes:
        now = live.scopes.get(s.name.lower())
        if now is None:
            out.append(Change("+", "management scope", "", s.name, s.filter, "New-ManagementScope",
                              {"Name": s.name, "RecipientRestrictionFilter": s.filter}))
        elif now != s.filter:
            out.append(Change("~", "management scope", "", s.name, f"{now} → {s.filter}", "Set-ManagementScope",
                              {"Identity": s.name, "RecipientRestrictionFilter": s.filter}))
    names = {p.app_id.lower(): p.identity.display_name for p in want.principals}
    keep = {a.key for _, _, a in want.assignments}
    for name, a in live.assignments:
        if a.key not in keep:
            out.append(Change("-", "role assignment", names.get(a.app_id.lower(), a.app_id), a.role,
                              _scope_detail(a.scope), "Remove-ManagementRoleAssignment",
                              {"Identity": name, "Confirm": False}))
    have = {a.key for _, a in live.assignments}
    for p, name, a in want.assignments:
        if a.key not in have:
            params: dict[str, Any] = {"Name": name, "Role": a.role, "App": p.object_id}
            if a.scope:
                params["CustomRecipientWriteScope"] = a.scope
            out.append(Change("+", "role assignment", p.identity.display_name, a.role, _scope_detail(a.scope),
                              "New-ManagementRoleAssignment", params))
    return out


async def read(exchange: ExchangeClient, want: Wanted) -> Live:
    """What Exchange holds of ``want``: registered principals, the scopes, their role assignments."""
    sps = (await exchange.invoke("Get-ServicePrincipal")).value
    ours = {str(p.app_id).lower() for p in want.principals}
    registered = {str(r.get("AppId") or "").lower(): r for r in sps if str(r.get("AppId") or "").lower() in ours}
    scopes = {str(r.get("Name") or "").lower(): str(r.get("RecipientFilter") or "")
              for r in (await exchange.invoke("Get-ManagementScope")).value}
    assignments: list[tuple[str, Assignment]] = []
    for app_id, row in sorted(registered.items()):
        try:
            rows = (await exchange.invoke("Get-ManagementRoleAssignment", {"App": row.get("ObjectId")})).value
        except NotFound:  # removed between the two reads
            continue
        assignments += [(str(r.get("Name")), Assignment(app_id, str(r.get("Role")),
                                                        r.get("CustomRecipientWriteScope") or None)) for r in rows]
    return Live(frozenset(registered), scopes, tuple(assignments))


Record = Callable[[Change, "str | None"], None]


async def apply(exchange: ExchangeClient, todo: Iterable[Change], record: Record | None = None) -> list[Change]:
    """Make each change in order, telling ``record`` of each (with the error of a failed one); stops at the
    first failure and raises it. Re-running converges: the next plan reads what was made."""
    done: list[Change] = []
    for change in todo:
        try:
            await exchange.invoke(change.cmdlet, change.params)
        except TenantError as exc:
            if record:
                record(change, str(exc))
            raise
        if record:
            record(change, None)
        done.append(change)
    return done


def local_principals(client_ids: dict[str, str], object_id: Any) -> tuple[Principal, ...]:
    """The local tenant's stand-ins: fixed client ids, and ``object_id(client_id)`` for their objects."""
    return tuple(Principal(i, client_ids[i.key], object_id(client_ids[i.key])) for i in IDENTITIES)
