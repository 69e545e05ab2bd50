"""The unified audit log and the Graph audit log query API (``/security/auditLog/queries``).

What it models (exchange-features.md §5):
- ExchangeAdmin records (type 1) for every cmdlet the local tenant runs, written where the cmdlet is run
  (exchange/responses.py), with ``auditData`` as the real record carries it: Operation (the cmdlet),
  Parameters ``[{Name, Value}]``, ObjectId, UserId, ResultStatus.
- Mailbox records of delegate activity (``POST /_emulator/activity``): ExchangeItem (2) for single-item
  actions, ExchangeItemGroup (3) for folder binds and multi-item moves/deletes, ExchangeItemAggregated (50)
  for MailItemsAccessed. A record is written only if the mailbox records that action for that logon type:
  AuditEnabled, and the action in AuditDelegate/AuditOwner/AuditAdmin; MailItemsAccessed only for mailboxes
  with an Audit (Premium) licence (the ``audit_premium`` setting), as the service does.
- Ingestion delay: a record is found by searches only ``ingestion_delay_s`` after it happened (real: typically
  60-90 minutes, sometimes hours; here small but never zero by default).
- The query lifecycle: a query is ``notStarted`` for ``start_s``, ``running`` for ``run_s``, then
  ``succeeded``; it finds what was visible when it finished. Records are paged (``$top`` up to ``page_max``,
  ``@odata.nextLink``). Limits (baseline of the throttling page, exchange-features.md §5): ``max_active``
  queries queued or running and ``max_per_day`` submissions per app, 429 with Retry-After beyond them;
  ``max_records`` per query (``recordCountLimit`` may lower it; ``isRecordCountLimitExceeded`` says when more
  matched).
- v1.0 and beta: the API moved from v1.0 back to beta in 2025 (MC1052169) and is documented in v1.0 again;
  ``v1`` false answers the v1.0 path as Graph answers a segment it does not have, to prove a client's
  fallback.
[uncertain] the records page size: the reference gives none; the local tenant serves up to ``page_max``.
[uncertain] records asked for before the query has succeeded: the local tenant answers 400 (clients poll first).
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from localtenant import paging
from localtenant.common import Caller, new_guid, parse_stamp, stable_guid, stamp, utcnow
from localtenant.context import Emulator
from localtenant.directory import DirectoryError, DirObject, resolve
from localtenant.graph import responses as wire
from localtenant.graph.models import GraphError, bad_request
from localtenant.http import json_response, read_json, with_query
from localtenant.store import set_meta

# record type name (Graph's auditLogRecordType) ↔ the Management API's number
RECORD_TYPES = {"exchangeAdmin": 1, "exchangeItem": 2, "exchangeItemGroup": 3, "exchangeItemAggregated": 50}
LOGON_TYPES = {"Owner": 0, "Admin": 1, "Delegate": 2}
_AUDIT_SET = {"Owner": "AuditOwner", "Admin": "AuditAdmin", "Delegate": "AuditDelegate"}
# the mailbox actions the activity endpoint can simulate, and the record type each writes
ITEM_OPERATIONS = {
    "SendAs": "exchangeItem", "SendOnBehalf": "exchangeItem", "Create": "exchangeItem", "Update": "exchangeItem",
    "SoftDelete": "exchangeItem", "HardDelete": "exchangeItem", "MoveToDeletedItems": "exchangeItem",
    "Move": "exchangeItemGroup", "FolderBind": "exchangeItemGroup", "MailItemsAccessed": "exchangeItemAggregated",
    "UpdateFolderPermissions": "exchangeItem", "UpdateInboxRules": "exchangeItem",
}
STATUSES = ("notStarted", "running", "succeeded", "failed", "cancelled")
META_KEY = "auditlog_settings"


@dataclass
class Settings:
    ingestion_delay_s: float = 1.0
    start_s: float = 0.2
    run_s: float = 0.5
    page_max: int = 1000
    max_records: int = 1_000_000
    max_active: int = 50
    max_per_day: int = 200
    v1: bool = True
    audit_premium: tuple[str, ...] = ()  # mailboxes (any identity) with an Audit (Premium) licence

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> Settings:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
        return cls.from_dict(json.loads(row[0])) if row else cls()

    @classmethod
    def from_dict(cls, doc: Any, base: Settings | None = None) -> Settings:
        if not isinstance(doc, dict):
            raise ValueError("the body must be a JSON object")
        out = asdict(base or cls())
        known = {f.name: f for f in fields(cls)}
        for key, value in doc.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(known)}")
            current = out[key]
            if isinstance(current, bool):
                ok = isinstance(value, bool)
            elif isinstance(current, int):
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            elif isinstance(current, float):
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 86400
            else:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if not ok:
                raise ValueError(f"{key}: {value!r} is not a valid value")
            out[key] = float(value) if isinstance(current, float) else (tuple(value) if isinstance(value, list)
                                                                        else value)
        return cls(**out)

    def save(self, conn: sqlite3.Connection) -> None:
        set_meta(conn, META_KEY, json.dumps(asdict(self)))


def control_error(message: str) -> dict[str, object]:
    """guard.control_error, imported when used (guard imports the Exchange wire, which records here)."""
    from localtenant.guard import control_error as envelope

    return envelope(message)


# ---------------------------------------------------------------- recording


def _insert(conn: sqlite3.Connection, rows: Iterable[tuple[str, str, str, str, str, str, str]]) -> None:
    conn.executemany("INSERT INTO unified_audit(created, visible, record_type, operation, user_l, object_l, doc) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _visible(settings: Settings, created: datetime) -> str:
    return stamp(created + timedelta(seconds=settings.ingestion_delay_s))


def record_admin(conn: sqlite3.Connection, tenant_id: str, *, caller: Caller, cmdlet: str,
                 params: Sequence[dict[str, str]], object_name: str, succeeded: bool, error: str = "") -> None:
    """The ExchangeAdmin record of one cmdlet run (what Search-UnifiedAuditLog -RecordType ExchangeAdmin shows)."""
    now = utcnow()
    settings = Settings.load(conn)
    data = {"CreationTime": now.strftime("%Y-%m-%dT%H:%M:%S"), "Id": new_guid(), "Operation": cmdlet,
            "OrganizationId": tenant_id, "RecordType": RECORD_TYPES["exchangeAdmin"],
            "ResultStatus": "True" if succeeded else "False", "UserKey": caller.user_id or caller.app_id,
            "UserType": 2 if caller.upn else 5, "Version": 1, "Workload": "Exchange", "ObjectId": object_name,
            "UserId": caller.label, "AppId": caller.app_id, "ExternalAccess": False,
            "Parameters": [{"Name": p.get("Name"), "Value": p.get("Value")} for p in params]}
    if error:
        data["Error"] = error
    _insert(conn, [(stamp(now), _visible(settings, now), "exchangeAdmin", cmdlet, caller.label.lower(),
                    object_name.lower(), json.dumps(data))])


def audited(mailbox: DirObject, logon: str, operation: str, settings: Settings, premium: set[str]) -> bool:
    """Whether ``mailbox`` writes a record of ``operation`` by a ``logon`` user (exchange-features.md §5)."""
    props = mailbox.props
    if not props.get("AuditEnabled", True):
        return False
    if operation == "MailItemsAccessed" and not premium & _keys(mailbox):
        return False  # Audit (Premium) only
    from localtenant.exchange.models import AUDIT_DEFAULTS

    key = _AUDIT_SET[logon]
    return operation in props.get(key, AUDIT_DEFAULTS[key])


def _keys(obj: DirObject) -> set[str]:
    return {str(v).lower() for v in (obj.upn, obj.mail, obj.name, obj.alias, obj.id) if v}


def _premium(conn: sqlite3.Connection, settings: Settings) -> set[str]:
    return {p.lower() for p in settings.audit_premium}


def item_record(tenant_id: str, mailbox: DirObject, user: DirObject, operation: str, logon: str,
                when: datetime, count: int, folder: str) -> dict[str, Any]:
    upn = user.upn or user.mail or user.name or ""
    data: dict[str, Any] = {
        "CreationTime": when.strftime("%Y-%m-%dT%H:%M:%S"), "Id": new_guid(), "Operation": operation,
        "OrganizationId": tenant_id, "RecordType": RECORD_TYPES[ITEM_OPERATIONS[operation]],
        "ResultStatus": "Succeeded", "UserKey": user.id, "UserType": 0, "Version": 1, "Workload": "Exchange",
        "ClientIP": "203.0.113.10", "UserId": upn, "AppId": "", "ClientIPAddress": "203.0.113.10",
        "ClientInfoString": "Client=OWA;Action=ViaProxy", "ExternalAccess": False,
        "InternalLogonType": 0, "LogonType": LOGON_TYPES[logon], "LogonUserSid": stable_guid("sid", user.id),
        "MailboxGuid": mailbox.exchange_guid or stable_guid("mbx", mailbox.id),
        "MailboxOwnerUPN": mailbox.upn or mailbox.mail or "", "MailboxOwnerSid": stable_guid("sid", mailbox.id),
        "ObjectId": mailbox.upn or mailbox.mail or "",
    }
    if operation in ("SendAs", "SendOnBehalf"):  # [uncertain] the mailbox sent as, as these records name it
        data["SendAsUserSmtp" if operation == "SendAs" else "SendOnBehalfOfUserSmtp"] = mailbox.mail or ""
    if operation == "MailItemsAccessed":
        data["OperationProperties"] = [{"Name": "MailAccessType", "Value": "Bind"},
                                       {"Name": "IsThrottled", "Value": "False"}]
        data["OperationCount"] = count
        data["Folders"] = [{"Path": f"\\{folder}", "FolderItems": []}]
    elif ITEM_OPERATIONS[operation] == "exchangeItemGroup":
        data["Folder"] = {"Path": f"\\{folder}"}
        data["AffectedItems"] = [] if operation == "FolderBind" else [{"Subject": "…"}] * count
    else:
        data["Item"] = {"ParentFolder": {"Path": f"\\{folder}"}, "Subject": "…"}
    return data


def record_activity(conn: sqlite3.Connection, tenant_id: str, settings: Settings, premium: set[str],
                    mailbox: DirObject, user: DirObject, operation: str, logon: str, when: datetime,
                    count: int = 1, folder: str = "Inbox") -> bool:
    """One mailbox action by ``user``: recorded (True) only if the mailbox audits it."""
    if not audited(mailbox, logon, operation, settings, premium):
        return False
    data = item_record(tenant_id, mailbox, user, operation, logon, when, count, folder)
    _insert(conn, [(stamp(when), _visible(settings, when), ITEM_OPERATIONS[operation], operation,
                    str(data["UserId"]).lower(), str(data["MailboxOwnerUPN"]).lower(), json.dumps(data))])
    return True


# ---------------------------------------------------------------- queries


@dataclass
class Query:
    id: str
    app_id: str
    submitted: datetime
    body: dict[str, Any]
    version: str
    matched: int | None = None  # counted once, when the query has finished

    def status(self, settings: Settings, now: datetime) -> str:
        age = (now - self.submitted).total_seconds()
        if age < settings.start_s:
            return "notStarted"
        return "running" if age < settings.start_s + settings.run_s else "succeeded"

    def finished_at(self, settings: Settings) -> datetime:
        return self.submitted + timedelta(seconds=settings.start_s + settings.run_s)

    def limit(self, settings: Settings) -> int:
        asked = self.body.get("recordCountLimit")
        return min(settings.max_records, asked) if isinstance(asked, int) and asked > 0 else settings.max_records


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"Invalid value for '{key}': a collection of strings is expected.", "BadRequest")
    return value


def _when(body: dict[str, Any], key: str) -> str:
    raw = body.get(key)
    if not isinstance(raw, str):
        raise bad_request(f"'{key}' is required.", "BadRequest")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return stamp(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))
    except (ValueError, OverflowError) as err:  # OverflowError: past year 9999 once in UTC
        raise bad_request(f"Cannot convert the literal '{raw}' to the expected type 'Edm.DateTimeOffset'.",
                          "BadRequest") from err


def _where(q: Query, settings: Settings) -> tuple[str, list[Any]]:
    body = q.body
    sql = "created >= ? AND created <= ? AND visible <= ?"
    args: list[Any] = [_when(body, "filterStartDateTime"), _when(body, "filterEndDateTime"),
                       stamp(q.finished_at(settings))]
    for key, column, fold in (("recordTypeFilters", "record_type", False), ("operationFilters", "operation", False),
                              ("userPrincipalNameFilters", "user_l", True), ("objectIdFilters", "object_l", True)):
        values = _strings(body, key)
        if values:
            if column == "operation":  # operations match case-insensitively, as in the portal
                sql += f" AND lower(operation) IN ({','.join('?' * len(values))})"
                args += [v.lower() for v in values]
            else:
                sql += f" AND {column} IN ({','.join('?' * len(values))})"
                args += [v.lower() if fold else v for v in values]
    keyword = body.get("keywordFilter")
    if isinstance(keyword, str) and keyword:
        sql += " AND instr(lower(doc), ?) > 0"
        args.append(keyword.lower())
    return sql, args


def _load(conn: sqlite3.Connection, query_id: str, app_id: str) -> Query:
    row = conn.execute("SELECT id, app_id, submitted, body, version, matched FROM audit_queries WHERE id = ?",
                       (query_id,)).fetchone()
    if row is None or row[1] != app_id:  # another app's query does not exist for this one
        raise GraphError(404, "NotFound", f"The audit log query '{query_id}' was not found.")
    return Query(row[0], row[1], parse_stamp(row[2]), json.loads(row[3]), row[4], row[5])


def _resource(q: Query, settings: Settings, now: datetime) -> dict[str, Any]:
    body = q.body
    status = q.status(settings, now)
    doc: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.security.auditLogQuery", "id": q.id,
        "displayName": body.get("displayName") or "",
        "filterStartDateTime": body.get("filterStartDateTime"), "filterEndDateTime": body.get("filterEndDateTime"),
        "recordTypeFilters": body.get("recordTypeFilters") or [], "keywordFilter": body.get("keywordFilter") or "",
        "serviceFilters": body.get("serviceFilters") or [], "operationFilters": body.get("operationFilters") or [],
        "userPrincipalNameFilters": body.get("userPrincipalNameFilters") or [],
        "ipAddressFilters": body.get("ipAddressFilters") or [], "objectIdFilters": body.get("objectIdFilters") or [],
        "administrativeUnitIdFilters": body.get("administrativeUnitIdFilters") or [], "status": status,
    }
    if q.version == "v1.0":  # properties only the v1.0 resource has
        limit = q.limit(settings)
        doc["recordCountLimit"] = limit
        done = status == "succeeded" and q.matched is not None
        doc["isRecordCountLimitExceeded"] = bool(done and (q.matched or 0) > limit)
        doc["approximateReturnedRecordCount"] = min(q.matched or 0, limit) if done else 0
    return doc


def _finish(conn: sqlite3.Connection, q: Query, settings: Settings, now: datetime | None = None) -> None:
    """Count what the query found (once, when it has finished)."""
    if q.matched is not None or q.status(settings, now or utcnow()) != "succeeded":
        return
    where, args = _where(q, settings)
    q.matched = int(conn.execute(f"SELECT count(*) FROM unified_audit WHERE {where}", args).fetchone()[0])
    conn.execute("UPDATE audit_queries SET matched = ? WHERE id = ?", (q.matched, q.id))


def _throttled(seconds: float, message: str) -> GraphError:
    err = GraphError(429, "TooManyRequests", message)
    err.retry_after = max(1, math.ceil(seconds))  # type: ignore[attr-defined]
    return err


def create_query(emu: Emulator, caller: Caller, version: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be an auditLogQuery object.", "BadRequest")
    _when(body, "filterStartDateTime"), _when(body, "filterEndDateTime")
    for key in ("recordTypeFilters", "operationFilters", "userPrincipalNameFilters", "objectIdFilters",
                "serviceFilters", "ipAddressFilters", "administrativeUnitIdFilters"):
        _strings(body, key)
    unknown = set(_strings(body, "recordTypeFilters")) - set(RECORD_TYPES) - {"unknownFutureValue"}
    if unknown and not unknown <= _OTHER_TYPES:
        raise bad_request(f"Requested value '{sorted(unknown)[0]}' was not found.", "BadRequest")
    now = utcnow()
    with emu.store.tx() as conn:
        settings = Settings.load(conn)
        rows = conn.execute("SELECT submitted FROM audit_queries WHERE app_id = ? AND submitted >= ? "
                            "ORDER BY submitted", (caller.app_id, stamp(now - timedelta(days=1)))).fetchall()
        if len(rows) >= settings.max_per_day:
            wait = (parse_stamp(rows[len(rows) - settings.max_per_day][0]) + timedelta(days=1) - now).total_seconds()
            raise _throttled(wait, f"Too many audit log queries: at most {settings.max_per_day} a day.")
        busy = [parse_stamp(r[0]) + timedelta(seconds=settings.start_s + settings.run_s) for r in rows]
        active = sorted(t for t in busy if t > now)
        if len(active) >= settings.max_active:
            raise _throttled((active[len(active) - settings.max_active] - now).total_seconds(),
                             f"Too many audit log queries queued or running: at most {settings.max_active}.")
        q = Query(new_guid(), caller.app_id, now, body, version)
        conn.execute("INSERT INTO audit_queries(id, app_id, submitted, body, version) VALUES (?, ?, ?, ?, ?)",
                     (q.id, q.app_id, stamp(now), json.dumps(body), version))
        return _resource(q, settings, now)


# record types of other workloads: accepted in filters, never matched here (the tenant holds Exchange only)
_OTHER_TYPES = {"sharePoint", "oneDrive", "azureActiveDirectory", "microsoftTeams", "sharePointFileOperation"}


def get_query(emu: Emulator, caller: Caller, query_id: str) -> dict[str, Any]:
    with emu.store.tx() as conn:
        settings = Settings.load(conn)
        q = _load(conn, query_id, caller.app_id)
        # One instant for both: a query that finished between two clock reads would say succeeded without its
        # count (and without isRecordCountLimitExceeded), which the real service never does.
        now = utcnow()
        _finish(conn, q, settings, now)
        return _resource(q, settings, now)


def list_records(emu: Emulator, caller: Caller, query_id: str, top: int | None, token: str | None,
                 base: str, version: str) -> dict[str, Any]:
    with emu.store.tx() as conn:
        settings = Settings.load(conn)
        q = _load(conn, query_id, caller.app_id)
        if q.status(settings, utcnow()) != "succeeded":
            raise bad_request("The audit log query has not completed; records are available once its status is "
                              "succeeded.", "BadRequest")
        _finish(conn, q, settings)
        size = top or settings.page_max
        if not 1 <= size <= settings.page_max:
            raise bad_request(f"Invalid page size specified: '{size}'. Must be between 1 and {settings.page_max} "
                              "inclusive.")
        after, served = 0, 0
        if token is not None:
            try:
                state = paging.decode(emu.secret, token, None)
            except paging.SkipTokenError as err:
                raise bad_request("Invalid $skiptoken.") from err
            if state.get("q") != q.id:
                raise bad_request("The $skiptoken does not belong to this query.")
            after, served = int(state["a"]), int(state["n"])
        size = min(size, q.limit(settings) - served)
        where, args = _where(q, settings)
        # NOT INDEXED: page in seq order along the table itself (a rowid range), never through the date index,
        # which would sort the whole window again for every page.
        rows = conn.execute(f"SELECT seq, created, record_type, operation, user_l, object_l, doc FROM unified_audit "
                            f"NOT INDEXED WHERE seq > ? AND {where} ORDER BY seq LIMIT ?",
                            [after, *args, size + 1]).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    body: dict[str, Any] = {
        "@odata.context": f"{base}/{version}/$metadata#security/auditLog/queries('{q.id}')/records",
        "value": [_record(r, emu.tenant.id) for r in rows]}
    if more and rows:
        state = {"q": q.id, "a": rows[-1][0], "n": served + len(rows)}
        params = [("$top", str(top))] if top else []
        body["@odata.nextLink"] = with_query(f"{base}/{version}/security/auditLog/queries/{q.id}/records",
                                             [*params, ("$skiptoken", paging.encode(emu.secret, state))])
    return body


def _record(row: Sequence[Any], tenant_id: str) -> dict[str, Any]:
    seq, created, record_type, operation, user_l, object_l, doc = row
    data = json.loads(doc)
    return {"id": data.get("Id") or stable_guid("audit", str(seq)), "createdDateTime": created,
            "auditLogRecordType": record_type, "operation": operation, "organizationId": tenant_id,
            "userType": "admin" if record_type == "exchangeAdmin" else "regular", "userId": data.get("UserKey"),
            "service": "Exchange", "objectId": data.get("ObjectId") or object_l,
            "userPrincipalName": data.get("UserId") or user_l, "clientIp": data.get("ClientIP"),
            "administrativeUnits": [], "auditData": data}


# ---------------------------------------------------------------- Graph routes (called from graph/routes.py)


def query_version_gate(emu: Emulator, version: str, path: str) -> None:
    """v1.0 switched off: Graph answers a segment it does not have (the client must fall back to beta)."""
    if version == "v1.0":
        with emu.store.read() as conn:
            on = Settings.load(conn).v1
        if not on:
            segment = path.strip("/").split("/")[1]
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def throttle_headers(err: GraphError) -> dict[str, str]:
    retry = getattr(err, "retry_after", None)
    return {"Retry-After": str(retry)} if retry else {}


# ---------------------------------------------------------------- emulator control routes


def _emu(request: Request) -> Emulator:
    emu: Emulator = request.app.state.emu
    return emu


async def settings_route(request: Request) -> Response:
    """``GET/PUT /_emulator/auditlog``: the ingestion delay, query timing and limits, v1.0 on or off, and which
    mailboxes have Audit (Premium). PUT changes only the keys it names."""
    emu = _emu(request)
    if request.method == "PUT":
        doc, ok = await read_json(request)
        try:
            with emu.store.tx() as conn:
                Settings.from_dict(doc if ok else None, Settings.load(conn)).save(conn)
        except ValueError as err:
            return json_response(control_error(str(err)), 400)
    with emu.store.read() as conn:
        return json_response(asdict(Settings.load(conn)))


def _event_time(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise ValueError("time must be an ISO 8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    try:
        parsed.astimezone(timezone.utc)
    except OverflowError as err:
        raise ValueError(f"time {value!r} is out of range") from err
    return parsed


def _operation(value: Any) -> str:
    if value not in ITEM_OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(ITEM_OPERATIONS)}")
    return str(value)


async def activity_route(request: Request) -> Response:
    """``POST /_emulator/activity``: a person acts on a mailbox (as a delegate unless ``logon`` says Owner or
    Admin): ``{"mailbox", "user", "operation", "time"?, "logon"?, "count"?, "folder"?}``. Answers whether the
    mailbox recorded it (``recorded``), as the audit settings decide."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    try:
        if not ok or not isinstance(doc, dict) or not isinstance(doc.get("mailbox"), str) \
                or not isinstance(doc.get("user"), str):
            raise ValueError("the body must be a JSON object with mailbox, user and operation")
        operation = _operation(doc.get("operation"))
        logon = doc.get("logon", "Delegate")
        if logon not in LOGON_TYPES:
            raise ValueError("logon must be Owner, Admin or Delegate")
        count = doc.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError("count must be a positive integer")
        when = _event_time(doc.get("time"), utcnow())
        with emu.store.tx() as conn:
            settings = Settings.load(conn)
            mailbox, user = resolve(conn, doc["mailbox"]), resolve(conn, doc["user"])
            if not mailbox.rtd or "Mailbox" not in mailbox.rtd:
                raise ValueError(f"{doc['mailbox']} is not a mailbox")
            recorded = record_activity(conn, emu.tenant.id, settings, _premium(conn, settings), mailbox, user,
                                       operation, str(logon), when, count, str(doc.get("folder") or "Inbox"))
    except ValueError as err:
        return json_response(control_error(str(err)), 400)
    except DirectoryError as err:
        return json_response(control_error(f"'{err.text}' does not resolve to one recipient ({err.reason})"), 400)
    return json_response({"recorded": recorded})


async def generate_route(request: Request) -> Response:
    """``POST /_emulator/activity/generate``: many delegate actions at once, for benchmarks:
    ``{"pairs": [[mailbox, user, operation, count], ...], "days": 90, "end"?, "seed"?}`` spreads ``count``
    actions of each pair over the ``days`` before ``end`` (default now). Each mailbox's audit settings
    decide, as for one action; answers how many records were written."""
    emu = _emu(request)
    doc, ok = await read_json(request)
    try:
        if not ok or not isinstance(doc, dict) or not isinstance(doc.get("pairs"), list):
            raise ValueError("the body must be a JSON object with pairs")
        days = doc.get("days", 90)
        if not isinstance(days, (int, float)) or isinstance(days, bool) or not 0 < days <= 366:
            raise ValueError("days must be between 0 and 366")
        end = _event_time(doc.get("end"), utcnow())
        rng = random.Random(doc.get("seed", 0))
        written = 0
        with emu.store.tx() as conn:
            settings = Settings.load(conn)
            premium = _premium(conn, settings)
            cache: dict[str, DirObject] = {}

            def obj(key: str) -> DirObject:
                if key not in cache:
                    cache[key] = resolve(conn, key)
                return cache[key]

            batch: list[tuple[str, str, str, str, str, str, str]] = []
            span = days * 86400.0
            for pair in doc["pairs"]:
                if not (isinstance(pair, list) and len(pair) == 4 and all(isinstance(p, str) for p in pair[:3])
                        and isinstance(pair[3], int)):
                    raise ValueError("each pair is [mailbox, user, operation, count]")
                mailbox, user, operation = obj(pair[0]), obj(pair[1]), _operation(pair[2])
                if not audited(mailbox, "Delegate", operation, settings, premium):
                    continue
                for _ in range(pair[3]):
                    when = end - timedelta(seconds=rng.random() * span)
                    data = item_record(emu.tenant.id, mailbox, user, operation, "Delegate", when, 1, "Inbox")
                    batch.append((stamp(when), _visible(settings, when), ITEM_OPERATIONS[operation], operation,
                                  str(data["UserId"]).lower(), str(data["MailboxOwnerUPN"]).lower(),
                                  json.dumps(data)))
                if len(batch) >= 20000:
                    _insert(conn, batch)
                    written += len(batch)
                    batch = []
            _insert(conn, batch)
            written += len(batch)
    except ValueError as err:
        return json_response(control_error(str(err)), 400)
    except DirectoryError as err:
        return json_response(control_error(f"'{err.text}' does not resolve to one recipient ({err.reason})"), 400)
    return json_response({"written": written})


def graph_error_response(err: GraphError, client_request_id: str | None) -> wire.GraphResponse:
    return wire.error(err.status, err.code, err.message, client_request_id, throttle_headers(err))
