"""Benchmark: `mailroom review` over 90 days of delegate activity, against the minimum the audit query
limits allow.

Generates N shared mailboxes with 5 grants each (bench/drift.py's generator: 3 Full Access, 1 Send As,
1 Send on Behalf), seeds about 1,000,000 delegate records over 90 days in the local tenant (one control
request: the emulator writes them with SQL), sets the audit query timing (a query is notStarted for
--start-s, running for --run-s), and runs the review's reads and verdicts (activity.collect.collect).

The minimum the limits allow: the records need ceil(records / record limit) queries, which run at once
(the queued/running limit is 50), so one query's wait (start + run); then every record page must be
fetched. The page floor is measured in this run: a bare client pages the same query's records and parses
them, doing nothing else. The Exchange reads and message traces run during the query wait, so they add
nothing to the minimum. Minimum = query wait + page floor; the ratio is the review's wall time over it.
Peak RSS is the benchmark process's (the review runs in it; the emulator is another process).

Targets (issue 15), N = 5,000 and ~1 M records: wall <= 1.2x the minimum; memory <= 1 GB.

    .venv/bin/python bench/review.py [--mailboxes 5000] [--records-per-grant 62] [--start-s 1] [--run-s 4]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from drift import USERS, Emulator, generate

ROOT = Path(__file__).resolve().parents[1]
# per grant: the delegate action the generator simulates (Send As → SendAs, Send on Behalf → SendOnBehalf;
# Full Access holders update items, or only read, which the default audit settings do not record)
OPERATIONS = ("Update", "MoveToDeletedItems", None, "SendAs", "SendOnBehalf")


def pairs(n: int, per_grant: int) -> list[list[Any]]:
    out: list[list[Any]] = []
    for i in range(n):
        people = [f"user{(i * 7 + k) % USERS:04d}@contoso.com" for k in range(4)]
        holders = [people[0], people[1], people[2], people[0], people[3]]  # FA, FA, FA, Send As, Send on Behalf
        for k, (who, op) in enumerate(zip(holders, OPERATIONS, strict=True)):
            if op is not None and (i + k) % 5:  # a fifth of the grants never used
                out.append([f"shared{i:05d}@contoso.com", who, op, per_grant])
    return out


def bare_pages(emu: Emulator, body: dict[str, Any], page: int) -> tuple[float, float, int, int]:
    """(query wait, paging time, pages, records) of one query through a client that does nothing else."""
    token = emu.http.post(f"/{emu.tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": "bare", "client_secret": "x",
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    qid = emu.http.post("/v1.0/security/auditLog/queries", json=body, headers=h).json()["id"]
    while emu.http.get(f"/v1.0/security/auditLog/queries/{qid}", headers=h).json()["status"] != "succeeded":
        time.sleep(0.05)
    t1 = time.perf_counter()
    url, pages, records = f"/v1.0/security/auditLog/queries/{qid}/records?$top={page}", 0, 0
    while url:
        data = emu.http.get(url, headers=h).json()
        pages, records = pages + 1, records + len(data["value"])
        url = (data.get("@odata.nextLink") or "").replace(emu.url, "")
    return t1 - t0, time.perf_counter() - t1, pages, records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=5000)
    ap.add_argument("--records-per-grant", type=int, default=62)
    ap.add_argument("--start-s", type=float, default=1.0, help="seconds a query stays notStarted")
    ap.add_argument("--run-s", type=float, default=4.0, help="seconds a query runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        directory, desired = generate(root, args.mailboxes)
        emu = Emulator(root, directory)
        try:
            seeded = pairs(args.mailboxes, args.records_per_grant)
            written = 0
            for k in range(0, len(seeded), 5000):  # request bodies stay under the 4 MB cap
                resp = emu.http.post("/_emulator/activity/generate", timeout=600,
                                     json={"pairs": seeded[k:k + 5000], "days": 90, "seed": k})
                resp.raise_for_status()
                written += int(resp.json()["written"])
            limits = emu.http.put("/_emulator/auditlog", json={"ingestion_delay_s": 0.0, "start_s": args.start_s,
                                                               "run_s": args.run_s}).json()
            print(f"setup: {args.mailboxes} mailboxes, {args.mailboxes * 5} grants, {written:,} delegate records "
                  f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            os.environ.update({"MAILROOM_LOCAL_TENANT_URL": emu.url, "MAILROOM_STATE_DIR": str(root / "state")})
            sys.path.insert(0, str(ROOT / "infra"))
            from mailroom.activity.collect import OPERATIONS as SIGNALS
            from mailroom.activity.collect import collect
            from mailroom.engine.runner import prepare
            from mailroom.m365 import auditlog

            prepared = prepare(str(desired), "local")
            now = datetime.now(timezone.utc)
            start = time.perf_counter()
            review, stats = asyncio.run(collect(prepared.desired, prepared.tenant, timedelta(days=90), now=now))
            wall = time.perf_counter() - start
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            body = {"filterStartDateTime": auditlog.iso(now - timedelta(days=90)), "filterEndDateTime":
                    auditlog.iso(now), "recordTypeFilters": list(auditlog.MAILBOX_ITEMS),
                    "operationFilters": list(SIGNALS)}
            wait, paging, pages, records = bare_pages(emu, body, 1000)
        finally:
            emu.stop()
    queries = max(1, math.ceil(records / limits["max_records"]))
    waves = math.ceil(queries / limits["max_active"])
    minimum = waves * (args.start_s + args.run_s) + paging
    counts = {v: review.count(v) for v in ("active", "unused", "unknown")}
    print(f"mailboxes: {args.mailboxes}  grants: {args.mailboxes * 5}  records: {records:,} over 90 days  "
          f"query: {args.start_s:g} s notStarted + {args.run_s:g} s running, {limits['max_records']:,} records "
          f"and {limits['max_active']} queued/running at most")
    print(f"verdicts: {counts}  candidates: {len(review.candidates)}  audit: {stats.audit['queries']} queries, "
          f"{stats.audit['pages']} pages, {stats.audit['polls']} polls, {stats.audit['splits']} splits")
    print(f"review wall time:             {wall:8.1f} s")
    print(f"minimum the limits allow:     {minimum:8.1f} s   ({waves} wave(s) of {queries} query x "
          f"{args.start_s + args.run_s:g} s + {pages} pages paged bare in {paging:.1f} s; bare query wait "
          f"{wait:.1f} s)")
    print(f"wall / minimum:               {wall / minimum:8.2f}x  (target <= 1.2x)")
    print(f"peak RSS:                     {rss_mb:8.0f} MB  (target <= 1024 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
