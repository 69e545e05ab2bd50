"""The shared retry policy: Retry-After parsing, and Graph paging retried like every other call."""

from __future__ import annotations

import asyncio
import email.utils
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from mailroom.errors import RetriesExhausted
from mailroom.m365.auth import LocalTokenSource
from mailroom.m365.tenant import Tenant, TenantConfig
from mailroom.m365.transport import RetryPolicy, Transport, parse_retry_after

if TYPE_CHECKING:
    from conftest import LocalTenant

PAST = email.utils.format_datetime(email.utils.localtime().replace(year=2015), usegmt=False)
GARBAGE = ["soon", "-5", "0", "1e309", "-1e309", "nan", "inf", "", "   ", "5 seconds", "Wed, 21 Oct 2015 07:28:00 GMT",
           PAST, "Mon, 99 Foo 2020 25:61:00 GMT", "\x00", "9" * 400]


@pytest.mark.parametrize("value", GARBAGE)
def test_unusable_retry_after_falls_back_to_the_backoff(value: str) -> None:
    assert parse_retry_after(value) is None


def test_usable_retry_after_is_honoured() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 2.5 ") == 2.5
    soon = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (parse_retry_after(soon) or 0) <= 30


class Script(BaseHTTPRequestHandler):
    """Answers each request with the next (status, Retry-After) of ``server.script``."""

    server: Any

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        status, retry_after = self.server.script.pop(0) if self.server.script else (200, None)
        self.server.seen += 1
        body = b'{"access_token": "t", "expires_in": 3599}' if status == 200 else b""
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Script)
    server.script, server.seen = [], 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


async def send_once(url: str, policy: RetryPolicy) -> tuple[httpx.Response, Transport]:
    async with httpx.AsyncClient(timeout=10) as client:
        transport = Transport(client, retry=policy)

        async def make() -> httpx.Request:
            return client.build_request("GET", url)

        return await transport.send(make, "GET /"), transport


def test_a_garbage_retry_after_is_retried_with_the_backoff(scripted: Any) -> None:
    scripted.script = [(503, v) for v in ("soon", "-5", "1e309", PAST)] + [(429, "nan"), (502, None)]
    started = time.monotonic()
    resp, transport = asyncio.run(send_once(f"http://127.0.0.1:{scripted.server_port}/",
                                            RetryPolicy(base_delay=0.01, max_delay=0.05)))
    assert resp.status_code == 200 and scripted.seen == 7
    assert transport.stats.retries == 6 and transport.stats.throttled == 1
    assert time.monotonic() - started < 5  # backoff waits, not 1e309 s nor an instant give-up


def test_the_local_token_endpoint_survives_a_garbage_retry_after(scripted: Any) -> None:
    scripted.script = [(503, "soon"), (429, "1e309")]
    source = LocalTokenSource(f"http://127.0.0.1:{scripted.server_port}", "tenant", "client", "secret")
    assert asyncio.run(source.token("https://graph.microsoft.com/.default")) == "t"
    assert scripted.seen == 3


def test_a_retry_after_beyond_the_deadline_gives_up_at_once(scripted: Any) -> None:
    scripted.script = [(429, "3600")]
    with pytest.raises(RetriesExhausted, match="gave up after 1 attempts"):
        asyncio.run(send_once(f"http://127.0.0.1:{scripted.server_port}/", RetryPolicy(deadline=60)))


async def listing(cfg: TenantConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    async with Tenant(cfg) as t:
        t.graph.page_size = 4  # the seeded directory fits one default page; small pages make many
        users = await t.graph.list_users()
        audits = await t.graph.directory_audits()
        return users, audits, t.graph_transport.stats.retries


def test_graph_paging_under_5xx_gives_the_fault_free_result(local_tenant: LocalTenant) -> None:
    """One drift scan in five stopped on a single 502 of a Graph page: pages now go through the
    Transport. 30% of calls (token endpoint included) answer 500 or 502, ten runs in a row."""
    for n in range(3):  # some directory audits, so that listing has pages too
        assert local_tenant.graph("PATCH", "/users/bob@contoso.com", username="trent@contoso.com",
                                  json={"accountEnabled": n % 2 == 1}).status_code == 204
    cfg = TenantConfig.local(local_tenant.base_url, local_tenant.tenant_id)
    users, audits, _ = asyncio.run(listing(cfg))
    assert len(users) > 3 * 4 and audits  # several pages of users
    retried = injected = 0
    for seed in range(10):
        local_tenant.set_profile({"seed": seed, "error_rate": 0.3, "error_statuses": [500, 502]})
        local_tenant.reset_metrics()
        got_users, got_audits, retries = asyncio.run(listing(cfg))
        assert got_users == users and got_audits == audits, seed
        injected += local_tenant.metrics()["injected"]["errors"]
        retried += retries
    local_tenant.set_profile({})
    assert retried >= 10 and injected >= retried  # the pages themselves failed and were retried


class BatchScript(BaseHTTPRequestHandler):
    """An Exchange ``$batch`` endpoint whose items are throttled with garbage per-item Retry-After
    headers the first times they are asked for, then answered."""

    server: Any

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        responses = []
        for item in body["requests"]:
            self.server.seen += 1
            if self.server.garbage:
                responses.append({"id": item["id"], "status": 429,
                                  "headers": {"Retry-After": self.server.garbage.pop(0)}, "body": {}})
            else:
                responses.append({"id": item["id"], "status": 200, "body": {"value": [{"Id": item["id"]}]}})
        data = json.dumps({"responses": responses}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class StaticToken:
    async def token(self, scope: str) -> str:
        return "t"


def test_a_garbage_retry_after_on_a_batch_item_is_retried_with_the_backoff() -> None:
    from mailroom.m365.exchange import CmdletResult, ExchangeClient

    server = ThreadingHTTPServer(("127.0.0.1", 0), BatchScript)
    server.garbage, server.seen = ["soon", "1e309", "-5", "nan"], 0
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def run() -> list[Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            transport = Transport(client, retry=RetryPolicy(base_delay=0.01, max_delay=0.05))
            exchange = ExchangeClient(f"http://127.0.0.1:{server.server_port}", "tenant", StaticToken(),  # type: ignore[arg-type]
                                      transport)
            return await exchange.batch([("Get-Mailbox", {"Identity": f"m{i}"}) for i in range(2)])

    try:
        started = time.monotonic()
        results = asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    assert all(isinstance(r, CmdletResult) and r.value for r in results)
    assert server.seen == 6  # 2 items, throttled 4 times in all, then answered
    assert time.monotonic() - started < 5
