"""Which application permissions each Graph call the local tenant serves needs (any one of them).

From the "Permissions" tables of the Graph v1.0 reference pages (list users, get user, update user,
create user, delete user, get/update mailboxSettings, list directoryAudits). Updating a user's
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
REQUIRED: dict[str, frozenset[str]] = {
    "GET /v1.0/users": _READ,
    "GET /v1.0/users/{id}": _READ,
    "POST /v1.0/users": _WRITE,
    "PATCH /v1.0/users/{id}": _WRITE,
    "DELETE /v1.0/users/{id}": _WRITE,
    "GET /v1.0/users/{id}/mailboxSettings": frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"}),
    "PATCH /v1.0/users/{id}/mailboxSettings": frozenset({"MailboxSettings.ReadWrite"}),
    "GET /v1.0/auditLogs/directoryAudits": frozenset({"AuditLog.Read.All"}),
    # security-auditlogquery pages: the Exchange-scoped permission, or the one for all audit logs
    "POST /v1.0/security/auditLog/queries": _AUDIT_QUERY,
    "GET /v1.0/security/auditLog/queries/{id}": _AUDIT_QUERY,
    "GET /v1.0/security/auditLog/queries/{id}/records": _AUDIT_QUERY,
    "GET /v1.0/admin/exchange/tracing/messageTraces": frozenset({"ExchangeMessageTrace.Read.All"}),
}
ENABLE_DISABLE = "User.EnableDisableAccount.All"


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
