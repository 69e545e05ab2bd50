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


def test_deny_and_orphaned_entries_become_notes_never_grants() -> None:
    from mailroom.m365.directory import Directory, Recipient
    from mailroom.reconcile.live import live_spec

    directory = Directory(None)  # type: ignore[arg-type]  # filled by hand: nothing to ask the tenant
    directory.add(Recipient("id-alice", "alice@contoso.com", "alice", "UserMailbox", ("alice@contoso.com",)))
    rows = [{"User": "NT AUTHORITY\\SELF", "AccessRights": ["FullAccess, ReadPermission"], "IsInherited": False},
            {"User": "alice@contoso.com", "AccessRights": ["FullAccess"], "IsInherited": False, "Deny": False},
            {"User": "mallory@contoso.com", "AccessRights": ["FullAccess"], "IsInherited": False, "Deny": True},
            {"User": "S-1-5-21-1-2-3-1107", "AccessRights": ["FullAccess"], "IsInherited": False, "Deny": False},
            {"User": "EMUPR01A001\\Domain Admins", "AccessRights": ["FullAccess"], "IsInherited": True,
             "Deny": True}]
    mailbox = {"PrimarySmtpAddress": "sales@contoso.com", "DisplayName": "Sales", "EmailAddresses": []}
    live = live_spec(mailbox, rows, [], True, directory, {}, ("contoso.com",))
    assert [g.address for g in live.spec.members] == ["alice@contoso.com"]
    assert live.skipped == {"self": 1, "deny": 1, "orphan": 1, "inherited": 1}
    entry = adopt._adopted(live, directory, "")
    assert [m.address for m in entry.mailbox.members] == ["alice@contoso.com"]
    assert [n.split(":")[0] for n in entry.notes] == ["not imported", "not expressible"]
    assert "S-1-5-21-1-2-3-1107" in entry.notes[0] and "mallory@contoso.com" in entry.notes[1]


def test_mailbox_patterns_choose_what_is_read(tenant_app: TenantApp) -> None:
    shared(tenant_app, "sales", "alice@contoso.com")
    shared(tenant_app, "info", "dave@contoso.com")
    tenant_app.reset_metrics()

    async def run() -> adopt.Imported:
        async with tenant_app.tenant() as t:
            result = await adopt.read(t, adopt.empty(("contoso.com",)), ["S*@contoso.com"])
            return adopt.adopt(result, t.directory, ("contoso.com",), patterns=["S*@contoso.com"])
    found = asyncio.run(run())
    assert [a.mailbox.address for a in found.mailboxes] == ["sales@contoso.com"]
    assert tenant_app.metrics()["cmdlets"]["Get-MailboxPermission"] == 1
