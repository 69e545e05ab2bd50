"""Token endpoint (v2 and the optional v1 form) and OpenID discovery."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localtenant.context import Emulator
from localtenant.directory import DirectoryError, get_user
from localtenant.http import base_url, json_response, read_form
from localtenant.identity import grants, models
from localtenant.identity import responses as wire

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _error(status: int, error: str, code: int, description: str) -> Response:
    return json_response(wire.oauth_error(error, code, description), status)


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None
    return unquote(user), unquote(secret)


async def token(request: Request) -> Response:
    emu: Emulator = request.app.state.emu
    segment = request.path_params["tenant"]
    if not emu.tenant.matches(segment):
        return _error(400, "invalid_request", 90002, f"Tenant '{segment}' not found.")
    form = await read_form(request)
    if form is None:
        return _error(400, "invalid_request", 9002313, "Invalid request. Request is malformed or invalid: the body "
                      "must be application/x-www-form-urlencoded UTF-8 text.")
    basic = _basic(request)
    client_id = form.get("client_id") or (basic[0] if basic else "")
    if not client_id:
        return _error(400, "invalid_request", 900144, "The request body must contain the following parameter: "
                      "'client_id'.")
    v1 = request.url.path.endswith("/oauth2/token")
    scope = form.get("scope", "")
    audience = models.RESOURCES.get(form.get("resource", "").rstrip("/")) if v1 else models.audience_for_scope(scope)
    if audience is None:
        return _error(400, "invalid_scope", 70011, f"The provided value for the input parameter 'scope' is not "
                      f"valid. The scope {scope or form.get('resource', '')} is not valid.")
    grant = form.get("grant_type", "")
    lifetime = models.LIFETIME
    if grant == "client_credentials":
        has_secret = bool(form.get("client_secret") or (basic and basic[1]))
        has_assertion = bool(form.get("client_assertion")) and form.get("client_assertion_type") == ASSERTION_TYPE
        if not (has_secret or has_assertion):
            return _error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                          "required for the 'client_credentials' grant type.")
        if not v1 and not all(part.endswith("/.default") for part in scope.split()):
            return _error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} is not valid. "
                          "Client credential flows must have a scope value with /.default suffixed to the "
                          "resource identifier (application ID URI).")
        with emu.store.read() as conn:
            roles = grants.roles_for(conn, client_id, audience)
        access = models.mint(emu.secret, tenant_id=emu.tenant.id, client_id=client_id, audience=audience,
                             lifetime=lifetime, roles=roles)
        return json_response(wire.token(access, lifetime))
    if grant == "password":
        username, password = form.get("username", ""), form.get("password", "")
        with emu.store.read() as conn:
            try:
                user = get_user(conn, username)
            except DirectoryError:
                return _error(400, "invalid_grant", 50034, f"The user account {username} does not exist in the "
                              f"{emu.tenant.initial_domain} directory.")
        if not user.account_enabled:
            return _error(400, "invalid_grant", 50057, "The user account is disabled.")
        expected = user.props.get("password")
        if not password or (expected is not None and password != expected):
            return _error(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or "
                          "password.")
        access = models.mint(emu.secret, tenant_id=emu.tenant.id, client_id=client_id, audience=audience,
                             upn=user.upn, user_id=user.id, lifetime=lifetime)
        return json_response(wire.token(access, lifetime, scope=models.DELEGATED_SCOPES[audience]))
    return _error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")


async def openid_configuration(request: Request) -> Response:
    emu: Emulator = request.app.state.emu
    segment = request.path_params["tenant"]
    if not emu.tenant.matches(segment):
        return _error(400, "invalid_tenant", 90002, f"Tenant '{segment}' not found.")
    return json_response(wire.openid_configuration(base_url(request), segment, emu.tenant.id))


async def keys(request: Request) -> Response:
    # Tokens are HS256 with a server secret, so there is no public key to publish.
    return json_response({"keys": []})


routes = [
    Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    Route("/{tenant}/oauth2/token", token, methods=["POST"]),
    Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
]
