"""The declared least set is enough, and no more: each identity gets exactly the app roles identities.py
declares (set on the local tenant in place of Entra's consent, which pulumi-azuread makes on a real
tenant) and the Exchange roles bootstrap assigns, and then runs mailroom's own code paths.

apply converges a new shared mailbox (create, aliases, Full Access, Send As, Send on Behalf, settings,
sign-in blocked through Graph with only User.EnableDisableAccount.All); plan cannot block sign-in, and
neither can change any other property of a person's account. Graph's permission table is the local
tenant's (localtenant/graph/permissions.py, from the Graph reference pages).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest
from mailroom.bootstrap import exchange as bx
from mailroom.bootstrap.identities import APPLY, EXCHANGE_APP_ID, GRAPH_APP_ID, LOCAL_CLIENT_IDS, PLAN, Identity
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.errors import ExchangeError, GraphError
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.converge import converge_mailbox

from ..conftest import BASE_URL, TenantApp

AUDIENCE = {GRAPH_APP_ID: "https://graph.microsoft.com", EXCHANGE_APP_ID: "https://outlook.office365.com"}
PRINCIPALS = bx.local_principals(LOCAL_CLIENT_IDS, lambda app_id: f"object-{app_id}")
SPEC = MailboxSpec(address="desk@contoso.com", display_name="Front Desk", aliases=("reception@contoso.com",),
                   members=(Grant("alice@contoso.com"),), send_as=("bob@contoso.com",),
                   send_on_behalf=("carol@contoso.com",), hidden_from_gal=True, sign_in_blocked=True,
                   domains=("contoso.com",))


def consent(tenant_app: TenantApp, identity: Identity) -> None:
    """What Entra's admin consent gives the identity: exactly its declared app roles, per API."""
    roles: dict[str, list[str]] = {aud: [] for aud in AUDIENCE.values()}
    for role in identity.app_roles:
        roles[AUDIENCE[role.api_app_id]].append(role.name)

    async def put() -> None:
        async with httpx.AsyncClient(transport=tenant_app.http_transport, base_url=BASE_URL) as c:
            resp = await c.put(f"/_emulator/apps/{LOCAL_CLIENT_IDS[identity.key]}", json={"roles": roles})
            assert resp.status_code == 200, resp.text
    asyncio.run(put())


def bootstrapped(tenant_app: TenantApp) -> None:
    async def run() -> None:
        want = bx.wanted(PRINCIPALS)
        async with tenant_app.tenant() as admin:
            await bx.apply(admin.exchange, bx.changes(want, await bx.read(admin.exchange, want)))
    asyncio.run(run())
    for identity in (PLAN, APPLY):
        consent(tenant_app, identity)


def as_app(tenant_app: TenantApp, key: str) -> Tenant:
    return Tenant(dataclasses.replace(tenant_app.config, client_id=LOCAL_CLIENT_IDS[key]),
                  http_transport=tenant_app.http_transport)


def test_apply_converges_a_shared_mailbox_with_exactly_its_declared_rights(tenant_app: TenantApp) -> None:
    bootstrapped(tenant_app)

    async def run() -> Any:
        async with as_app(tenant_app, "apply") as t:
            live, outcome = await converge_mailbox(t, SPEC)
            assert not outcome.failed, outcome.failed
            return live
    live = asyncio.run(run())
    assert live is not None and live.spec.sign_in_blocked is True and live.spec.hidden_from_gal is True
    assert [g.address for g in live.spec.members] == ["alice@contoso.com"] and live.spec.send_as == ("bob@contoso.com",)


def test_plan_cannot_block_sign_in_and_apply_cannot_change_anything_else_of_a_person(tenant_app: TenantApp) -> None:
    bootstrapped(tenant_app)

    async def run() -> None:
        async with tenant_app.tenant() as admin:
            alice = await admin.graph.get_user("alice@contoso.com")
            assert alice is not None
        async with as_app(tenant_app, "plan") as t:
            assert await t.graph.get_user(alice["id"])  # reads people
            assert await t.graph.list_users()
            assert await t.graph.directory_audits() is not None
            with pytest.raises(GraphError) as caught:
                await t.graph.set_account_enabled(alice["id"], False)
            assert (caught.value.status, caught.value.code) == (403, "Authorization_RequestDenied")
        async with as_app(tenant_app, "apply") as t:
            token = await t.tokens.token("https://graph.microsoft.com/.default")
        async with httpx.AsyncClient(transport=tenant_app.http_transport, base_url=BASE_URL) as c:
            resp = await c.patch(f"/v1.0/users/{alice['id']}", json={"jobTitle": "Mallory"},
                                 headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 403 and resp.json()["error"]["code"] == "Authorization_RequestDenied"
        async with tenant_app.tenant() as admin:
            after = await admin.graph.get_user(alice["id"])
            assert after is not None and after.get("accountEnabled") is True
    asyncio.run(run())


def test_an_app_consented_nothing_on_exchange_gets_401(tenant_app: TenantApp) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=tenant_app.http_transport, base_url=BASE_URL) as c:
            resp = await c.put("/_emulator/apps/graph-only", json={"roles": {
                "https://graph.microsoft.com": ["User.Read.All"]}})
            assert resp.json()["roles"] == {"https://graph.microsoft.com": ["User.Read.All"],
                                            "https://outlook.office365.com": []}
            bad = await c.put("/_emulator/apps/x", json={"roles": {"https://example.com": ["a"]}})
            assert bad.status_code == 400
        async with Tenant(dataclasses.replace(tenant_app.config, client_id="graph-only"),
                          http_transport=tenant_app.http_transport) as t:
            with pytest.raises(ExchangeError) as caught:
                await t.exchange.get_mailbox("alice@contoso.com")
            assert caught.value.status == 401
            assert await t.graph.get_user("alice@contoso.com")
    asyncio.run(run())
