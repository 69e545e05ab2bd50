"""Benchmark: the Pulumi engine's `up` of N SharedMailbox resources, Python dynamic provider vs mailroom's plugin.

For each variant, on a fresh local tenant (latency and rate limit as a real tenant has them) and a fresh
stack, measured in one run:

- the first apply: `up` of N new shared mailboxes (5 grants each: 3 Full Access, 1 Send As, 1 Send on Behalf);
- one change to every mailbox: `up` after every display name changed;
- the state file's size after each, and its checkpoint writes (inotify on the stack's file: every time the
  engine rewrites ``.pulumi/stacks/mailroom/<stack>.json``);
- the tenant calls made (every metered call: batch items one by one), and the plugin's own counters.

Variants:

- ``dynamic``: the code before mailroom had a plugin (``--old-ref``, default the parent of the commit that
  added ``infra/mailroom/engine/plugin.py``), checked out in a temporary git worktree: one dynamic resource
  per mailbox, the SDK's provider host (4 calls at once, one tenant client per call), engine defaults;
- ``plugin``: this tree as it runs: ``mailroom:index:SharedMailbox`` served by ``pulumi-resource-mailroom`` (one
  tenant client, calls as the engine sends them, ``--parallel`` from ``workspace.PARALLEL``), and the state
  written once, at the end (``workspace.SKIP_CHECKPOINTS``);
- ``plugin-ckpt``: the same with ``PULUMI_SKIP_CHECKPOINTS=false``: the state rewritten before and after every
  resource step, as the dynamic variant does.

Each variant runs in a process of its own with its tree's ``infra`` first on ``PYTHONPATH`` (the engine's
provider processes inherit it).

    .venv/bin/python bench/provider.py [--mailboxes 1000] [--variants dynamic,plugin-ckpt,plugin]
                                       [--latency-ms 300] [--rate 100] [--old-ref REF]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import drift  # noqa: E402

STACK = "local"
USERS = 1000
IN_CLOSE_WRITE, IN_MOVED_TO = 0x08, 0x80


def generate(root: Path, n: int) -> tuple[Path, Path, Path]:
    """The tenant's people (no shared mailbox yet), the file of N mailboxes, and the same with every display
    name changed."""
    base = yaml.safe_load((ROOT / "infra" / "localtenant" / "data" / "directory.yaml").read_text())
    users = [{"upn": f"user{i:04d}@contoso.com", "display_name": f"User {i}"} for i in range(USERS)]
    directory = root / "directory.yaml"
    directory.write_text(yaml.safe_dump({"tenant": base["tenant"], "users": users, "shared_mailboxes": []}))
    files = []
    for name, suffix in (("mailboxes.yaml", ""), ("mailboxes-changed.yaml", " (renamed)")):
        mailboxes = []
        for i in range(n):
            people = [f"user{(i * 7 + k) % USERS:04d}@contoso.com" for k in range(4)]
            mailboxes.append({"address": f"shared{i:05d}@contoso.com", "display_name": f"Shared {i}{suffix}",
                              "members": people[:3], "send_as": [people[0]], "send_on_behalf": [people[3]],
                              "sign_in_blocked": False,
                              "sent_items": {"copy_send_as": False, "copy_send_on_behalf": False}})
        path = root / name
        path.write_text(yaml.safe_dump({"version": 1, "tenant": {"domains": ["contoso.com"]},
                                        "policy": {"max_members": 25}, "mailboxes": mailboxes}, sort_keys=False))
        files.append(path)
    return directory, files[0], files[1]


class Emulator(drift.Emulator):
    """bench/drift.py's emulator, metered per phase: setting a profile keeps the meter, reading it resets it."""

    def profile(self, profile: dict[str, Any]) -> None:
        self.http.put("/_emulator/profile", json=profile).raise_for_status()

    def metrics(self, reset: bool = True) -> dict[str, Any]:
        doc = dict(self.http.get("/_emulator/metrics").json())
        if reset:
            self.http.post("/_emulator/metrics/reset").raise_for_status()
        return doc


class Writes:
    """Counts the rewrites of one file in one directory (inotify: closed after writing, or renamed onto)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.name = name
        self.count = 0
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(0)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, str(directory).encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), f"inotify on {directory}")
        self.seen: Counter[str] = Counter()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            buf = os.read(self.fd, 1 << 16)
            i = 0
            while i < len(buf):
                _wd, mask, _cookie, length = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + length].rstrip(b"\0").decode()
                self.seen[f"{name}:{mask:#x}"] += 1
                if name == self.name:
                    self.count += 1
                i += 16 + length

    def take(self) -> int:
        time.sleep(0.5)  # the last events of the run
        count, self.count = self.count, 0
        return count


def worker(args: argparse.Namespace) -> None:
    """One variant, in this process: first apply, then one change to every mailbox. Prints one JSON line."""
    from mailroom.engine.runner import prepare

    tenant_url = os.environ["MAILROOM_LOCAL_TENANT_URL"]
    emu = httpx.Client(base_url=tenant_url, timeout=60)
    out: dict[str, Any] = {}
    writes: Writes | None = None
    for step, file in (("first", args.file), ("change", args.changed)):
        run = prepare(file, STACK)
        engine = run.engine()
        state = Path(os.environ["MAILROOM_STATE_DIR"]) / "state" / ".pulumi" / "stacks" / "mailroom"
        if writes is None:
            writes = Writes(state, f"{STACK}.json")
        emu.post("/_emulator/metrics/reset").raise_for_status()
        start = time.perf_counter()
        result = engine.up()
        wall = time.perf_counter() - start
        metrics = emu.get("/_emulator/metrics").json()
        stats_file = Path(os.environ.get("MAILROOM_PLUGIN_STATS", "/nonexistent"))
        plugin = json.loads(stats_file.read_text()) if stats_file.exists() else None
        stats_file.unlink(missing_ok=True)
        doc = (state / f"{STACK}.json").read_text()
        out[step] = {"wall_s": round(wall, 1), "result": result.summary.result,
                     "ops": {k: v for k, v in (result.summary.resource_changes or {}).items()},
                     "state_bytes": len(doc.encode()), "dynamic_provider_keys": doc.count('"__provider"'),
                     "checkpoint_writes": writes.take(), "tenant_calls": metrics["calls"],
                     "tokens": metrics["endpoints"].get("POST /{tenant}/oauth2/v2.0/token", 0),
                     "throttled": metrics["injected"]["throttled"], "plugin": plugin}
        print(f"  {args.variant} {step}: {json.dumps(out[step])}", file=sys.stderr, flush=True)
    print(json.dumps(out), flush=True)


def old_tree(root: Path, ref: str | None) -> Path:
    if ref is None:
        added = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--",
                                "infra/mailroom/engine/plugin.py"], capture_output=True, text=True,
                               check=True).stdout.split()
        ref = f"{added[-1]}^" if added else "HEAD"
    path = root / "old-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref], check=True,
                   capture_output=True)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=1000)
    ap.add_argument("--variants", default="dynamic,plugin-ckpt,plugin")
    ap.add_argument("--rate", type=float, default=100.0, help="allowed calls per second (token bucket)")
    ap.add_argument("--latency-ms", type=float, default=300.0)
    ap.add_argument("--old-ref", help="the commit the dynamic variant runs (default: before the plugin)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--changed", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.variant = args.worker
        worker(args)
        return 0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-provider-") as tmp:
        root = Path(tmp)
        directory, file, changed = generate(root, args.mailboxes)
        old: Path | None = None
        try:
            for variant in args.variants.split(","):
                infra = ROOT / "infra"
                if variant == "dynamic":
                    old = old or old_tree(root, args.old_ref)
                    infra = old / "infra"
                emu = Emulator(root / variant / "tenant", directory)
                try:
                    emu.profile({"seed": 1, "latency_ms": {"mean": args.latency_ms, "jitter": args.latency_ms / 10},
                                 "rate_limit": {"per_second": args.rate, "burst": args.rate}})
                    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
                    env.update(PYTHONPATH=str(infra), MAILROOM_LOCAL_TENANT_URL=emu.url,
                               MAILROOM_STATE_DIR=str(root / variant / "state"),
                               MAILROOM_PLUGIN_STATS=str(root / variant / "plugin-stats.json"))
                    if variant == "plugin-ckpt":
                        env["PULUMI_SKIP_CHECKPOINTS"] = "false"
                    print(f"{variant}: {args.mailboxes} mailboxes, {args.latency_ms:.0f} ms a call, "
                          f"{args.rate:.0f} calls/s ({infra})", file=sys.stderr, flush=True)
                    proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--file", str(file),
                                           "--changed", str(changed)], env=env, stdout=subprocess.PIPE, text=True,
                                          cwd=str(infra.parent), check=False)
                    if proc.returncode != 0:
                        raise SystemExit(f"{variant} failed ({proc.returncode})")
                    results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
                finally:
                    emu.stop()
        finally:
            if old is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
    print(json.dumps({"mailboxes": args.mailboxes, "latency_ms": args.latency_ms, "rate": args.rate,
                      "results": results}, indent=2))
    print(f"\n{'variant':<14}{'step':<8}{'wall s':>8}{'calls':>8}{'bound s':>9}{'x bound':>9}{'state KB':>10}"
          f"{'writes':>8}{'peak':>6}{'tenants':>9}", file=sys.stderr)
    for variant, steps in results.items():
        for step, r in steps.items():
            bound = r["tenant_calls"] / args.rate  # the throttle-bound minimum for the calls made
            plugin = r["plugin"] or {}
            print(f"{variant:<14}{step:<8}{r['wall_s']:>8.1f}{r['tenant_calls']:>8}{bound:>9.1f}"
                  f"{r['wall_s'] / bound:>9.2f}{r['state_bytes'] / 1000:>10.0f}{r['checkpoint_writes']:>8}"
                  f"{plugin.get('peak', '-'):>6}{plugin.get('tenants', r['tokens'] // 2):>9}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
