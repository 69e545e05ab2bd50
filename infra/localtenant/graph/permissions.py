"""Which application permissions each Graph call the local tenant serves needs (any one of them).

From the "Permissions" tables of the Graph v1.0 reference pages (list users, get user, update user,
create user, delete user, get/update mailboxSettings, list directoryAudits, list a user's memberships (direct
and transitive), list group members (direct and transitive), list a group's direct memberships). Updating a user's
``accountEnabled`` alone is allowed with ``User.EnableDisableAccount.All`` (the update-user page names
"User.EnableDisableAccount.All and User.Read.All" as the least-privileged pair for it); any other property
needs ``User.ReadWrite.All``. Higher-privileged ones (Directory.*) are accepted as Graph accepts them.
A call without one of them is refused with 403 ``Authorization_RequestDenied``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_READ = frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"})
_WRITE = frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"})
_AUDIT_QUERY = frozenset({"AuditLogsQuery-Exchange.Read.All", "AuditLogsQuery.Read.All"})
# Reading a group's properties and its membership (group-list-members, group-list-transitivemembers:
# GroupMember.Read.All least privileged). Listing another user's memberships needs only User.Read.All
# (user-list-transitivememberof), but then each group is returned with its id and type alone: reading a
# group's properties takes one of these. The same holds for users in a group's member list (READ).
GROUP_READ = frozenset({"GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All",
                        "Directory.Read.All", "Directory.ReadWrite.All"})
_MEMBER_OF = _READ | GROUP_READ
REQUIRED: dict[str, frozenset[str]] = {
    "GET /v1.0/users": _READ,
    "GET /v1.0/users/{id}": _READ,
    "POST /v1.0/users": _WRITE,
    "PATCH /v1.0/users/{id}": _WRITE,
    "DELETE /v1.0/users/{id}": _WRITE,
    "GET /v1.0/users/{id}/mailboxSettings": frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"}),
    "PATCH /v1.0/users/{id}/mailboxSettings": frozenset({"MailboxSettings.ReadWrite"}),
    "GET /v1.0/users/{id}/memberOf": _MEMBER_OF,
    "GET /v1.0/users/{id}/transitiveMemberOf": _MEMBER_OF,
    "GET /v1.0/groups/{id}/memberOf": GROUP_READ,
    "GET /v1.0/groups/{id}/members": GROUP_READ,
    "GET /v1.0/groups/{id}/transitiveMembers": GROUP_READ,
    "GET /v1.0/auditLogs/directoryAudits": frozenset({"AuditLog.Read.All"}),
    # security-auditlogquery pages: the Exchange-scoped permission, or the one for all audit logs
    "POST /v1.0/security/auditLog/queries": _AUDIT_QUERY,
    "GET /v1.0/security/auditLog/queries/{id}": _AUDIT_QUERY,
    "GET /v1.0/security/auditLog/queries/{id}/records": _AUDIT_QUERY,
    "GET /v1.0/admin/exchange/tracing/messageTraces": frozenset({"ExchangeMessageTrace.Read.All"}),
}
ENABLE_DISABLE = "User.EnableDisableAccount.All"
USER_READ = _READ | {"User.ReadBasic.All"}


def reads_fully(roles: Iterable[str] | None, kind: str) -> bool:
    """Whether a directoryObject collection shows an object of ``kind`` in full to the caller, or only its id
    and type ("limited information returned for inaccessible member objects"). A user's token: in full."""
    return roles is None or bool(set(roles) & (GROUP_READ if kind == "group" else USER_READ))


def allows(roles: Iterable[str], template: str, body: Any) -> bool:
    held = set(roles)
    needed = REQUIRED.get(template)
    if needed is None:
        return True  # an unknown route: the router answers it
    # Annotations (msgraph-sdk sends "@odata.type") are not properties.
    if template == "PATCH /v1.0/users/{id}" and isinstance(body, dict) and {
            k for k in body if not str(k).startswith("@")} == {"accountEnabled"}:
        needed = needed | {ENABLE_DISABLE}
    return bool(held & needed)
