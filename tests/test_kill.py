"""Killing mailroom at any point of an apply leaves no engine behind, and the next apply converges.

mailroom is run as a real process and killed with SIGKILL (nothing in it can react), at three
points: while the plan is made, as the update starts, and after the update has finished
its first mailbox. Every process of that run carries the run's state directory in its
environment, which is how the test finds the ones that outlived it.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import ROOT, view

MAILROOM = str(Path(sys.executable).parent / "mailroom")
GONE_WITHIN = 10.0  # seconds: the acceptance bound for every engine process to be gone
# stderr line that marks each point
POINTS = {"plan": "mailroom: planning stack", "update": "mailroom: applying", "mid-update": "] "}


def run_processes(marker: bytes) -> list[int]:
    """Live processes whose environment holds ``marker`` (this run's state directory)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def engine_running(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if b"pulumi" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def start_apply(tmp_path: Path, local_tenant: Any) -> tuple[subprocess.Popen[str], queue.Queue[str], dict[str, str],
                                                              bytes, Path]:
    """`mailroom -v apply` of a copy of the shipped file on a slowed local tenant, as a process of its own:
    the process, its stderr lines as they come, its environment, its marker and the file."""
    work = tmp_path / "project"
    work.mkdir()
    shutil.copy(ROOT / "mailboxes.yaml", work / "mailboxes.yaml")
    shutil.copytree(ROOT / "mailboxes.d", work / "mailboxes.d")
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(MAILROOM_LOCAL_TENANT_URL=local_tenant.base_url, MAILROOM_STATE_DIR=str(state))
    # Slow enough that each point of the run lasts long enough to be hit.
    local_tenant.set_profile({"latency_ms": {"mean": 150}})
    # -v: progress lines are logged when stderr is not a terminal; the test waits for them.
    proc = subprocess.Popen([MAILROOM, "-v", "apply", "--yes", "--stack", "local", "--file",
                             str(work / "mailboxes.yaml")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    return proc, lines, env, f"MAILROOM_STATE_DIR={state}".encode(), work / "mailboxes.yaml"


def wait_for(proc: subprocess.Popen[str], lines: queue.Queue[str], point: str, deadline: float) -> str:
    """The stderr seen until the line that marks ``point``; fails if the apply ends or time runs out first."""
    seen = ""
    while POINTS[point] not in seen:
        assert time.monotonic() < deadline, f"never reached {point!r}:\n{seen}"
        assert proc.poll() is None, f"apply ended before {point!r}:\n{seen}"
        try:
            seen += lines.get(timeout=0.5)
        except queue.Empty:
            pass
    return seen


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_apply_leaves_no_engine_and_the_next_apply_converges(point: str, tmp_path: Path,
                                                                    local_tenant: Any) -> None:
    proc, lines, env, marker, file = start_apply(tmp_path, local_tenant)
    deadline = time.monotonic() + 180
    seen = wait_for(proc, lines, point, deadline)
    # Each line is printed just before the engine starts: the kill waits for an engine process.
    while not engine_running(run_processes(marker)):
        assert time.monotonic() < deadline and proc.poll() is None, f"no engine at {point!r}:\n{seen}"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.monotonic()
    while run_processes(marker) and time.monotonic() - killed < GONE_WITHIN + 5:
        time.sleep(0.1)
    left = run_processes(marker)
    took = time.monotonic() - killed
    assert not left and took <= GONE_WITHIN, f"{len(left)} process(es) of the killed run still there after {took:.1f}s"

    # The next apply converges with no manual step (no `pulumi cancel`, no state surgery).
    local_tenant.set_profile({})
    again = subprocess.run([MAILROOM, "apply", "--yes", "--stack", "local", "--file", str(file)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    check = subprocess.run([MAILROOM, "plan", "--refresh", "--stack", "local", "--file", str(file)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0 and "No changes" in check.stdout, check.stdout + check.stderr
    support = view(local_tenant, "support@contoso.com")
    assert support is not None and "alice@contoso.com" in support["members"]


def engine_pids(pids: list[int]) -> list[int]:
    """The Pulumi engine itself (not its supervisor, `mailroom-engine`, nor the provider plugin)."""
    out = []
    for pid in pids:
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"/pulumi"):
            out.append(pid)
    return out


def test_killed_engine_fails_the_apply_and_the_next_apply_converges(tmp_path: Path, local_tenant: Any) -> None:
    """The engine (not mailroom) is killed with SIGKILL after the update has finished its first mailbox:
    mailroom reports a failure, and the next apply converges with no duplicate grant and an audit log that
    verifies."""
    proc, lines, env, marker, file = start_apply(tmp_path, local_tenant)
    wait_for(proc, lines, "mid-update", time.monotonic() + 180)
    victims = engine_pids(run_processes(marker))
    assert victims, "no engine process found"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=120) == 1  # mailroom itself says the apply failed
    local_tenant.set_profile({})
    again = subprocess.run([MAILROOM, "apply", "--yes", "--stack", "local", "--file", str(file)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    check = subprocess.run([MAILROOM, "plan", "--refresh", "--stack", "local", "--file", str(file)], env=env,
                           capture_output=True, text=True, timeout=600)
    assert check.returncode == 0 and "No changes" in check.stdout, check.stdout + check.stderr
    for mailbox in ("support@contoso.com", "info@contoso.com", "payroll@contoso.com", "invoices@contoso.com"):
        rows = local_tenant.exchange("Get-MailboxPermission", Identity=mailbox).json()["value"]
        users = [str(r["User"]).lower() for r in rows if "FullAccess" in r.get("AccessRights", [])]
        assert len(users) == len(set(users)), f"{mailbox}: duplicate grant in {users}"
    verify = subprocess.run([MAILROOM, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
