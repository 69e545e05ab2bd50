"""`mailroom-engine`: one Pulumi CLI command, supervised so that it never outlives mailroom.

The Automation API starts the ``pulumi`` CLI as a plain child, and the CLI starts
mailroom's provider plugin, ``pulumi-resource-mailroom`` (and any other plugin), in process
groups of their own. When
mailroom is killed (``kill -9``, an OOM kill, a cancelled CI job) those processes
would go on for minutes: writing to the tenant and the audit log after the run
ended, and holding the stack's lock. mailroom therefore points the Automation API
at this small program instead of the CLI. It

- runs the real CLI (``ProviderEnv.pulumi``, ``MAILROOM_PULUMI``) in a new session, passing stdio through;
- becomes a child subreaper (Linux), so every process the engine starts stays its
  descendant even when its parent dies, and can be found and stopped;
- forwards SIGINT and SIGTERM to the engine as SIGINT: Pulumi's graceful cancel,
  which finishes the operations in flight, saves its state and releases the lock;
- watches mailroom: when its parent is gone it cancels the engine the same way,
  waits ``GRACE`` seconds, then kills the engine and every process it started;
- after the CLI exits, stops any process the engine left behind.

The plugin also watches its parent and exits as soon as the engine is gone (``plugin.py``), so
nothing waits for this sweep in the common case.

It uses the standard library only (and ``providerenv``, which does too), so it starts in a few
milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailroom.providerenv import PULUMI, ProviderEnv

GRACE = 5.0  # seconds a cancelled engine gets to finish in-flight writes and release its lock
POLL = 0.1  # seconds between checks that mailroom is still there
PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc; empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: the fields after the last ')' are safe.
        fields = stat[stat.rfind(")") + 2:].split()
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            out.append(pid)
            todo.append(pid)
    return out


def _signal(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _reap() -> None:
    """Collect exited orphans that were re-parented to us (we are their subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _stop(engine: subprocess.Popen[bytes], grace: float) -> None:
    """Graceful cancel, then kill the engine and everything below us."""
    _signal([engine.pid], signal.SIGINT)
    deadline = time.monotonic() + grace
    while engine.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL)
    _signal(descendants(os.getpid()), signal.SIGKILL)
    engine.wait()
    _reap()


def _sweep(grace: float = 1.0) -> None:
    """After the CLI is gone: plugins it did not stop get SIGTERM, then SIGKILL."""
    left = descendants(os.getpid())
    if not left:
        return
    _signal(left, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while descendants(os.getpid()) and time.monotonic() < deadline:
        _reap()
        time.sleep(POLL)
    _signal(descendants(os.getpid()), signal.SIGKILL)
    _reap()


def main(argv: list[str] | None = None) -> int:
    real = ProviderEnv.from_env().pulumi
    if not real:
        print(f"mailroom-engine: {PULUMI} is not set; this program is started by mailroom", file=sys.stderr)
        return 1
    parent = os.getppid()
    _become_subreaper()
    engine = subprocess.Popen([real, *(sys.argv[1:] if argv is None else argv)], start_new_session=True)
    cancelled = False

    def cancel(_signum: int, _frame: object) -> None:
        nonlocal cancelled
        cancelled = True

    signal.signal(signal.SIGINT, cancel)
    signal.signal(signal.SIGTERM, cancel)
    while True:
        try:
            code = engine.wait(timeout=POLL)
            break
        except subprocess.TimeoutExpired:
            pass
        if cancelled or os.getppid() != parent:
            _stop(engine, GRACE)
            code = engine.returncode if engine.returncode is not None else 1
            break
    _sweep()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
