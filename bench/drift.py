"""Benchmark: mailroom's bulk drift scan against a one-mailbox-at-a-time scan (how Microsoft365DSC works).

Generates N shared mailboxes with 5 grants each (3 Full Access, 1 Send As, 1 Send on Behalf) in a local
tenant, runs the scan under an emulator profile with realistic latency (300 ms a call) and a rate limit,
and prints, measured in one run: wall time, requests made (metered calls: batch items count one by one),
requests per mailbox, the throttle-bound minimum (requests needed / allowed rate) and the ratio; then a
sequential scan of a sample of mailboxes, scaled to N, and the speed-up per mailbox.

Targets (issue 6) for N = 5,000 with 25,000 grants: <= 1.2 requests per mailbox, wall time <= 1.2x the
throttle-bound minimum, >= 50x faster per mailbox than the sequential scan.

    .venv/bin/python bench/drift.py [--mailboxes 5000] [--rate 100] [--latency-ms 300] [--sample 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]

USERS = 1000


def generate(root: Path, n: int) -> tuple[Path, Path]:
    base = yaml.safe_load((ROOT / "infra" / "localtenant" / "data" / "directory.yaml").read_text())
    users = [{"upn": f"user{i:04d}@contoso.com", "display_name": f"User {i}"} for i in range(USERS)]
    shared, mailboxes = [], []
    for i in range(n):
        people = [f"user{(i * 7 + k) % USERS:04d}@contoso.com" for k in range(4)]
        shared.append({"name": f"shared{i:05d}", "display_name": f"Shared {i}",
                       "primary_smtp_address": f"shared{i:05d}@contoso.com",
                       "full_access": people[:3], "send_as": [people[0]], "send_on_behalf": [people[3]]})
        mailboxes.append({"address": f"shared{i:05d}@contoso.com", "display_name": f"Shared {i}",
                          "members": people[:3], "send_as": [people[0]], "send_on_behalf": [people[3]],
                          "sign_in_blocked": False, "sent_items": {"copy_send_as": False,
                                                                   "copy_send_on_behalf": False}})
    directory = root / "directory.yaml"
    directory.write_text(yaml.safe_dump({"tenant": base["tenant"], "users": users, "shared_mailboxes": shared}))
    desired = root / "mailboxes.yaml"
    desired.write_text(yaml.safe_dump({"version": 1, "tenant": {"domains": ["contoso.com"]},
                                       "mailboxes": mailboxes}, sort_keys=False))
    return directory, desired


class Emulator:
    def __init__(self, root: Path, directory: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        port_file = root / "port"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "localtenant", "serve", "--state", str(root / "tenant.db"), "--port", "0",
             "--port-file", str(port_file), "--seed-directory", str(directory)],
            stdout=subprocess.DEVNULL, stderr=open(root / "emulator.log", "wb"),
            env={**os.environ, "PYTHONPATH": str(ROOT / "infra")})  # this checkout's emulator, from any cwd
        deadline = time.monotonic() + 300
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"emulator did not start; see {root / 'emulator.log'}")
            time.sleep(0.2)
        self.url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        self.http = httpx.Client(base_url=self.url, timeout=60)
        while True:
            try:
                if self.http.get("/_emulator/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.tenant = self.http.get("/_emulator/health").json()["tenant_id"]

    def profile(self, profile: dict[str, Any]) -> None:
        self.http.put("/_emulator/profile", json=profile).raise_for_status()
        self.http.post("/_emulator/metrics/reset").raise_for_status()

    def metrics(self) -> dict[str, Any]:
        return dict(self.http.get("/_emulator/metrics").json())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def sequential_sample(emu: Emulator, sample: list[str]) -> float:
    """One mailbox at a time, one call at a time: mailbox, Full Access, Send As, the Entra user."""
    token = {}
    for scope in ("https://outlook.office365.com/.default", "https://graph.microsoft.com/.default"):
        resp = emu.http.post(f"/{emu.tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": "m365dsc-like", "client_secret": "x", "scope": scope})
        token[scope] = resp.json()["access_token"]
    ex = {"Authorization": f"Bearer {token['https://outlook.office365.com/.default']}"}
    gr = {"Authorization": f"Bearer {token['https://graph.microsoft.com/.default']}"}
    url = f"/adminapi/beta/{emu.tenant}/InvokeCommand"

    def call(cmdlet: str, **params: Any) -> Any:
        while True:
            r = emu.http.post(url, headers=ex, json={"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}})
            if r.status_code == 429:
                time.sleep(float(r.headers.get("Retry-After", 1)))
                continue
            return r.json()

    start = time.perf_counter()
    for address in sample:
        mbx = call("Get-Mailbox", Identity=address)["value"][0]
        call("Get-MailboxPermission", Identity=address)
        call("Get-RecipientPermission", Identity=address)
        while emu.http.get(f"/v1.0/users/{mbx['ExternalDirectoryObjectId']}", headers=gr).status_code == 429:
            time.sleep(1)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=100.0, help="allowed calls per second (token bucket)")
    ap.add_argument("--latency-ms", type=float, default=300.0)
    ap.add_argument("--sample", type=int, default=20, help="mailboxes in the sequential sample")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        directory, desired = generate(root, args.mailboxes)
        emu = Emulator(root, directory)
        print(f"setup: {args.mailboxes} mailboxes, {args.mailboxes * 5} grants seeded in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
        os.environ.update({"MAILROOM_LOCAL_TENANT_URL": emu.url, "MAILROOM_STATE_DIR": str(root / "state")})
        try:
            profile = {"seed": 1, "latency_ms": {"mean": args.latency_ms, "jitter": args.latency_ms / 10},
                       "rate_limit": {"per_second": args.rate, "burst": args.rate}}
            emu.profile(profile)
            # Imported here, not at the top: bench/provider.py and bench/reconcile.py import this module for
            # its emulator and generator, and must not get this checkout's mailroom on their path.
            sys.path.insert(0, str(ROOT / "infra"))
            from mailroom.drift.run import collect
            from mailroom.engine.runner import prepare

            prepared = prepare(str(desired), "local")
            start = time.perf_counter()
            found, result, stats = asyncio.run(collect(prepared, 32, {}))
            wall = time.perf_counter() - start
            metrics = emu.metrics()
            assert not result.errors, list(result.errors.items())[:3]
            # What the service meters against its budget: plain calls and batch items, not the
            # batch envelopes that carry the items (the emulator's rate limit counts the same way).
            envelopes = sum(v for k, v in metrics["endpoints"].items() if "$batch" in k)
            calls = int(metrics["calls"]) - envelopes
            minimum = calls / args.rate
            per_mailbox = calls / args.mailboxes
            sample = [f"shared{i:05d}@contoso.com" for i in range(0, args.mailboxes, max(1, args.mailboxes
                                                                                          // args.sample))]
            sample = sample[: args.sample]
            emu.profile(profile)
            seq = sequential_sample(emu, sample)
            seq_per_mailbox = seq / len(sample)
            seq_total = seq_per_mailbox * args.mailboxes
        finally:
            emu.stop()
    speedup = seq_per_mailbox / (wall / args.mailboxes)
    print(json.dumps({"findings": len(found), "throttled": metrics["injected"]["throttled"]}), file=sys.stderr)
    print(f"mailboxes: {args.mailboxes}  grants: {args.mailboxes * 5}  latency: {args.latency_ms:.0f} ms/call  "
          f"rate limit: {args.rate:.0f} calls/s")
    print(f"bulk scan wall time:          {wall:8.1f} s")
    print(f"requests (metered calls):     {calls:8d}   ({metrics['requests']} HTTP requests, "
          f"{envelopes} of them $batch envelopes; {metrics['injected']['throttled']} calls throttled)")
    print(f"requests per mailbox:         {per_mailbox:8.3f}   (target <= 1.2)")
    print(f"throttle-bound minimum:       {minimum:8.1f} s   (requests / rate)")
    print(f"wall / minimum:               {wall / minimum:8.2f}x  (target <= 1.2x)")
    print(f"sequential sample:            {len(sample)} mailboxes in {seq:.1f} s = {seq_per_mailbox:.2f} s/mailbox, "
          f"{seq_total:.0f} s scaled to {args.mailboxes}")
    print(f"speed-up per mailbox:         {speedup:8.1f}x  (target >= 50x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
