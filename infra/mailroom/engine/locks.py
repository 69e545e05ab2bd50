"""The stack's lock in a file backend: who holds it, whether they still run, and clearing a dead one.

Pulumi's file ("diy") backend locks a stack with one JSON file per holder under
``.pulumi/locks/<org>/<project>/<stack>/`` holding the CLI's pid, user, host and
start time. A run killed before it could unlock leaves that file behind, and every
later update fails with "the stack is currently locked". mailroom clears such a lock
itself when it can prove the holder is gone (same host, no Pulumi process with that
pid); anything else it leaves to ``mailroom unlock``, which says what it removes.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass(frozen=True)
class StackLock:
    path: Path
    pid: int
    username: str
    hostname: str
    timestamp: str

    def describe(self) -> str:
        return f"held by {self.username}@{self.hostname} (pid {self.pid}) since {self.timestamp}"

    def holder_running(self) -> bool | None:
        """True: the holder still runs; False: it is gone; None: another machine's, so unknown."""
        if self.hostname != socket.gethostname():
            return None
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return False
        except OSError:  # no /proc: ask the kernel whether the pid exists at all
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        # A reused pid that is not a Pulumi CLI does not hold the lock.
        return b"pulumi" in cmdline


def lock_files(backend_url: str, stack: str) -> list[Path] | None:
    """The lock files of ``stack`` in a ``file://`` backend; None for other backends."""
    url = urlparse(backend_url)
    if url.scheme != "file":
        return None
    root = Path(unquote(url.path)) / ".pulumi" / "locks"
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.json") if p.parent.name == stack)


def read_lock(path: Path) -> StackLock:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return StackLock(path, int(data.get("pid") or 0), str(data.get("username") or "?"),
                     str(data.get("hostname") or "?"), str(data.get("timestamp") or "?"))


def stack_locks(backend_url: str, stack: str) -> list[StackLock] | None:
    files = lock_files(backend_url, stack)
    return None if files is None else [read_lock(p) for p in files]


def clear_dead(backend_url: str, stack: str) -> list[StackLock]:
    """Remove the locks whose holder is provably gone; returns them (for the message)."""
    cleared = []
    for lock in stack_locks(backend_url, stack) or []:
        if lock.holder_running() is False:
            lock.path.unlink(missing_ok=True)
            cleared.append(lock)
    return cleared


def explain(backend_url: str, stack: str) -> str:
    """What to tell someone whose update found the stack locked."""
    held = [lock.describe() for lock in stack_locks(backend_url, stack) or []]
    who = "; ".join(held) if held else "by another update"
    return (f"stack {stack} is locked, {who}. If that run is still going, wait for it; if it is gone "
            f"(a cancelled CI job on another machine), run `mailroom unlock --stack {stack}`.")
