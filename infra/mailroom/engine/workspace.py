"""The one place that decides how mailroom runs the Pulumi engine.

Stack, backend, secrets provider, PULUMI_HOME and the environment of the
engine (and so of mailroom's provider plugin) are decided here; every
command runs the real engine through the Automation API with these settings:

- the program runs inline: the Automation API serves the language runtime
  in this process, so the engine needs no language host, and the program
  declares the ``Desired`` this command validated (``program.declare``);
- the engine binary comes from ``ci/build-pulumi.sh`` (an official install of
  at least the pinned version on PATH, or the build from Go modules cached
  outside the clone);
- no update check, ``PULUMI_HOME`` in the cache, and no plugin downloads: the
  resources are served by ``pulumi-resource-mailroom`` (``plugin.py``), which the
  engine finds on its PATH, beside this Python;
- the engine runs up to ``PARALLEL`` resource operations at once, and writes the stack's state once,
  when the operation ends, not after every resource (``SKIP_CHECKPOINTS``, see there);
- the file backend under ``.mailroom/state/`` unless ``PULUMI_BACKEND_URL``
  names another backend;
- the passphrase secrets provider; its passphrase comes from
  ``PULUMI_CONFIG_PASSPHRASE``; only the embedded ``local`` stack falls back to
  the documented fixed value ``LOCAL_PASSPHRASE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from mailroom import paths
from mailroom.engine.locks import clear_dead
from mailroom.engine.tokens import PLUGIN
from mailroom.errors import ConfigError
from mailroom.providerenv import ProviderEnv

PROJECT_DIR = paths.PROJECT_DIR
PROJECT_NAME = "mailroom"  # Pulumi.yaml `name:`; part of every URN in state
LOCAL_STACK = "local"
LOCAL_PASSPHRASE = "mailroom-local-stack"  # only for the embedded local tenant; documented in README
# Resource operations the engine runs at once (its default is 4 x CPUs: 8 here). mailroom's plugin serves
# every call it gets at once, on one tenant client whose pacer keeps to the service's rate, so the
# engine must not be what bounds a run of many mailboxes.
PARALLEL = 64
# The file backend rewrites the whole state (every mailbox) before and after each resource step: 2N+1 writes
# of up to N resources for a first apply of N mailboxes, O(N^2) bytes, and each step waits for its write
# (bench/provider.py, N = 1,000 at 300 ms a call: 2,001 writes of up to 3.7 MB made a change to every mailbox
# take 357 s instead of 125 s; on a remote backend each write is an upload). The v3.276 engine's snapshot
# journaling would make that O(N), but only the Pulumi Cloud backend journals. So the engine keeps the state
# in memory and writes it once, when the operation ends, also when it fails or is cancelled
# (PULUMI_SKIP_CHECKPOINTS).
# What a crash (kill -9 of the engine, power loss) mid-apply loses is that run's record, never the tenant's
# truth, and the next apply converges with no duplicate: a mailbox created then and missing from state is
# created again, and create adopts the shared mailbox that has the address; every grant and setting is
# compared with the live mailbox before anything is written (a grant already there is not added again, one
# already gone is not removed again); a release from management only touches state and is recorded
# again. mailroom-engine cancels a killed mailroom's engine gracefully first, and a cancelled engine does
# write its state. PULUMI_SKIP_CHECKPOINTS=false in the environment brings the checkpoints back.
SKIP_CHECKPOINTS = "true"
EventCallback = Callable[[Any], None]
Program = Callable[[], Any]  # the inline program: returns nothing or an awaitable the runtime awaits


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get(paths.CACHE_ENV) or os.path.join(env.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                                       "mailroom")
    return Path(base)


def state_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """Where mailroom keeps local state: ``paths.state_dir`` (one answer for every command)."""
    return paths.state_dir(project_dir)


def private_dir(path: Path) -> Path:
    """``path`` as an owner-only directory (0700), created or tightened whatever the umask.

    The state directory holds the engine's state, the audit log, drift history, saved plans and the
    local tenant's database with its token-signing key: nobody else on the machine may read them.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def python_for_plugins() -> dict[str, str]:
    """How the Python dynamic-provider plugin finds the Python that has mailroom installed: this one.

    mailroom's resources are served by its own plugin (``provider_plugin``); the dynamic provider is
    started only for a stack whose state still names it (made before the plugin existed), to read or
    release those resources while the stack moves over.

    The engine starts ``pulumi-resource-pulumi-python`` (a shell script from the SDK), which runs
    ``$PULUMI_RUNTIME_VIRTUALENV/bin/python -m pulumi.dynamic`` when that variable names a virtualenv,
    else ``${PULUMI_PYTHON_CMD:-python3}``. Both point at the interpreter running mailroom, by absolute
    path: the plugin's working directory no longer matters (no ``infra/.venv`` link), and a
    ``PULUMI_RUNTIME_VIRTUALENV`` of the caller's own is never used by mistake. Pulumi.yaml sets no
    ``virtualenv`` option, which the engine would pass to the plugin instead.
    """
    in_venv = sys.prefix != sys.base_prefix
    return {"PULUMI_RUNTIME_VIRTUALENV": sys.prefix if in_venv else "", "PULUMI_PYTHON_CMD": sys.executable}


def provider_plugin() -> Path:
    """``pulumi-resource-mailroom`` (mailroom.engine.plugin), installed beside this Python.

    The engine finds it as an *ambient* plugin: the first ``pulumi-resource-mailroom`` on its PATH, which
    ``EngineSettings.environment`` starts with this directory. Nothing is installed into PULUMI_HOME
    and nothing is downloaded; the plugin always runs the mailroom that runs the command.
    """
    path = Path(sys.executable).parent / PLUGIN
    if not path.exists():
        raise ConfigError(f"{path} is missing: reinstall mailroom (`make setup`)")
    return path


def supervisor() -> Path:
    """The ``mailroom-engine`` entry point installed beside this Python (see mailroom.engine.supervise)."""
    path = Path(sys.executable).parent / "mailroom-engine"
    if not path.exists():
        raise ConfigError(f"{path} is missing: reinstall mailroom (`make setup`)")
    return path


@cache
def pulumi_bin_dir() -> Path:
    """Directory holding ``pulumi`` and the dynamic-provider script; builds them on first use."""
    script = PROJECT_DIR / "ci" / "build-pulumi.sh"
    proc = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ConfigError("no Pulumi engine available (see the messages above); install Pulumi from "
                          "https://www.pulumi.com/docs/install/ and put it on PATH, or run `make setup`")
    return Path(lines[-1])


@dataclass
class EngineSettings:
    stack: str
    project_dir: Path = PROJECT_DIR
    env: dict[str, str] = field(default_factory=dict)  # extra variables for the engine and providers

    def backend_url(self) -> str:
        return os.environ.get("PULUMI_BACKEND_URL") or (state_dir(self.project_dir) / "state").as_uri()

    def passphrase(self) -> str:
        value = os.environ.get("PULUMI_CONFIG_PASSPHRASE")
        if value is not None:
            return value
        if self.stack == LOCAL_STACK:
            return LOCAL_PASSPHRASE
        raise ConfigError(f"stack {self.stack!r} needs PULUMI_CONFIG_PASSPHRASE (its secrets provider is passphrase)")

    def environment(self) -> dict[str, str]:
        bin_dir = pulumi_bin_dir()
        home = cache_dir() / "pulumi-home"
        home.mkdir(parents=True, exist_ok=True)
        private_dir(state_dir(self.project_dir))
        if self.backend_url().startswith("file://"):
            private_dir(state_dir(self.project_dir) / "state")
        plugin_dir = str(provider_plugin().parent)  # this Python's bin: mailroom's plugin and entry points
        return {
            "PATH": os.pathsep.join([plugin_dir, str(bin_dir), os.environ.get("PATH", "")]),
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "false",  # the plugin is found on PATH, whatever the caller set
            **python_for_plugins(),
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": self.backend_url(),
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase(),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
            "PULUMI_SKIP_CHECKPOINTS": os.environ.get("PULUMI_SKIP_CHECKPOINTS", SKIP_CHECKPOINTS),
            **self.env,
        }


class Engine:
    """preview / up / refresh-preview / destroy of one stack, with engine events passed to a callback.

    ``program``: the Pulumi program, run inline in this process (``lambda: program.declare(desired)``).
    Without one the stack can only be managed (cancel, export): there is no program on disk to run.
    """

    def __init__(self, settings: EngineSettings, program: Program | None = None, work_dir: Path | None = None) -> None:
        from pulumi import automation as auto

        self.settings = settings
        env = settings.environment()
        for lock in clear_dead(env["PULUMI_BACKEND_URL"], settings.stack):
            print(f"mailroom: removed the lock of stack {settings.stack} left by a run that is gone "
                  f"({lock.describe()})", file=sys.stderr, flush=True)
        bin_dir = pulumi_bin_dir()
        command = auto.PulumiCommand(root=str(bin_dir.parent), skip_version_check=True)
        # Every CLI command runs under mailroom's supervisor, so the engine never outlives mailroom.
        env.update(ProviderEnv(pulumi=command.command).to_env())
        command.command = str(supervisor())
        # The workspace is the project directory: Pulumi.yaml (project name `mailroom`, so the URNs of existing
        # state are unchanged) and Pulumi.<stack>.yaml (a real tenant's settings, the secrets salt) stay where
        # they are. No project_settings are passed: the SDK would rewrite Pulumi.yaml in the source tree.
        cwd = str(work_dir or settings.project_dir)
        opts = auto.LocalWorkspaceOptions(work_dir=cwd, env_vars=env, pulumi_home=env["PULUMI_HOME"],
                                          secrets_provider="passphrase", pulumi_command=command)
        self._state: dict[str, Any] | None = None  # the last export, until this engine changes the state
        if program is None:
            self.stack = auto.create_or_select_stack(settings.stack, work_dir=cwd, opts=opts)
        else:
            self.stack = auto.create_or_select_stack(settings.stack, project_name=PROJECT_NAME, program=program,
                                                     opts=opts)

    def preview(self, on_event: EventCallback | None = None, *, refresh: bool = False) -> Any:
        return self.stack.preview(on_event=on_event, refresh=refresh, diff=False, color="never", parallel=PARALLEL)

    def up(self, on_event: EventCallback | None = None, *, refresh: bool = False,
           targets: list[str] | None = None, program: Program | None = None,
           env: Mapping[str, str] | None = None) -> Any:
        """``targets``: only these URNs (a plan's mailboxes); every other resource is left as it is.
        ``program``: the program of this update (default: the engine's); ``env``: more variables for this
        update's engine and provider (the approved plan and live state of an apply).

        The program must then declare only resources it targets: the engine refuses an untargeted resource
        whose provider changed ("a change of providers mixed with --target"), which every mailbox of a stack
        made by the Python dynamic provider is until an update moves it to mailroom's plugin.
        """
        workspace = self.stack.workspace
        base = dict(workspace.env_vars)
        workspace.env_vars = {**base, **(env or {})}
        summary: list[Any] = []

        def events(event: Any) -> None:
            if getattr(event, "summary_event", None) is not None:
                summary.append(event.summary_event)
            if on_event is not None:
                on_event(event)

        self._state = None
        try:
            with _without_result_reads(self.stack, summary):
                return self.stack.up(on_event=events, refresh=refresh, target=targets, program=program,
                                     color="never", parallel=PARALLEL)
        finally:
            workspace.env_vars = base

    def refresh_preview(self, on_event: EventCallback | None = None) -> Any:
        return self.stack.preview_refresh(on_event=on_event, color="never", parallel=PARALLEL)

    def destroy(self, on_event: EventCallback | None = None) -> Any:
        self._state = None
        return self.stack.destroy(on_event=on_event, color="never", parallel=PARALLEL)

    def export(self) -> dict[str, Any]:
        self._state = dict(self.stack.export_stack().deployment or {})
        return self._state

    def state(self) -> dict[str, Any]:
        """The stack's state: this engine's last export if it has changed nothing since (the run holds the
        stack lock, so nothing else has either), else a new export."""
        return self._state if self._state is not None else self.export()

    def import_state(self, deployment: dict[str, Any]) -> None:
        """Replace the stack's state with ``deployment`` (``pulumi stack import``: the engine checks its
        integrity first and keeps the state it replaces as a backup)."""
        # Not Stack.import_stack: it writes the file indented, through json's pure-Python encoder (1 s of
        # the 1,000-mailbox adoption, bench/reconcile.py). The file is the user's only (mkstemp: 0600).
        self._state = None
        workspace = self.stack.workspace
        fd, name = tempfile.mkstemp(prefix="mailroom-state-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"version": 3, "deployment": deployment}))
            env = {**({"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}), **workspace.env_vars}
            workspace.pulumi_command.run(["stack", "import", "--file", name, "--stack", self.stack.name],
                                         workspace.work_dir, env)
        finally:
            os.unlink(name)


@contextmanager
def _without_result_reads(stack: Any, summary: list[Any]) -> Iterator[None]:
    """``stack.up`` without the two engine runs the Automation API makes after the update.

    ``Stack.up`` runs ``pulumi stack output`` and ``pulumi stack history`` once the update is done, for
    its result's outputs and summary: two more engine processes that each load and decrypt the whole
    state (1.5 s at 1,000 mailboxes, bench/reconcile.py). mailroom reads neither: the engine's events
    say what happened. So, for the update only, the stack's ``outputs`` and ``info`` answer from those
    events: no outputs, and the summary the engine's summary event gave (``up`` returns only when the
    update succeeded; a failure raises before either is asked).
    """
    from pulumi.automation import UpdateSummary

    started = datetime.now(timezone.utc)

    def info(*_args: Any, **_kwargs: Any) -> UpdateSummary:
        changes = dict(summary[-1].resource_changes) if summary else {}
        return UpdateSummary(kind="update", start_time=started, message="", environment={}, config={},
                             result="succeeded", end_time=datetime.now(timezone.utc), resource_changes=changes)

    stack.outputs, stack.info = (lambda: {}), info  # instance attributes: they shadow the methods
    try:
        yield
    finally:
        del stack.outputs, stack.info
