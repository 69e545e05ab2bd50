"""`mailroom unlock`: remove the lock a dead run left on a stack, saying whose it was."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailroom import paths
from mailroom.cli import options
from mailroom.engine.locks import stack_locks
from mailroom.engine.workspace import PROJECT_DIR, Engine, EngineSettings

EPILOG = """exit codes:
  0  the stack is not locked (any lock was removed)
  1  error, or the lock's holder still runs on this machine (use --force only when it is stuck)
  64 usage error

With $MAILROOM_STORE set, it first breaks the lease of mailroom's own stack lock in the store (a killed
run's lease also ends by itself within its duration, 60 s by default).

mailroom removes a lock by itself when it can prove the run that took it is gone (same machine,
no Pulumi process with its pid). This command is for the rest: a lock taken on another machine
(a CI runner that was cancelled) or a stuck process. With a Pulumi Cloud backend it cancels the
stack's current update instead (`pulumi cancel`).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("unlock", help="remove a stack lock left by a run that died",
                       description="Show and remove the lock on a stack's Pulumi state that a killed or crashed "
                                   "run left behind. Touches no tenant.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_stack(p)
    p.add_argument("--force", action="store_true", help="remove it even though its holder still runs here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stack = options.stack(args.stack)
    shared = paths.store_url()
    if shared:  # mailroom's own stack lock in the shared store: break its lease, saying whose it was
        from mailroom.store.azblob import BlobStore

        lease = BlobStore(shared).lock(stack)
        holder = lease.holder()
        try:
            lease.break_lease()
            print(f"stack {stack}: broke the lease on {shared} (stack {stack}), "
                  f"{'held by ' + holder.describe() if holder else 'no holder recorded'}")
        except Exception as exc:  # no lease, or no lock blob: nothing of mailroom's holds the stack
            if getattr(exc, "status_code", None) not in (404, 409):
                raise
    settings = EngineSettings(stack, Path(PROJECT_DIR))
    locks = stack_locks(settings.backend_url(), stack)
    if locks is None:  # not a file backend: the backend's own cancel (its failure: the error handler's)
        Engine(settings).stack.cancel()
        print(f"stack {stack}: the current update was cancelled and its lock released")
        return 0
    if not locks:
        print(f"stack {stack}: not locked")
        return 0
    running = [lock for lock in locks if lock.holder_running()]
    if running and not args.force:
        for lock in running:
            print(f"stack {stack}: locked, {lock.describe()}, and that process still runs; wait for it, or "
                  "pass --force if it is stuck", file=sys.stderr)
        return 1
    for lock in locks:
        lock.path.unlink(missing_ok=True)
        print(f"stack {stack}: removed the lock {lock.path.name}, {lock.describe()}")
    return 0
