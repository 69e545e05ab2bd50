"""`mailroom demo`: the main job on the embedded local tenant, start to finish."""

from __future__ import annotations

import argparse
import sys

from mailroom.commands import apply as apply_cmd
from mailroom.commands import plan as plan_cmd


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="apply the shipped mailboxes.yaml to the local tenant, then plan again",
                       description="Validate mailboxes.yaml, apply it to the embedded local tenant (started on "
                                   "demand), then show that a second plan has no changes.",
                       epilog="exit codes: 0 done and the second plan is clean, 1 otherwise")
    p.add_argument("--file", default="mailboxes.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common = {"file": args.file, "stack": "local", "json": False}
    print("== mailroom apply (local tenant) ==", file=sys.stderr)
    code = apply_cmd.run(argparse.Namespace(**common, yes=True, allow_mass_removal=False))
    if code != 0:
        return 1
    print("\n== mailroom plan (should show no changes) ==", file=sys.stderr)
    code = plan_cmd.run(argparse.Namespace(**common, refresh=True, markdown=None))
    return 0 if code == 0 else 1
