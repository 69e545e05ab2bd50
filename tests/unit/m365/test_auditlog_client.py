"""mailroom's audit log client against the local tenant in this process: v1.0 first and beta when v1.0 does not
have the API, 429s of the queued-query limit waited out (Retry-After), a window split only when a query hits
its record limit, and every record handed over exactly once."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from mailroom.m365 import auditlog

from ..conftest import BASE_URL, TenantApp

DAY = timedelta(days=1)


def _generate(app: TenantApp, pairs: list[list[Any]], days: int = 30) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(transport=app.http_transport, base_url=BASE_URL) as c:
            resp = await c.post("/_emulator/activity/generate", json={"pairs": pairs, "days": days, "seed": 1})
            assert resp.status_code == 200, resp.text
            return int(resp.json()["written"])
    return asyncio.run(go())


async def _search(app: TenantApp, **options: Any) -> tuple[list[dict[str, Any]], auditlog.SearchStats]:
    got: list[dict[str, Any]] = []
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    async with app.tenant() as t:
        client = auditlog.for_tenant(t, poll_first=0.01, **options)
        stats = await client.search(end - 31 * DAY, end, got.extend, record_types=auditlog.MAILBOX_ITEMS)
    return got, stats


def test_falls_back_to_beta_when_v1_does_not_have_the_api(tenant_app: TenantApp) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0.02, run_s=0.02, v1=False)
    written = _generate(tenant_app, [["alice@contoso.com", "bob@contoso.com", "SendAs", 5]])
    got, stats = asyncio.run(_search(tenant_app))
    assert (len(got), stats.version, stats.queries) == (written, "beta", 1)
    tenant_app.audit_settings(v1=True)
    assert asyncio.run(_search(tenant_app))[1].version == "v1.0"


def test_splits_a_window_only_when_a_query_hits_its_record_limit(tenant_app: TenantApp) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0.01, run_s=0.01, max_records=40)
    written = _generate(tenant_app, [["alice@contoso.com", "bob@contoso.com", "SendAs", 100]])
    got, stats = asyncio.run(_search(tenant_app, page_size=7))
    assert len(got) == written == 100 and len({r["id"] for r in got}) == 100  # each once
    assert stats.splits >= 2 and stats.queries == 1 + 2 * stats.splits
    tenant_app.audit_settings(max_records=1000)
    assert asyncio.run(_search(tenant_app))[1].splits == 0


def test_the_queued_query_limit_is_waited_out(tenant_app: TenantApp) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0.3, run_s=0.3, max_active=1)
    _generate(tenant_app, [["alice@contoso.com", "bob@contoso.com", "SendAs", 3]])

    async def two() -> list[Any]:
        return list(await asyncio.gather(_search(tenant_app), _search(tenant_app)))

    (a, _), (b, stats_b) = asyncio.run(two())
    assert len(a) == len(b) == 3
    assert tenant_app.metrics()["statuses"].get("429", 0) >= 1  # one waited (Retry-After), then succeeded
