"""The ASGI application: service routes, emulator control routes, and the outer middleware
that meters every service request and injects faults before the services see it."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localtenant import __version__
from localtenant.context import Emulator
from localtenant.directory import resolve
from localtenant.exchange import cmdlets as exchange_cmdlets
from localtenant.exchange import folders as exchange_folders
from localtenant.exchange import models as exchange_models
from localtenant.exchange import rbac
from localtenant.exchange import responses as exchange_wire
from localtenant.exchange import routes as exchange_routes
from localtenant.exchange.params import Params
from localtenant.faults import Decision, Profile, ProfileError
from localtenant.graph import auditlog, tracing
from localtenant.graph import responses as graph_wire
from localtenant.graph import routes as graph_routes
from localtenant.guard import SERVER_RECEIVE, Guard, control_error, exception_handlers
from localtenant.http import json_response, read_json
from localtenant.identity import grants
from localtenant.identity import models as identity_models
from localtenant.identity import responses as identity_wire
from localtenant.identity import routes as identity_routes

_TOKEN = re.compile(r"^/[^/]+/oauth2/(v2\.0/)?token$")
_DISCOVERY = re.compile(r"^/[^/]+/(v2\.0/\.well-known/openid-configuration|discovery/v2\.0/keys)$")
_EXCHANGE = re.compile(r"^/adminapi/beta/[^/]+/(InvokeCommand|\$batch)$")
# /_emulator/tokens refuses lifetimes beyond a year either way: enough for any test.
MAX_TOKEN_LIFETIME = 366 * 24 * 3600


def classify(method: str, path: str) -> tuple[str, str, bool] | None:
    """(service, metrics endpoint, is batch envelope); None for emulator control routes."""
    if path.startswith("/_emulator"):
        return None
    m = _EXCHANGE.match(path)
    if m:
        batch = m.group(1) == "$batch"
        return "exchange", exchange_routes.BATCH if batch else exchange_routes.INVOKE, batch
    if path.startswith(("/v1.0/", "/beta/")) or path in ("/v1.0", "/beta"):
        template = graph_routes.template_for(method, path)
        return "graph", template, template == "POST /v1.0/$batch"
    if _TOKEN.match(path):
        return "identity", "POST /{tenant}/oauth2/v2.0/token", False
    if _DISCOVERY.match(path):
        return "identity", "GET /{tenant}/v2.0/.well-known/openid-configuration", False
    return "other", f"{method} (unknown route)", False


def _fault_response(service: str, endpoint: str, decision: Decision) -> Response:
    if service == "exchange":
        if decision.status == 429:
            body = exchange_wire.throttled_body(decision.retry_after)
            return json_response(body, 429, {"Retry-After": str(decision.retry_after)})
        return json_response(exchange_wire.server_error_body(decision.status), decision.status)
    if service == "graph":
        if decision.status == 429:
            code = "ApplicationThrottled" if "mailboxSettings" in endpoint else "TooManyRequests"
            resp = graph_wire.throttled(decision.retry_after, code)
        else:
            resp = graph_wire.server_error(decision.status)
        return json_response(resp.body, resp.status, resp.headers, graph_wire.CONTENT_TYPE)
    if decision.status == 429:
        body = identity_wire.oauth_error("temporarily_unavailable", 90055, "TenantThrottlingError - There are too "
                                         "many incoming requests. This exception is thrown for blocked tenants.")
        return json_response(body, 429, {"Retry-After": str(decision.retry_after)})
    body = identity_wire.oauth_error("temporarily_unavailable", 90033, "A transient error has occurred. Please "
                                     "try again.")
    return json_response(body, decision.status)


async def _drop(scope: Scope, receive: Receive) -> None:
    """Close the client's socket without any response. uvicorn's receive is a bound method of
    its per-request cycle, which holds the transport (Guard wraps receive and keeps uvicorn's
    in the scope); waiting for ``disconnected`` keeps uvicorn from writing its own 500 afterwards."""
    cycle = getattr(scope.get(SERVER_RECEIVE, receive), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's h11/httptools protocol")
    transport.close()
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


class FaultsAndMetrics:
    """Outermost ASGI layer, so faults hit before any parsing, like a real front door.
    Applies to Exchange, Graph and token routes; never to ``/_emulator``."""

    def __init__(self, app: ASGIApp, emu: Emulator) -> None:
        self.app, self.emu = app, emu

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = classify(scope["method"], scope["path"])
        if kind is None:
            await self.app(scope, receive, send)
            return
        service, endpoint, envelope = kind
        emu = self.emu
        auth = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        token = identity_models.bearer(auth)
        app_id = str(identity_models.peek_claims(token).get("appid") or "anonymous") if token else "anonymous"
        emu.metrics.request(endpoint, app_id)

        async def metered_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                emu.metrics.status(message["status"])
            await send(message)

        if not emu.faults.active or service == "other":
            await self.app(scope, receive, metered_send)
            return
        decision = emu.faults.decide(app_id, envelope=envelope)
        if decision.action == "drop":
            emu.metrics.inject("dropped")
            await asyncio.sleep(decision.latency_s)
            await _drop(scope, receive)
            return
        if not emu.faults.enter(app_id):
            emu.metrics.inject("throttled_concurrency")
            refused = Decision(action="throttle", status=429, retry_after=1)
            await _fault_response(service, endpoint, refused)(scope, receive, metered_send)
            return
        try:
            if decision.latency_s:
                emu.metrics.latency_ms += decision.latency_s * 1000
                await asyncio.sleep(decision.latency_s)
            if decision.action is None:
                await self.app(scope, receive, metered_send)
            else:
                emu.metrics.inject(decision.reason)
                await _fault_response(service, endpoint, decision)(scope, receive, metered_send)
        finally:
            emu.faults.leave(app_id)


# ---------------------------------------------------------------- emulator control routes


def _emu(request: Request) -> Emulator:
    emu: Emulator = request.app.state.emu
    return emu


async def health(request: Request) -> Response:
    emu = _emu(request)
    return json_response({"status": "ok", "version": __version__, "tenant_id": emu.tenant.id,
                          "initial_domain": emu.tenant.initial_domain, "state": emu.store.path})


async def metrics(request: Request) -> Response:
    return json_response(_emu(request).metrics.snapshot())


async def metrics_reset(request: Request) -> Response:
    _emu(request).metrics.reset()
    return json_response(_emu(request).metrics.snapshot())


async def profile(request: Request) -> Response:
    emu = _emu(request)
    if request.method == "PUT":
        doc, ok = await read_json(request)
        if not ok:
            return json_response(control_error("The body must be a JSON fault profile."), 400)
        try:
            emu.faults.set_profile(Profile.from_dict(doc))
        except ProfileError as err:
            return json_response(control_error(str(err), setting=err.setting), 400)
    return json_response(emu.faults.profile.to_dict())


def _mint_args(doc: Any) -> tuple[str, str, str | None, str | None, int]:
    """Validated /_emulator/tokens body: (audience, client_id, upn, user_id, lifetime)."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ValueError("the body must be a JSON object")
    for key in ("audience", "scope", "client_id", "upn", "user_id"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise ValueError(f"{key} must be a string")
    audience = doc.get("audience") or identity_models.audience_for_scope(doc.get("scope") or "")
    if audience not in identity_models.APP_ROLES:
        raise ValueError("audience must be https://outlook.office365.com or https://graph.microsoft.com")
    lifetime = doc.get("lifetime_seconds", identity_models.LIFETIME)
    # Negative lifetimes are allowed on purpose: they mint already-expired tokens.
    if isinstance(lifetime, bool) or not isinstance(lifetime, int) or abs(lifetime) > MAX_TOKEN_LIFETIME:
        raise ValueError(f"lifetime_seconds must be an integer between -{MAX_TOKEN_LIFETIME} and "
                         f"{MAX_TOKEN_LIFETIME}")
    return audience, doc.get("client_id") or "mailroom-tests", doc.get("upn"), doc.get("user_id"), lifetime


async def mint_token(request: Request) -> Response:
    """Emulator-only: mint any token (e.g. already expired, or for another audience) so tests
    can exercise the 401 paths without waiting an hour."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    try:
        if not ok:
            raise ValueError("the body must be JSON")
        audience, client_id, upn, user_id, lifetime = _mint_args(doc)
    except ValueError as err:
        return json_response(control_error(str(err)), 400)
    token = identity_models.mint(emu.secret, tenant_id=emu.tenant.id, client_id=client_id, audience=audience,
                                 upn=upn, user_id=user_id, lifetime=lifetime)
    return json_response({"access_token": token})


async def mapi_inbox_rule(request: Request) -> Response:
    """An inbox rule made by a MAPI client (Outlook, MFCMAPI) rather than a cmdlet: the admin audit log does
    not record it, and with ``hidden: true`` only ``Get-InboxRule -IncludeHidden`` shows it, as with the
    hidden forwarding rules attackers leave ([doc: get-inboxrule -IncludeHidden]). Body: ``{"mailbox", "name",
    "hidden", "ForwardTo"|"RedirectTo"|"ForwardAsAttachmentTo": [...]}``."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    if not ok or not isinstance(doc, dict) or not isinstance(doc.get("mailbox"), str) \
            or not isinstance(doc.get("name"), str):
        return json_response(control_error("the body must be a JSON object with mailbox and name"), 400)
    try:
        with emu.store.tx() as conn:
            mbx = resolve(conn, doc["mailbox"])
            if not mbx.is_mailbox:
                raise ValueError(f"{doc['mailbox']} is not a mailbox")
            actions = exchange_cmdlets.rule_actions(conn, Params({k: v for k, v in doc.items()
                                                                  if k in exchange_models.FORWARD_ACTIONS}))
            rule = exchange_models.new_inbox_rule(conn, mbx, doc["name"], actions, hidden=doc.get("hidden") is True)
    except Exception as err:  # a mailbox or recipient that does not resolve, a duplicate name
        return json_response(control_error(str(err)), 400)
    return json_response({"Identity": f"{mbx.name}\\{rule.rule_id}", "RuleIdentity": rule.rule_id})


async def mapi_folder(request: Request) -> Response:
    """A folder a user makes in a mailbox with Outlook (New-MailboxFolder works only on the caller's own
    mailbox, so no admin cmdlet can). Body: ``{"mailbox", "path"}``; ``path`` is ``/``-separated and starts with
    a well-known folder by its localized name or FolderType (``Posteingang/Reports`` = ``Inbox/Reports``), or
    else is made at the top of the information store (exchange/folders.py)."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    if not ok or not isinstance(doc, dict) or not isinstance(doc.get("mailbox"), str) \
            or not isinstance(doc.get("path"), str):
        return json_response(control_error("the body must be a JSON object with mailbox and path"), 400)
    try:
        with emu.store.tx() as conn:
            mbx = resolve(conn, doc["mailbox"])
            if not mbx.is_mailbox:
                raise ValueError(f"{doc['mailbox']} is not a mailbox")
            folder = exchange_folders.create_folder(conn, mbx, doc["path"])
    except Exception as err:  # a mailbox that does not resolve, a missing parent, a duplicate
        return json_response(control_error(str(err)), 400)
    return json_response(exchange_folders.statistics_row(folder))


async def rbac_policy(request: Request) -> Response:
    """What an app with no service principal in Exchange gets (exchange/rbac.py): ``exchange-admin``
    (the default: it stands for the admin's own tools) or ``refused`` (as Exchange refuses it)."""
    emu = _emu(request)
    if request.method == "PUT":
        doc, ok = await read_json(request)
        try:
            if not ok or not isinstance(doc, dict):
                raise ValueError("the body must be a JSON object")
            with emu.store.tx() as conn:
                rbac.set_unregistered_policy(conn, str(doc.get("unregistered_apps")))
        except ValueError as err:
            return json_response(control_error(str(err), setting="unregistered_apps"), 400)
    with emu.store.read() as conn:
        return json_response({"unregistered_apps": rbac.unregistered_policy(conn)})


async def app_roles(request: Request) -> Response:
    """An app's consented app roles (identity/grants.py), standing in for Entra's app role assignments."""
    emu = _emu(request)
    client_id = request.path_params["client_id"]
    if request.method == "PUT":
        doc, ok = await read_json(request)
        try:
            with emu.store.tx() as conn:
                grants.set_roles(conn, client_id, doc.get("roles") if ok and isinstance(doc, dict) else None)
        except ValueError as err:
            return json_response(control_error(str(err), setting="roles"), 400)
    with emu.store.read() as conn:
        roles = {aud: grants.roles_for(conn, client_id, aud) for aud in identity_models.APP_ROLES}
    return json_response({"client_id": client_id, "roles": roles})


CONTROL_ROUTES = [
    Route("/_emulator/activity", auditlog.activity_route, methods=["POST"]),
    Route("/_emulator/activity/generate", auditlog.generate_route, methods=["POST"]),
    Route("/_emulator/auditlog", auditlog.settings_route, methods=["GET", "PUT"]),
    Route("/_emulator/mail", tracing.mail_route, methods=["POST"]),
    Route("/_emulator/apps/{client_id}", app_roles, methods=["GET", "PUT"]),
    Route("/_emulator/mapi/inbox-rules", mapi_inbox_rule, methods=["POST"]),
    Route("/_emulator/mapi/folders", mapi_folder, methods=["POST"]),
    Route("/_emulator/rbac", rbac_policy, methods=["GET", "PUT"]),
    Route("/_emulator/health", health, methods=["GET"]),
    Route("/_emulator/metrics", metrics, methods=["GET"]),
    Route("/_emulator/metrics/reset", metrics_reset, methods=["POST"]),
    Route("/_emulator/profile", profile, methods=["GET", "PUT"]),
    Route("/_emulator/tokens", mint_token, methods=["POST"]),
]


def service_of(path: str) -> str:
    """Which service's error envelope a path gets: exchange, graph, identity or emulator."""
    if path.startswith("/adminapi/"):
        return "exchange"  # unknown admin API routes too
    kind = classify("GET", path)
    return "emulator" if kind is None or kind[0] == "other" else kind[0]


def build_app(emu: Emulator) -> Any:
    app = Starlette(routes=[*CONTROL_ROUTES, *exchange_routes.routes, *graph_routes.routes, *identity_routes.routes],
                    exception_handlers=exception_handlers(service_of))
    app.state.emu = emu
    return Guard(FaultsAndMetrics(app, emu), service_of)
