"""Benchmark: `mailroom who PERSON` against drift's scan, on one tenant, measured in one run (issue 15).

Seeds a local tenant with N managed shared mailboxes (bench/drift.py's generator: 5 grants each) and U more
that the file does not manage, under the same emulator profile as bench/drift.py (300 ms a call, a rate
limit), then times drift's scan (``drift.run.collect``: the bulk read, inbox rules, findings) and ``who`` for
one person (``access.read.read_person``: the bulk read with the unmanaged mailboxes, the person's groups,
the index), and prints wall time and metered requests of each and the ratio.

Target for N = 5,000: who <= 2x the drift scan (one bulk read, no per-mailbox loop).

    .venv/bin/python bench/who.py [--mailboxes 5000] [--unmanaged 250] [--rate 100] [--latency-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drift as drift_bench  # noqa: E402

ROOT = drift_bench.ROOT


def metered(metrics: dict[str, Any]) -> int:
    """Calls the service meters: plain calls and batch items, not the $batch envelopes (as bench/drift.py)."""
    envelopes = sum(v for k, v in metrics["endpoints"].items() if "$batch" in k)
    return int(metrics["calls"]) - envelopes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--unmanaged", type=int, default=250, help="shared mailboxes the file does not manage")
    ap.add_argument("--rate", type=float, default=100.0, help="allowed calls per second (token bucket)")
    ap.add_argument("--latency-ms", type=float, default=300.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        directory, desired = drift_bench.generate(root, args.mailboxes + args.unmanaged)
        doc = yaml.safe_load(desired.read_text())
        doc["mailboxes"] = doc["mailboxes"][:args.mailboxes]  # the rest exist, unmanaged
        desired.write_text(yaml.safe_dump(doc, sort_keys=False))
        emu = drift_bench.Emulator(root, directory)
        print(f"setup: {args.mailboxes} managed and {args.unmanaged} unmanaged mailboxes seeded in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
        os.environ.update({"MAILROOM_LOCAL_TENANT_URL": emu.url, "MAILROOM_STATE_DIR": str(root / "state")})
        try:
            profile = {"seed": 1, "latency_ms": {"mean": args.latency_ms, "jitter": args.latency_ms / 10},
                       "rate_limit": {"per_second": args.rate, "burst": args.rate}}
            sys.path.insert(0, str(ROOT / "infra"))
            from mailroom.access.read import read_person
            from mailroom.drift.run import collect
            from mailroom.engine.runner import prepare
            from mailroom.m365.tenant import Tenant

            prepared = prepare(str(desired), "local")
            emu.profile(profile)
            start = time.perf_counter()
            _, scanned, _ = asyncio.run(collect(prepared, 32, {}))
            drift_wall = time.perf_counter() - start
            drift_calls = metered(emu.metrics())
            assert not scanned.errors, list(scanned.errors.items())[:3]

            async def who() -> Any:
                async with Tenant(prepared.tenant, concurrency=32) as t:
                    return await read_person(t, prepared.desired, "user0007@contoso.com")

            emu.profile(profile)
            start = time.perf_counter()
            found = asyncio.run(who())
            who_wall = time.perf_counter() - start
            who_calls = metered(emu.metrics())
        finally:
            emu.stop()
    managed = sum(1 for a in found.access if a.managed)
    print(f"mailboxes: {args.mailboxes} managed + {args.unmanaged} unmanaged  latency: {args.latency_ms:.0f} ms/call  "
          f"rate limit: {args.rate:.0f} calls/s")
    print(f"drift scan:   {drift_wall:8.1f} s  {drift_calls:7d} metered calls")
    print(f"who (1 user): {who_wall:8.1f} s  {who_calls:7d} metered calls  -> {len(found.access)} grants "
          f"({managed} on managed mailboxes), groups: {found.groups_unread or 'read'}")
    print(f"who / drift:  {who_wall / drift_wall:8.2f}x wall, {who_calls / drift_calls:.2f}x calls  (target <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
