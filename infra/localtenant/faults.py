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
    error_statuses: list[int] = field(default_factory=lambda: [500, 502, 503, 504])

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> Profile:
        """Parse the profile file format; unknown keys are an error, not silently ignored."""
        doc = doc or {}
        if not isinstance(doc, dict):
            raise ValueError("a fault profile must be a mapping")
        unknown = set(doc) - PROFILE_KEYS
        if unknown:
            raise ValueError(f"unknown fault profile keys: {', '.join(sorted(unknown))}")
        latency = doc.get("latency_ms") or {}
        if isinstance(latency, (int, float)):
            latency = {"mean": latency}
        rate = doc.get("rate_limit") or {}
        prof = cls(
            seed=int(doc.get("seed", 0)),
            latency_mean_ms=float(latency.get("mean", 0)),
            latency_jitter_ms=float(latency.get("jitter", 0)),
            rate_per_second=float(rate["per_second"]) if rate.get("per_second") else None,
            rate_burst=float(rate.get("burst") or rate.get("per_second") or 0) or None,
            max_concurrency_per_app=int(doc["max_concurrency_per_app"]) if doc.get("max_concurrency_per_app") else None,
            throttle_rate=float(doc.get("throttle_rate", 0)),
            error_rate=float(doc.get("error_rate", 0)),
            drop_rate=float(doc.get("drop_rate", 0)),
            retry_after_seconds=max(1, int(doc.get("retry_after_seconds", 1))),
            error_statuses=[int(s) for s in doc.get("error_statuses", [500, 502, 503, 504])],
        )
        for name in ("throttle_rate", "error_rate", "drop_rate"):
            if not 0.0 <= getattr(prof, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if not prof.error_statuses or any(not 500 <= s <= 599 for s in prof.error_statuses):
            raise ValueError("error_statuses must be a non-empty list of 5xx codes")
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
