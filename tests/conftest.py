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
The emulator is never imported: tests talk to it over HTTP only, as mailroom does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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
