"""Exchange role-based access control for applications: which cmdlets an app may run, and on what.

What Exchange Online does, and what the local tenant does with it:

- An app signs in with ``Exchange.ManageAsApp`` and then needs *either* an Entra directory role
  (Exchange Administrator: every cmdlet, organisation-wide) *or* Exchange RBAC: a service principal
  registered in Exchange (``New-ServicePrincipal``) with management role assignments
  (``New-ManagementRoleAssignment -App``), each optionally bound to a recipient write scope
  (``New-ManagementScope -RecipientRestrictionFilter``, then ``-CustomRecipientWriteScope``).
  [doc: "App-only authentication in Exchange Online PowerShell", section "Assign custom Exchange
  Online role groups to the application using service principals"; New-ServicePrincipal]
- An app with neither gets 403 with a body that is not JSON; so does a cmdlet outside the app's roles
  (to the caller it does not exist) [wire reference A.2, measured by graph2otel].
- A write whose object is outside every write scope of the roles that hold the cmdlet fails with
  ``System.InvalidOperationException`` "The operation on mailbox "X" failed because it's out of the
  current user's write scope." [text: Exchange 2010 RBAC KB and EXO REST-mode output quoted by
  easy365manager; the HTTP status (400) is inferred, as for other cmdlet errors]. The write is not made.

The local tenant enforces this for **registered** apps: an app with a service principal in Exchange gets
exactly its role assignments. An app that is not registered stands for the admin's own tools and holds
the Exchange Administrator directory role by default, so every client id keeps working as before
(tests, the embedded tenant's ``mailroom-local``). ``PUT /_emulator/rbac {"unregistered_apps":
"refused"}`` makes the tenant strict: then an unregistered app is refused as Exchange refuses it.
Delegated (user) tokens are not restricted: the local tenant models no user RBAC.

Roles and their cmdlets (only the cmdlets the local tenant implements). Sources: M365DSC's
settings.json per resource (EXOMailboxPermission: Mail Recipients, View-Only Recipients;
EXORecipientPermission: Mail Recipients) and Exchange's built-in role descriptions. [uncertain]
Get-RecipientPermission in View-Only Recipients: M365DSC lists only Mail Recipients for reading it; the
local tenant follows the role's description ("view recipient configuration") and says so here.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from localtenant.common import Caller, new_guid, stamp
from localtenant.directory import DirObject
from localtenant.exchange import cmdlets
from localtenant.exchange.cmdlets import Cmdlet, Ctx, Result
from localtenant.exchange.models import CmdletError
from localtenant.exchange.params import Params, binding_error

# [uncertain] Get-/Set-CASMailbox and the *-InboxRule writes: by the roles' descriptions (recipient
# configuration), no per-cmdlet source found. Get-InboxRule is documented: its page says it does not work for
# View-Only Organization Management, so no view-only role holds it here; Mail Recipients does.
# Folder permissions: read with View-Only Recipients, written with Mail Recipients (M365DSC's settings.json for
# EXOMailboxFolderPermission, exchange-features.md §1); [uncertain] Get-MailboxFolderStatistics and
# Set-MailboxRegionalConfiguration by the roles' descriptions.
_READ_RECIPIENTS = ("Get-Mailbox", "Get-Recipient", "Get-MailboxPermission", "Get-RecipientPermission",
                    "Get-CASMailbox", "Get-MailboxFolderStatistics", "Get-MailboxFolderPermission")
_RBAC = ("New-ServicePrincipal", "Get-ServicePrincipal", "Remove-ServicePrincipal", "New-ManagementScope",
         "Get-ManagementScope", "Set-ManagementScope", "New-ManagementRoleAssignment",
         "Get-ManagementRoleAssignment", "Remove-ManagementRoleAssignment")
ROLES: dict[str, frozenset[str]] = {name: frozenset(c.lower() for c in cmds) for name, cmds in {
    "View-Only Recipients": _READ_RECIPIENTS,
    "Mail Recipients": (*_READ_RECIPIENTS, "Set-Mailbox", "Add-MailboxPermission", "Remove-MailboxPermission",
                        "Add-RecipientPermission", "Remove-RecipientPermission", "Set-CASMailbox",
                        "Get-InboxRule", "New-InboxRule", "Set-InboxRule", "Remove-InboxRule", "Enable-InboxRule",
                        "Disable-InboxRule", "Add-MailboxFolderPermission", "Set-MailboxFolderPermission",
                        "Remove-MailboxFolderPermission", "Set-MailboxRegionalConfiguration"),
    "Mail Recipient Creation": ("Get-Mailbox", "Get-Recipient", "New-Mailbox", "Remove-Mailbox", "New-MailContact",
                                "New-MailUser"),
    "View-Only Configuration": ("Get-AcceptedDomain",),
    # Their only cmdlet here, Search-AdminAuditLog, is retired (2024-09-15); the roles stay assignable (and
    # removable), and their other cmdlets (Search-UnifiedAuditLog ...) are not in the local tenant.
    "View-Only Audit Logs": (),
    "Audit Logs": (),
    "Role Management": _RBAC,
}.items()}
UNREGISTERED = ("exchange-admin", "refused")  # what an app without a service principal gets
_POLICY_KEY = "rbac_unregistered_apps"
OUT_OF_SCOPE = "The operation on mailbox \"{0}\" failed because it's out of the current user's write scope."



# ---------------------------------------------------------------- recipient filters (OPATH subset)

_CLAUSE = re.compile(r"^\s*(\w+)\s+-(eq|ne)\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_JOIN = re.compile(r"\s+-(and|or)\s+", re.IGNORECASE)
FILTER_PROPERTIES = ("RecipientTypeDetails", "Name", "Alias", "DisplayName",
                     *(f"CustomAttribute{i}" for i in range(1, 16)))


@dataclass(frozen=True)
class Clause:
    prop: str
    equal: bool
    value: str


def parse_filter(text: str) -> list[list[Clause]]:
    """``A -eq 'x' -and B -ne 'y' -or C -eq 'z'`` → OR of ANDs. The local tenant supports this subset
    of OPATH (no parentheses, no wildcards); anything else is refused, never guessed."""
    groups: list[list[Clause]] = [[]]
    parts = _JOIN.split(text.strip().removeprefix("(").removesuffix(")"))
    for i, part in enumerate(parts):
        if i % 2 == 1:
            if part.lower() == "or":
                groups.append([])
            continue
        m = _CLAUSE.match(part)
        props = {p.lower(): p for p in FILTER_PROPERTIES}
        if m is None or m.group(1).lower() not in props:
            raise binding_error(f"Invalid filter syntax: \"{text}\". The local tenant supports Property -eq|-ne "
                                f"'value' joined by -and/-or, on {', '.join(FILTER_PROPERTIES[:5])} and "
                                "CustomAttribute1..15.")
        groups[-1].append(Clause(props[m.group(1).lower()], m.group(2).lower() == "eq", m.group(3).replace("''", "'")))
    return groups


def _value(obj: DirObject, prop: str) -> str:
    if prop == "RecipientTypeDetails":
        return obj.rtd or ""
    if prop in ("Name", "Alias", "DisplayName"):
        return str({"Name": obj.name, "Alias": obj.alias, "DisplayName": obj.display_name}[prop] or "")
    return str(obj.props.get(prop) or "")


def matches(text: str, obj: DirObject) -> bool:
    """OPATH comparisons are case-insensitive, as Exchange's are."""
    return any(all((_value(obj, c.prop).lower() == c.value.lower()) == c.equal for c in group)
               for group in parse_filter(text))


# ---------------------------------------------------------------- the caller's grants


@dataclass(frozen=True)
class Grant:
    role: str
    scope_filter: str | None  # None: the organisation


@dataclass(frozen=True)
class Grants:
    """What a registered app holds; ``None`` in place of Grants means unrestricted."""

    app_id: str
    grants: tuple[Grant, ...]

    def allows(self, cmdlet: str) -> bool:
        return any(cmdlet.lower() in ROLES.get(g.role, frozenset()) for g in self.grants)

    def may_write(self, cmdlet: str, target: DirObject) -> bool:
        return any(cmdlet.lower() in ROLES.get(g.role, frozenset())
                   and (g.scope_filter is None or matches(g.scope_filter, target)) for g in self.grants)


class Refused(Exception):
    """The app may not run the cmdlet at all: Exchange's non-JSON 403."""


def grants_for(conn: sqlite3.Connection, caller: Caller) -> Grants | None:
    """The caller's grants, or None when it is unrestricted; raises Refused for a refused app."""
    if caller.upn:
        return None
    registered = conn.execute("SELECT 1 FROM service_principals WHERE app_id_l = ?",
                              (caller.app_id.lower(),)).fetchone()
    if registered is None:
        if unregistered_policy(conn) == "refused":
            raise Refused(caller.app_id)
        return None
    rows = conn.execute(
        "SELECT a.role, s.filter FROM role_assignments a LEFT JOIN management_scopes s ON s.name_l = a.write_scope_l "
        "WHERE a.app_id_l = ?", (caller.app_id.lower(),)).fetchall()
    return Grants(caller.app_id, tuple(Grant(r[0], r[1]) for r in rows))


def check_write(grants: Grants | None, cmdlet: str, target: DirObject | None) -> None:
    """Raise Exchange's write-scope error when ``target`` is outside every scope for ``cmdlet``;
    called inside the write's transaction, so the refused write is rolled back."""
    if grants is None or target is None or not target.is_mailbox:
        return
    if not grants.may_write(cmdlet, target):
        raise CmdletError(400, "System.InvalidOperationException", OUT_OF_SCOPE.format(target.name))


def unregistered_policy(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_POLICY_KEY,)).fetchone()
    return str(row[0]) if row else UNREGISTERED[0]


def set_unregistered_policy(conn: sqlite3.Connection, value: str) -> None:
    if value not in UNREGISTERED:
        raise ValueError(f"unregistered_apps must be one of {', '.join(UNREGISTERED)}")
    conn.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                 (_POLICY_KEY, value))


# ---------------------------------------------------------------- the RBAC cmdlets

_NOT_FOUND = cmdlets.not_found_error


def _exists(text: str) -> CmdletError:
    # [uncertain] exact text; the type is the one Exchange uses for duplicate configuration objects.
    return CmdletError(400, "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException", text)


def _sp_row(row: sqlite3.Row) -> dict[str, Any]:
    # [infer] property set: the documented parameters of New-ServicePrincipal, Identity = ObjectId.
    return {"Identity": row["object_id"], "Name": row["object_id"], "DisplayName": row["display_name"],
            "AppId": row["app_id"], "ObjectId": row["object_id"], "ServiceId": row["service_id"],
            "WhenCreatedUTC": row["created"]}


def _find_sp(conn: sqlite3.Connection, identity: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM service_principals WHERE app_id_l = ?1 OR lower(object_id) = ?1 "
                       "OR lower(service_id) = ?1 OR lower(display_name) = ?1", (identity.lower(),)).fetchone()
    if row is None:
        raise _NOT_FOUND(identity)
    return row


def new_service_principal(ctx: Ctx, p: Params) -> Result:
    app_id, object_id = p.require("AppId"), p.require("ObjectId")
    if ctx.conn.execute("SELECT 1 FROM service_principals WHERE app_id_l = ?", (app_id.lower(),)).fetchone():
        raise _exists(f"A service principal with AppId '{app_id}' already exists.")
    ctx.conn.execute("INSERT INTO service_principals VALUES (?, ?, ?, ?, ?, ?)",
                     (app_id.lower(), app_id, object_id, p.string("ServiceId") or object_id,
                      p.string("DisplayName") or app_id, stamp()))
    return Result(rows=[_sp_row(_find_sp(ctx.conn, app_id))])


def get_service_principal(ctx: Ctx, p: Params) -> Result:
    identity = p.string("Identity")
    if identity is not None:
        return Result(rows=[_sp_row(_find_sp(ctx.conn, identity))])
    rows = ctx.conn.execute("SELECT * FROM service_principals ORDER BY created, app_id_l").fetchall()
    return Result(rows=[_sp_row(r) for r in rows])


def remove_service_principal(ctx: Ctx, p: Params) -> Result:
    row = _find_sp(ctx.conn, p.require("Identity"))
    ctx.conn.execute("DELETE FROM service_principals WHERE app_id_l = ?", (row["app_id_l"],))
    return Result()


def _scope_row(row: sqlite3.Row) -> dict[str, Any]:
    return {"Identity": row["name"], "Name": row["name"], "RecipientFilter": row["filter"],
            "RecipientRoot": None, "ScopeRestrictionType": "RecipientScope", "Exclusive": False,
            "Guid": row["guid"]}


def _find_scope(conn: sqlite3.Connection, identity: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM management_scopes WHERE name_l = ?", (identity.lower(),)).fetchone()
    if row is None:
        raise _NOT_FOUND(identity)
    return row


def new_management_scope(ctx: Ctx, p: Params) -> Result:
    name, text = p.require("Name"), p.require("RecipientRestrictionFilter")
    parse_filter(text)
    if ctx.conn.execute("SELECT 1 FROM management_scopes WHERE name_l = ?", (name.lower(),)).fetchone():
        raise _exists(f"The management scope '{name}' already exists.")
    ctx.conn.execute("INSERT INTO management_scopes VALUES (?, ?, ?, ?)", (name.lower(), name, text, new_guid()))
    return Result(rows=[_scope_row(_find_scope(ctx.conn, name))])


def get_management_scope(ctx: Ctx, p: Params) -> Result:
    identity = p.string("Identity")
    if identity is not None:
        return Result(rows=[_scope_row(_find_scope(ctx.conn, identity))])
    return Result(rows=[_scope_row(r) for r in ctx.conn.execute("SELECT * FROM management_scopes ORDER BY name_l")])


def set_management_scope(ctx: Ctx, p: Params) -> Result:
    row = _find_scope(ctx.conn, p.require("Identity"))
    text = p.string("RecipientRestrictionFilter")
    if text is None or text == row["filter"]:
        return Result(warnings=[cmdlets.NO_CHANGE.format(row["name"])])
    parse_filter(text)
    ctx.conn.execute("UPDATE management_scopes SET filter = ? WHERE name_l = ?", (text, row["name_l"]))
    return Result()


def _assignment_row(row: sqlite3.Row) -> dict[str, Any]:
    scoped = row["scope_name"] is not None
    return {"Identity": row["name"], "Name": row["name"], "Role": row["role"], "RoleAssignee": row["object_id"],
            "RoleAssigneeName": row["display_name"], "RoleAssigneeType": "ServicePrincipal", "App": row["app_id"],
            "RecipientWriteScope": "CustomRecipientScope" if scoped else "Organization",
            "CustomRecipientWriteScope": row["scope_name"], "Enabled": True, "Guid": row["guid"]}


_ASSIGNMENTS = ("SELECT a.name, a.role, a.guid, a.name_l, sp.app_id, sp.object_id, sp.display_name, "
                "s.name AS scope_name FROM role_assignments a JOIN service_principals sp ON sp.app_id_l = a.app_id_l "
                "LEFT JOIN management_scopes s ON s.name_l = a.write_scope_l")


def new_management_role_assignment(ctx: Ctx, p: Params) -> Result:
    role = next((r for r in ROLES if r.lower() == p.require("Role").lower()), None)
    if role is None:
        raise _NOT_FOUND(p.require("Role"))
    sp = _find_sp(ctx.conn, p.require("App"))
    scope_name = p.string("CustomRecipientWriteScope")
    scope = _find_scope(ctx.conn, scope_name) if scope_name else None
    name = p.string("Name") or f"{role}-{sp['display_name']}"[:64]
    if ctx.conn.execute("SELECT 1 FROM role_assignments WHERE name_l = ?", (name.lower(),)).fetchone():
        raise _exists(f"The role assignment '{name}' already exists.")
    ctx.conn.execute("INSERT INTO role_assignments VALUES (?, ?, ?, ?, ?, ?)",
                     (name.lower(), name, role, sp["app_id_l"], scope["name_l"] if scope else None, new_guid()))
    row = ctx.conn.execute(_ASSIGNMENTS + " WHERE a.name_l = ?", (name.lower(),)).fetchone()
    return Result(rows=[_assignment_row(row)])


def get_management_role_assignment(ctx: Ctx, p: Params) -> Result:
    where, args = [], []
    if p.string("Identity") is not None:
        where.append("a.name_l = ?")
        args.append(p.require("Identity").lower())
    if p.string("App") is not None:
        where.append("a.app_id_l = ?")
        args.append(_find_sp(ctx.conn, p.require("App"))["app_id_l"])
    if p.string("Role") is not None:
        where.append("lower(a.role) = ?")
        args.append(p.require("Role").lower())
    sql = _ASSIGNMENTS + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.name_l"
    rows = ctx.conn.execute(sql, args).fetchall()
    if p.string("Identity") is not None and not rows:
        raise _NOT_FOUND(p.require("Identity"))
    return Result(rows=[_assignment_row(r) for r in rows])


def remove_management_role_assignment(ctx: Ctx, p: Params) -> Result:
    identity = p.require("Identity")
    if ctx.conn.execute("DELETE FROM role_assignments WHERE name_l = ?", (identity.lower(),)).rowcount == 0:
        raise _NOT_FOUND(identity)
    return Result()


def _cmdlets(specs: Iterable[tuple[str, Any, str, tuple[str, ...], bool]]) -> dict[str, Cmdlet]:
    return {name.lower(): Cmdlet(name, run, frozenset(params.lower().split()), mandatory, write)
            for name, run, params, mandatory, write in specs}


CMDLETS: dict[str, Cmdlet] = _cmdlets((
    ("New-ServicePrincipal", new_service_principal, "AppId ObjectId ServiceId DisplayName Confirm",
     ("AppId", "ObjectId"), True),
    ("Get-ServicePrincipal", get_service_principal, "Identity", (), False),
    ("Remove-ServicePrincipal", remove_service_principal, "Identity Confirm", ("Identity",), True),
    ("New-ManagementScope", new_management_scope, "Name RecipientRestrictionFilter", ("Name",), True),
    ("Get-ManagementScope", get_management_scope, "Identity", (), False),
    ("Set-ManagementScope", set_management_scope, "Identity RecipientRestrictionFilter", ("Identity",), True),
    ("New-ManagementRoleAssignment", new_management_role_assignment,
     "Name Role App CustomRecipientWriteScope Confirm", ("Role", "App"), True),
    ("Get-ManagementRoleAssignment", get_management_role_assignment, "Identity App Role", (), False),
    ("Remove-ManagementRoleAssignment", remove_management_role_assignment, "Identity Confirm", ("Identity",), True),
))
