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
from localtenant.exchange import responses as exchange_wire
from localtenant.exchange import routes as exchange_routes
from localtenant.faults import Decision, Profile
from localtenant.graph import responses as graph_wire
from localtenant.graph import routes as graph_routes
from localtenant.http import json_response, read_json
from localtenant.identity import models as identity_models
from localtenant.identity import responses as identity_wire
from localtenant.identity import routes as identity_routes

_TOKEN = re.compile(r"^/[^/]+/oauth2/(v2\.0/)?token$")
_DISCOVERY = re.compile(r"^/[^/]+/(v2\.0/\.well-known/openid-configuration|discovery/v2\.0/keys)$")
_EXCHANGE = re.compile(r"^/adminapi/beta/[^/]+/(InvokeCommand|\$batch)$")


def classify(method: str, path: str) -> tuple[str, str, bool] | None:
    """(service, metrics endpoint, is batch envelope); None for emulator control routes."""
    if path.startswith("/_emulator"):
        return None
    m = _EXCHANGE.match(path)
    if m:
        batch = m.group(1) == "$batch"
        return "exchange", exchange_routes.BATCH if batch else exchange_routes.INVOKE, batch
    if path.startswith("/v1.0/") or path == "/v1.0":
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


async def _drop(receive: Receive) -> None:
    """Close the client's socket without any response. uvicorn's receive is a bound method of
    its per-request cycle, which holds the transport; waiting for ``disconnected`` keeps
    uvicorn from writing its own 500 afterwards."""
    cycle = getattr(receive, "__self__", None)
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
            await _drop(receive)
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
        try:
            if not ok:
                raise ValueError("the body must be a JSON fault profile")
            emu.faults.set_profile(Profile.from_dict(doc))
        except (ValueError, TypeError) as err:
            return json_response({"error": str(err)}, 400)
    return json_response(emu.faults.profile.to_dict())


async def mint_token(request: Request) -> Response:
    """Emulator-only: mint any token (e.g. already expired, or for another audience) so tests
    can exercise the 401 paths without waiting an hour."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    doc = doc if ok and isinstance(doc, dict) else {}
    audience = doc.get("audience") or identity_models.audience_for_scope(str(doc.get("scope", "")))
    if audience not in identity_models.APP_ROLES:
        return json_response({"error": "audience must be https://outlook.office365.com or "
                                       "https://graph.microsoft.com"}, 400)
    token = identity_models.mint(
        emu.secret, tenant_id=emu.tenant.id, client_id=str(doc.get("client_id") or "mailroom-tests"),
        audience=audience, upn=doc.get("upn"), user_id=doc.get("user_id"),
        lifetime=int(doc.get("lifetime_seconds", identity_models.LIFETIME)),
    )
    return json_response({"access_token": token})


CONTROL_ROUTES = [
    Route("/_emulator/health", health, methods=["GET"]),
    Route("/_emulator/metrics", metrics, methods=["GET"]),
    Route("/_emulator/metrics/reset", metrics_reset, methods=["POST"]),
    Route("/_emulator/profile", profile, methods=["GET", "PUT"]),
    Route("/_emulator/tokens", mint_token, methods=["POST"]),
]


def build_app(emu: Emulator) -> Any:
    app = Starlette(routes=[*CONTROL_ROUTES, *exchange_routes.routes, *graph_routes.routes, *identity_routes.routes])
    app.state.emu = emu
    return FaultsAndMetrics(app, emu)
