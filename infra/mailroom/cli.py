"""The `mailroom` command line: a thin dispatcher over `mailroom.commands`."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from mailroom import __version__

# Order is the order `mailroom --help` lists them in.
COMMANDS = ("validate", "plan", "apply", "demo", "drift", "audit", "tenant", "engine", "unlock")

EXIT_CODES = """exit codes:
  0  success / valid / no changes / no drift
  1  error or invalid input (nothing was changed)
  2  usage error (validate); changes pending (plan); drift found (drift)
  3  refused by a guard (apply: mass removal without --allow-mass-removal)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailroom",
        description="Shared mailboxes as code for Microsoft 365.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailroom {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mailroom.commands.{name}")
        except ModuleNotFoundError as exc:  # a command whose module is not written yet
            if exc.name != f"mailroom.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    # SIGTERM (a cancelled CI job) ends a run the way Ctrl-C does; the engine's supervisor
    # (mailroom-engine) then cancels the engine and stops every process it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("mailroom: interrupted", file=sys.stderr)
        return 130
