"""Graph v1.0 routes. One small router serves both real HTTP requests and ``$batch`` items,
so a batched call behaves exactly like the same call made directly."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from localtenant import paging
from localtenant.common import Caller
from localtenant.context import Emulator
from localtenant.directory import (
    DirectoryError,
    DirObject,
    addresses_of,
    get_by_seq,
    get_user,
    group_members,
    member_of,
)
from localtenant.graph import auditlog, models, permissions, tracing
from localtenant.graph import responses as wire
from localtenant.graph.models import GraphError
from localtenant.http import base_url, json_response, read_json, with_query
from localtenant.identity.models import GRAPH_AUD, AuthError, verify

MAX_BATCH = 20
KNOWN_OPTIONS = {"$filter", "$select", "$top", "$count", "$skiptoken"}


@dataclass
class GraphRequest:
    emu: Emulator
    caller: Caller
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any
    base: str
    args: dict[str, str]
    version: str = "v1.0"  # or "beta": the audit log query API answers on both (graph/auditlog.py)

    def option(self, name: str) -> str | None:
        return next((v for k, v in self.query if k.lower() == name), None)


Handler = Callable[[GraphRequest], wire.GraphResponse]


def _options(req: GraphRequest, allowed: set[str]) -> None:
    for key, _ in req.query:
        low = key.lower()
        if low.startswith("$") and low not in allowed:
            raise GraphError(400, "Request_UnsupportedQuery",
                             f"The query option '{key}' is not supported by the emulator for this resource.")


def _token_state(req: GraphRequest, token: str, fingerprint: str) -> dict[str, Any]:
    """A $skiptoken's state, refused as Graph refuses one that is forged or belongs to another query."""
    try:
        state: dict[str, Any] = paging.decode(req.emu.secret, token, None)
    except paging.SkipTokenError as err:
        raise models.bad_request("Invalid $skiptoken.") from err
    if state.get("f") != fingerprint:
        raise models.bad_request("The $skiptoken does not belong to this query.")
    return state


def _top(req: GraphRequest, default: int, maximum: int) -> int:
    raw = req.option("$top")
    if raw is None:
        return default
    # isascii: str.isdigit() also accepts digits int() cannot read, such as "²".
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise models.bad_request(f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.")
    return int(raw)


def _select(req: GraphRequest) -> list[str] | None:
    try:
        return wire.parse_select(req.option("$select"))
    except ValueError as err:
        raise models.bad_request(str(err)) from err


def _next_link(req: GraphRequest, token: str) -> str:
    kept = [(k, v) for k, v in req.query if k.lower() != "$skiptoken"]
    return with_query(f"{req.base}/v1.0{req.path}", [*kept, ("$skiptoken", token)])


def list_users(req: GraphRequest) -> wire.GraphResponse:
    _options(req, KNOWN_OPTIONS)
    select, top = _select(req), _top(req, 100, 999)
    filter_text = req.option("$filter")
    count_option = (req.option("$count") or "false").lower()
    if count_option not in ("true", "false"):
        raise models.bad_request(f"Invalid value '{req.option('$count')}' for query option $count; it must be "
                                 "true or false.")
    count = count_option == "true"
    eventual = req.headers.get("consistencylevel", "").lower() == "eventual"
    fp = paging.fingerprint([filter_text, select, top, count])
    after, advanced, first = 0, eventual and count, True
    token = req.option("$skiptoken")
    if token is not None:
        # The SDK does not re-send ConsistencyLevel on next pages; the token remembers it.
        state = _token_state(req, token, fp)
        after, advanced, first = int(state["a"]), bool(state["adv"]), False
    elif count and not eventual:
        raise models.bad_request("$count is not currently supported.")
    where, args = models.compile_user_filter(filter_text, advanced)
    with req.emu.store.read() as conn:
        objs = models.list_users(conn, where, args, after, top + 1)
        more = len(objs) > top
        objs = objs[:top]
        total = models.count_users(conn, where, args) if count and first else None
        addrs = addresses_of(conn, [o.seq for o in objs]) if select and "proxyAddresses" in select else {}
    body: dict[str, Any] = {"@odata.context": wire.users_context(req.base, select)}
    if total is not None:
        body["@odata.count"] = total
    body["value"] = [wire.user(o, addrs.get(o.seq), select) for o in objs]
    if more:
        state = {"a": objs[-1].seq, "adv": advanced, "f": fp}
        body["@odata.nextLink"] = _next_link(req, paging.encode(req.emu.secret, state))
    return wire.GraphResponse(200, body)


def _user(conn: Any, key: str) -> Any:
    try:
        return get_user(conn, key)
    except DirectoryError as err:
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist or one of its queried "
                         "reference-property objects are not present.") from err


def get_one_user(req: GraphRequest) -> wire.GraphResponse:
    _options(req, {"$select"})
    select = _select(req)
    with req.emu.store.read() as conn:
        obj = _user(conn, req.args["user"])
        addrs = addresses_of(conn, [obj.seq]) if select and "proxyAddresses" in select else {}
    body = {"@odata.context": wire.users_context(req.base, select, entity=True),
            **wire.user(obj, addrs.get(obj.seq), select)}
    return wire.GraphResponse(200, body)


def create_user(req: GraphRequest) -> wire.GraphResponse:
    with req.emu.store.tx() as conn:
        obj = models.create_user(conn, req.emu.tenant, req.caller, req.body)
    body = {"@odata.context": wire.users_context(req.base, None, entity=True), **wire.user(obj, [], None)}
    return wire.GraphResponse(201, body, {"Location": f"{req.base}/v1.0/users/{obj.id}"})


def patch_user(req: GraphRequest) -> wire.GraphResponse:
    with req.emu.store.tx() as conn:
        models.update_user(conn, req.emu.tenant, req.caller, _user(conn, req.args["user"]), req.body)
    return wire.GraphResponse(204)


def delete_user(req: GraphRequest) -> wire.GraphResponse:
    with req.emu.store.tx() as conn:
        models.delete_user(conn, req.caller, _user(conn, req.args["user"]))
    return wire.GraphResponse(204)


def _settings_context(req: GraphRequest, user_id: str, select: list[str] | None) -> str:
    shape = f"({','.join(select)})" if select else ""
    return f"{req.base}/v1.0/$metadata#users('{user_id}')/mailboxSettings{shape}"


def get_mailbox_settings(req: GraphRequest) -> wire.GraphResponse:
    _options(req, {"$select"})
    with req.emu.store.read() as conn:
        obj = _user(conn, req.args["user"])
        doc = models.mailbox_settings(obj)
    try:
        select = wire.parse_select(req.option("$select"), {k.lower(): k for k in doc}, "mailboxSettings")
    except ValueError as err:
        raise models.bad_request(str(err)) from err
    shown = {k: doc[k] for k in select} if select else doc
    return wire.GraphResponse(200, {"@odata.context": _settings_context(req, obj.id, select), **shown})


def patch_mailbox_settings(req: GraphRequest) -> wire.GraphResponse:
    with req.emu.store.tx() as conn:
        obj = _user(conn, req.args["user"])
        updated = models.update_mailbox_settings(conn, obj, req.body)
    return wire.GraphResponse(200, {"@odata.context": _settings_context(req, obj.id, None), **updated})


def _group(conn: Any, key: str) -> DirObject:
    """``/groups/{id}``: Graph addresses a group by its object id only."""
    row = conn.execute("SELECT seq FROM objects WHERE id = ? AND kind = 'group' AND soft_deleted = 0",
                       (key.strip().lower(),)).fetchone()
    obj = get_by_seq(conn, row[0]) if row else None
    if obj is None:
        raise GraphError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist or one of its queried "
                         "reference-property objects are not present.")
    return obj


def _directory_objects(req: GraphRequest, read: Callable[[Any], list[DirObject]],
                       cast: str | None) -> wire.GraphResponse:
    """A paged directoryObject collection (members, memberOf, transitive or not), optionally cast to one type:
    ``$select`` and ``$top`` (1..999, default 100) as the list-users route honours them, ``@odata.nextLink``
    carrying a signed offset. Objects of a type the caller may not read show only their id and type."""
    _options(req, {"$select", "$top", "$skiptoken"})
    try:
        select = wire.parse_select(req.option("$select"), wire.DIRECTORY_CANON, "directoryObject")
    except ValueError as err:
        raise models.bad_request(str(err)) from err
    top = _top(req, 100, 999)
    fp = paging.fingerprint([req.path.lower(), select, top])
    offset = 0
    token = req.option("$skiptoken")
    if token is not None:
        state = _token_state(req, token, fp)
        offset = int(state["o"])
    with req.emu.store.read() as conn:
        objs = [o for o in read(conn) if cast is None or o.kind == cast]
        page = objs[offset:offset + top]
        addrs = addresses_of(conn, [o.seq for o in page]) if select and "proxyAddresses" in select else {}
    shape = f"({','.join(select)})" if select else ""
    entity = "groups" if cast == "group" else "users" if cast == "user" else "directoryObjects"
    body: dict[str, Any] = {"@odata.context": f"{req.base}/v1.0/$metadata#{entity}{shape}", "value": [
        wire.directory_object(o, addrs.get(o.seq), select, permissions.reads_fully(req.caller.roles, o.kind),
                              typed=cast is None) for o in page]}
    if offset + top < len(objs):
        body["@odata.nextLink"] = _next_link(req, paging.encode(req.emu.secret, {"o": offset + top, "f": fp}))
    return wire.GraphResponse(200, body)


def _cast(req: GraphRequest, allowed: tuple[str, ...]) -> str | None:
    raw = req.args.get("cast")
    if not raw:
        return None
    kind = raw.rpartition(".")[2].lower()
    if not raw.lower().startswith("microsoft.graph.") or kind not in allowed:
        # group-list-transitivemembers: a cast to an unsupported member type is a 400 Request_UnsupportedQuery
        raise GraphError(400, "Request_UnsupportedQuery", f"The type cast '{raw}' is not supported here.")
    return kind


def list_member_of(req: GraphRequest) -> wire.GraphResponse:
    """``/users/{id | userPrincipalName}/memberOf`` and ``/transitiveMemberOf`` (groups are the only kind of
    membership the emulator models: no directory roles or administrative units)."""
    transitive = req.args["relation"].lower() == "transitivememberof"
    cast = _cast(req, ("group",))
    with req.emu.store.read() as conn:
        user = _user(conn, req.args["user"])
    return _directory_objects(req, lambda conn: member_of(conn, user, transitive), cast)


def list_group_member_of(req: GraphRequest) -> wire.GraphResponse:
    """``/groups/{id}/memberOf``: the groups a group is a direct member of (one step up a nesting)."""
    cast = _cast(req, ("group",))
    with req.emu.store.read() as conn:
        group = _group(conn, req.args["group"])
    return _directory_objects(req, lambda conn: member_of(conn, group), cast)


def list_group_members(req: GraphRequest) -> wire.GraphResponse:
    """``/groups/{id}/members`` and ``/transitiveMembers``: users and nested groups."""
    transitive = req.args["relation"].lower() == "transitivemembers"
    cast = _cast(req, ("user", "group"))
    with req.emu.store.read() as conn:
        group = _group(conn, req.args["group"])
    return _directory_objects(req, lambda conn: group_members(conn, group, transitive), cast)


def list_directory_audits(req: GraphRequest) -> wire.GraphResponse:
    _options(req, {"$filter", "$top", "$skiptoken"})
    top = _top(req, 1000, 1000)
    filter_text = req.option("$filter")
    fp = paging.fingerprint([filter_text, top])
    before = None
    token = req.option("$skiptoken")
    if token is not None:
        state = _token_state(req, token, fp)
        before = int(state["b"])
    with req.emu.store.read() as conn:
        rows = models.list_directory_audits(conn, filter_text, before, top + 1)
    body: dict[str, Any] = {"@odata.context": f"{req.base}/v1.0/$metadata#auditLogs/directoryAudits",
                            "value": [wire.audit(doc) for _, doc in rows[:top]]}
    if len(rows) > top:
        body["@odata.nextLink"] = _next_link(req, paging.encode(req.emu.secret, {"b": rows[top - 1][0], "f": fp}))
    return wire.GraphResponse(200, body)


def create_audit_query(req: GraphRequest) -> wire.GraphResponse:
    auditlog.query_version_gate(req.emu, req.version, req.path)
    doc = auditlog.create_query(req.emu, req.caller, req.version, req.body)
    context = f"{req.base}/{req.version}/$metadata#security/auditLog/queries/$entity"
    return wire.GraphResponse(201, {"@odata.context": context, **doc})


def get_audit_query(req: GraphRequest) -> wire.GraphResponse:
    auditlog.query_version_gate(req.emu, req.version, req.path)
    _options(req, set())
    doc = auditlog.get_query(req.emu, req.caller, req.args["query"])
    context = f"{req.base}/{req.version}/$metadata#security/auditLog/queries/$entity"
    return wire.GraphResponse(200, {"@odata.context": context, **doc})


def list_audit_records(req: GraphRequest) -> wire.GraphResponse:
    auditlog.query_version_gate(req.emu, req.version, req.path)
    _options(req, {"$top", "$skiptoken"})
    raw = req.option("$top")
    if raw is not None and not (raw.isascii() and raw.isdigit()):
        raise models.bad_request(f"Invalid page size specified: '{raw}'.")
    body = auditlog.list_records(req.emu, req.caller, req.args["query"], int(raw) if raw else None,
                                 req.option("$skiptoken"), req.base, req.version)
    return wire.GraphResponse(200, body)


def list_message_traces(req: GraphRequest) -> wire.GraphResponse:
    _options(req, {"$filter", "$top", "$skiptoken"})
    return wire.GraphResponse(200, tracing.list_traces(req.emu, req.caller, req.option("$filter"),
                                                       req.option("$top"), req.option("$skiptoken"), req.base))


_SEG = r"(?P<user>[^/]+)"
_QUERIES = r"^/security/auditLog/queries"
ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = [
    ("GET", re.compile(r"^/users/?$"), "GET /v1.0/users", list_users),
    ("POST", re.compile(r"^/users/?$"), "POST /v1.0/users", create_user),
    ("GET", re.compile(rf"^/users/{_SEG}/mailboxSettings/?$", re.I), "GET /v1.0/users/{id}/mailboxSettings",
     get_mailbox_settings),
    ("PATCH", re.compile(rf"^/users/{_SEG}/mailboxSettings/?$", re.I), "PATCH /v1.0/users/{id}/mailboxSettings",
     patch_mailbox_settings),
    ("GET", re.compile(rf"^/users/{_SEG}/(?P<relation>memberOf)(?:/(?P<cast>[^/]+))?/?$", re.I),
     "GET /v1.0/users/{id}/memberOf", list_member_of),
    ("GET", re.compile(rf"^/users/{_SEG}/(?P<relation>transitiveMemberOf)(?:/(?P<cast>[^/]+))?/?$", re.I),
     "GET /v1.0/users/{id}/transitiveMemberOf", list_member_of),
    ("GET", re.compile(r"^/groups/(?P<group>[^/]+)/memberOf(?:/(?P<cast>[^/]+))?/?$", re.I),
     "GET /v1.0/groups/{id}/memberOf", list_group_member_of),
    ("GET", re.compile(r"^/groups/(?P<group>[^/]+)/(?P<relation>members)(?:/(?P<cast>[^/]+))?/?$", re.I),
     "GET /v1.0/groups/{id}/members", list_group_members),
    ("GET", re.compile(r"^/groups/(?P<group>[^/]+)/(?P<relation>transitiveMembers)(?:/(?P<cast>[^/]+))?/?$", re.I),
     "GET /v1.0/groups/{id}/transitiveMembers", list_group_members),
    ("GET", re.compile(rf"^/users/{_SEG}/?$"), "GET /v1.0/users/{id}", get_one_user),
    ("PATCH", re.compile(rf"^/users/{_SEG}/?$"), "PATCH /v1.0/users/{id}", patch_user),
    ("DELETE", re.compile(rf"^/users/{_SEG}/?$"), "DELETE /v1.0/users/{id}", delete_user),
    ("GET", re.compile(r"^/auditLogs/directoryAudits/?$", re.I), "GET /v1.0/auditLogs/directoryAudits",
     list_directory_audits),
    ("POST", re.compile(rf"{_QUERIES}/?$", re.I), "POST /v1.0/security/auditLog/queries", create_audit_query),
    ("GET", re.compile(rf"{_QUERIES}/(?P<query>[^/]+)/?$", re.I), "GET /v1.0/security/auditLog/queries/{id}",
     get_audit_query),
    ("GET", re.compile(rf"{_QUERIES}/(?P<query>[^/]+)/records/?$", re.I),
     "GET /v1.0/security/auditLog/queries/{id}/records", list_audit_records),
    ("GET", re.compile(r"^/admin/exchange/tracing/messageTraces/?$", re.I),
     "GET /v1.0/admin/exchange/tracing/messageTraces", list_message_traces),
]


def match(method: str, path: str) -> tuple[str, Handler | None, dict[str, str]]:
    """(metrics template, handler, path args) for a path relative to ``/v1.0``."""
    seen_path = False
    for verb, pattern, template, handler in ROUTES:
        m = pattern.match(path)
        if m:
            seen_path = True
            if verb == method:
                return template, handler, {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
    if path.rstrip("/") == "/$batch":
        return "POST /v1.0/$batch", None, {}
    return (f"{method} /v1.0 (method not allowed)" if seen_path else f"{method} /v1.0 (unknown)"), None, {}


def template_for(method: str, full_path: str) -> str:
    return match(method, full_path[len("/beta" if full_path.startswith("/beta") else "/v1.0"):])[0]


def dispatch(emu: Emulator, caller: Caller, method: str, path: str, query: list[tuple[str, str]],
             headers: dict[str, str], body: Any, base: str, version: str = "v1.0") -> wire.GraphResponse:
    template, handler, args = match(method, path)
    if handler is None:
        if "method not allowed" in template:
            return wire.error(405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed.")
        return wire.error(400, "BadRequest", f"Resource not found for the segment '{path.strip('/')}'.")
    if caller.roles is not None and not permissions.allows(caller.roles, template, body):
        return wire.error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.",
                          headers.get("client-request-id"))
    req = GraphRequest(emu, caller, method, path, query, headers, body, base, args, version)
    try:
        return handler(req)
    except GraphError as err:  # a 429 of the audit or trace limits carries its Retry-After
        return wire.error(err.status, err.code, err.message, headers.get("client-request-id"),
                          auditlog.throttle_headers(err))


def unauthorized(reason: str) -> Response:
    resp = wire.error(401, "InvalidAuthenticationToken", reason)
    return _send(wire.GraphResponse(401, resp.body, {**resp.headers, "WWW-Authenticate": 'Bearer realm=""'}))


def _send(resp: wire.GraphResponse) -> Response:
    return json_response(resp.body, resp.status, resp.headers or None, wire.CONTENT_TYPE)


def authorize(request: Request, emu: Emulator) -> Caller | Response:
    try:
        return verify(emu.secret, request.headers.get("authorization"), audience=GRAPH_AUD, tenant_id=emu.tenant.id)
    except AuthError as err:
        return unauthorized(str(err))


async def graph_endpoint(request: Request) -> Response:
    emu: Emulator = request.app.state.emu
    caller = authorize(request, emu)
    if isinstance(caller, Response):
        return caller
    body, ok = await read_json(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not ok:
        return _send(wire.error(400, "BadRequest", "Unable to read JSON request payload."))
    # raw_path keeps %40 etc. encoded, so direct requests and batch item URLs decode alike.
    raw = request.scope.get("raw_path") or request.url.path.encode()
    version = "beta" if request.url.path.startswith("/beta/") else "v1.0"
    path = raw.decode("latin-1").split("?", 1)[0][len(version) + 1:]
    query = parse_qsl(request.url.query, keep_blank_values=True)
    resp = dispatch(emu, caller, request.method, path, query, headers, body, base_url(request), version)
    return _send(resp)


async def batch_endpoint(request: Request) -> Response:
    """JSON batching (B.4): up to 20 items run in order; ``dependsOn`` (or msgraph-core's
    ``depends_on``) must name earlier items; an item whose dependency failed gets 424."""
    emu: Emulator = request.app.state.emu
    caller = authorize(request, emu)
    if isinstance(caller, Response):
        return caller
    doc, ok = await read_json(request)
    items = doc.get("requests") if ok and isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        return _send(wire.error(400, "BadRequest", "Invalid batch payload format."))
    if len(items) > MAX_BATCH:
        return _send(wire.error(400, "BadRequest", f"Number of requests in batch exceeds maximum of {MAX_BATCH}."))
    problem = _check_batch(items)
    if problem:
        return _send(wire.error(400, "BadRequest", problem))
    out = []
    status_by_id: dict[str, int] = {}
    for item in items:
        entry = _batch_item(request, emu, caller, item, status_by_id)
        status_by_id[entry["id"].lower()] = entry["status"]
        emu.metrics.status(entry["status"])
        out.append(entry)
    return json_response({"responses": out}, 200, None, wire.CONTENT_TYPE)


def _check_batch(items: list[Any]) -> str | None:
    """Why a batch is malformed (the whole batch is then refused with 400), or None.
    The rules are the documented ones (B.4)."""
    seen: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            return "Each batch request must be a JSON object."
        item_id = item.get("id")
        deps = item.get("dependsOn") or item.get("depends_on") or []
        headers = item.get("headers")
        if not isinstance(item_id, (str, int)) or isinstance(item_id, bool) or not str(item_id) \
                or str(item_id).lower() in seen:
            return "Batch request ids must be present and unique."
        if not isinstance(item.get("url"), str) or not isinstance(item.get("method", "GET"), str):
            return "Each batch request needs a url and a method, both strings."
        try:
            urlsplit(item["url"])
        except ValueError:  # e.g. an unclosed IPv6 literal
            return f"The batch request url '{item['url']}' is not a valid URL."
        if headers is not None and not isinstance(headers, dict):
            return "Batch request headers must be a JSON object."
        if item.get("body") is not None and not any(str(k).lower() == "content-type" for k in headers or {}):
            return "A batch request with a body must have a Content-Type header."
        if not isinstance(deps, list) or any(str(d).lower() not in seen for d in deps):
            return "dependsOn must reference earlier requests in the batch."
        seen.add(str(item_id).lower())
    return None


def _relative(url: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(url)
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    if path.lower().startswith("/v1.0/"):
        path = path[len("/v1.0"):]
    return path, parse_qsl(parts.query, keep_blank_values=True)


def _batch_item(request: Request, emu: Emulator, caller: Caller, item: dict[str, Any],
                status_by_id: dict[str, int]) -> dict[str, Any]:
    item_id = str(item["id"])
    method = str(item.get("method") or "GET").upper()
    path, query = _relative(str(item.get("url") or ""))
    template, _, _ = match(method, path)
    emu.metrics.batch_item(template)
    deps = item.get("dependsOn") or item.get("depends_on") or []
    if any(status_by_id.get(str(d).lower(), 200) >= 400 for d in deps):
        resp = wire.error(424, "FailedDependency", "The request could not be executed because a dependency failed.")
    elif path.rstrip("/") == "/$batch":
        resp = wire.error(400, "BadRequest", "Nested batch requests are not supported.")
    else:
        decision = emu.faults.decide(caller.app_id, item=True)
        if decision.action == "throttle":
            emu.metrics.inject(decision.reason)
            code = "ApplicationThrottled" if "mailboxSettings" in template else "TooManyRequests"
            resp = wire.throttled(decision.retry_after, code)
        elif decision.action == "error":
            emu.metrics.inject(decision.reason)
            resp = wire.server_error(decision.status)
        else:
            headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
            resp = dispatch(emu, caller, method, path, query, headers, item.get("body"), base_url(request))
    entry: dict[str, Any] = {"id": item_id, "status": resp.status}
    headers = dict(resp.headers)
    if resp.body is not None:
        headers.setdefault("Content-Type", wire.CONTENT_TYPE)
        entry["body"] = resp.body
    headers.setdefault("Cache-Control", "no-cache")
    entry["headers"] = headers
    return entry


routes = [
    Route("/v1.0/$batch", batch_endpoint, methods=["POST"]),
    Route("/v1.0/{rest:path}", graph_endpoint, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
    Route("/beta/{rest:path}", graph_endpoint, methods=["GET", "POST", "PATCH", "DELETE", "PUT"]),
]
