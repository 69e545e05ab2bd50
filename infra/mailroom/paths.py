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
# The client id mailroom signs in to the local tenant with (default: its admin client); set it to one of
# `mailroom bootstrap`'s identities (mailroom-plan, mailroom-apply) to run as that identity, as CI does.
LOCAL_CLIENT_ID_ENV = "MAILROOM_LOCAL_CLIENT_ID"
CACHE_ENV = "MAILROOM_CACHE"  # where the Pulumi engine is built
CI_ENV = "CI"  # set by every CI service: the local stack is then never assumed
# Where the team's state lives (the audit log, drift history and the stack lock; the Pulumi state stays on
# PULUMI_BACKEND_URL): unset, the state directory; ``azblob://<container>[/<prefix>][?lease=SECONDS]``, Azure
# Blob Storage (see mailroom.store).
STORE_ENV = "MAILROOM_STORE"
LOCK_WAIT_ENV = "MAILROOM_LOCK_WAIT"  # seconds apply waits for a held stack lock (default 0: refuse at once)
# Azure Blob Storage, read as Pulumi's own azblob backend reads them, so one set of variables serves both:
# the account (with DefaultAzureCredential: workload identity in CI), or a connection string (Azurite, or a
# key; a secret: never printed), and the blob endpoint's domain for sovereign clouds.
AZURE_STORAGE_ACCOUNT_ENV = "AZURE_STORAGE_ACCOUNT"
AZURE_STORAGE_CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
AZURE_STORAGE_DOMAIN_ENV = "AZURE_STORAGE_DOMAIN"
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


def store_url(env: Mapping[str, str] = os.environ) -> str | None:
    """``$MAILROOM_STORE`` when it names a shared store, else None (the local state directory)."""
    return (env.get(STORE_ENV) or "").strip() or None


def audit_log(project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path | str:
    """``$MAILROOM_AUDIT_LOG`` (relative: to the current directory), else the shared store's URL when
    ``$MAILROOM_STORE`` names one (the log of each stack is in it), else ``<state>/audit.jsonl``."""
    configured = (env.get(AUDIT_LOG_ENV) or "").strip()
    if configured:
        return configured if is_store_url(configured) else Path(configured).expanduser().absolute()
    return store_url(env) or state_dir(project, env) / AUDIT_LOG_NAME


def is_store_url(location: object) -> bool:
    """Whether an audit log location is a shared store (``azblob://...``), not a local file."""
    return isinstance(location, str) and location.startswith("azblob://")


def lock_file(stack: str, project: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The local stack lock (an flock on this file) when no shared store is configured."""
    return state_dir(project, env) / "locks" / f"{stack}.lock"


def lock_wait(env: Mapping[str, str] = os.environ) -> float:
    """``$MAILROOM_LOCK_WAIT`` in seconds (default 0: refuse at once when the stack is locked)."""
    raw = (env.get(LOCK_WAIT_ENV) or "").strip()
    try:
        return max(0.0, float(raw)) if raw else 0.0
    except ValueError:
        raise ValueError(f"{LOCK_WAIT_ENV}={raw!r} is not a number of seconds") from None


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
