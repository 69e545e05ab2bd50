"""Exchange admin API wire format: parse ``CmdletInput``, run the cmdlet, build the success
envelope (A.4) or the error envelope (A.6), and the paging continuation (A.5)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localtenant import paging
from localtenant.common import Caller
from localtenant.context import Emulator
from localtenant.directory import DirectoryError, DirObject, find_recipients
from localtenant.exchange import cmdlets, rbac, render
from localtenant.exchange.models import CmdletError
from localtenant.exchange.params import Params
from localtenant.graph import auditlog

CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
MAX_PAGE = 1000
MORE_RESULTS = ("There are more results available than are currently displayed. To view them, increase the "
                "value for the ResultSize parameter.")
DEFAULT_CAP = ("By default, only the first 1000 items are returned. Use the ResultSize parameter to specify the "
               'number of items returned. To return all items, specify "-ResultSize Unlimited".')
# [uncertain] exception type; the status and text are the documented ones.
PAGE_EXPIRED = CmdletError(400, "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
                           "Expired or Invalid pagination request. Default Expiry time is 00:30:00")
WARNINGS_TYPE = "#Collection(String)"
# error.code per status: 400/404/500 are captured (A.6); the others follow the same
# PascalCase-of-the-reason pattern [infer].
ERROR_CODES = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge",
               414: "RequestUriTooLong", 431: "RequestHeaderFieldsTooLarge", 500: "InternalServerError"}


@dataclass
class Outcome:
    status: int
    body: dict[str, Any] | None
    cmdlet: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def envelope(context: str, rows: list[dict[str, Any]], warnings: list[str], next_link: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@odata.context": context,
        "adminapi.warnings@odata.type": WARNINGS_TYPE,
        "@adminapi.warnings": warnings,
    }
    if next_link:
        doc["@odata.nextLink"] = next_link
    doc["value"] = rows
    return doc


def error_body(err: CmdletError) -> dict[str, Any]:
    code = ERROR_CODES.get(err.status, "InternalServerError")
    internal = "Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdletExecutionException"
    return {"error": {
        "code": code,
        "message": "Error executing cmdlet",
        "details": [{"code": "Client", "target": "", "message": f"{err.error_id}|{err.exc_type}|{err.text}"}],
        "innererror": {
            "message": "Error executing cmdlet",
            "type": "Microsoft.Exchange.Admin.OData.Core.ODataServiceException",
            "stacktrace": "   at Microsoft.Exchange.AdminApi.CommandInvocation.CommandInvocation.InvokeCommand()",
            "internalexception": {
                "message": err.text,
                "type": internal,
                "stacktrace": "   at Microsoft.Exchange.Management.PSDirectInvoke.DirectInvokeCmdlet.Invoke()",
            },
        },
        "adminapi.warnings@odata.type": WARNINGS_TYPE,
        "@adminapi.warnings": [],
    }}


def throttled_body(retry_after: int) -> dict[str, Any]:
    # [infer] body shape (A.7); the module treats any 429 body as a ThrottlingError.
    return {"error": {"code": "TooManyRequests",
                      "message": f"The request was throttled (LimitsExceeded). Retry after {retry_after} seconds."}}


def server_error_body(status: int) -> dict[str, Any]:
    return error_body(CmdletError(status, "Microsoft.Exchange.Data.Storage.TransientException",
                                  "The server is temporarily unavailable. Please try again later."))


def bad_request(text: str) -> Outcome:
    return Outcome(400, error_body(CmdletError(400, "System.ArgumentException", text)))


def page_size(prefer: str | None) -> int:
    """``Prefer: odata.maxpagesize=N``, clamped to 1..1000; 1000 when absent (A.5)."""
    for part in (prefer or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "odata.maxpagesize":
            try:
                return max(1, min(MAX_PAGE, int(value.strip())))
            except ValueError:
                break
    return MAX_PAGE


def _object_name(result_target: Any, params: Params) -> str:
    if result_target is not None:
        return str(result_target.name)
    return params.string("Identity") or params.string("Name") or ""


def _failure_target(conn: sqlite3.Connection, params: Params) -> DirObject | None:
    """A failed write is still logged against its object when the Identity resolves."""
    identity = params.string("Identity")
    found = find_recipients(conn, identity, "any") if identity else []
    return found[0] if len(found) == 1 else None


def invoke(
    emu: Emulator, caller: Caller, payload: Any, *, size: int, skiptoken: str | None,
    select: set[str] | None, context: str, link_for: Callable[[str], str],
) -> Outcome:
    """Run one ``CmdletInput`` (from InvokeCommand or a ``$batch`` item)."""
    cmdlet_input = payload.get("CmdletInput") if isinstance(payload, dict) else None
    if not isinstance(cmdlet_input, dict) or not isinstance(cmdlet_input.get("CmdletName"), str):
        return bad_request("The request body must be {\"CmdletInput\":{\"CmdletName\":...,\"Parameters\":{...}}}.")
    raw_params = cmdlet_input.get("Parameters") or {}
    if not isinstance(raw_params, dict):
        return bad_request("CmdletInput.Parameters must be an object.")
    name = cmdlet_input["CmdletName"].strip().lower()
    cmd = cmdlets.CMDLETS.get(name) or rbac.CMDLETS.get(name)
    if cmd is None:
        return Outcome(403, None)  # the real service answers an unknown cmdlet with a non-JSON 403
    try:
        with emu.store.read() as conn:
            grants = rbac.grants_for(conn, caller)
    except rbac.Refused:
        return Outcome(403, None, cmd.name)  # an app with no Exchange role at all: the same non-JSON 403
    if grants is not None and not grants.allows(cmd.name):
        return Outcome(403, None, cmd.name)  # a cmdlet outside the app's roles does not exist for it
    params = Params(raw_params)
    try:
        params.check(cmd.params, cmd.mandatory)
        result_size = params.result_size(maximum=cmd.result_size_max) if "resultsize" in cmd.params else None
    except CmdletError as err:
        return Outcome(err.status, error_body(err), cmd.name)
    fp = paging.fingerprint([cmd.name, raw_params])
    returned, cursor = 0, None
    if skiptoken is not None:
        try:
            state = paging.decode(emu.secret, skiptoken, emu.skiptoken_ttl)
        except paging.SkipTokenError:
            return Outcome(400, error_body(PAGE_EXPIRED), cmd.name)
        if state.get("f") != fp:
            return Outcome(400, error_body(PAGE_EXPIRED), cmd.name)
        returned, cursor = int(state["n"]), state["c"]
    limit = size if result_size is None else min(size, result_size - returned)
    try:
        with emu.store.tx() if cmd.write else emu.store.read() as conn:
            ctx = cmdlets.Ctx(conn, emu.tenant, caller, max(limit, 0), cursor)
            result = cmd.run(ctx, params)
            if cmd.write:
                rbac.check_write(grants, cmd.name, result.target)  # raises inside the tx: rolled back
                auditlog.record_admin(conn, emu.tenant.id, caller=caller, cmdlet=cmd.name,
                                      params=params.audit_values(),
                                      object_name=_object_name(result.target, params), succeeded=True)
    except (CmdletError, DirectoryError) as exc:
        failure = cmdlets.as_cmdlet_error(exc) if isinstance(exc, DirectoryError) else exc
        if cmd.write:
            with emu.store.tx() as conn:
                target = _failure_target(conn, params)
                auditlog.record_admin(conn, emu.tenant.id, caller=caller, cmdlet=cmd.name,
                                      params=params.audit_values(), object_name=_object_name(target, params),
                                      succeeded=False, error=f"{failure.exc_type}: {failure.text}")
        return Outcome(failure.status, error_body(failure), cmd.name)
    rows = result.rows if select is None else [render.select(r, select) for r in result.rows]
    warnings = list(result.warnings)
    next_link = None
    if result.more:
        total = returned + len(rows)
        capped = result_size is not None and total >= result_size
        warnings.append(DEFAULT_CAP if capped and not params.has("ResultSize") else MORE_RESULTS)
        if not capped:
            next_link = link_for(paging.encode(emu.secret, {"c": result.cursor, "n": total, "f": fp}))
    return Outcome(200, envelope(context, rows, warnings, next_link), cmd.name)
