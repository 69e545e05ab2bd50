"""``apply_changes`` (reconcile/converge.py) against the emulator in this process: which write calls a
list of Changes makes, removals before additions, an addition whose removal failed never sent, and the
same Changes applied twice leaving the tenant as once. (``plan_calls`` alone, without a tenant, is
tests/test_converge_calls.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from typing import Any

import pytest
from localtenant.exchange import rbac
from mailroom.core.compare import Change, changes
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.m365 import auditlog
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.converge import Outcome, apply_changes, create_mailbox
from mailroom.reconcile.live import LiveMailbox, read_mailbox

from ..conftest import TenantApp

DOMAINS = ("contoso.com",)
MB = "support@contoso.com"
NEW = MailboxSpec(address=MB, display_name="Support", domains=DOMAINS)
DESIRED = MailboxSpec(address=MB, display_name="Customer Support", aliases=("help@contoso.com",),
                      members=(Grant("alice@contoso.com"), Grant("bob@contoso.com", automap=False)),
                      send_as=("carol@contoso.com",), send_on_behalf=("dave@contoso.com",), hidden_from_gal=True,
                      sign_in_blocked=True, domains=DOMAINS)
WRITES = ("Set-Mailbox", "Set-CASMailbox", "Add-MailboxPermission", "Remove-MailboxPermission",
          "Add-RecipientPermission", "Remove-RecipientPermission")


async def _read(t: Tenant, spec: MailboxSpec) -> LiveMailbox:
    live = await read_mailbox(t.exchange, t.graph, t.directory, spec.address, spec.people(), DOMAINS,
                              spec.automap_by_key())
    assert live is not None
    return live


async def _created(t: Tenant) -> LiveMailbox:
    await create_mailbox(t.exchange, NEW)
    return await _read(t, NEW)


async def _writes(t: Tenant) -> list[dict[str, Any]]:
    """mailroom's own writes to the mailbox, oldest first, from the unified audit log (ExchangeAdmin records)."""
    rows = await auditlog.admin_records(auditlog.for_tenant(t, poll_first=0.01))
    mine = [r for r in rows if r["userPrincipalName"] == "mailroom-local" and r["operation"] in WRITES]
    return sorted(mine, key=lambda r: str(r["createdDateTime"]))


def _params(row: dict[str, Any]) -> dict[str, str]:
    return {p["Name"]: p["Value"] for p in row["auditData"]["Parameters"]}


def _same(done: list[Change], todo: list[Change]) -> bool:
    return Counter(map(repr, done)) == Counter(map(repr, todo))


def test_each_change_is_written_by_the_call_its_right_names(tenant_app: TenantApp) -> None:
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)
    async def run() -> tuple[LiveMailbox, list[Change], Outcome, dict[str, Any], LiveMailbox, list[dict[str, Any]]]:
        async with tenant_app.tenant() as t:
            live = await _created(t)
            todo = changes(DESIRED, live.spec)
            tenant_app.reset_metrics()
            outcome = await apply_changes(t.exchange, t.graph, live, todo, DESIRED)
            sent = tenant_app.metrics()
            return live, todo, outcome, sent, await _read(t, DESIRED), await _writes(t)

    live, todo, outcome, sent, after, writes = asyncio.run(run())
    assert {(c.op, c.right) for c in todo} >= {("add", "member"), ("add", "send_as"), ("add", "send_on_behalf"),
                                               ("add", "alias"), ("set", "display_name"),
                                               ("set", "hidden_from_gal"), ("set", "sign_in_blocked")}
    assert outcome.failed == [] and _same(outcome.done, todo)
    # One Set-Mailbox for the lists and settings, one Set-CASMailbox for the protocols, one item per grant,
    # one Graph PATCH for sign-in.
    assert sent["cmdlets"] == {"Set-Mailbox": 1, "Set-CASMailbox": 1, "Add-MailboxPermission": 2,
                               "Add-RecipientPermission": 1}
    assert sent["endpoints"]["PATCH /v1.0/users/{id}"] == 1
    by_cmdlet = {(r["operation"], _params(r).get("User") or _params(r).get("Trustee")): _params(r) for r in writes}
    assert by_cmdlet[("Add-MailboxPermission", "alice@contoso.com")]["AutoMapping"] == "True"
    assert by_cmdlet[("Add-MailboxPermission", "bob@contoso.com")]["AutoMapping"] == "False"
    assert all(p["Identity"] == live.identity for p in by_cmdlet.values())  # the Guid, never a name
    set_mailbox = by_cmdlet[("Set-Mailbox", None)]
    assert set_mailbox["DisplayName"] == "Customer Support" and set_mailbox["HiddenFromAddressListsEnabled"] == "True"
    # The secure profile of a fresh mailbox (everything on): SMTP AUTH is written inverted, OWA and MAPI untouched.
    assert by_cmdlet[("Set-CASMailbox", None)] == {
        "Identity": live.identity, "PopEnabled": "False", "ImapEnabled": "False", "ActiveSyncEnabled": "False",
        "EwsEnabled": "False", "SmtpClientAuthenticationDisabled": "True"}
    # ... and before any grant: nobody can open the new mailbox over POP, IMAP, EWS or SMTP AUTH meanwhile.
    order = [r["operation"] for r in writes]
    assert order.index("Set-CASMailbox") < min(order.index("Set-Mailbox"),  # Send on Behalf rides in Set-Mailbox
                                               order.index("Add-MailboxPermission"),
                                               order.index("Add-RecipientPermission"))
    assert changes(DESIRED, after.spec) == []  # read back: the tenant now matches


async def _arranged(t: Tenant, tenant_app: TenantApp) -> LiveMailbox:
    """The mailbox as an admin left it: bob (AutoMapping on) and dave with Full Access, erin with Send As."""
    await create_mailbox(t.exchange, NEW)
    for user, automap in (("bob", True), ("dave", True)):
        await tenant_app.by_hand("trent@contoso.com", "Add-MailboxPermission", Identity=MB, User=user,
                                 AccessRights=["FullAccess"], AutoMapping=automap)
    await tenant_app.by_hand("trent@contoso.com", "Add-RecipientPermission", Identity=MB, Trustee="erin",
                             AccessRights=["SendAs"])
    before = dataclasses.replace(NEW, members=(Grant("bob@contoso.com"), Grant("dave@contoso.com")),
                                 send_as=("erin@contoso.com",))
    return await _read(t, before)


def test_removals_are_sent_before_additions(tenant_app: TenantApp) -> None:
    """An AutoMapping change is a removal and an addition of the same grant: were the removal sent
    (or retried) after the addition, bob would lose his access."""
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)
    async def run() -> tuple[list[Change], Outcome, list[dict[str, Any]], list[dict[str, Any]], int]:
        async with tenant_app.tenant() as t:
            live = await _arranged(t, tenant_app)
            desired = dataclasses.replace(live.spec, send_as=("frank@contoso.com",),
                                          members=(Grant("bob@contoso.com", automap=False), Grant("carol@contoso.com")))
            todo = changes(desired, live.spec)
            tenant_app.reset_metrics()
            outcome = await apply_changes(t.exchange, t.graph, live, todo, desired)
            envelopes = tenant_app.metrics()["endpoints"].get("POST /adminapi/beta/{tenant}/$batch", 0)
            bob = (await t.exchange.invoke("Get-MailboxPermission", {"Identity": MB, "User": "bob"})).value
            return todo, outcome, await _writes(t), bob, envelopes

    todo, outcome, writes, bob, envelopes = asyncio.run(run())
    assert sorted((c.op, c.right, c.subject) for c in todo) == [
        ("add", "member", "carol@contoso.com"), ("add", "send_as", "frank@contoso.com"),
        ("remove", "member", "dave@contoso.com"), ("remove", "send_as", "erin@contoso.com"),
        ("set", "automap", "bob@contoso.com")]
    assert outcome.failed == [] and _same(outcome.done, todo)
    order = [r["operation"] for r in writes]
    assert sorted(order[:3]) == ["Remove-MailboxPermission", "Remove-MailboxPermission", "Remove-RecipientPermission"]
    assert sorted(order[3:]) == ["Add-MailboxPermission", "Add-MailboxPermission", "Add-RecipientPermission"]
    assert envelopes == 2  # one $batch per phase
    assert [_params(r).get("AutoMapping") for r in writes if _params(r).get("User") == "bob@contoso.com"] == \
        [None, "False"]  # bob's grant removed, then given again without AutoMapping
    assert [row["AccessRights"] for row in bob] == [["FullAccess"]]


def test_an_addition_whose_removal_failed_is_not_sent(tenant_app: TenantApp) -> None:
    """bob was renamed after the read: removing his grant by the old name fails, so the addition that
    completes the AutoMapping change is not sent, the change is reported failed, and bob keeps access."""
    async def run() -> tuple[list[Change], Outcome, dict[str, Any], list[dict[str, Any]]]:
        async with tenant_app.tenant() as t:
            live = await _arranged(t, tenant_app)
            desired = dataclasses.replace(live.spec, members=(Grant("bob@contoso.com", automap=False),
                                                              Grant("dave@contoso.com")))
            stale = dataclasses.replace(live, trustees={**live.trustees, "bob@contoso.com": "Bob Formerly"})
            todo = changes(desired, live.spec)
            tenant_app.reset_metrics()
            outcome = await apply_changes(t.exchange, t.graph, stale, todo, desired)
            sent = tenant_app.metrics()
            bob = (await t.exchange.invoke("Get-MailboxPermission", {"Identity": MB, "User": "bob"})).value
            return todo, outcome, sent, bob

    todo, outcome, sent, bob = asyncio.run(run())
    assert [(c.op, c.right, c.subject) for c in todo] == [("set", "automap", "bob@contoso.com")]
    assert outcome.done == [] and [c for c, _ in outcome.failed] == todo
    assert "Bob Formerly" in outcome.failed[0][1] and "couldn't be found" in outcome.failed[0][1]
    assert sent["cmdlets"] == {"Remove-MailboxPermission": 1}  # the addition was never sent
    assert [row["AccessRights"] for row in bob] == [["FullAccess"]]


def test_the_same_changes_applied_twice_leave_the_tenant_as_once(tenant_app: TenantApp) -> None:
    """A re-run after a crash sends the same calls to a tenant that already holds them: Exchange answers
    duplicates with warnings, Set-Mailbox and accountEnabled are absolute, so nothing fails or doubles."""
    async def run() -> tuple[list[Change], Outcome, Outcome, LiveMailbox, LiveMailbox, list[list[Any]]]:
        async with tenant_app.tenant() as t:
            live = await _created(t)
            todo = changes(DESIRED, live.spec)
            first = await apply_changes(t.exchange, t.graph, live, todo, DESIRED)
            once = await _read(t, DESIRED)
            rows_once = await _raw(t)
            again = await apply_changes(t.exchange, t.graph, live, todo, DESIRED)  # the same, on the old read
            return todo, first, again, once, await _read(t, DESIRED), [rows_once, await _raw(t)]

    todo, first, again, once, twice, (rows_once, rows_twice) = asyncio.run(run())
    assert first.failed == [] and again.failed == [] and _same(again.done, todo)
    assert twice == once and changes(DESIRED, twice.spec) == []
    assert rows_twice == rows_once  # no grant and no address twice


async def _raw(t: Tenant) -> list[Any]:
    """The mailbox's grants and addresses as the tenant lists them."""
    full = (await t.exchange.invoke("Get-MailboxPermission", {"Identity": MB})).value
    send_as = await t.exchange.recipient_permissions(MB)
    mailbox = await t.exchange.get_mailbox(MB)
    assert mailbox is not None
    return [sorted((r["User"], tuple(r["AccessRights"])) for r in full),
            sorted((r["Trustee"], tuple(r["AccessRights"])) for r in send_as),
            sorted(mailbox["EmailAddresses"]), sorted(mailbox["GrantSendOnBehalfTo"])]


def test_no_changes_send_nothing(tenant_app: TenantApp) -> None:
    async def run() -> tuple[Outcome, int]:
        async with tenant_app.tenant() as t:
            live = await _created(t)
            tenant_app.reset_metrics()
            outcome = await apply_changes(t.exchange, t.graph, live, [], NEW)
            return outcome, tenant_app.metrics()["requests"]

    outcome, requests = asyncio.run(run())
    assert outcome == Outcome() and requests == 0


def test_nothing_is_granted_when_the_protocols_cannot_be_set(tenant_app: TenantApp,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that may not run Set-CASMailbox: the new mailbox is left without grants, not wide open with them."""
    writer = rbac.ROLES["Mail Recipients"]
    monkeypatch.setitem(rbac.ROLES, "Mail Recipients", writer - {"set-casmailbox"})

    async def run() -> tuple[list[Change], Outcome]:
        async with tenant_app.tenant() as admin:
            live = await _created(admin)
            await admin.exchange.invoke("New-ServicePrincipal", {"AppId": "writer", "ObjectId": "writer-sp"})
            await admin.exchange.invoke("New-ManagementRoleAssignment", {"Role": "Mail Recipients", "App": "writer"})
        todo = changes(DESIRED, live.spec)
        tenant_app.reset_metrics()
        async with Tenant(dataclasses.replace(tenant_app.config, client_id="writer"),
                          http_transport=tenant_app.http_transport) as t:
            return todo, await apply_changes(t.exchange, t.graph, live, todo, DESIRED)

    todo, outcome = asyncio.run(run())
    assert outcome.done == [] and _same([c for c, _ in outcome.failed], todo)
    assert {err for c, err in outcome.failed if c.right not in ("pop", "imap", "activesync", "ews", "smtp_auth")} == {
        "not sent: the mailbox's protocols could not be set first"}
    assert set(tenant_app.metrics()["cmdlets"]) == {"Set-CASMailbox"}  # refused; nothing else was sent
