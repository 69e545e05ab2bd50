"""`mailroom demo`: the main job on the embedded local tenant, start to finish."""

from __future__ import annotations

import argparse
import sys

from mailroom import paths
from mailroom.cli import apply as apply_cmd
from mailroom.cli import options
from mailroom.cli import plan as plan_cmd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="apply the shipped mailboxes.yaml to the local tenant, then plan again",
                       description="Validate mailboxes.yaml, apply it to the embedded local tenant (started on "
                                   "demand), then show that a second plan has no changes. Always the local "
                                   "stack, also in CI.",
                       epilog="exit codes: 0 done and the second plan is clean, 1 otherwise, 64 usage error")
    options.add_file(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The demo is the local tenant by definition: the stack is named here, so CI runs it too.
    print("== mailroom apply (local tenant) ==", file=sys.stderr)
    if apply_cmd.apply_file(args.file, paths.LOCAL_STACK, yes=True) != 0:
        return 1
    print("\n== mailroom plan (should show no changes) ==", file=sys.stderr)
    return 0 if plan_cmd.plan(args.file, paths.LOCAL_STACK, refresh=True) == 0 else 1
