"""The unified audit log through the Graph audit log query API, and message traces.

Exchange's own audit cmdlets are retired (Search-AdminAuditLog on 2024-09-15): admin actions (ExchangeAdmin
records) and mailbox actions (ExchangeItem, ExchangeItemGroup, ExchangeItemAggregated) are searched here
(exchange-features.md §5). A search is asynchronous: POST a query, poll its status until ``succeeded``, then
page its records. The API moved from v1.0 back to beta in 2025 and is documented in v1.0 again, so a client
tries v1.0 first and falls back to beta when the v1.0 path answers 400 or 404; it remembers which answered.

Limits: at least 50 queries queued or running and 200 submissions a day per tenant, 1,000,000 records per
query; beyond them 429 with Retry-After, which the Transport honours. A window is split into smaller queries
only when one query's records exceed its limit (``isRecordCountLimitExceeded``). Records are handed to a
``sink`` page by page and never kept: a 90-day search of a large tenant is a million records.

Message traces (§6): ``GET /admin/exchange/tracing/messageTraces``, 10 days per query, 90 days of history,
100 queries per 5 minutes (429 beyond, honoured the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from mailroom.errors import GraphError
from mailroom.m365.auth import GRAPH_SCOPE, TokenSource
from mailroom.m365.transport import Transport

# Documented service figures (exchange-features.md §5, §6): one place each.
RECORD_LIMIT = 1_000_000  # records per query
ACTIVE_LIMIT = 50  # queries queued or running at once
TRACE_WINDOW = timedelta(days=10)
TRACE_HISTORY = timedelta(days=90)
TRACE_PAGE = 5000
# How long the service may take to make a record searchable (Microsoft: usually 60 to 90 minutes after the
# event, sometimes hours). A change newer than this may be missing from the log without anything being wrong.
INGESTION_LATENCY = timedelta(minutes=90)

# record types (Graph's auditLogRecordType names)
ADMIN = ("exchangeAdmin",)
MAILBOX_ITEMS = ("exchangeItem", "exchangeItemGroup", "exchangeItemAggregated")

Sink = Callable[[list[dict[str, Any]]], None]
Progress = Callable[[int, int], None]  # (records read, records the finished queries said they found)


def iso(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SearchStats:
    queries: int = 0  # submitted, splits included
    splits: int = 0  # windows split because one query hit the record limit
    polls: int = 0
    pages: int = 0
    records: int = 0
    version: str = ""  # "v1.0" or "beta": which path answered
    truncated: list[str] = field(default_factory=list)  # windows the beta path may have cut (no limit flag)


class AuditLogClient:
    def __init__(self, graph_url: str, tokens: TokenSource, transport: Transport, *, poll_first: float = 0.25,
                 poll_max: float = 30.0, page_size: int = 1000, concurrency: int = 8) -> None:
        """``graph_url``: the v1.0 base (``https://graph.microsoft.com/v1.0`` or the local tenant's)."""
        self.v1 = graph_url.rstrip("/")
        self.beta = self.v1[: -len("/v1.0")] + "/beta" if self.v1.endswith("/v1.0") else self.v1
        self.tokens, self.transport = tokens, transport
        self.poll_first, self.poll_max, self.page_size = poll_first, poll_max, page_size
        self.concurrency = min(concurrency, ACTIVE_LIMIT)
        self.base: str | None = None  # the path that answered, once known
        self.stats = SearchStats()
        self.progress: Progress | None = None
        self._expected = 0

    async def _send(self, method: str, url: str, label: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        if urlsplit(url)[:2] != urlsplit(self.v1)[:2]:  # the token is for Graph only, nowhere else
            raise GraphError(label, 0, "UnexpectedNextLink", f"next page on another host: {url}")

        async def make() -> httpx.Request:
            token = await self.tokens.token(GRAPH_SCOPE)
            return self.transport.client.build_request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

        resp = await self.transport.send(make, label)
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = {}
        return resp.status_code, data if isinstance(data, dict) else {}

    @staticmethod
    def _error(label: str, status: int, data: dict[str, Any]) -> GraphError:
        err = data.get("error") or {}
        return GraphError(label, status, str(err.get("code") or ""), str(err.get("message") or ""))

    async def _create(self, body: dict[str, Any]) -> tuple[str, str]:
        """(base, query id). v1.0 first; a 400 or 404 there (the path is not in v1.0) tries beta."""
        label = "POST /security/auditLog/queries"
        for base in ([self.base] if self.base else [self.v1, self.beta]):
            status, data = await self._send("POST", f"{base}/security/auditLog/queries", label, body)
            if status in (200, 201):
                self.base = base
                self.stats.version = "beta" if base == self.beta else "v1.0"
                self.stats.queries += 1
                return base, str(data["id"])
            if not (base == self.v1 and status in (400, 404) and not self.base):
                raise self._error(label, status, data)
        raise AssertionError("unreachable")

    async def _wait(self, base: str, query_id: str) -> dict[str, Any]:
        """Poll until the query has finished: every tenth of the time waited so far (a query takes minutes on
        a real tenant), so the wait overshoots its end by about a tenth at most, in few polls."""
        label = "GET /security/auditLog/queries/{id}"
        started = asyncio.get_running_loop().time()
        while True:
            waited = asyncio.get_running_loop().time() - started
            await asyncio.sleep(min(self.poll_max, max(self.poll_first, waited / 10)))
            self.stats.polls += 1
            status, data = await self._send("GET", f"{base}/security/auditLog/queries/{quote(query_id)}", label)
            if status != 200:
                raise self._error(label, status, data)
            state = data.get("status")
            if state == "succeeded":
                return data
            if state in ("failed", "cancelled"):
                raise GraphError(label, status, f"query{str(state).capitalize()}",
                                 f"the audit log query {query_id} ended {state}")

    async def _page(self, base: str, query_id: str, sink: Sink) -> int:
        url = f"{base}/security/auditLog/queries/{quote(query_id)}/records?$top={self.page_size}"
        label = "GET /security/auditLog/queries/{id}/records"
        count = 0
        while url:
            status, data = await self._send("GET", url, label)
            if status != 200:
                raise self._error(label, status, data)
            values = data.get("value") or []
            self.stats.pages += 1
            count += len(values)
            sink(values)
            if self.progress is not None:
                self.progress(self.stats.records + count, max(self._expected, self.stats.records + count))
            url = data.get("@odata.nextLink") or ""
        self.stats.records += count
        return count

    async def search(self, start: datetime, end: datetime, sink: Sink, *, record_types: Sequence[str],
                     operations: Sequence[str] = (), users: Sequence[str] = (), objects: Sequence[str] = (),
                     name: str = "mailroom") -> SearchStats:
        """Every record of ``record_types`` between ``start`` and ``end``, page by page to ``sink``."""
        sem = asyncio.Semaphore(self.concurrency)

        async def window(lo: datetime, hi: datetime) -> None:
            body: dict[str, Any] = {"displayName": f"{name} {iso(lo)}..{iso(hi)}", "filterStartDateTime": iso(lo),
                                    "filterEndDateTime": iso(hi), "recordTypeFilters": list(record_types)}
            for key, values in (("operationFilters", operations), ("userPrincipalNameFilters", users),
                                ("objectIdFilters", objects)):
                if values:
                    body[key] = list(values)
            async with sem:
                base, query_id = await self._create(body)
                done = await self._wait(base, query_id)
                if done.get("isRecordCountLimitExceeded") and hi - lo > timedelta(seconds=2):
                    split = True
                else:
                    split = False
                    self._expected += int(done.get("approximateReturnedRecordCount") or 0)
                    count = await self._page(base, query_id, sink)
                    if base == self.beta and count >= RECORD_LIMIT:
                        self.stats.truncated.append(f"{iso(lo)}..{iso(hi)}")
            if split:  # outside the semaphore: the halves run as soon as there is room
                self.stats.splits += 1
                mid = lo + (hi - lo) / 2
                await asyncio.gather(window(lo, mid), window(mid, hi))

        await window(start, end)
        return self.stats

    async def message_traces(self, start: datetime, end: datetime, sink: Sink) -> int:
        """Every message trace received between ``start`` and ``end`` (clamped to the 90 days kept), one query
        per 10-day window, paged; returns the queries sent."""
        label = "GET /admin/exchange/tracing/messageTraces"
        start = max(start, end - TRACE_HISTORY + timedelta(minutes=5))
        sent = 0
        hi = end
        while hi > start:
            lo = max(start, hi - TRACE_WINDOW)
            flt = f"receivedDateTime ge {iso(lo)} and receivedDateTime le {iso(hi)}"
            url = f"{self.v1}/admin/exchange/tracing/messageTraces?$filter={quote(flt)}&$top={TRACE_PAGE}"
            while url:
                status, data = await self._send("GET", url, label)
                sent += 1
                if status != 200:
                    raise self._error(label, status, data)
                sink(data.get("value") or [])
                url = data.get("@odata.nextLink") or ""
            hi = lo
        return sent


def for_tenant(t: Any, **options: Any) -> AuditLogClient:
    """The audit log client of an open ``mailroom.m365.tenant.Tenant`` (its tokens, Graph pacer and retries)."""
    return AuditLogClient(t.cfg.graph_url, t.tokens, t.graph_transport, **options)


async def admin_records(client: AuditLogClient, since: timedelta = timedelta(days=90),
                        operations: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ExchangeAdmin records (one per cmdlet run) of the last ``since``: few, so returned as a list."""
    out: list[dict[str, Any]] = []
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    await client.search(end - since, end, out.extend, record_types=ADMIN, operations=operations,
                        name="mailroom drift attribution")
    return out
