"""Benchmark: plan and apply at tenant scale, against the bulk drift scan of the same tenant (issue 11).

One run per N. A local tenant is seeded with N shared mailboxes (3 Full Access, 1 Send As, 1 Send on
Behalf each) and 1,000 people; the emulator answers with a latency (default 300 ms a call) under a rate
limit (default 100 calls/s). Every operation is the real CLI (`python -m mailroom ...`, the real
Pulumi engine), timed from the outside, and the emulator's meter gives the requests it made. The
throttle-bound minimum of an operation is its metered calls (batch items one by one, not the $batch
envelopes) divided by the rate.

Operations, in order: drift scan; first apply into an empty stack of the N mailboxes that exist
(adoption); no-op plan; plan against live state (--refresh); one-line apply; apply of a change to every
mailbox; first apply into an empty stack of N mailboxes that do not exist (creation).

Targets: plan --refresh <= 1.3x the drift scan; one-line apply <= 1.3x the drift scan + 10 s; change to
every mailbox and first apply (adopt or create) <= 1.5x their throttle-bound minimum; no-op plan: 0
requests, <= 30 s; every operation's time at 5,000 / at 1,000 <= 5.5 (run both and divide).

    .venv/bin/python bench/reconcile.py [--mailboxes 1000] [--rate 100] [--latency-ms 300]
        [--repo DIR]   # another checkout's CLI (e.g. an older commit), for before/after
        [--only scan,adopt,noop,refresh,one,all,create]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from drift import USERS, Emulator, generate  # noqa: E402

OPS = ("scan", "adopt", "noop", "refresh", "one", "all", "create")


def write(path: Path, mailboxes: list[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump({"version": 1, "tenant": {"domains": ["contoso.com"]},
                                    "policy": {"max_removals_per_apply": 10, "require_owner": False},
                                    "mailboxes": mailboxes}, sort_keys=False))


class Bench:
    def __init__(self, root: Path, emu: Emulator, rate: float, repo: Path) -> None:
        self.root, self.emu, self.rate, self.repo = root, emu, rate, repo
        self.rows: list[tuple[str, float, int, float]] = []
        self.verbose = False

    def run(self, name: str, state: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, int, float]:
        env = {**os.environ, "MAILROOM_LOCAL_TENANT_URL": self.emu.url, "MAILROOM_STATE_DIR": str(state),
               "PYTHONPATH": str(self.repo / "infra")}
        self.emu.http.post("/_emulator/metrics/reset").raise_for_status()
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mailroom", *args, "--stack", "local"], env=env,
                              cwd=self.root, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode not in ok:
            raise SystemExit(f"{name}: `mailroom {' '.join(args)}` exited {proc.returncode}:\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        m = self.emu.metrics()
        envelopes = sum(v for k, v in m["endpoints"].items() if "$batch" in k)
        calls = int(m["calls"]) - envelopes
        minimum = calls / self.rate if self.rate else 0.0
        self.rows.append((name, wall, calls, minimum))
        print(f"  {name:<44} {wall:8.1f} s  {calls:7d} requests  minimum {minimum:7.1f} s", file=sys.stderr,
              flush=True)
        if self.verbose:
            print(f"    cmdlets {dict(m['cmdlets'])}\n    endpoints {dict(m['endpoints'])}", file=sys.stderr)
        return wall, calls, minimum


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=100.0, help="allowed calls per second (0: no limit)")
    ap.add_argument("--latency-ms", type=float, default=300.0)
    ap.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose CLI runs (default: this one)")
    ap.add_argument("--only", default=",".join(OPS), help="a comma-separated subset of " + ",".join(OPS))
    ap.add_argument("-v", "--verbose", action="store_true", help="the cmdlets and endpoints of each operation")
    args = ap.parse_args()
    only = set(args.only.split(","))
    n = args.mailboxes
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        directory, desired = generate(root, n)
        mailboxes = yaml.safe_load(desired.read_text())["mailboxes"]
        file = root / "mailboxes.yaml"
        write(file, mailboxes)
        emu = Emulator(root, directory)
        profile: dict[str, Any] = {"seed": 1}
        if args.latency_ms:
            profile["latency_ms"] = {"mean": args.latency_ms, "jitter": args.latency_ms / 10}
        if args.rate:
            profile["rate_limit"] = {"per_second": args.rate, "burst": args.rate}
        emu.profile(profile)
        b = Bench(root, emu, args.rate, args.repo)
        b.verbose = args.verbose
        state = root / "state"
        print(f"N = {n} shared mailboxes ({n * 5} grants, {USERS} people); latency {args.latency_ms:.0f} ms, "
              f"rate {args.rate:.0f}/s; CLI of {args.repo}", file=sys.stderr)
        try:
            res: dict[str, tuple[float, int, float]] = {}
            if "scan" in only:
                res["scan"] = b.run("drift scan", state, "drift", "--file", str(file), "--json", ok=(0, 2))
            if "adopt" in only:
                res["adopt"] = b.run("first apply, mailboxes exist (adopt)", state, "apply", "--yes",
                                     "--file", str(file))
            if "noop" in only:
                res["noop"] = b.run("no-op plan", state, "plan", "--file", str(file))
            if "refresh" in only:
                res["refresh"] = b.run("plan against live state (--refresh)", state, "plan", "--refresh",
                                       "--file", str(file))
            if "one" in only:
                mailboxes[n // 2]["aliases"] = [f"extra{n // 2}@contoso.com"]
                write(file, mailboxes)
                res["one"] = b.run("one-line apply", state, "apply", "--yes", "--file", str(file))
            if "all" in only:
                for i, mb in enumerate(mailboxes):
                    mb["display_name"] = f"Shared {i} (renamed)"
                write(file, mailboxes)
                res["all"] = b.run("apply of a change to every mailbox", state, "apply", "--yes",
                                   "--file", str(file))
            if "create" in only:
                new = [{**mb, "address": mb["address"].replace("shared", "new"), "aliases": []}
                       for mb in mailboxes]
                created = root / "created.yaml"
                write(created, new)
                res["create"] = b.run("first apply, mailboxes do not exist (create)", root / "state2", "apply",
                                      "--yes", "--file", str(created))
        finally:
            emu.stop()
    scan = res.get("scan", (0.0, 0, 0.0))[0]
    print(f"\nN = {n}; latency {args.latency_ms:.0f} ms/call; rate limit {args.rate:.0f} calls/s")
    print(f"{'operation':<44} {'wall':>9} {'requests':>9} {'minimum':>9} {'ratio':>17}")
    for name, wall, calls, minimum in b.rows:
        key = next(k for k, v in res.items() if v[0] == wall)
        if key in ("refresh",) and scan:
            ratio = f"{wall / scan:5.2f}x scan (<=1.3)"
        elif key == "one" and scan:
            ratio = f"{wall / (1.3 * scan + 10):5.2f}x of 1.3 scan+10s"
        elif key in ("all", "adopt", "create") and minimum:
            ratio = f"{wall / minimum:5.2f}x min (<=1.5)"
        elif key == "noop":
            ratio = f"{calls} req (0), <=30 s"
        else:
            ratio = ""
        print(f"{name:<44} {wall:8.1f}s {calls:9d} {minimum:8.1f}s {ratio:>17}")
    print(json.dumps({"n": n, "latency_ms": args.latency_ms, "rate": args.rate,
                      "results": {k: {"wall_s": round(v[0], 2), "requests": v[1], "minimum_s": round(v[2], 2)}
                                  for k, v in res.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
