"""The front door: request size limits, and an error envelope for every failure.

Whatever goes wrong, a client gets the envelope of the service it called (Exchange admin
API A.6, Graph B.5, the OAuth error of B.1, or the emulator's own for ``/_emulator``),
never Starlette's or uvicorn's bare text: unknown routes and methods, bodies over
:data:`~localtenant.http.MAX_BODY_BYTES` (checked on Content-Length up front and counted
while a chunked body streams in, so an oversize body is never buffered), oversize headers,
and any unexpected exception (answered 500 and logged with its traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from localtenant.exchange import responses as exchange_wire
from localtenant.exchange.models import CmdletError
from localtenant.graph import responses as graph_wire
from localtenant.http import MAX_BODY_BYTES, BodyTooLarge, json_response
from localtenant.identity import responses as identity_wire

# Request line excluded, every header's name and value counted. The real front doors refuse
# somewhere in 16-64 KB; 32 KB leaves room for any real token [infer].
MAX_HEADER_BYTES = 32 * 1024
# Path plus query string: HTTP.sys, in front of both services, caps a URL at 16 KB [infer].
MAX_URL_BYTES = 16 * 1024

log = logging.getLogger("localtenant")
# Scope key holding the server's own receive callable, which Guard wraps; the fault layer
# needs it to reach the connection it drops.
SERVER_RECEIVE = "localtenant.server_receive"
_LOGGED = "_localtenant_logged"

ServiceOf = Callable[[str], str]

_REASONS = {404: "The requested resource was not found.", 405: "The HTTP method is not allowed on this resource.",
            413: f"The maximum request length supported is {MAX_BODY_BYTES // (1024 * 1024)}MB.",
            414: f"The request URL is longer than the maximum of {MAX_URL_BYTES} bytes.",
            431: f"The request headers are larger than the maximum of {MAX_HEADER_BYTES} bytes.",
            500: "An unexpected error occurred on the server."}
# Graph codes: 405 and 404 as Graph's directory answers them; 413/431 are [infer].
_GRAPH_CODES = {404: "BadRequest", 405: "Request_BadRequest", 413: "RequestEntityTooLarge", 414: "RequestUriTooLong",
                431: "RequestHeaderFieldsTooLarge", 500: "generalException"}
# Exchange's exception type for a refusal before any cmdlet runs [infer], and for a crash.
_EXCHANGE_TYPES = {500: "System.InvalidOperationException"}
_EXCHANGE_FRONT = "Microsoft.Exchange.Admin.OData.Core.ODataServiceException"


def error_response(service: str, status: int, message: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    """The error ``service`` answers with ``status`` (Exchange, Graph, identity, or the emulator)."""
    text = message or _REASONS.get(status, "The request is not valid.")
    if service == "exchange":
        body = exchange_wire.error_body(CmdletError(status, _EXCHANGE_TYPES.get(status, _EXCHANGE_FRONT), text))
        return json_response(body, status, headers, exchange_wire.CONTENT_TYPE)
    if service == "graph":
        resp = graph_wire.error(status, _GRAPH_CODES.get(status, "BadRequest"), text, headers=headers)
        return json_response(resp.body, status, resp.headers, graph_wire.CONTENT_TYPE)
    if service == "identity":
        if status >= 500:
            body = identity_wire.oauth_error("temporarily_unavailable", 90033, "A transient error has occurred. "
                                             "Please try again.")
        else:
            # AADSTS9002313 is Entra's "Invalid request. Request is malformed or invalid."
            body = identity_wire.oauth_error("invalid_request", 9002313, f"Invalid request. {text}")
        return json_response(body, status, headers)
    return json_response(control_error(text, exchange_wire.ERROR_CODES.get(status, "BadRequest")), status, headers)


def control_error(message: str, code: str = "BadRequest", **extra: str) -> dict[str, object]:
    """The emulator's own envelope for ``/_emulator`` routes, shaped like the services'."""
    return {"error": {"code": code, "message": message, **extra}}


def _closing(service: str, status: int) -> Response:
    # Connection: close makes uvicorn drop the socket instead of reading (and discarding)
    # whatever of the refused request is still on the wire.
    return error_response(service, status, headers={"Connection": "close"})


def exception_handlers(service_of: ServiceOf) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """Starlette handlers, so routing errors and crashes inside the app get envelopes too."""

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405 and service_of(request.url.path) == "identity":
            # [infer] Entra's AADSTS900561 "The endpoint only accepts POST requests."
            return json_response(identity_wire.oauth_error(
                "invalid_request", 900561, f"The endpoint only accepts POST requests. Received a "
                f"{request.method} request."), 400)
        return error_response(service_of(request.url.path), status)

    async def too_large(request: Request, exc: Exception) -> Response:
        return _closing(service_of(request.url.path), 413)

    async def crashed(request: Request, exc: Exception) -> Response:
        # Logged before the answer goes out, so the log has it once the client sees the 500.
        _log_crash(request.method, request.url.path, exc)
        return error_response(service_of(request.url.path), 500)

    return {HTTPException: http_error, BodyTooLarge: too_large, Exception: crashed}


def _log_crash(method: str, path: str, exc: Exception) -> None:
    if not getattr(exc, _LOGGED, False):
        log.error("unhandled error answering %s %s", method, path, exc_info=exc)
        setattr(exc, _LOGGED, True)  # Starlette re-raises it into Guard: log it once


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP layer (h11) refuses these before the app sees them
    return None


class Guard:
    """Outermost ASGI layer: size limits before anything reads the request, and the last
    line of defence for exceptions raised outside Starlette (e.g. in the fault layer)."""

    def __init__(self, app: ASGIApp, service_of: ServiceOf) -> None:
        self.app, self.service_of = app, service_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = self.service_of(scope["path"])
        scope[SERVER_RECEIVE] = receive
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            await _closing(service, 414)(scope, receive, send)
            return
        if sum(len(k) + len(v) for k, v in scope["headers"]) > MAX_HEADER_BYTES:
            await _closing(service, 431)(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            await _closing(service, 413)(scope, receive, send)  # before reading a byte of it
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:  # chunked: no Content-Length to check up front
                    raise BodyTooLarge()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _closing(service, 413)(scope, receive, send)
        except Exception as exc:
            _log_crash(scope["method"], scope["path"], exc)
            if not started:
                await error_response(service, 500)(scope, receive, send)
