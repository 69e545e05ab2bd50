"""Fixtures of the unit tests. Nothing here starts a process (see the e2e marker in tests/conftest.py).

``tenant_app`` is the local tenant emulator (``infra/localtenant``) *in this process*: its ASGI app on
a fresh in-memory SQLite state seeded with the shipped Contoso directory, reached through
``httpx.ASGITransport``. mailroom's own clients talk to it over the same HTTP as to a real tenant
(``Tenant(cfg, http_transport=...)``): no server, no socket, no mock::

    def test_example(tenant_app: TenantApp) -> None:
        async def run() -> None:
            async with tenant_app.tenant() as t:
                assert await t.exchange.get_mailbox("alice@contoso.com")
        asyncio.run(run())
        assert tenant_app.metrics()["cmdlets"]["Get-Mailbox"] == 1

Tests may import localtenant; mailroom never does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from localtenant.app import build_app
from localtenant.context import Emulator
from localtenant.faults import Faults, Profile
from localtenant.seed import SHIPPED, load_file, seed
from localtenant.store import Store
from mailroom.m365.auth import EXCHANGE_SCOPE, GRAPH_SCOPE
from mailroom.m365.tenant import Tenant, TenantConfig

BASE_URL = "http://localtenant.test"  # any origin: requests never leave the process


class TenantApp:
    """The emulator's app in this process, and ways to reach it."""

    def __init__(self) -> None:
        store = Store(":memory:")
        seed(store, load_file(SHIPPED))
        self.emulator = Emulator.open(store, Faults())
        self.app = build_app(self.emulator)
        self.http_transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.app)

    @property
    def tenant_id(self) -> str:
        return self.emulator.tenant.id

    @property
    def config(self) -> TenantConfig:
        return TenantConfig.local(BASE_URL, self.tenant_id)

    def tenant(self, **kwargs: Any) -> Tenant:
        """mailroom's ``Tenant`` (both clients, tokens, pacers, retries) wired to this app."""
        return Tenant(self.config, http_transport=self.http_transport, **kwargs)

    def set_profile(self, profile: dict[str, Any]) -> None:
        """Faults from now on, as ``PUT /_emulator/profile`` sets them (``{}``: none)."""
        self.emulator.faults.set_profile(Profile.from_dict(profile))

    def metrics(self) -> dict[str, Any]:
        """What the tenant was sent (``GET /_emulator/metrics``): batch items count one by one."""
        return self.emulator.metrics.snapshot()

    def reset_metrics(self) -> None:
        self.emulator.metrics.reset()

    def audit_settings(self, **values: Any) -> None:
        """The unified audit log's settings, as ``PUT /_emulator/auditlog`` sets them (e.g. no ingestion delay
        and instant queries: ``ingestion_delay_s=0, start_s=0, run_s=0``)."""
        from localtenant.graph.auditlog import Settings

        with self.emulator.store.tx() as conn:
            Settings.from_dict(values, Settings.load(conn)).save(conn)

    async def _token(self, client: httpx.AsyncClient, username: str, scope: str) -> str:
        form = {"grant_type": "password", "username": username, "password": "emulator",
                "client_id": "admin-powershell", "scope": scope}
        resp = await client.post(f"/{self.tenant_id}/oauth2/v2.0/token", data=form)
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    async def attempt_by_hand(self, username: str, cmdlet: str, **params: Any) -> httpx.Response:
        """One cmdlet run by a person (a delegated token), outside mailroom, whatever it answers."""
        async with httpx.AsyncClient(transport=self.http_transport, base_url=BASE_URL) as client:
            token = await self._token(client, username, EXCHANGE_SCOPE)
            body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}
            return await client.post(f"/adminapi/beta/{self.tenant_id}/InvokeCommand", json=body,
                                     headers={"Authorization": f"Bearer {token}"})

    async def by_hand(self, username: str, cmdlet: str, **params: Any) -> list[dict[str, Any]]:
        """One cmdlet a person runs successfully outside mailroom: what drift must find, and what the
        admin audit log names ``username`` for."""
        resp = await self.attempt_by_hand(username, cmdlet, **params)
        assert resp.status_code == 200, resp.text
        rows: list[dict[str, Any]] = resp.json()["value"]
        return rows

    async def graph_by_hand(self, username: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One Graph v1.0 request (``path`` below ``/v1.0``) by a person, outside mailroom."""
        async with httpx.AsyncClient(transport=self.http_transport, base_url=BASE_URL) as client:
            token = await self._token(client, username, GRAPH_SCOPE)
            return await client.request(method, f"/v1.0{path}", headers={"Authorization": f"Bearer {token}"},
                                        **kwargs)

    def close(self) -> None:
        self.emulator.store.close()


@pytest.fixture
def tenant_app() -> Iterator[TenantApp]:
    """A fresh emulator in this process (function-scoped; seeding it takes milliseconds)."""
    app = TenantApp()
    yield app
    app.close()
