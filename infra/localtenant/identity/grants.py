"""The app roles consented to an app (Entra's app role assignments), which its tokens carry as ``roles``.

The local tenant has no Graph API for applications; ``PUT /_emulator/apps/{client_id}`` sets an app's
roles in its place (what an admin's consent, or pulumi-azuread's AppRoleAssignment, does in Entra). An
app without a row gets ``models.APP_ROLES``, every role the local tenant knows, so any client id works
as before.
"""

from __future__ import annotations

import json
import sqlite3

from localtenant.identity.models import APP_ROLES


def roles_for(conn: sqlite3.Connection, client_id: str, audience: str) -> list[str] | None:
    """The app's roles on ``audience``; None when no consent is recorded for the app (the default set)."""
    row = conn.execute("SELECT roles FROM app_grants WHERE app_id_l = ?", (client_id.lower(),)).fetchone()
    if row is None:
        return None
    return list(json.loads(row[0]).get(audience, []))


def set_roles(conn: sqlite3.Connection, client_id: str, roles: object) -> dict[str, list[str]]:
    """Record the app's roles ``{audience: [role, ...]}``; an audience or role value of the wrong type is a
    ValueError, never stored."""
    if not isinstance(roles, dict) or not all(
            isinstance(k, str) and k in APP_ROLES and isinstance(v, list) and all(isinstance(r, str) for r in v)
            for k, v in roles.items()):
        raise ValueError(f"roles must be an object of {' or '.join(APP_ROLES)} to a list of role names")
    clean = {k: sorted(set(v)) for k, v in roles.items()}
    conn.execute("INSERT INTO app_grants VALUES (?, ?) ON CONFLICT(app_id_l) DO UPDATE SET roles = excluded.roles",
                 (client_id.lower(), json.dumps(clean, sort_keys=True)))
    return clean
