"""HTTP routes for the Exchange admin API: ``InvokeCommand`` and ``$batch``."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localtenant.common import Caller
from localtenant.context import Emulator
from localtenant.exchange import responses
from localtenant.http import base_url, json_response, read_json, with_query
from localtenant.identity.models import EXCHANGE_AUD, AuthError, verify

INVOKE = "POST /adminapi/beta/{tenant}/InvokeCommand"
BATCH = "POST /adminapi/beta/{tenant}/$batch"
MAX_BATCH = 10


def unauthorized(reason: str) -> Response:
    # [infer] the service answers 401 with an empty body and a Bearer challenge.
    challenge = ('Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                 f'token_types="app_asserted_user_v1 service_asserted_app_v1", error="invalid_token", '
                 f'error_description="{reason}"')
    return Response(b"", status_code=401, headers={"WWW-Authenticate": challenge})


def authorize(request: Request, emu: Emulator) -> Caller | Response:
    if not emu.tenant.matches(request.path_params["tenant"]):
        return unauthorized("The tenant in the URL is not this tenant.")
    try:
        caller = verify(emu.secret, request.headers.get("authorization"), audience=EXCHANGE_AUD,
                        tenant_id=emu.tenant.id)
    except AuthError as err:
        return unauthorized(str(err))
    if caller.roles is not None and "Exchange.ManageAsApp" not in caller.roles:
        # wire reference A.2: an app without the app role gets 401 (measured by graph2otel)
        return unauthorized("The token has no Exchange.ManageAsApp role.")
    return caller


def _prefer(headers: Any) -> str | None:
    # The module sends Prefer; a captured hand-made client sent X-Prefer.
    return headers.get("prefer") or headers.get("x-prefer")


def _select(query: list[tuple[str, str]]) -> set[str] | None:
    for key, value in query:
        if key == "$select":
            return {part.strip().lower() for part in value.split(",") if part.strip()}
    return None


def _run(request: Request, emu: Emulator, caller: Caller, url: str, headers: Any, payload: Any) -> responses.Outcome:
    """One InvokeCommand, addressed by ``url`` (absolute), shared by the route and batch items."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    skiptoken = next((v for k, v in query if k == "$skiptoken"), None)
    kept = [(k, v) for k, v in query if k != "$skiptoken"]
    origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else base_url(request)
    endpoint = origin + parts.path
    tenant_segment = request.path_params["tenant"]
    outcome = responses.invoke(
        emu, caller, payload, size=responses.page_size(_prefer(headers)), skiptoken=skiptoken,
        select=_select(kept),
        context=f"{origin}/adminapi/beta/{tenant_segment}/$metadata#Collection(Exchange.GenericHashTable)",
        link_for=lambda token: with_query(endpoint, [*kept, ("$skiptoken", token)]),
    )
    if outcome.cmdlet:
        emu.metrics.cmdlet(outcome.cmdlet)
    return outcome


async def invoke_command(request: Request) -> Response:
    emu: Emulator = request.app.state.emu
    caller = authorize(request, emu)
    if isinstance(caller, Response):
        return caller
    payload, ok = await read_json(request)
    if not ok:
        outcome = responses.bad_request("The request body is not valid JSON.")
    else:
        outcome = _run(request, emu, caller, str(request.url), request.headers, payload)
    return _respond(outcome)


def _respond(outcome: responses.Outcome) -> Response:
    if outcome.body is None:
        return Response(b"", status_code=outcome.status)
    return json_response(outcome.body, outcome.status, outcome.headers or None, responses.CONTENT_TYPE)


async def batch(request: Request) -> Response:
    """``$batch`` of up to 10 InvokeCommand requests, run in order; each item is metered,
    rate limited and fault-injected on its own."""
    emu: Emulator = request.app.state.emu
    caller = authorize(request, emu)
    if isinstance(caller, Response):
        return caller
    doc, ok = await read_json(request)
    items = doc.get("requests") if ok and isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        return _respond(responses.bad_request('The batch body must be {"requests":[...]}.'))
    if len(items) > MAX_BATCH:
        return _respond(responses.bad_request(f"A batch can contain at most {MAX_BATCH} requests."))
    out = []
    for item in items:
        if not isinstance(item, dict):
            return _respond(responses.bad_request("Each batch request must be an object."))
        out.append(_batch_item(request, emu, caller, item))
        emu.metrics.status(out[-1]["status"])
    return json_response({"responses": out}, 200, None, responses.CONTENT_TYPE)


def _batch_item(request: Request, emu: Emulator, caller: Caller, item: dict[str, Any]) -> dict[str, Any]:
    item_id = str(item.get("id", ""))
    emu.metrics.batch_item(INVOKE)
    decision = emu.faults.decide(caller.app_id, item=True)
    if decision.action is not None:
        emu.metrics.inject(decision.reason)
        if decision.action == "throttle":
            return {"id": item_id, "status": 429, "headers": {"Retry-After": str(decision.retry_after)},
                    "body": responses.throttled_body(decision.retry_after)}
        return {"id": item_id, "status": decision.status, "body": responses.server_error_body(decision.status)}
    outcome = _batch_outcome(request, emu, caller, item)
    entry: dict[str, Any] = {"id": item_id, "status": outcome.status}
    if outcome.body is not None:
        entry["body"] = outcome.body
    return entry


def _batch_outcome(request: Request, emu: Emulator, caller: Caller, item: dict[str, Any]) -> responses.Outcome:
    url, headers = item.get("url") or "", item.get("headers") or {}
    if not isinstance(url, str) or not isinstance(headers, dict):
        return responses.bad_request("A batch request's url must be a string and its headers an object.")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 literal
        return responses.bad_request(f"The batch request url '{url}' is not a valid URL.")
    method = str(item.get("method") or "POST").upper()
    if method != "POST" or not parts.path.rstrip("/").endswith("InvokeCommand"):
        return responses.bad_request("Batch items must be POST requests to InvokeCommand.")
    absolute = url if "://" in url else str(request.url).rsplit("/", 1)[0] + "/InvokeCommand" + (
        "?" + parts.query if parts.query else "")
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    if _prefer(lowered) is None and _prefer(request.headers):
        # The module sends Prefer (continue-on-error, maxpagesize) on the outer request.
        lowered["prefer"] = str(_prefer(request.headers))
    return _run(request, emu, caller, absolute, lowered, item.get("body"))


routes = [
    Route("/adminapi/beta/{tenant}/InvokeCommand", invoke_command, methods=["POST"]),
    Route("/adminapi/beta/{tenant}/$batch", batch, methods=["POST"]),
]
