"""Where mailroom keeps its files, and the name of every ``MAILROOM_*`` variable: decided once.

The state directory is ``$MAILROOM_STATE_DIR``, else ``<project>/.mailroom``, where the project is
the nearest directory holding ``Pulumi.yaml`` (the CLI's commands look from the mailboxes file;
commands without one, like ``audit``, from the current directory). Everything mailroom writes
locally lives under it: the audit log (unless ``$MAILROOM_AUDIT_LOG`` moves it), the local
tenant's database, drift history, saved plans and the logs of unexpected errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mailroom import providerenv

# The variables the CLI reads.
STATE_DIR_ENV = "MAILROOM_STATE_DIR"
AUDIT_LOG_ENV = providerenv.AUDIT_LOG
STACK_ENV = providerenv.STACK  # the stack when --stack is not given (required in CI, see CI_ENV)
LOCAL_TENANT_URL_ENV = "MAILROOM_LOCAL_TENANT_URL"  # use this running local tenant instead of starting one
CACHE_ENV = "MAILROOM_CACHE"  # where the Pulumi engine is built
CI_ENV = "CI"  # set by every CI service: the local stack is then never assumed
# The variables the CLI sets for the engine's processes (provider, supervisor) are declared in
# providerenv.py, which writes and reads them; MAILROOM_STACK and MAILROOM_AUDIT_LOG are among them.

PROJECT_DIR = Path(__file__).resolve().parents[2]  # mailroom's own project (Pulumi.yaml, mailboxes.yaml)
DEFAULT_FILE = "mailboxes.yaml"
LOCAL_STACK = "local"
STATE_DIR_NAME = ".mailroom"
AUDIT_LOG_NAME = "audit.jsonl"
TENANT_DB_NAME = "tenant.db"


def find_project(start: Path) -> Path | None:
    """The nearest directory from ``start`` upwards that holds ``Pulumi.yaml``."""
    start = start.resolve()
    for parent in [start, *start.parents]:
        if (parent / "Pulumi.yaml").exists():
            return parent
    return None


def project_dir(start: Path | None = None) -> Path:
    """The project of ``start`` (default: the current directory), else ``start`` itself."""
    here = Path.cwd() if start is None else start
    return find_project(here) or here


def state_dir(project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    configured = env.get(STATE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return (project if project is not None else project_dir()) / STATE_DIR_NAME


def audit_log(project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """``$MAILROOM_AUDIT_LOG`` (relative: to the current directory), else ``<state>/audit.jsonl``."""
    configured = (env.get(AUDIT_LOG_ENV) or "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return state_dir(project, env) / AUDIT_LOG_NAME


def tenant_db(project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The local tenant's SQLite database."""
    return state_dir(project, env) / TENANT_DB_NAME


def drift_state(stack: str, project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """First/last seen of each drift finding of ``stack``."""
    return state_dir(project, env) / f"drift-{stack}.json"


def log_file(project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """Where the tracebacks of unexpected errors go (never to the screen)."""
    return state_dir(project, env) / "logs" / "mailroom.log"


def ci(env: Mapping[str, str] = os.environ) -> bool:
    """True under a CI service (``CI`` set to anything but empty, ``0`` or ``false``)."""
    return (env.get(CI_ENV) or "").strip().casefold() not in ("", "0", "false", "no")
