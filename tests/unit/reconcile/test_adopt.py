"""The import's read on the emulator in process: what is skipped, a mailbox gone mid-scan, a throttled scan."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from localtenant.exchange.render import INHERITED
from mailroom.errors import TenantError
from mailroom.m365.transport import RetryPolicy
from mailroom.reconcile import adopt

from ..conftest import TenantApp

ADMIN = "trent@contoso.com"


def shared(app: TenantApp, name: str, *grants: str) -> None:
    async def run() -> None:
        await app.by_hand(ADMIN, "New-Mailbox", Shared=True, Name=name, DisplayName=name.title(),
                          PrimarySmtpAddress=f"{name}@contoso.com")
        for user in grants:
            await app.by_hand(ADMIN, "Add-MailboxPermission", Identity=name, User=user, AccessRights=["FullAccess"])
    asyncio.run(run())


def imported(app: TenantApp, **kwargs: Any) -> adopt.Imported:
    async def run() -> adopt.Imported:
        async with app.tenant(**kwargs) as t:
            domains = adopt.routable(await t.exchange.accepted_domains())
            result = await adopt.read(t, adopt.empty(domains))
            return adopt.adopt(result, t.directory, domains)
    return asyncio.run(run())


def test_every_shared_mailbox_is_read_and_what_is_not_a_delegation_is_counted(tenant_app: TenantApp) -> None:
    shared(tenant_app, "sales", "alice@contoso.com", "finance-team")
    shared(tenant_app, "info", "dave@contoso.com")
    tenant_app.reset_metrics()
    found = imported(tenant_app)
    assert found.domains == ("contoso.com",)  # the onmicrosoft.com routing domain is not the file's
    assert [a.mailbox.address for a in found.mailboxes] == ["info@contoso.com", "sales@contoso.com"]
    sales = found.mailboxes[1].mailbox
    assert [(m.address, m.is_group) for m in sales.members] == [("alice@contoso.com", False),
                                                                ("finance-team@contoso.com", True)]
    assert found.skipped["self"] == 4 and found.skipped["inherited"] == 2 * len(INHERITED)
    cmdlets = tenant_app.metrics()["cmdlets"]
    assert cmdlets["Get-RecipientPermission"] == 1 and cmdlets["Get-MailboxPermission"] == 2  # once tenant-wide


class Vanishing(httpx.AsyncBaseTransport):
    """The emulator's own transport; just before the first permission read, ``gone`` is deleted by hand
    (a mailbox removed while the scan runs)."""

    def __init__(self, app: TenantApp, gone: str) -> None:
        self.inner, self.app, self.gone, self.done = app.http_transport, app, gone, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.done and b"Get-MailboxPermission" in request.content:
            self.done = True
            await self.app.by_hand(ADMIN, "Remove-Mailbox", Identity=self.gone, Confirm=False)
        return await self.inner.handle_async_request(request)


def test_a_mailbox_that_vanishes_mid_scan_is_a_warning_on_that_mailbox(tenant_app: TenantApp) -> None:
    shared(tenant_app, "sales", "alice@contoso.com")
    shared(tenant_app, "info", "dave@contoso.com")
    tenant_app.http_transport = Vanishing(tenant_app, "info")
    found = imported(tenant_app)
    assert [a.mailbox.address for a in found.mailboxes] == ["sales@contoso.com"]
    assert len(found.warnings) == 1 and found.warnings[0].startswith("info@contoso.com: not imported")
    assert found.unreadable == {"info@contoso.com"}


def test_a_scan_throttled_past_its_retries_is_an_error_rather_than_a_partial_answer(tenant_app: TenantApp) -> None:
    shared(tenant_app, "sales", "alice@contoso.com")

    async def run() -> None:
        async with tenant_app.tenant(retry=RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01,
                                                       deadline=2)) as t:
            domains = adopt.routable(await t.exchange.accepted_domains())
            tenant_app.set_profile({"seed": 3, "throttle_rate": 1.0})  # from now on, every call answers 429
            with pytest.raises(TenantError, match="429"):
                await adopt.read(t, adopt.empty(domains))
    asyncio.run(run())
    assert tenant_app.metrics()["injected"]["throttled"] > 0
