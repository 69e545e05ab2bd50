"""Request counters for ``GET /_emulator/metrics``: what a client actually sent, so tests
and benchmarks can assert call counts (batch items are counted one by one)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any


class Metrics:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.since = time.time()
        self.requests = 0
        self.batch_items = 0
        self.endpoints: Counter[str] = Counter()
        self.cmdlets: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.apps: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.latency_ms = 0.0

    def request(self, endpoint: str, app_id: str) -> None:
        self.requests += 1
        self.endpoints[endpoint] += 1
        self.apps[app_id] += 1

    def batch_item(self, endpoint: str) -> None:
        self.batch_items += 1
        self.endpoints[endpoint] += 1

    def cmdlet(self, name: str) -> None:
        self.cmdlets[name] += 1

    def status(self, code: int) -> None:
        self.statuses[str(code)] += 1

    def inject(self, kind: str) -> None:
        """kind: throttled_rate_limit | throttled_concurrency | throttled_random | error | dropped"""
        self.injected[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        throttled = sum(v for k, v in self.injected.items() if k.startswith("throttled"))
        return {
            "since": self.since,
            "requests": self.requests,
            "batch_items": self.batch_items,
            # every call a real service would meter: plain requests plus each batch item
            "calls": sum(self.endpoints.values()),
            "endpoints": dict(sorted(self.endpoints.items())),
            "cmdlets": dict(sorted(self.cmdlets.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "apps": dict(sorted(self.apps.items())),
            "injected": {
                "throttled": throttled,
                "errors": self.injected["error"],
                "dropped": self.injected["dropped"],
                **{k: v for k, v in sorted(self.injected.items()) if k.startswith("throttled_")},
                "latency_ms_total": round(self.latency_ms, 3),
            },
        }
