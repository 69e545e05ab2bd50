"""HTTP under the tenant clients: bounded concurrency, adaptive pacing and retries.

Retries cover 429, 5xx, timeouts and dropped connections, honour
``Retry-After`` (seconds or HTTP date), otherwise back off exponentially with
full jitter, and stop at an overall deadline.

Exchange publishes no request budget (wire reference A.7), so the client learns
it: a pacer sends calls at a rate that grows quickly until the first 429, then
drops to just under the rate the service actually let through, and probes
upward slowly from there. A bulk scan thus runs at the service's limit without
spending its budget on throttled calls. Concurrency is only bounded; the pace
is what adapts.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import email.utils
import math
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


class Limiter:
    """At most ``limit`` requests in flight."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)

    async def __aenter__(self) -> Limiter:
        await self._sem.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._sem.release()


class Pacer:
    """Calls per second, learned from throttling (AIMD on the rate, with a measured floor).

    - slow start: the rate doubles every ``double_every`` seconds until the first 429, but never
      beyond twice what the service has been seen to accept;
    - first 429: the rate halves, or drops to ``backoff`` × the accepted rate if that is lower;
    - later 429s: the rate drops to ``backoff`` × the rate the service accepted over the last
      ``window`` seconds (what the limit demonstrably is; a long window averages out the bursts a
      token bucket allows), by at most a third at a time;
    - one cut per ``hold`` seconds: 429s arriving sooner answer calls sent before the cut;
    - in between, the rate grows by ``probe`` (a fraction) per second, to find a raised limit.
    """

    def __init__(self, initial: float = 50.0, *, minimum: float = 1.0, maximum: float = 5000.0,
                 window: float = 3.0, backoff: float = 0.95, probe: float = 0.005, double_every: float = 1.0,
                 hold: float = 1.0) -> None:
        self.rate = self.initial = initial
        self.minimum, self.maximum = minimum, maximum
        self.window, self.backoff, self.probe, self.double_every = window, backoff, probe, double_every
        self.hold = hold  # throttles this soon after a cut answer calls sent before it
        self.slow_start = True
        self._tokens = 0.0
        self._at = time.monotonic()
        self._grown_at = self._at
        self._cut_at = 0.0
        self._accepted: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = asyncio.Lock()

    def _burst(self) -> float:
        return max(1.0, self.rate * 0.1)

    async def acquire(self, cost: int = 1) -> None:
        """Wait for ``cost`` calls' worth of rate. Callers queue in order, and the one at the head
        re-checks often, so a rate cut applies at once to everything not yet sent."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._grow(now)
                self._tokens = min(self._burst(), self._tokens + (now - self._at) * self.rate)
                self._at = now
                need = min(float(cost), self._burst())  # a batch larger than the burst runs into debt
                if self._tokens >= need:
                    self._tokens -= cost
                    return
                await asyncio.sleep(min(0.05, (need - self._tokens) / self.rate))

    def _grow(self, now: float) -> None:
        dt = now - self._grown_at
        self._grown_at = now
        factor = 2 ** (dt / self.double_every) if self.slow_start else 1 + self.probe * dt
        # Grow only as far as traffic has shown: an idle or latency-bound client must not build
        # up a rate it never tested, then spend it all at once.
        shown = max(self.initial, 2 * self.accepted_rate(now))
        self.rate = max(self.minimum, min(self.maximum, self.rate * factor, max(self.rate, shown)))

    def accepted_rate(self, now: float) -> float:
        return sum(n for t, n in self._accepted if t >= now - 1.0)

    def accepted(self, n: int = 1) -> None:
        now = time.monotonic()
        self._accepted.append((now, n))
        while self._accepted and self._accepted[0][0] < now - max(self.window, 1.0):
            self._accepted.popleft()

    def throttled(self) -> None:
        now = time.monotonic()
        if now - self._cut_at < self.hold:
            return  # one cut per burst of 429s: they all answer the same overshoot
        self._cut_at = now
        measured_since = max(self._accepted[0][0] if self._accepted else now, now - self.window)
        span = max(0.25, now - measured_since)
        measured = sum(n for t, n in self._accepted if t >= measured_since) / span
        target = self.backoff * measured if measured > 0 else self.rate / 2
        if self.slow_start:
            self.slow_start = False
            target = min(self.rate / 2, target)
        else:
            target = max(self.rate * 2 / 3, min(self.rate, target))
        self.rate = max(self.minimum, target)


def retry_after(resp: httpx.Response) -> float | None:
    """Seconds the service asks to wait, or None to use the policy's backoff."""
    return parse_retry_after(resp.headers.get("Retry-After"))


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` value (seconds or an HTTP date) in seconds, or None for the backoff.

    A value that is no usable wait (``soon``, ``-5``, ``1e309``, ``nan``, a date already past)
    gives None: retrying at once would hammer a struggling service, and a bad header must never
    turn a retryable answer into a crash. Also for per-item headers of a ``$batch`` answer."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are GMT
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        seconds = parsed.timestamp() - time.time()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


class Transport:
    """One ``httpx.AsyncClient`` plus retry policy, limiter and statistics."""

    def __init__(self, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None,
                 limiter: Limiter | None = None, pacer: Pacer | None = None, rng: random.Random | None = None) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or Limiter()
        self.pacer = pacer or Pacer()
        self.stats = Stats()
        self._rng = rng or random.Random()

    async def send(self, make: Callable[[], Awaitable[httpx.Request]], label: str, *, cost: int = 1,
                   settle: bool = True) -> httpx.Response:
        """Send the request ``make`` builds (fresh each attempt: tokens may renew) until it succeeds.

        ``cost``: calls the service meters for it (a batch: its items). ``settle=False``: the caller
        reports accepted and throttled items itself (a batch answers per item)."""
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            request = await make()
            wait: float | None = None
            await self.pacer.acquire(cost)
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
                    if settle:
                        self.pacer.accepted(cost)
                    return resp
                if resp.status_code == 429:
                    self.stats.throttled += 1
                    self.pacer.throttled()
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
