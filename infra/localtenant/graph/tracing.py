"""Message trace: ``GET /admin/exchange/tracing/messageTraces`` (Graph v1.0, exchange-features.md §6), and the
inbound mail the local tenant simulates for it (``POST /_emulator/mail``).

As documented for Get-MessageTraceV2, whose data the Graph API serves: 90 days of history, at most 10 days
per query (48 hours when the filter names no time), ``$top`` 1-5000 (default 1000), and 100 queries per
5-minute window per tenant; beyond that 429 with Retry-After. [uncertain] which $filter forms Graph accepts:
the local tenant takes ``receivedDateTime ge/le``, ``recipientAddress eq`` and ``senderAddress eq`` joined
by ``and``.
"""

from __future__ import annotations

import collections
import json
import math
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from localtenant import paging
from localtenant.common import Caller, new_guid, stamp, utcnow
from localtenant.context import Emulator
from localtenant.graph.models import GraphError, bad_request
from localtenant.http import json_response, read_json, with_query

HISTORY = timedelta(days=90)
WINDOW = timedelta(days=10)
DEFAULT_SPAN = timedelta(hours=48)
MAX_TOP, DEFAULT_TOP = 5000, 1000
RATE_LIMIT, RATE_WINDOW = 100, 300.0
_CLAUSE = re.compile(r"^\s*(receivedDateTime|recipientAddress|senderAddress)\s+(ge|le|eq)\s+(.+?)\s*$", re.I)
_calls: dict[int, collections.deque[float]] = {}  # per running emulator (id of its Emulator), in memory as a
# rate window is


def control_error(message: str) -> dict[str, object]:
    from localtenant.guard import control_error as envelope

    return envelope(message)


def _throttle(emu: Emulator) -> None:
    calls = _calls.setdefault(id(emu), collections.deque())
    now = time.monotonic()
    while calls and calls[0] <= now - RATE_WINDOW:
        calls.popleft()
    if len(calls) >= RATE_LIMIT:
        err = GraphError(429, "TooManyRequests", f"Too many message trace queries: at most {RATE_LIMIT} in 5 "
                         "minutes.")
        err.retry_after = max(1, math.ceil(calls[0] + RATE_WINDOW - now))  # type: ignore[attr-defined]
        raise err
    calls.append(now)


def _parse(filter_text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clause in re.split(r"\s+and\s+", filter_text or "", flags=re.I) if filter_text else []:
        m = _CLAUSE.match(clause)
        if not m:
            raise bad_request(f"Invalid filter clause: '{clause}'.", "BadRequest")
        name, op, value = m.group(1).lower(), m.group(2).lower(), m.group(3)
        if name == "receiveddatetime" and op in ("ge", "le"):
            try:
                when = datetime.fromisoformat(value.strip("'").replace("Z", "+00:00"))
                when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
                out[op] = when.astimezone(timezone.utc)
            except (ValueError, OverflowError) as err:
                raise bad_request(f"Invalid date in filter: '{value}'.", "BadRequest") from err
        elif name != "receiveddatetime" and op == "eq" and value.startswith("'") and value.endswith("'"):
            out[name] = value[1:-1].replace("''", "'").lower()
        else:
            raise bad_request(f"Invalid filter clause: '{clause}'.", "BadRequest")
    return out


def list_traces(emu: Emulator, caller: Caller, filter_text: str | None, top_raw: str | None, token: str | None,
                base: str) -> dict[str, Any]:
    _throttle(emu)
    now = utcnow()
    f = _parse(filter_text)
    end = f.get("le", now)
    start = f.get("ge", end - DEFAULT_SPAN)
    if end - start > WINDOW:
        raise bad_request("The time range of a message trace query can be at most 10 days.", "BadRequest")
    if start < now - HISTORY:
        raise bad_request("Message trace data is kept for 90 days: the start date is too old.", "BadRequest")
    if top_raw is not None and not (top_raw.isascii() and top_raw.isdigit() and 1 <= int(top_raw) <= MAX_TOP):
        raise bad_request(f"Invalid page size specified: '{top_raw}'. Must be between 1 and {MAX_TOP} inclusive.")
    top = int(top_raw) if top_raw else DEFAULT_TOP
    fp = paging.fingerprint([filter_text, top])
    after = 0
    if token is not None:
        try:
            state = paging.decode(emu.secret, token, None)
        except paging.SkipTokenError as err:
            raise bad_request("Invalid $skiptoken.") from err
        if state.get("f") != fp:
            raise bad_request("The $skiptoken does not belong to this query.")
        after = int(state["a"])
    sql = "SELECT seq, doc FROM message_trace WHERE seq > ? AND received >= ? AND received <= ?"
    args: list[Any] = [after, stamp(start), stamp(end)]
    for key, column in (("recipientaddress", "recipient_l"), ("senderaddress", "sender_l")):
        if key in f:
            sql += f" AND {column} = ?"
            args.append(f[key])
    with emu.store.read() as conn:
        rows = conn.execute(sql + " ORDER BY seq LIMIT ?", [*args, top + 1]).fetchall()
    body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#admin/exchange/tracing/messageTraces",
                            "value": [json.loads(r[1]) for r in rows[:top]]}
    if len(rows) > top:
        params = [(k, v) for k, v in (("$filter", filter_text), ("$top", top_raw)) if v]
        state = {"a": rows[top - 1][0], "f": fp}
        body["@odata.nextLink"] = with_query(f"{base}/v1.0/admin/exchange/tracing/messageTraces",
                                             [*params, ("$skiptoken", paging.encode(emu.secret, state))])
    return body


async def mail_route(request: Request) -> Response:
    """``POST /_emulator/mail``: mail delivered to a recipient: ``{"messages": [{"to", "from"?, "subject"?,
    "time"?}]}`` (or one message as the body). Only the trace is kept: the local tenant stores no mail."""
    emu: Emulator = request.app.state.emu
    doc, ok = await read_json(request)
    items = doc.get("messages", [doc]) if ok and isinstance(doc, dict) else None
    rows = []
    try:
        if not isinstance(items, list):
            raise ValueError("the body must be a JSON object: a message, or {messages: [...]}")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("to"), str):
                raise ValueError("each message needs 'to'")
            when = item.get("time")
            received = datetime.fromisoformat(when.replace("Z", "+00:00")) if isinstance(when, str) else utcnow()
            received = (received if received.tzinfo else received.replace(tzinfo=timezone.utc)).astimezone(
                timezone.utc)
            sender = str(item.get("from") or "someone@example.net")
            trace = {"id": new_guid(), "messageId": f"<{new_guid()}@example.net>", "senderAddress": sender,
                     "recipientAddress": item["to"], "receivedDateTime": received.strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "subject": str(item.get("subject") or ""), "size": 2048, "status": "delivered",
                     "fromIP": "198.51.100.7", "toIP": ""}
            rows.append((stamp(received), sender.lower(), item["to"].lower(), json.dumps(trace)))
    except (ValueError, OverflowError) as err:
        return json_response(control_error(str(err)), 400)
    with emu.store.tx() as conn:
        conn.executemany("INSERT INTO message_trace(received, sender_l, recipient_l, doc) VALUES (?, ?, ?, ?)", rows)
    return json_response({"delivered": len(rows)})
