"""HTTP under the tenant clients: bounded, adaptive concurrency and retries.

Retries cover 429, 5xx, timeouts and dropped connections, honour
``Retry-After`` (seconds or HTTP date), otherwise back off exponentially with
full jitter, and stop at an overall deadline. Concurrency adapts AIMD-style:
a throttled answer halves the window, a run of successes widens it again, so a
bulk scan settles just under the service's rate limit instead of hammering it.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from mailroom.errors import RetriesExhausted

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    max_attempts: int = 10
    base_delay: float = 0.25
    max_delay: float = 30.0
    deadline: float = 600.0  # seconds for one logical request, retries included


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    failures: int = 0  # 5xx and transport errors seen (retried or not)
    by_label: dict[str, int] = field(default_factory=dict)


class AdaptiveLimiter:
    """A concurrency window between ``minimum`` and ``maximum`` that shrinks on throttling."""

    def __init__(self, initial: int = 8, minimum: int = 1, maximum: int = 64) -> None:
        self.limit = float(initial)
        self.minimum, self.maximum = minimum, maximum
        self._active = 0
        self._cond = asyncio.Condition()
        self._successes = 0

    async def __aenter__(self) -> AdaptiveLimiter:
        async with self._cond:
            await self._cond.wait_for(lambda: self._active < int(self.limit))
            self._active += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def throttled(self) -> None:
        self.limit = max(float(self.minimum), self.limit / 2)
        self._successes = 0

    def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= max(4, int(self.limit)):  # about one window of successes: widen by one
            self._successes = 0
            self.limit = min(float(self.maximum), self.limit + 1)


def retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class Transport:
    """One ``httpx.AsyncClient`` plus retry policy, limiter and statistics."""

    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None,
                 limiter: AdaptiveLimiter | None = None, rng: random.Random | None = None) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or AdaptiveLimiter()
        self.stats = Stats()
        self._rng = rng or random.Random()

    async def send(self, make: Callable[[], Awaitable[httpx.Request]], label: str) -> httpx.Response:
        """Send the request ``make`` builds (fresh each attempt: tokens may renew) until it succeeds."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            request = await make()
            wait: float | None = None
            async with self.limiter:
                self.stats.requests += 1
                self.stats.by_label[label] = self.stats.by_label.get(label, 0) + 1
                try:
                    resp = await self.client.send(request)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    self.stats.failures += 1
                    problem = f"{type(exc).__name__}: {exc}"
                    resp = None
            if resp is not None:
                if resp.status_code not in RETRY_STATUSES:
                    self.limiter.succeeded()
                    return resp
                if resp.status_code == 429:
                    self.stats.throttled += 1
                    self.limiter.throttled()
                else:
                    self.stats.failures += 1
                wait = retry_after(resp)
                problem = f"HTTP {resp.status_code}"
            if wait is None:
                wait = self._rng.uniform(0, min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1)))
            elapsed = time.monotonic() - start
            if attempt >= self.retry.max_attempts or elapsed + wait > self.retry.deadline:
                raise RetriesExhausted(f"{label}: gave up after {attempt} attempts in {elapsed:.1f}s ({problem})")
            self.stats.retries += 1
            await asyncio.sleep(wait)
