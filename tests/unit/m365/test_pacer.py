"""The pacer (m365/transport.py ``Pacer``): calls per second, learned from throttling.

The algorithm's rules, one test each, then the pacer inside mailroom's client against the emulator in
this process: its rate limit answers 429 with a Retry-After, which is honoured, learned from, and
survived when a gateway garbles it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from mailroom.m365.auth import EXCHANGE_SCOPE
from mailroom.m365.transport import Pacer, RetryPolicy
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..conftest import TenantApp


async def _acquire(pacer: Pacer, calls: int) -> float:
    started = time.monotonic()
    for _ in range(calls):
        await pacer.acquire()
    return time.monotonic() - started


def test_calls_are_spaced_at_the_rate() -> None:
    pacer = Pacer(40.0)  # a burst of 4 (a tenth of the rate), then one call every 25 ms
    elapsed = asyncio.run(_acquire(pacer, 24))
    assert 0.5 <= elapsed < 3.0  # 24 calls at 40/s: 0.6 s, never all at once
    assert pacer.rate == 40.0 and pacer.slow_start  # nothing accepted: no reason to go faster


def test_slow_start_grows_only_as_far_as_traffic_has_shown() -> None:
    async def grown(accepted: int) -> float:
        pacer = Pacer(10.0, double_every=0.1)
        if accepted:
            pacer.accepted(accepted)  # the service took 100 calls in the last second
        await asyncio.sleep(0.3)
        await pacer.acquire()
        return pacer.rate

    assert 80.0 <= asyncio.run(grown(100)) <= 200.0  # doubled three times, never past 2 x 100/s accepted
    assert asyncio.run(grown(0)) == 10.0  # an idle client builds up no rate it never tested


@pytest.mark.parametrize(("accepted", "rate"), [
    (0, 50.0),  # nothing measured: half the rate
    (40, 50.0),  # 40 calls in 0.25 s = 160/s accepted; half the rate is lower
    (5, 19.0),  # 5 calls in 0.25 s = 20/s accepted; just under it (0.95 x 20) is lower than half
])
def test_the_first_429_halves_the_rate_or_drops_under_what_was_accepted(accepted: int, rate: float) -> None:
    pacer = Pacer(100.0)
    if accepted:
        pacer.accepted(accepted)
    pacer.throttled()
    assert pacer.rate == pytest.approx(rate)
    assert not pacer.slow_start


def test_later_429s_cut_once_per_hold_by_at_most_a_third_and_never_raise_the_rate() -> None:
    pacer = Pacer(90.0, hold=0.2)
    pacer.throttled()
    assert pacer.rate == 45.0
    pacer.throttled()  # within the hold: it answers a call sent before the cut
    assert pacer.rate == 45.0
    time.sleep(0.25)
    pacer.accepted(1)  # 4/s measured: far below, but one cut takes a third at most
    pacer.throttled()
    assert pacer.rate == pytest.approx(30.0)
    time.sleep(0.25)
    pacer.accepted(100)  # a lot accepted since: a 429 still never raises the rate
    pacer.throttled()
    assert pacer.rate == pytest.approx(30.0)


def test_the_rate_never_drops_below_the_minimum() -> None:
    pacer = Pacer(1.5, minimum=1.0)
    pacer.throttled()
    assert pacer.rate == 1.0


def test_after_the_first_429_the_rate_probes_upward_slowly() -> None:
    async def probed() -> float:
        pacer = Pacer(100.0)  # probe: +0.5 % a second
        pacer.throttled()
        assert pacer.rate == 50.0
        pacer.accepted(100)
        await asyncio.sleep(0.2)
        await pacer.acquire()
        return pacer.rate

    assert 50.0 < asyncio.run(probed()) < 51.0  # slow start would have doubled it in a second


# ---------------------------------------------------------------- against the emulator, in process


async def _get_mailboxes(tenant_app: TenantApp, calls: int, profile: dict[str, Any], *,
                         policy: RetryPolicy | None = None) -> tuple[float, Any]:
    """``calls`` Get-Mailbox one after the other, under ``profile``; (seconds, the Exchange Transport)."""
    async with tenant_app.tenant(retry=policy) as t:
        await t.tokens.token(EXCHANGE_SCOPE)  # before the faults: the token endpoint is faulted too
        tenant_app.set_profile(profile)
        started = time.monotonic()
        for _ in range(calls):
            assert await t.exchange.get_mailbox("alice@contoso.com") is not None
        return time.monotonic() - started, t.transport


def test_a_429_waits_the_retry_after_the_service_names(tenant_app: TenantApp) -> None:
    """One call a second allowed: the second call is throttled with ``Retry-After: 1``, waits that
    second and is answered, instead of knocking again at the backoff's pace."""
    elapsed, transport = asyncio.run(_get_mailboxes(tenant_app, 2, {"rate_limit": {"per_second": 1, "burst": 1}},
                                                    policy=RetryPolicy(base_delay=0.01, max_delay=0.02)))
    assert transport.stats.throttled == 1 and transport.stats.retries == 1
    assert elapsed >= 0.9
    assert tenant_app.metrics()["injected"]["throttled"] == 1
    assert not transport.pacer.slow_start and transport.pacer.rate < 50.0  # and the pacer learned from it


def test_paced_calls_settle_near_the_services_limit(tenant_app: TenantApp) -> None:
    """Eight callers as fast as they may against a limit of 20 calls a second: after the first
    429s the pacer runs just under the limit, so few calls are spent on being throttled."""
    async def run() -> tuple[Any, int]:
        async with tenant_app.tenant() as t:
            await t.tokens.token(EXCHANGE_SCOPE)
            tenant_app.set_profile({"rate_limit": {"per_second": 20, "burst": 20}})
            deadline = time.monotonic() + 4.0
            answered = 0

            async def caller() -> None:
                nonlocal answered
                while time.monotonic() < deadline:
                    await t.exchange.get_mailbox("alice@contoso.com")
                    answered += 1

            await asyncio.gather(*(caller() for _ in range(8)))
            return t.transport, answered

    transport, answered = asyncio.run(run())
    pacer = transport.pacer
    assert not pacer.slow_start
    assert 15.0 <= pacer.rate <= 30.0  # learned: from 50/s to about the service's 20/s
    assert answered >= 60  # 20 at once, then about 20 a second: the cuts did not overshoot
    assert transport.stats.throttled <= answered // 2  # few calls spent on being throttled


class GarbledRetryAfter:
    """A gateway in front of the tenant that rewrites every ``Retry-After`` header to ``value``."""

    def __init__(self, app: ASGIApp, value: str) -> None:
        self.app, self.value = app, value.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def garble(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [(k, self.value if k.lower() == b"retry-after" else v)
                                      for k, v in message["headers"]]
            await send(message)

        await self.app(scope, receive, garble)


@pytest.mark.parametrize("value", ["soon", "1e309", "-5", "nan"])
def test_a_garbage_retry_after_falls_back_to_the_backoff_and_still_cuts_the_rate(tenant_app: TenantApp,
                                                                                  value: str) -> None:
    import httpx

    tenant_app.http_transport = httpx.ASGITransport(app=GarbledRetryAfter(tenant_app.app, value))
    # 4 calls a second, one at a time: the second call is throttled, and the tenant says "Retry-After: 1".
    # Garbled, that is no wait at all: the call is retried after the backoff and the pacer's own spacing
    # (a quarter second here), neither crashing on the value nor waiting it.
    elapsed, transport = asyncio.run(_get_mailboxes(tenant_app, 2, {"rate_limit": {"per_second": 4, "burst": 1}},
                                                    policy=RetryPolicy(base_delay=0.05, max_delay=0.05)))
    assert transport.stats.throttled >= 1 and transport.stats.retries == transport.stats.throttled
    assert elapsed < 0.9  # sooner than the second the real header asked for
    assert not transport.pacer.slow_start  # a 429 is a 429, whatever its header says
