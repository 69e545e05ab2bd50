"""Shared pytest fixtures.

``local_tenant`` runs the local tenant emulator (``python -m localtenant serve``) as a real
HTTP server in a subprocess on a free loopback port, with a fresh SQLite state seeded with
the shipped Contoso directory (``infra/localtenant/data/directory.yaml``), and stops it after
the test. It yields a :class:`LocalTenant`::

    def test_example(local_tenant):
        resp = local_tenant.exchange("Get-Mailbox", Identity="alice@contoso.com")
        assert resp.json()["value"][0]["RecipientTypeDetails"] == "UserMailbox"
        token = local_tenant.token("https://graph.microsoft.com/.default")
        users = httpx.get(f"{local_tenant.base_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
        assert local_tenant.metrics()["cmdlets"]["Get-Mailbox"] == 1

Stable API (other test suites rely on it): ``base_url``, ``tenant_id``, ``initial_domain``,
``state_path``, ``exchange_url``, ``token(scope, client_id="mailroom-tests", username=None)``,
``exchange(cmdlet, **params)``, ``graph(method, path, **httpx_kwargs)``, ``metrics()``,
``reset_metrics()``, ``set_profile(dict)``, ``restart()`` (same state and port), ``stop()``.
``local_tenant_factory(*extra_serve_args)`` starts more emulators (e.g. ``--skiptoken-ttl 1``).
The emulator is never imported here: these tests talk to it over HTTP only, as mailroom does.
(``tests/unit/`` runs the emulator's app in process instead, through ``httpx.ASGITransport``.)

The ``e2e`` marker: every test that starts a process (the emulator server, the Pulumi engine,
Chromium, the mailroom CLI or Python as a subprocess) is marked ``e2e`` here, at collection:
by the fixtures it uses (``E2E_FIXTURES``) or by name (``E2E_TESTS``). ``pytest -m "not e2e"``
(``make unit``) runs the rest in seconds. A test that is not marked and starts a process anyway
fails, naming what it started (``_no_processes``): add it to ``E2E_TESTS`` (or mark it
``@pytest.mark.e2e``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIRECTORY = ROOT / "infra" / "localtenant" / "data" / "directory.yaml"
EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
START_TIMEOUT = 20.0


class LocalTenant:
    """A running emulator process and convenience clients for it."""

    def __init__(self, workdir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.state_path = workdir / "tenant.db"
        self.extra_args = extra_args
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.http: httpx.Client | None = None
        self.tenant_id = ""
        self.initial_domain = ""
        self._tokens: dict[tuple[str, str, str | None], str] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def exchange_url(self) -> str:
        return f"{self.base_url}/adminapi/beta/{self.tenant_id}/InvokeCommand"

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        port_file = self.workdir / "port"
        port_file.unlink(missing_ok=True)
        log = (self.workdir / "server.log").open("ab")
        cmd = [sys.executable, "-m", "localtenant", "serve", "--state", str(self.state_path),
               "--host", "127.0.0.1", "--port", str(self.port), "--port-file", str(port_file),
               "--seed-directory", str(DIRECTORY), *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local tenant did not start:\n{self.log()}")
            time.sleep(0.02)
        self.port = int(port_file.read_text().strip())
        self.http = httpx.Client(base_url=self.base_url, timeout=30.0)
        while True:
            try:
                health = self.http.get("/_emulator/health")
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local tenant not healthy:\n{self.log()}")
            time.sleep(0.02)
        info = health.json()
        self.tenant_id, self.initial_domain = info["tenant_id"], info["initial_domain"]
        # Tests read the audit log right after changing the tenant: no ingestion delay, instant queries,
        # unless a test sets them (the emulator's own default delay is small but not zero).
        self.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same state file and port; tokens stay valid."""
        self.stop()
        self.start()

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------ clients

    def _client(self) -> httpx.Client:
        if self.http is None:
            raise RuntimeError("the local tenant is not running")
        return self.http

    def token(self, scope: str, client_id: str = "mailroom-tests", username: str | None = None) -> str:
        """An access token from the emulator's token endpoint: client credentials, or the
        password grant for ``username`` (a delegated token acting as that seeded user)."""
        key = (scope, client_id, username)
        if key not in self._tokens:
            form = {"client_id": client_id, "scope": scope}
            if username:
                form.update(grant_type="password", username=username, password="emulator")
            else:
                form.update(grant_type="client_credentials", client_secret="emulator")
            resp = self._client().post(f"/{self.tenant_id}/oauth2/v2.0/token", data=form)
            resp.raise_for_status()
            self._tokens[key] = resp.json()["access_token"]
        return self._tokens[key]

    def exchange(self, cmdlet: str, *, client_id: str = "mailroom-tests", username: str | None = None,
                 headers: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        """POST one ``InvokeCommand`` with ``params`` as ``CmdletInput.Parameters``."""
        token = self.token(EXCHANGE_SCOPE, client_id, username)
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}
        return self._client().post(self.exchange_url, json=body,
                                   headers={"Authorization": f"Bearer {token}", **(headers or {})})

    def graph(self, method: str, path: str, *, client_id: str = "mailroom-tests", username: str | None = None,
              **kwargs: Any) -> httpx.Response:
        """A Graph v1.0 request; ``path`` is relative to ``/v1.0`` (e.g. ``/users``)."""
        token = self.token(GRAPH_SCOPE, client_id, username)
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return self._client().request(method, f"/v1.0{path}", headers=headers, **kwargs)

    def metrics(self) -> dict[str, Any]:
        resp = self._client().get("/_emulator/metrics")
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def reset_metrics(self) -> None:
        self._client().post("/_emulator/metrics/reset").raise_for_status()

    def audit_settings(self, **values: Any) -> dict[str, Any]:
        """The unified audit log's settings (``PUT /_emulator/auditlog``): ingestion delay, query timing, limits."""
        resp = self._client().put("/_emulator/auditlog", json=values)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def admin_audit(self, object_id: str | None = None, **filters: Any) -> list[dict[str, Any]]:
        """ExchangeAdmin records of the unified audit log, oldest first, through the Graph audit log query API
        (``object_id``: a recipient, matched as the records name it: its Name)."""
        body: dict[str, Any] = {"filterStartDateTime": "2000-01-01T00:00:00Z",
                                "filterEndDateTime": "2100-01-01T00:00:00Z", "recordTypeFilters": ["exchangeAdmin"],
                                **filters}
        if object_id is not None:
            found = self.exchange("Get-Recipient", Identity=object_id)
            body["objectIdFilters"] = [found.json()["value"][0]["Name"] if found.status_code == 200 else object_id]
        query = self.graph("POST", "/security/auditLog/queries", json=body)
        assert query.status_code == 201, query.text
        path = f"/security/auditLog/queries/{query.json()['id']}"
        while self.graph("GET", path).json()["status"] != "succeeded":
            time.sleep(0.02)
        out: list[dict[str, Any]] = []
        url: str = f"/v1.0{path}/records"
        while url:
            page = self.graph("GET", url.split("/v1.0", 1)[1]).json()
            out += page["value"]
            url = page.get("@odata.nextLink", "")
        return out

    def set_profile(self, profile: dict[str, Any]) -> dict[str, Any]:
        """Replace the fault profile at run time (``{}`` removes all faults)."""
        resp = self._client().put("/_emulator/profile", json=profile)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result


@pytest.fixture
def local_tenant_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., LocalTenant]]:
    """Start emulators with extra ``serve`` arguments; all are stopped at teardown."""
    started: list[LocalTenant] = []

    def start(*extra_args: str) -> LocalTenant:
        tenant = LocalTenant(tmp_path_factory.mktemp("local-tenant"), tuple(extra_args))
        started.append(tenant)
        tenant.start()
        return tenant

    yield start
    for tenant in started:
        tenant.stop()


@pytest.fixture
def local_tenant(local_tenant_factory: Callable[..., LocalTenant]) -> LocalTenant:
    """A fresh emulator seeded with the shipped directory (function-scoped)."""
    return local_tenant_factory()


# ------------------------------------------------------------------ the e2e marker

# Fixtures that start the emulator server: every test using one (directly or through another
# fixture, such as a Project) is e2e.
E2E_FIXTURES = frozenset({"local_tenant", "local_tenant_factory"})
# Tests that start a process some other way, per file ("*": every test of the file), with what they start.
E2E_TESTS: dict[str, frozenset[str] | str] = {
    "tests/test_kill.py": "*",  # the mailroom CLI as a subprocess
    "tests/test_report.py": "*",  # Chromium
    "tests/test_engine.py": frozenset({"test_engine_is_at_least_the_pinned_sdk",  # the Pulumi engine
                                       "test_engine_lifecycle"}),
    "tests/test_audit.py": frozenset({  # writer processes (multiprocessing)
        "test_concurrent_processes_and_threads_never_lose_or_interleave_lines"}),
    "tests/test_cli_contract.py": frozenset({"test_help_runs_without_fcntl"}),  # python -c
    "tests/test_hostile.py": frozenset({"test_the_child_guard_catches_a_socket_and_a_process",  # python -c
                                        "test_hostile_files_as_subprocesses"}),
    "tests/test_plugin.py": "*",  # the provider plugin and the engine
    "tests/localtenant/test_cli.py": "*",  # python -m localtenant / mailroom tenant
    "tests/localtenant/test_permissions.py": "*",  # python -m localtenant serve / seed
    "tests/localtenant/test_fault_settings.py": "*",  # python -m localtenant serve
    "tests/localtenant/test_malformed.py": frozenset({  # its module-scoped emulator (fixture ``tenant``)
        "test_malformed_request_gets_the_service_envelope",
        "test_no_malformed_request_answered_500_and_the_tenant_still_works",
        "test_oversize_header_block_is_refused_by_the_http_layer"}),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts a process (the emulator server, the Pulumi engine, Chromium, "
                                       "a CLI subprocess); `pytest -m \"not e2e\"` runs the rest in seconds")


def starts_a_process(item: pytest.Item) -> bool:
    """Whether ``item`` is e2e by the tables above."""
    if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    try:
        path = item.path.relative_to(ROOT).as_posix()
    except ValueError:  # a test file outside this tree
        return False
    names = E2E_TESTS.get(path, frozenset())
    return names == "*" or getattr(item, "originalname", item.name) in names


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if starts_a_process(item):
            item.add_marker(pytest.mark.e2e)


class ProcessNotAllowed(RuntimeError):
    """A test that is not marked e2e tried to start a process."""


HOW = "add it to E2E_TESTS in tests/conftest.py, or mark it @pytest.mark.e2e"


def _posix_spawner() -> Any:
    """``_posixsubprocess``, which multiprocessing starts its processes with (POSIX only)."""
    try:
        import _posixsubprocess
    except ImportError:  # pragma: no cover
        return None
    return _posixsubprocess


@contextlib.contextmanager
def _no_processes(item: pytest.Item) -> Iterator[None]:
    """Refuse (and report) any process a test not marked e2e starts, in its setup, call or teardown."""
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    started: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            what = f"{name} {args[1]!r}" if name == "subprocess" and len(args) > 1 else name
            started.append(what)
            raise ProcessNotAllowed(f"{item.nodeid} is not marked e2e but started a process ({what}); {HOW}")
        return refused

    # subprocess (and asyncio's subprocesses, so the Pulumi engine and Chromium), multiprocessing, os.*
    targets: list[tuple[Any, str, str]] = [(subprocess.Popen, "_execute_child", "subprocess")]
    targets += [(os, name, f"os.{name}") for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system")
                if hasattr(os, name)]
    spawner = _posix_spawner()
    if spawner is not None:
        targets.append((spawner, "fork_exec", "_posixsubprocess.fork_exec"))
    saved = [(owner, attr, getattr(owner, attr)) for owner, attr, _ in targets]
    for owner, attr, name in targets:
        setattr(owner, attr, refuse(name))
    try:
        yield
    finally:
        for owner, attr, original in saved:
            setattr(owner, attr, original)
    if started:  # also when the code under test caught the refusal
        pytest.fail(f"{item.nodeid} is not marked e2e but started a process: {', '.join(started)}; {HOW}",
                    pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)
