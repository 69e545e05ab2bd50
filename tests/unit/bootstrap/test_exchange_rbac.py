"""bootstrap's Exchange side against the local tenant in this process, and the bound it sets: the local
tenant enforces role assignments and write scopes as Exchange does, so these tests prove that the apply
identity cannot touch a person's mailbox and the plan identity cannot write at all.

The admin who runs bootstrap is the embedded tenant's own client (``mailroom-local``), an app without a
service principal in Exchange: the local tenant treats it as holding Exchange Administrator
(localtenant/exchange/rbac.py). ``mailroom-plan`` and ``mailroom-apply`` are the identities' client ids
on the local tenant.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from localtenant.common import stable_guid
from localtenant.exchange import rbac
from mailroom.bootstrap import exchange as bx
from mailroom.bootstrap.identities import APPLY, LOCAL_CLIENT_IDS, PLAN
from mailroom.errors import ExchangeError
from mailroom.file.load import load_desired
from mailroom.m365 import auditlog
from mailroom.m365.tenant import Tenant
from mailroom.reconcile import bulk
from mailroom.reconcile.live import read_mailbox

from ..conftest import TenantApp

PRINCIPALS = bx.local_principals(LOCAL_CLIENT_IDS, lambda app_id: stable_guid("sp", app_id))
WANT = bx.wanted(PRINCIPALS)
SHARED = "support@contoso.com"
PERSON = "alice@contoso.com"  # a UserMailbox in the shipped directory


def as_app(tenant_app: TenantApp, client_id: str) -> Tenant:
    return Tenant(dataclasses.replace(tenant_app.config, client_id=client_id), http_transport=tenant_app.http_transport)


async def bootstrap(tenant_app: TenantApp) -> list[bx.Change]:
    async with tenant_app.tenant() as admin:
        todo = bx.changes(WANT, await bx.read(admin.exchange, WANT))
        return await bx.apply(admin.exchange, todo)


async def plan_after(tenant_app: TenantApp) -> list[bx.Change]:
    async with tenant_app.tenant() as admin:
        return bx.changes(WANT, await bx.read(admin.exchange, WANT))


async def refused(t: Tenant, cmdlet: str, params: dict[str, Any]) -> ExchangeError:
    with pytest.raises(ExchangeError) as caught:
        await t.exchange.invoke(cmdlet, params)
    return caught.value


def test_bootstrap_registers_both_identities_scopes_apply_and_converges(tenant_app: TenantApp) -> None:
    done = asyncio.run(bootstrap(tenant_app))
    assert [(c.op, c.kind, c.identity, c.subject) for c in done] == [
        ("+", "service principal", "mailroom-plan", "mailroom-plan"),
        ("+", "service principal", "mailroom-apply", "mailroom-apply"),
        ("+", "management scope", "", "mailroom-shared-mailboxes"),
        ("+", "role assignment", "mailroom-plan", "View-Only Recipients"),
        ("+", "role assignment", "mailroom-plan", "View-Only Configuration"),
        ("+", "role assignment", "mailroom-apply", "Mail Recipients"),
        ("+", "role assignment", "mailroom-apply", "Mail Recipient Creation"),
    ]
    assert asyncio.run(plan_after(tenant_app)) == []

    async def assignments() -> list[dict[str, Any]]:
        async with tenant_app.tenant() as admin:
            return (await admin.exchange.invoke("Get-ManagementRoleAssignment",
                                                {"App": stable_guid("sp", "mailroom-apply")})).value
    rows = asyncio.run(assignments())
    assert {(r["Role"], r["RecipientWriteScope"], r["CustomRecipientWriteScope"]) for r in rows} == {
        ("Mail Recipients", "CustomRecipientScope", "mailroom-shared-mailboxes"),
        ("Mail Recipient Creation", "CustomRecipientScope", "mailroom-shared-mailboxes")}


def test_apply_identity_changes_shared_mailboxes_and_is_refused_on_a_persons(tenant_app: TenantApp) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)
    asyncio.run(bootstrap(tenant_app))

    async def run() -> None:
        async with as_app(tenant_app, LOCAL_CLIENT_IDS["apply"]) as t:
            await t.exchange.new_shared_mailbox("support", "Support", SHARED)
            await t.exchange.set_mailbox(SHARED, {"DisplayName": "Customer Support"})
            await t.exchange.invoke("Add-MailboxPermission", {"Identity": SHARED, "User": PERSON,
                                                              "AccessRights": ["FullAccess"], "AutoMapping": False})
            await t.exchange.invoke("Add-RecipientPermission", {"Identity": SHARED, "Trustee": PERSON,
                                                                "AccessRights": ["SendAs"]})
            assert (await t.exchange.get_mailbox(SHARED) or {})["DisplayName"] == "Customer Support"
            for cmdlet, params in [
                ("Set-Mailbox", {"Identity": PERSON, "DisplayName": "Mallory"}),
                ("Set-Mailbox", {"Identity": PERSON, "GrantSendOnBehalfTo": ["bob@contoso.com"]}),
                ("Add-MailboxPermission", {"Identity": PERSON, "User": "bob@contoso.com",
                                           "AccessRights": ["FullAccess"]}),
                ("Add-RecipientPermission", {"Identity": PERSON, "Trustee": "bob@contoso.com",
                                             "AccessRights": ["SendAs"]}),
                ("Remove-Mailbox", {"Identity": PERSON, "Confirm": False}),
            ]:
                err = await refused(t, cmdlet, params)
                assert (err.status, err.error_type) == (400, "InvalidOperationException"), cmdlet
                assert "out of the current user's write scope" in err.service_message
            # It cannot grant itself more, nor run a cmdlet outside its roles.
            for cmdlet, params in [
                ("New-ManagementRoleAssignment", {"Role": "Mail Recipients", "App": "mailroom-apply"}),
                ("Get-AcceptedDomain", {}),
            ]:
                assert (await refused(t, cmdlet, params)).status == 403
        async with tenant_app.tenant() as admin:  # nothing of the refused writes reached the tenant
            person = await admin.exchange.get_mailbox(PERSON) or {}
            assert person["DisplayName"] == "Alice Anderson" and person["GrantSendOnBehalfTo"] == []
            fa = (await admin.exchange.invoke("Get-MailboxPermission", {"Identity": PERSON})).value
            assert not [r for r in fa if r["User"] == "bob@contoso.com"]
            assert not await admin.exchange.recipient_permissions(PERSON) or all(
                r["Trustee"] != "bob@contoso.com" for r in await admin.exchange.recipient_permissions(PERSON))
            audit = await auditlog.admin_records(auditlog.for_tenant(admin))
            assert {r["operation"] for r in audit if r["auditData"]["ResultStatus"] == "False"} >= {"Set-Mailbox",
                                                                                                   "Remove-Mailbox"}
    asyncio.run(run())


def test_plan_identity_reads_everything_mailroom_plans_with_and_writes_nothing(tenant_app: TenantApp,
                                                                               tmp_path: Path) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)
    asyncio.run(bootstrap(tenant_app))
    (tmp_path / "mailboxes.yaml").write_text(
        "version: 1\ntenant: {domains: [contoso.com]}\npolicy: {require_owner: false}\nmailboxes:\n"
        f"  - address: {SHARED}\n    display_name: Support\n    members: [{PERSON}]\n    send_as: [{PERSON}]\n")
    loaded = load_desired(str(tmp_path / "mailboxes.yaml"))
    assert loaded.desired is not None, loaded.findings

    async def run() -> None:
        async with tenant_app.tenant() as admin:
            await admin.exchange.new_shared_mailbox("support", "Support", SHARED)
            await admin.exchange.invoke("Add-RecipientPermission", {"Identity": SHARED, "Trustee": PERSON,
                                                                    "AccessRights": ["SendAs"]})
        async with as_app(tenant_app, LOCAL_CLIENT_IDS["plan"]) as t:
            # The reads of plan --refresh and drift (the bulk scan), of one mailbox, of import and attribution.
            result = await bulk.scan(t, loaded.desired)
            assert not result.errors and SHARED in {m for m in result.live}
            assert await read_mailbox(t.exchange, t.graph, t.directory, SHARED, [PERSON], ["contoso.com"])
            assert await t.exchange.accepted_domains()
            assert await auditlog.admin_records(auditlog.for_tenant(t))
            assert await t.graph.directory_audits() is not None
            for cmdlet, params in [
                ("Set-Mailbox", {"Identity": SHARED, "DisplayName": "x"}),
                ("New-Mailbox", {"Shared": True, "Name": "x", "PrimarySmtpAddress": "x@contoso.com"}),
                ("Remove-Mailbox", {"Identity": SHARED, "Confirm": False}),
                ("Add-MailboxPermission", {"Identity": SHARED, "User": PERSON, "AccessRights": ["FullAccess"]}),
                ("Remove-RecipientPermission", {"Identity": SHARED, "Trustee": PERSON, "AccessRights": ["SendAs"]}),
                ("New-ServicePrincipal", {"AppId": "x", "ObjectId": "y"}),
            ]:
                err = await refused(t, cmdlet, params)
                assert (err.status, err.error_type) == (403, "Forbidden"), cmdlet
        async with tenant_app.tenant() as admin:
            assert [r["Trustee"] for r in await admin.exchange.recipient_permissions(SHARED)
                    if r["Trustee"] != "NT AUTHORITY\\SELF"] == [PERSON]
    asyncio.run(run())


def test_an_assignment_added_by_hand_to_a_mailroom_identity_is_removed(tenant_app: TenantApp) -> None:
    asyncio.run(bootstrap(tenant_app))

    async def widen() -> None:
        async with tenant_app.tenant() as admin:
            await admin.exchange.invoke("New-ManagementRoleAssignment", {
                "Name": "by-hand", "Role": "Mail Recipients", "App": stable_guid("sp", "mailroom-apply")})
            await admin.exchange.invoke("Set-ManagementScope", {
                "Identity": "mailroom-shared-mailboxes", "RecipientRestrictionFilter": "RecipientTypeDetails -ne 'x'"})
    asyncio.run(widen())
    todo = asyncio.run(plan_after(tenant_app))
    assert [(c.op, c.kind, c.subject, c.detail) for c in todo] == [
        ("~", "management scope", "mailroom-shared-mailboxes",
         "RecipientTypeDetails -ne 'x' → RecipientTypeDetails -eq 'SharedMailbox'"),
        ("-", "role assignment", "Mail Recipients", "organisation-wide (read only)"),
    ]
    asyncio.run(bootstrap(tenant_app))
    assert asyncio.run(plan_after(tenant_app)) == []


def test_an_app_with_no_exchange_role_is_refused_once_the_tenant_is_strict(tenant_app: TenantApp) -> None:
    async def get(client_id: str) -> Any:
        async with as_app(tenant_app, client_id) as t:
            return await t.exchange.get_mailbox(PERSON)
    assert asyncio.run(get("someone-elses-app"))  # the default: an unregistered app stands for the admin
    with tenant_app.emulator.store.tx() as conn:
        rbac.set_unregistered_policy(conn, "refused")
    with pytest.raises(ExchangeError) as caught:
        asyncio.run(get("someone-elses-app"))
    assert caught.value.status == 403
    asyncio.run(bootstrap_as_registered_admin(tenant_app))
    assert asyncio.run(get(LOCAL_CLIENT_IDS["plan"]))


async def bootstrap_as_registered_admin(tenant_app: TenantApp) -> None:
    """Strict tenant: the admin's tool needs its own role (Role Management) before it can bootstrap."""
    with tenant_app.emulator.store.tx() as conn:
        conn.execute("INSERT INTO service_principals VALUES "
                     "('mailroom-local', 'mailroom-local', 'o', 's', 'admin', '')")
        for role in rbac.ROLES:
            conn.execute("INSERT INTO role_assignments VALUES (?, ?, ?, 'mailroom-local', NULL, 'g')",
                         (f"admin-{role}".lower(), f"admin-{role}", role))
    await bootstrap(tenant_app)


@pytest.mark.parametrize("text", ["RecipientTypeDetails -like 'Shared*'", "(A -eq 'b') -and (C -eq 'd')",
                                  "Department -eq 'x'", "RecipientTypeDetails -eq SharedMailbox"])
def test_a_scope_filter_the_local_tenant_cannot_evaluate_is_refused_not_guessed(text: str) -> None:
    with pytest.raises(Exception, match="Invalid filter syntax"):
        rbac.parse_filter(text)


def test_every_cmdlet_the_local_tenant_implements_belongs_to_a_role() -> None:
    from localtenant.exchange import cmdlets
    held = set().union(*rbac.ROLES.values())
    orphans = (set(cmdlets.CMDLETS) | set(rbac.CMDLETS)) - held
    assert not orphans, f"add {sorted(orphans)} to a role in localtenant/exchange/rbac.py ROLES (an app with " \
                        "Exchange roles could not run them)"


def test_identities_declare_each_exchange_role_the_local_tenant_knows() -> None:
    assert {r.role for i in (PLAN, APPLY) for r in i.exchange_roles} <= set(rbac.ROLES)
    # Every write the apply identity can make is bound to the shared-mailbox scope.
    writes = {"set-mailbox", "new-mailbox", "remove-mailbox", "add-mailboxpermission", "add-recipientpermission"}
    assert all(r.write_scope is not None for r in APPLY.exchange_roles if rbac.ROLES[r.role] & writes)
    assert not any(rbac.ROLES[r.role] & writes for r in PLAN.exchange_roles)


def test_the_control_route_sets_what_an_unregistered_app_gets(tenant_app: TenantApp) -> None:
    import httpx

    async def run() -> list[tuple[int, Any]]:
        async with httpx.AsyncClient(transport=tenant_app.http_transport, base_url="http://t") as c:
            answers = [await c.get("/_emulator/rbac"), await c.put("/_emulator/rbac", json={"unregistered_apps": "x"}),
                       await c.put("/_emulator/rbac", json={"unregistered_apps": "refused"})]
            return [(r.status_code, r.json()) for r in answers]
    got = asyncio.run(run())
    assert got[0] == (200, {"unregistered_apps": "exchange-admin"})
    assert got[1][0] == 400 and got[1][1]["error"]["setting"] == "unregistered_apps"
    assert got[2] == (200, {"unregistered_apps": "refused"})
