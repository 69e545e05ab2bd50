"""One lock per stack, held by apply and drift --remediate: a blob lease in the shared store, else an
flock on a file in the state directory (released by the kernel when its process dies)."""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from mailroom import paths
from mailroom.store.azblob import BlobStore, Holder, StackLocked

__all__ = ["Holder", "StackLocked", "stack_lock"]


def holder(run_id: str, command: str) -> Holder:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        user = "unknown"
    return Holder(user, socket.gethostname(), run_id, command,
                  datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _waiting(stack: str) -> Callable[[Holder | None], None]:
    def say(current: Holder | None) -> None:
        who = current.describe() if current else "another run"
        print(f"mailroom: waiting for the lock of stack {stack}, held by {who}", file=sys.stderr, flush=True)
    return say


@contextmanager
def stack_lock(stack: str, run_id: str, command: str, project: Path | None = None) -> Iterator[None]:
    """Hold the stack's lock for the block; StackLocked (naming the holder) once $MAILROOM_LOCK_WAIT is over."""
    me = holder(run_id, command)
    wait = paths.lock_wait()
    shared = paths.store_url()
    if shared:
        with BlobStore(shared).lock(stack).hold(me, wait, _waiting(stack)):
            yield
        return
    with _file_lock(paths.lock_file(stack, project), stack, me, wait):
        yield


@contextmanager
def _file_lock(path: Path, stack: str, me: Holder, wait: float) -> Iterator[None]:
    import fcntl  # POSIX only, as the audit log's lock

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    current: Holder | None = Holder(**json.loads(os.pread(fd, 4096, 0) or b"{}"))
                except (ValueError, TypeError):
                    current = None
                if time.monotonic() >= deadline:
                    raise StackLocked(stack, current) from None
                if not announced:
                    _waiting(stack)(current)
                    announced = True
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(me)).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
