"""Tokens: JWT-shaped, HS256-signed with the tenant's server secret (kept in the state
file, so tokens stay valid across a restart). Claims follow Entra v1 access tokens:
aud, iss, tid, appid, roles (app-only) or scp + upn (delegated), exp."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from localtenant.common import Caller, stable_guid

EXCHANGE_AUD = "https://outlook.office365.com"
GRAPH_AUD = "https://graph.microsoft.com"
# Resource (v1 ``resource=`` / v2 scope prefix) -> audience. The Exchange first-party app id is
# accepted as a resource too, as Entra does.
RESOURCES = {
    EXCHANGE_AUD: EXCHANGE_AUD,
    "https://outlook.office.com": EXCHANGE_AUD,
    "00000002-0000-0ff1-ce00-000000000000": EXCHANGE_AUD,
    GRAPH_AUD: GRAPH_AUD,
    "00000003-0000-0000-c000-000000000000": GRAPH_AUD,
}
APP_ROLES = {
    EXCHANGE_AUD: ["Exchange.ManageAsApp"],
    GRAPH_AUD: ["User.ReadWrite.All", "MailboxSettings.ReadWrite", "AuditLog.Read.All",
                "AuditLogsQuery-Exchange.Read.All", "ExchangeMessageTrace.Read.All", "GroupMember.Read.All"],
}
DELEGATED_SCOPES = {
    EXCHANGE_AUD: "Exchange.Manage",
    GRAPH_AUD: "User.ReadWrite.All MailboxSettings.ReadWrite AuditLog.Read.All",
}
LIFETIME = 3599


class AuthError(Exception):
    """Why a bearer token was refused; services render it as their own 401."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def audience_for_scope(scope: str) -> str | None:
    """``https://graph.microsoft.com/.default`` (or ``.../User.Read``) -> its audience."""
    for part in scope.split():
        resource = part.rsplit("/", 1)[0] if "/" in part else ""
        if resource.rstrip("/") in RESOURCES:
            return RESOURCES[resource.rstrip("/")]
    return None


def app_display_name(client_id: str) -> str:
    """Any client id is accepted; its display name is the id itself (a real tenant would
    show the app registration's name)."""
    return client_id


def mint(
    secret: bytes, *, tenant_id: str, client_id: str, audience: str, upn: str | None = None,
    user_id: str | None = None, lifetime: int = LIFETIME, roles: list[str] | None = None,
) -> str:
    """``roles``: the app's consented app roles for ``audience`` (identity/grants.py); None: APP_ROLES."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": audience, "iss": f"https://sts.windows.net/{tenant_id}/", "iat": now, "nbf": now,
        "exp": now + lifetime, "tid": tenant_id, "appid": client_id, "app_displayname": app_display_name(client_id),
        "appidacr": "1", "ver": "1.0",
    }
    if upn:
        claims.update({"upn": upn, "unique_name": upn, "oid": user_id, "sub": user_id, "idtyp": "user",
                       "scp": DELEGATED_SCOPES[audience]})
    else:
        sp = stable_guid("sp", client_id)
        claims.update({"oid": sp, "sub": sp, "idtyp": "app", "roles": APP_ROLES[audience] if roles is None else roles})
    header = _b64(json.dumps({"typ": "JWT", "alg": "HS256", "kid": "localtenant"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
    return f"{header}.{body}.{sig}"


def peek_claims(token: str) -> dict[str, Any]:
    """Claims without verification: only for keying faults per app before auth runs."""
    try:
        claims = json.loads(_unb64(token.split(".")[1]))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def verify(secret: bytes, authorization: str | None, *, audience: str, tenant_id: str) -> Caller:
    token = bearer(authorization)
    if token is None:
        raise AuthError("Access token is empty.")
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthError("IDX14100: JWT is not well formed, there are no dots (.).")
    good = _b64(hmac.new(secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(good, parts[2]):
        raise AuthError("Access token validation failure. Invalid signature.")
    claims = peek_claims(token)
    if claims.get("aud") != audience:
        raise AuthError("Access token validation failure. Invalid audience.")
    if float(claims.get("exp", 0)) < time.time():
        raise AuthError("Lifetime validation failed, the token is expired.")
    if claims.get("tid") != tenant_id:
        raise AuthError("Access token validation failure. Invalid tenant.")
    return Caller(
        app_id=str(claims.get("appid", "")), app_name=str(claims.get("app_displayname", "")),
        tenant_id=tenant_id, upn=claims.get("upn"), user_id=claims.get("oid") if claims.get("upn") else None,
        roles=None if claims.get("upn") else tuple(str(r) for r in claims.get("roles") or ()),
    )
