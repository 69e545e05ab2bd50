"""The `mailroom` command line: one parser, one error handler, commands as plain functions.

Every parser (the sub-commands' too) is a ``Parser``, so a usage error exits with its own code,
never with one that a result uses (2: changes pending, drift found). Every command runs inside
``error_handler.run``, which maps what it raises to an exit code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from mailroom import __version__, output
from mailroom.cli import (
    adopt,
    apply,
    audit,
    bootstrap,
    demo,
    drift,
    engine,
    error_handler,
    options,
    plan,
    review,
    revoke,
    tenant,
    unlock,
    validate,
    who,
)

# Order is the order `mailroom --help` lists them in.
COMMANDS = (validate, plan, apply, demo, drift, review, who, revoke, adopt, audit, bootstrap, tenant, engine, unlock)

EXIT_CODES = f"""exit codes (every command; each command's --help says which it uses):
  {error_handler.OK:<3} success: valid, nothing to do, no changes, no drift
  {error_handler.ERROR:<3} error: invalid file, tenant or engine failure, refused mailbox, broken audit log,
      not confirmed; the message says what, if anything, was changed
  {error_handler.CHANGES:<3} a result, never an error: changes pending (plan), drift found (drift)
  {error_handler.GUARD:<3} refused by the mass-removal guard (apply, drift --remediate); nothing was changed
  {error_handler.USAGE:<3} usage error: unknown option, bad value, missing command (EX_USAGE)
  {error_handler.INTERNAL:<3} unexpected error (a bug): the traceback is in .mailroom/logs/mailroom.log
  {error_handler.INTERRUPTED:<3} interrupted (Ctrl-C, SIGTERM)
"""

USAGE_EPILOG = f"  {error_handler.USAGE:<3} usage error (unknown option, bad value)\n"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with ``error_handler.USAGE``.

    ``add_subparsers`` makes sub-parsers of the parent's class, so this holds for every command.
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(error_handler.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="mailroom",
        description="Shared mailboxes as code for Microsoft 365.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mailroom {__version__}")
    options.add_verbose(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    for command in _descendants(parser):
        options.add_verbose(command)
    return parser


def _descendants(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every sub-command's parser, at any depth (`audit verify` too), so `-v` works after any of them."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found += [child, *_descendants(child)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    output.setup_logging(args.verbose)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return error_handler.USAGE
    # SIGTERM (a cancelled CI job) ends a run the way Ctrl-C does; the engine's supervisor
    # (mailroom-engine) then cancels the engine and stops every process it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logging.getLogger("mailroom").debug("mailroom %s: %s", __version__, argv)
    return error_handler.run(args.command, lambda: func(args), argv)
