"""Benchmark: `mailroom import` of N shared mailboxes against its throttle-bound minimum (issue 12).

Seeds N shared mailboxes with 5 grants each (3 Full Access, 1 Send As, 1 Send on Behalf: 25,000 grants at
N = 5,000) in a local tenant (bench/drift.py's generator and emulator), sets a profile with realistic latency
(300 ms a call) and a rate limit (100 calls/s), then runs the real CLI command in this process, `mailroom
import --out FILE --json`, and prints: wall time, requests made (metered calls: batch items count one by
one, the $batch envelopes that carry them do not), the throttle-bound minimum (requests / rate) and the
ratio. Target: <= 1.2x the minimum. It also checks that the written file validates and holds N mailboxes.

    .venv/bin/python bench/import.py [--mailboxes 5000] [--rate 100] [--latency-ms 300]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drift import ROOT, Emulator, generate  # noqa: E402  (the sibling benchmark's emulator and generator)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=100.0, help="allowed calls per second (token bucket)")
    ap.add_argument("--latency-ms", type=float, default=300.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        directory, _ = generate(root, args.mailboxes)
        emu = Emulator(root, directory)
        print(f"setup: {args.mailboxes} mailboxes, {args.mailboxes * 5} grants seeded in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
        os.environ.update({"MAILROOM_LOCAL_TENANT_URL": emu.url, "MAILROOM_STATE_DIR": str(root / "state")})
        out = root / "repo" / "mailboxes.yaml"
        try:
            emu.profile({"seed": 1, "latency_ms": {"mean": args.latency_ms, "jitter": args.latency_ms / 10},
                         "rate_limit": {"per_second": args.rate, "burst": args.rate}})
            sys.path.insert(0, str(ROOT / "infra"))  # this checkout's mailroom, only when it runs
            from mailroom.cli.main import main as mailroom
            from mailroom.file.load import load_desired

            stdout = io.StringIO()
            start = time.perf_counter()
            with contextlib.redirect_stdout(stdout):
                code = mailroom(["import", "--stack", "local", "--out", str(out), "--json"])
            wall = time.perf_counter() - start
            metrics = emu.metrics()
            assert code == 0, code
            doc = json.loads(stdout.getvalue())
            loaded = load_desired(str(out))
            assert not loaded.errors and loaded.desired is not None, loaded.errors[:3]
            assert len(loaded.desired.mailboxes) == args.mailboxes == doc["mailboxes"], doc["mailboxes"]
            size = out.stat().st_size
        finally:
            emu.stop()
    envelopes = sum(v for k, v in metrics["endpoints"].items() if "$batch" in k)
    calls = int(metrics["calls"]) - envelopes
    minimum = calls / args.rate
    print(json.dumps({"skipped": doc["skipped"], "scan": doc["scan"]}), file=sys.stderr)
    print(f"mailboxes: {args.mailboxes}  grants: {args.mailboxes * 5}  latency: {args.latency_ms:.0f} ms/call  "
          f"rate limit: {args.rate:.0f} calls/s")
    print(f"import wall time:             {wall:8.1f} s   (file: {size:,} bytes, valid)")
    print(f"requests (metered calls):     {calls:8d}   ({metrics['requests']} HTTP requests, "
          f"{envelopes} of them $batch envelopes; {metrics['injected']['throttled']} calls throttled)")
    print(f"requests per mailbox:         {calls / args.mailboxes:8.3f}")
    print(f"throttle-bound minimum:       {minimum:8.1f} s   (requests / rate)")
    print(f"wall / minimum:               {wall / minimum:8.2f}x  (target <= 1.2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
