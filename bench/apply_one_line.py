"""Benchmark: one `mailroom apply` of a one-line change to the shipped file, on a fresh local tenant.

Copies the shipped mailboxes.yaml (and mailboxes.d/) into a temp dir, starts a local tenant, applies the
file once (not measured), changes one line (a display name), then runs `mailroom apply --yes` as the
user would (a new process) and prints, measured in that one run:

- tenant reads: Exchange Get-/Search- cmdlets (batch items counted one by one) plus Graph GETs;
- tenant writes, and every metered call, for context;
- the wall time of the command, from process start to exit.

    .venv/bin/python bench/apply_one_line.py [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import LocalTenant  # noqa: E402  (the tests' emulator runner: a real server on loopback)

LINE = ("display_name: Customer Support", "display_name: Customer Support Desk")


def reads(metrics: dict[str, Any]) -> int:
    exchange = sum(v for k, v in metrics["cmdlets"].items() if k.startswith(("Get-", "Search-")))
    graph = sum(v for k, v in metrics["endpoints"].items() if k.startswith("GET /v1.0"))
    return exchange + graph


def writes(metrics: dict[str, Any]) -> int:
    exchange = sum(v for k, v in metrics["cmdlets"].items() if not k.startswith(("Get-", "Search-")))
    graph = sum(v for k, v in metrics["endpoints"].items()
                if k.startswith(("PATCH /v1.0", "POST /v1.0", "PUT /v1.0", "DELETE /v1.0"))
                and k != "POST /v1.0/$batch")
    return exchange + graph


def apply(file: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mailroom", "apply", "--yes", "--stack", "local", "--file", str(file)],
                          env=env,
                          capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"apply failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="one-line applies to measure (alternating edits)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailroom-bench-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        shutil.copy(ROOT / "mailboxes.yaml", project / "mailboxes.yaml")
        shutil.copytree(ROOT / "mailboxes.d", project / "mailboxes.d")
        file = project / "mailboxes.yaml"
        (root / "tenant").mkdir()
        tenant = LocalTenant(root / "tenant")
        tenant.start()
        try:
            env = {k: v for k, v in os.environ.items() if k not in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE")}
            env.update(MAILROOM_LOCAL_TENANT_URL=tenant.base_url, MAILROOM_STATE_DIR=str(root / "state"))
            first = apply(file, env)
            print(f"first apply (all {file.name} mailboxes, not the figure): {first:.1f} s", flush=True)
            text = file.read_text()
            for i in range(args.runs):
                old, new = LINE if i % 2 == 0 else LINE[::-1]
                assert old in text, old
                text = text.replace(old, new, 1)
                file.write_text(text)
                tenant.reset_metrics()
                elapsed = apply(file, env)
                m = tenant.metrics()
                print(f"one-line apply: {elapsed:.1f} s wall; tenant reads {reads(m)}, writes {writes(m)}, "
                      f"metered calls {m['calls']}", flush=True)
        finally:
            tenant.stop()


if __name__ == "__main__":
    main()
