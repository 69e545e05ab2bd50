"""The options several commands share: one definition each, so a flag means the same everywhere.

``--file``, ``--stack``, ``--json``, ``--markdown FILE``, ``--html FILE``, ``-v/--verbose``.
"""

from __future__ import annotations

import argparse
import os

from mailroom import paths
from mailroom.cli.error_handler import FatalError


def add_verbose(p: argparse.ArgumentParser, *, top: bool = False) -> None:
    # On a sub-command, SUPPRESS keeps `mailroom -v plan` from being reset to 0 by the sub-parser.
    p.add_argument("-v", "--verbose", action="count", default=0 if top else argparse.SUPPRESS,
                   help="say more on stderr: -v progress and steps (INFO), -vv debugging detail (DEBUG)")


def add_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--file", default=paths.DEFAULT_FILE, metavar="FILE",
                   help=f"the mailboxes file (default: {paths.DEFAULT_FILE})")


def add_stack(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", metavar="STACK",
                   help=f"Pulumi stack (default: ${paths.STACK_ENV}, else `{paths.LOCAL_STACK}`, the embedded "
                        f"local tenant; others name a real tenant in Pulumi.<stack>.yaml). With ${paths.CI_ENV} "
                        "set, the stack must be named: the local stack is never assumed in CI")


def add_json(p: argparse._ActionsContainer, what: str = "the result") -> None:
    p.add_argument("--json", action="store_true",
                   help=f"print {what} as exactly one JSON document on stdout (format_version 1) and nothing "
                        "else")


def add_json_or_file(p: argparse.ArgumentParser, what: str) -> None:
    """``--json`` as everywhere; an optional FILE writes the document there instead (a report's other formats)."""
    p.add_argument("--json", nargs="?", const="-", metavar="FILE",
                   help=f"print {what} as exactly one JSON document on stdout (format_version 1) and nothing "
                        "else; with FILE, write it there instead")


def add_markdown(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--markdown", metavar="FILE", help=f"also write {what} as Markdown to FILE")


def add_html(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--html", metavar="FILE", help=f"also write {what} as one self-contained HTML page to FILE")


def add_common(p: argparse.ArgumentParser) -> None:
    """``--file`` and ``--stack``: what every command that reaches a tenant takes."""
    add_file(p)
    add_stack(p)


def named_stack(named: str | None) -> str | None:
    """``--stack``, else ``$MAILROOM_STACK``, else None: the stack the user named, if any."""
    return named or os.environ.get(paths.STACK_ENV, "").strip() or None


def stack(named: str | None) -> str:
    """The stack to use: ``--stack``, else ``$MAILROOM_STACK``, else local (outside CI only).

    In CI a forgotten ``--stack`` must not quietly run against the local tenant and report
    success, so it is refused before anything is read or started.
    """
    chosen = named_stack(named)
    if chosen:
        return chosen
    if paths.ci():
        raise FatalError(f"{paths.CI_ENV} is set and no stack is named: pass --stack STACK or set "
                         f"{paths.STACK_ENV} (the local stack is never assumed in CI). Nothing was done.")
    return paths.LOCAL_STACK
