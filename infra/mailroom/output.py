"""Everything the CLI says besides its results: logging, progress, JSON documents.

Results go to stdout (text, or exactly one JSON document with ``--json``); everything else goes
to stderr. Progress lines are for a person watching: they are printed only when stderr is a
terminal, and otherwise logged at INFO, so a CI log stays quiet unless ``-v`` asks for them.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

FORMAT_VERSION = 1  # of every --json document; bumped only when a key changes meaning or goes away

logger = logging.getLogger("mailroom")


def setup_logging(verbosity: int, stream: TextIO | None = None) -> None:
    """WARNING by default, INFO with ``-v``, DEBUG with ``-vv``; always to stderr."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    for old in list(logger.handlers):  # main() may run more than once in a process (tests)
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if level > logging.DEBUG
                                           else "%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def bar(done: int, total: int) -> None:
    """How far a bulk read is (a ``reconcile.bulk.Progress``): redrawn in place, only on a terminal."""
    if is_terminal(sys.stderr):  # a bar redrawn in place means nothing in a log
        width = 30
        filled = int(width * done / max(total, 1))
        print(f"\r  reading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} mailboxes", end="",
              file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


def progress(message: str) -> None:
    """One line of progress: shown on a terminal as it happens, else only with ``-v``."""
    if is_terminal(sys.stderr):
        print(message, file=sys.stderr, flush=True)
    else:
        logger.info(message)


def document(command: str, body: dict[str, Any]) -> str:
    """One versioned JSON document: ``format_version``, ``command``, then ``body``."""
    return json.dumps({"format_version": FORMAT_VERSION, "command": command, **body}, indent=2, default=str)


def print_document(command: str, body: dict[str, Any]) -> None:
    sys.stdout.write(document(command, body) + "\n")


def write_file(path: str, text: str) -> None:
    """A report to a file (an OSError names the file: the error handler's one-line failure)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
