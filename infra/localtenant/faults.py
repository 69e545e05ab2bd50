"""Fault injection: latency, per-app token-bucket rate limit and concurrency cap, random
429s, random 5xx and dropped connections.

Determinism: every fault-eligible call takes the next sequence number ``n`` and draws
all of its random numbers from ``Random(f"{seed}:{n}")``, always the same count in the
same order. So the same seed and the same request sequence give the same faults, and one
call's outcome never shifts the draws of the next. (Rate limits and the concurrency cap
depend on wall-clock time and overlap, by nature; leave them unset for exact replays.)
Setting a profile restarts the sequence at 0.
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

PROFILE_KEYS = {"seed", "latency_ms", "rate_limit", "max_concurrency_per_app", "throttle_rate", "error_rate",
                "drop_rate", "retry_after_seconds", "error_statuses"}
RATE_KEYS = ("throttle_rate", "error_rate", "drop_rate")
DEFAULT_ERROR_STATUSES = (500, 502, 503, 504)
# Upper bounds that keep a typo from stalling a run: a 10-minute latency or Retry-After is
# already far beyond anything a test or benchmark wants.
MAX_LATENCY_MS = 600_000.0
MAX_RETRY_AFTER_SECONDS = 600
MAX_RATE = 1_000_000.0  # calls per second, and bucket size


class ProfileError(ValueError):
    """An invalid fault profile setting; ``setting`` names it (``latency_ms.mean``)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


def _number(setting: str, value: Any, low: float, high: float) -> float:
    """A finite int/float in [low, high]; bools and strings are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProfileError(setting, f"must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ProfileError(setting, f"must be a finite number between {low:g} and {high:g}, not {value!r}")
    return number


def _integer(setting: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(setting, f"must be an integer, not {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ProfileError(setting, f"must be {bounds}, not {value!r}")
    return value


def _mapping(setting: str, value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProfileError(setting, f"must be a mapping with {' and/or '.join(keys)}, not {value!r}")
    unknown = sorted(str(k) for k in set(value) - set(keys))
    if unknown:
        raise ProfileError(setting, f"unknown keys: {', '.join(unknown)}")
    return value


@dataclass
class Profile:
    seed: int = 0
    latency_mean_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_per_second: float | None = None
    rate_burst: float | None = None
    max_concurrency_per_app: int | None = None
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    retry_after_seconds: int = 1
    error_statuses: list[int] = field(default_factory=lambda: list(DEFAULT_ERROR_STATUSES))

    @classmethod
    def from_dict(cls, doc: Any) -> Profile:
        """Parse and validate the profile file format (also the body of PUT /_emulator/profile).
        Every setting is checked: unknown keys, wrong types, NaN, infinities, negative
        latencies and rates outside [0, 1] raise :class:`ProfileError` naming the setting."""
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise ProfileError("profile", "a fault profile must be a mapping")
        unknown = sorted(str(k) for k in set(doc) - PROFILE_KEYS)
        if unknown:
            raise ProfileError("profile", f"unknown fault profile keys: {', '.join(unknown)}")
        prof = cls(seed=_integer("seed", doc.get("seed", 0)))
        latency = doc.get("latency_ms")
        if isinstance(latency, (int, float)) and not isinstance(latency, bool):
            latency = {"mean": latency}
        latency = _mapping("latency_ms", latency, ("mean", "jitter"))
        prof.latency_mean_ms = _number("latency_ms.mean", latency.get("mean", 0), 0, MAX_LATENCY_MS)
        prof.latency_jitter_ms = _number("latency_ms.jitter", latency.get("jitter", 0), 0, MAX_LATENCY_MS)
        rate = _mapping("rate_limit", doc.get("rate_limit"), ("per_second", "burst"))
        if rate:
            if "per_second" not in rate:
                raise ProfileError("rate_limit.per_second", "is required when rate_limit is set")
            per_second = _number("rate_limit.per_second", rate["per_second"], 0, MAX_RATE)
            if per_second <= 0:
                raise ProfileError("rate_limit.per_second", f"must be greater than 0, not {rate['per_second']!r}")
            burst = rate.get("burst")
            # A bucket smaller than one token would never admit a call.
            prof.rate_per_second = per_second
            prof.rate_burst = max(1.0, per_second) if burst is None else _number("rate_limit.burst", burst, 1, MAX_RATE)
        concurrency = doc.get("max_concurrency_per_app")
        if concurrency is not None:
            prof.max_concurrency_per_app = _integer("max_concurrency_per_app", concurrency, 1)
        for name in RATE_KEYS:
            setattr(prof, name, _number(name, doc.get(name, 0.0), 0.0, 1.0))
        prof.retry_after_seconds = _integer("retry_after_seconds", doc.get("retry_after_seconds", 1), 1,
                                            MAX_RETRY_AFTER_SECONDS)
        statuses = doc.get("error_statuses", list(DEFAULT_ERROR_STATUSES))
        if not isinstance(statuses, list) or not statuses:
            raise ProfileError("error_statuses", f"must be a non-empty list of 5xx codes, not {statuses!r}")
        prof.error_statuses = [_integer("error_statuses", s, 500, 599) for s in statuses]
        return prof

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed}
        if self.latency_mean_ms or self.latency_jitter_ms:
            out["latency_ms"] = {"mean": self.latency_mean_ms, "jitter": self.latency_jitter_ms}
        if self.rate_per_second:
            out["rate_limit"] = {"per_second": self.rate_per_second, "burst": self.rate_burst}
        if self.max_concurrency_per_app:
            out["max_concurrency_per_app"] = self.max_concurrency_per_app
        for key in ("throttle_rate", "error_rate", "drop_rate"):
            out[key] = asdict(self)[key]
        out["retry_after_seconds"] = self.retry_after_seconds
        out["error_statuses"] = list(self.error_statuses)
        return out


@dataclass
class Decision:
    """What happens to one call. ``action``: None (serve it), "drop", "throttle", "error"."""

    latency_s: float = 0.0
    action: str | None = None
    reason: str = ""
    status: int = 200
    retry_after: int = 0


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> float:
        """Take one token; returns 0 on success, else seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Faults:
    def __init__(self, profile: Profile | None = None) -> None:
        # In-flight counts outlive profile changes: requests already running still hold slots.
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self.set_profile(profile or Profile())

    def set_profile(self, profile: Profile) -> None:
        self.profile = profile
        self.sequence = 0
        self._buckets: dict[str, _Bucket] = {}

    @property
    def active(self) -> bool:
        p = self.profile
        return bool(p.latency_mean_ms or p.latency_jitter_ms or p.rate_per_second or p.max_concurrency_per_app
                    or p.throttle_rate or p.error_rate or p.drop_rate)

    def decide(self, app_id: str, *, envelope: bool = False, item: bool = False) -> Decision:
        """Draw one call's faults. A batch ``envelope`` gets latency and drops only; its
        ``item``s get rate limit, random 429 and 5xx only (each item counts on its own)."""
        p = self.profile
        rng = random.Random(f"{p.seed}:{self.sequence}")
        self.sequence += 1
        latency = max(0.0, rng.gauss(p.latency_mean_ms, p.latency_jitter_ms)) / 1000.0
        u_drop, u_throttle, u_error = rng.random(), rng.random(), rng.random()
        status = rng.choice(p.error_statuses)
        decision = Decision(latency_s=0.0 if item else latency)
        if not item and u_drop < p.drop_rate:
            decision.action, decision.reason = "drop", "dropped"
            return decision
        if envelope:
            return decision
        if p.rate_per_second:
            bucket = self._buckets.get(app_id)
            if bucket is None:
                bucket = self._buckets[app_id] = _Bucket(p.rate_per_second, p.rate_burst or p.rate_per_second)
            wait = bucket.take()
            if wait:
                return self._throttle(decision, "throttled_rate_limit", max(1, math.ceil(wait)))
        if u_throttle < p.throttle_rate:
            return self._throttle(decision, "throttled_random", p.retry_after_seconds)
        if u_error < p.error_rate:
            decision.action, decision.reason, decision.status = "error", "error", status
        return decision

    @staticmethod
    def _throttle(decision: Decision, reason: str, retry_after: int) -> Decision:
        decision.action, decision.reason, decision.status, decision.retry_after = "throttle", reason, 429, retry_after
        return decision

    def enter(self, app_id: str) -> bool:
        """Take a concurrency slot for ``app_id``; False when the cap is reached."""
        cap = self.profile.max_concurrency_per_app
        if cap and self._in_flight[app_id] >= cap:
            return False
        self._in_flight[app_id] += 1
        return True

    def leave(self, app_id: str) -> None:
        self._in_flight[app_id] -= 1
        if self._in_flight[app_id] <= 0:
            del self._in_flight[app_id]
