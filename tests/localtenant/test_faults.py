"""Fault injection and metrics: seeded determinism, non-blocking latency, per-app
concurrency cap and rate limit (batch items one by one), dropped connections."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
CHAOS = {"seed": 7, "throttle_rate": 0.25, "error_rate": 0.15, "drop_rate": 0.1}


def statuses(tenant: LocalTenant, n: int = 40) -> list[str]:
    """n sequential calls alternating Exchange and Graph; 'drop' for a closed connection."""
    exo = {"Authorization": f"Bearer {tenant.token(EXCHANGE_SCOPE)}"}
    graph = {"Authorization": f"Bearer {tenant.token(GRAPH_SCOPE)}"}
    body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "alice"}}}
    out = []
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            try:
                if i % 2:
                    resp = client.get(f"{tenant.base_url}/v1.0/users/bob@contoso.com", headers=graph)
                else:
                    resp = client.post(tenant.exchange_url, json=body, headers=exo)
            except httpx.TransportError:
                out.append("drop")
                continue
            if resp.status_code == 429:
                assert resp.headers["Retry-After"].isdigit()
                assert resp.json()["error"]["code"] in ("TooManyRequests", "ApplicationThrottled")
            out.append(str(resp.status_code))
    return out


def test_same_seed_same_faults_and_metrics_count_them(local_tenant: LocalTenant) -> None:
    local_tenant.token(EXCHANGE_SCOPE)  # token calls would take sequence numbers; fetch them first
    local_tenant.token(GRAPH_SCOPE)
    local_tenant.set_profile(CHAOS)
    local_tenant.reset_metrics()
    first = statuses(local_tenant)
    metrics = local_tenant.metrics()
    local_tenant.set_profile(CHAOS)  # setting a profile restarts its random sequence
    second = statuses(local_tenant)
    assert first == second
    seen = Counter(first)
    assert seen["429"] and seen["drop"] and seen["200"] and any(s.startswith("5") for s in seen)
    assert metrics["requests"] == 40 and metrics["calls"] == 40
    assert metrics["injected"]["throttled"] == seen["429"]
    assert metrics["injected"]["dropped"] == seen["drop"]
    assert metrics["injected"]["errors"] == sum(v for k, v in seen.items() if k.startswith("5"))
    served_exchange = sum(1 for i, status in enumerate(first) if i % 2 == 0 and status == "200")
    assert metrics["cmdlets"].get("Get-Mailbox", 0) == served_exchange
    # Same again after a restart (profiles set at run time are not persisted; set it again).
    local_tenant.restart()
    local_tenant.set_profile(CHAOS)
    assert statuses(local_tenant) == first
    local_tenant.set_profile({**CHAOS, "seed": 8})
    assert statuses(local_tenant) != first


def test_latency_is_non_blocking(local_tenant: LocalTenant) -> None:
    headers = {"Authorization": f"Bearer {local_tenant.token(GRAPH_SCOPE)}"}
    local_tenant.set_profile({"seed": 1, "latency_ms": {"mean": 300, "jitter": 20}})

    async def main() -> float:
        async with httpx.AsyncClient(timeout=30) as client:
            started = time.monotonic()
            resps = await asyncio.gather(*(client.get(f"{local_tenant.base_url}/v1.0/users/alice@contoso.com",
                                                      headers=headers) for _ in range(50)))
            assert {r.status_code for r in resps} == {200}
            return time.monotonic() - started

    elapsed = asyncio.run(main())
    assert 0.25 < elapsed < 2.0, elapsed  # 50 calls x 300 ms overlap instead of adding up to 15 s
    assert local_tenant.metrics()["injected"]["latency_ms_total"] > 50 * 250


def test_concurrency_cap_per_app(local_tenant: LocalTenant) -> None:
    exo_a = {"Authorization": f"Bearer {local_tenant.token(EXCHANGE_SCOPE, client_id='app-a')}"}
    exo_b = {"Authorization": f"Bearer {local_tenant.token(EXCHANGE_SCOPE, client_id='app-b')}"}
    local_tenant.set_profile({"seed": 1, "latency_ms": {"mean": 400}, "max_concurrency_per_app": 2})
    body = {"CmdletInput": {"CmdletName": "Get-Recipient", "Parameters": {"Identity": "alice"}}}

    async def main() -> tuple[list[int], list[int]]:
        async with httpx.AsyncClient(timeout=30) as client:
            a = [client.post(local_tenant.exchange_url, json=body, headers=exo_a) for _ in range(6)]
            b = [client.post(local_tenant.exchange_url, json=body, headers=exo_b) for _ in range(2)]
            resps = await asyncio.gather(*a, *b)
            for r in resps:
                if r.status_code == 429:
                    assert r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "TooManyRequests"
            return [r.status_code for r in resps[:6]], [r.status_code for r in resps[6:]]

    app_a, app_b = asyncio.run(main())
    assert sorted(app_a) == [200, 200, 429, 429, 429, 429]
    assert app_b == [200, 200]  # the cap is per app id
    assert local_tenant.metrics()["injected"]["throttled_concurrency"] == 4


def test_batch_items_count_one_by_one_against_the_rate_limit(local_tenant: LocalTenant) -> None:
    graph = {"Authorization": f"Bearer {local_tenant.token(GRAPH_SCOPE)}"}
    exo = {"Authorization": f"Bearer {local_tenant.token(EXCHANGE_SCOPE)}"}
    local_tenant.set_profile({"seed": 1, "rate_limit": {"per_second": 0.1, "burst": 5}})
    local_tenant.reset_metrics()
    items = [{"id": str(i), "method": "GET", "url": "/users/alice@contoso.com/mailboxSettings?$select=userPurpose"}
             for i in range(8)]
    resp = httpx.post(f"{local_tenant.base_url}/v1.0/$batch", json={"requests": items}, headers=graph)
    assert resp.status_code == 200
    got = resp.json()["responses"]
    assert [r["status"] for r in got] == [200] * 5 + [429] * 3
    assert all(int(r["headers"]["Retry-After"]) >= 1 for r in got[5:])
    assert got[5]["body"]["error"]["code"] == "ApplicationThrottled"
    # The Exchange bucket for the same app is already empty: every item is throttled.
    exo_items = [{"id": str(i), "method": "POST", "url": "InvokeCommand", "body": {"CmdletInput": {
        "CmdletName": "Get-Mailbox", "Parameters": {"Identity": "alice"}}}} for i in range(3)]
    exo_resp = httpx.post(local_tenant.exchange_url.replace("InvokeCommand", "$batch"),
                          json={"requests": exo_items}, headers=exo)
    assert [r["status"] for r in exo_resp.json()["responses"]] == [429, 429, 429]
    metrics = local_tenant.metrics()
    assert metrics["batch_items"] == 11 and metrics["injected"]["throttled_rate_limit"] == 6
    assert metrics["endpoints"]["GET /v1.0/users/{id}/mailboxSettings"] == 8


def test_control_routes_are_never_faulted_and_profiles_validate(local_tenant: LocalTenant) -> None:
    local_tenant.set_profile({"seed": 1, "drop_rate": 1.0})
    assert local_tenant.metrics()["requests"] == 0
    with httpx.Client() as client:
        try:
            client.get(f"{local_tenant.base_url}/v1.0/users")
            raise AssertionError("the connection should have been dropped")
        except httpx.TransportError:
            pass
    assert local_tenant.metrics()["injected"]["dropped"] == 1
    assert local_tenant.set_profile({}) == {"seed": 0, "throttle_rate": 0.0, "error_rate": 0.0, "drop_rate": 0.0,
                                         "retry_after_seconds": 1, "error_statuses": [500, 502, 503, 504]}
    bad = httpx.put(f"{local_tenant.base_url}/_emulator/profile", json={"throttle_rate": 2})
    assert bad.status_code == 400
    typo = httpx.put(f"{local_tenant.base_url}/_emulator/profile", json={"throtle_rate": 0.1})
    assert typo.status_code == 400 and "throtle_rate" in typo.text


def test_profile_file_at_startup(tmp_path: Path, local_tenant_factory: Callable[..., LocalTenant]) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text("seed: 7\nlatency_ms: {mean: 5, jitter: 1}\nrate_limit: {per_second: 50, burst: 100}\n"
                       "max_concurrency_per_app: 20\nthrottle_rate: 0.2\nerror_rate: 0.05\ndrop_rate: 0.01\n")
    tenant = local_tenant_factory("--profile", str(profile))
    current = httpx.get(f"{tenant.base_url}/_emulator/profile").json()
    assert current["seed"] == 7 and current["rate_limit"] == {"per_second": 50.0, "burst": 100.0}
    assert current["max_concurrency_per_app"] == 20 and current["latency_ms"] == {"mean": 5.0, "jitter": 1.0}
