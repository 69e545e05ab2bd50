"""One place that turns what a command raised into a message and an exit code (pre-commit's model).

A known failure (a ``FatalError`` the CLI raises, a tenant error, a broken audit log, a file that
cannot be read, a failed engine run) is one clear line on stderr and exit 1. Anything else is a
bug: a short message names the log file, the traceback goes into that file (never on the screen,
where it could also spill tenant data into a CI log), and the exit code is its own.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mailroom import output, paths
from mailroom.core.textsafe import printable

# The exit codes of every command; cli.EXIT_CODES documents them.
OK = 0
ERROR = 1
CHANGES = 2  # plan: changes pending; drift: drift found. Only ever a result, never an error.
GUARD = 3  # apply, drift --remediate: refused by the mass-removal guard
STALE = 4  # apply PLAN: the saved plan no longer holds (file, stack or live state moved); nothing changed
USAGE = 64  # EX_USAGE (sysexits.h): unknown option, bad value, missing command
INTERNAL = 70  # EX_SOFTWARE: a bug; the traceback is in the log file
INTERRUPTED = 130  # 128 + SIGINT


class FatalError(Exception):
    """A refusal or failure the command explains in one line; exit 1."""


class UsageError(Exception):
    """Arguments argparse accepted but that do not make sense together; exit ``USAGE``."""


def invalid(command: str, file: str, exc: Any, as_json: bool, nothing: str,
            document: dict[str, Any] | None = None) -> int:
    """A file that does not validate, as every command reports it: the findings are the command's result
    (stdout: as text, or the --json document ``{"valid": false, "findings": [...]}`` plus ``document``), one
    line on stderr says what was not done, and the exit code is ``ERROR``. ``exc``: ``engine.runner.Invalid``."""
    findings = exc.result.findings
    if as_json:
        output.print_document(command, {"valid": False, **(document or {}),
                                        "findings": [f.to_dict() for f in findings]})
    else:
        sys.stdout.write(str(exc))
    print(f"{printable(file)}: invalid; nothing was {nothing}", file=sys.stderr)
    return ERROR


def _known(exc: BaseException) -> str | None:
    """The one-line message of an error mailroom knows, else None (a bug)."""
    from mailroom.errors import TenantError  # light modules; imported here to keep `--help` fast

    if isinstance(exc, (FatalError, TenantError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:  # a file that cannot be read or written
        return f"{exc.filename}: {exc.strerror or exc}"
    if "mailroom.audit.log" in sys.modules and isinstance(exc, sys.modules["mailroom.audit.log"].AuditError):
        return str(exc)
    if "mailroom.file.source" in sys.modules and isinstance(exc, sys.modules["mailroom.file.source"].SourceError):
        return str(exc)
    # The engine failed (its provider reported a tenant error, the stack is locked ...). Only a run
    # that imported the engine can raise this, so the import is never paid for otherwise.
    if "pulumi.automation" in sys.modules:
        from pulumi.automation.errors import CommandError

        if isinstance(exc, CommandError):
            lines = [ln.strip() for ln in str(exc).splitlines() if "error" in ln.lower() and ln.strip()]
            return "the engine reported a failure: " + (" | ".join(lines[-3:]) or "see above")
    return None


def write_log(exc: BaseException, argv: Sequence[str], log: Path) -> None:
    from mailroom import __version__

    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Owner-only: a traceback can hold tenant values and local paths.
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(f"=== {datetime.now(timezone.utc).isoformat(timespec='seconds')} mailroom {__version__} "
                 f"(Python {sys.version.split()[0]}, {sys.platform})\n")
        fh.write(f"argv: {list(argv)!r}\n")
        fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        fh.write("\n")


def run(command: str, func: Callable[[], int], argv: Sequence[str]) -> int:
    """Run ``func`` and map what it raises to an exit code."""
    try:
        return int(func())
    except KeyboardInterrupt:
        print("mailroom: interrupted", file=sys.stderr)
        return INTERRUPTED
    except UsageError as exc:
        print(f"mailroom {command}: error: {printable(str(exc))}", file=sys.stderr)
        return USAGE
    except Exception as exc:
        message = _known(exc)
        if message is not None:
            print(f"mailroom {command}: {printable(message)}", file=sys.stderr)
            return ERROR
        log = paths.log_file()
        try:
            write_log(exc, argv, log)
        except OSError as log_error:  # the traceback must not be lost: the screen is the last resort
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            print(f"mailroom {command}: unexpected error {type(exc).__name__} (could not write {log}: "
                  f"{log_error.strerror or log_error})", file=sys.stderr)
            return INTERNAL
        print(f"mailroom {command}: unexpected error {type(exc).__name__}: {printable(str(exc))[:200]}\n"
              f"  This is a bug in mailroom. The details are in {log}; please include that file when you "
              "report it.", file=sys.stderr)
        return INTERNAL
