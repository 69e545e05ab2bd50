"""``attribute`` (drift/history.py): which record of the tenant's own audit history explains a drift
finding. The records are real: people change the emulator (in this process) by hand, and the unified audit
log's ExchangeAdmin records and Graph directory audits are read back through mailroom's clients."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from mailroom.core.identity import smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.drift.history import NOT_YET, attribute
from mailroom.drift.scan import DriftFinding
from mailroom.m365 import auditlog
from mailroom.reconcile.converge import create_mailbox

from ..conftest import TenantApp

DOMAINS = ("contoso.com",)
SUPPORT, BILLING, ROGUE = "support@contoso.com", "billing@contoso.com", "rogue@contoso.com"
TRENT, SYBIL = "trent@contoso.com", "sybil@contoso.com"

# name → the finding a drift scan would report (findings() in drift/scan.py)
FINDINGS = {
    "dave's Full Access": DriftFinding("extra_grant", SUPPORT, "member", "dave@contoso.com"),
    "carol's Send As": DriftFinding("extra_grant", SUPPORT, "send_as", "carol@contoso.com"),
    "erin's Full Access": DriftFinding("extra_grant", SUPPORT, "member", "erin@contoso.com"),
    "hidden from the GAL": DriftFinding("changed_setting", SUPPORT, "hidden_from_gal", None, False, True),
    "display name": DriftFinding("changed_setting", SUPPORT, "display_name", None, "Support", "Help"),
    "sign-in allowed": DriftFinding("changed_setting", SUPPORT, "sign_in_blocked", None, True, False),
    "unmanaged mailbox": DriftFinding("unmanaged_mailbox", ROGUE, "mailbox"),
    "frank disabled": DriftFinding("stale_access", SUPPORT, "member", "frank@contoso.com", detail="account disabled"),
    "alice's Full Access gone": DriftFinding("missing_grant", SUPPORT, "member", "alice@contoso.com"),
    "grace's Send As": DriftFinding("extra_grant", BILLING, "send_as", "grace@contoso.com"),
}


async def _history(app: TenantApp) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any, dict[str, str]]:
    """People change the tenant by hand, oldest first; then mailroom reads what drift reads."""
    async with app.tenant() as t:
        for address, name in ((SUPPORT, "Support"), (BILLING, "Billing")):
            await create_mailbox(t.exchange, MailboxSpec(address=address, display_name=name, domains=DOMAINS))
        support_user = str((await t.exchange.get_mailbox(SUPPORT) or {})["ExternalDirectoryObjectId"])
        await t.graph.set_account_enabled(support_user, False)  # mailroom blocks sign-in, as the file says
        fa = {"AccessRights": ["FullAccess"]}
        await app.by_hand(TRENT, "Add-MailboxPermission", Identity=SUPPORT, User="dave", **fa)
        await app.by_hand(SYBIL, "Add-MailboxPermission", Identity=BILLING, User="dave", **fa)  # another mailbox
        await app.by_hand(SYBIL, "Add-RecipientPermission", Identity="support", Trustee="carol",
                          AccessRights=["SendAs"])  # support and carol, by other names
        await app.by_hand(TRENT, "Add-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
        await app.by_hand(SYBIL, "Remove-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
        await app.by_hand(SYBIL, "Add-MailboxPermission", Identity=SUPPORT, User="erin@contoso.com", **fa)  # newest
        await app.by_hand(TRENT, "Set-Mailbox", Identity=SUPPORT, HiddenFromAddressListsEnabled=True)
        await app.by_hand(SYBIL, "Set-Mailbox", Identity=SUPPORT, DisplayName="Help")  # newer, another setting
        await app.by_hand(SYBIL, "New-Mailbox", Shared=True, Name="rogue", PrimarySmtpAddress=ROGUE)
        await app.by_hand(TRENT, "Add-RecipientPermission", Identity=SUPPORT, Trustee="grace", AccessRights=["SendAs"])
        enable = await app.graph_by_hand(TRENT, "PATCH", f"/users/{support_user}", json={"accountEnabled": True})
        disable = await app.graph_by_hand(SYBIL, "PATCH", "/users/frank@contoso.com", json={"accountEnabled": False})
        assert enable.status_code == disable.status_code == 204

        rows = await auditlog.admin_records(auditlog.for_tenant(t, poll_first=0.01))
        audits = await t.graph.directory_audits()
        await t.directory.preload()
        frank = t.directory.lookup("frank@contoso.com")
        assert frank is not None
        return rows, audits, t.directory, {smtp_key(SUPPORT): support_user, smtp_key(frank.primary_smtp): frank.id}


@pytest.fixture(scope="module")
def history() -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], Any, dict[str, str]]]:
    app = TenantApp()
    app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)
    yield asyncio.run(_history(app))
    app.close()


def _attributed(history: Any, *found: DriftFinding) -> list[DriftFinding]:
    copies = [dataclasses.replace(f) for f in found]
    attribute(copies, *history)
    return copies


@pytest.mark.parametrize(("name", "by"), [
    ("dave's Full Access", TRENT),  # not sybil's grant to dave on billing
    ("carol's Send As", SYBIL),  # the mailbox and carol by their names, not their addresses
    ("erin's Full Access", SYBIL),  # the newest of the grants that could have caused it
    ("hidden from the GAL", TRENT),  # sybil's newer Set-Mailbox changed the display name only
    ("display name", SYBIL),
    ("sign-in allowed", TRENT),  # a Graph directory audit on the mailbox's own account
    ("unmanaged mailbox", SYBIL),  # who created it
    ("frank disabled", SYBIL),  # a directory audit on frank's account
    ("alice's Full Access gone", None),  # nobody touched alice's access: no guess
    ("grace's Send As", None),  # trent gave grace Send As on *support*, not on billing
])
def test_a_finding_is_attributed_to_the_record_that_explains_it(history: Any, name: str, by: str | None) -> None:
    (finding,) = _attributed(history, FINDINGS[name])
    assert finding.changed_by == by
    assert (finding.changed_at is None) == (by is None)


def test_every_finding_at_once_and_the_time_is_the_records(history: Any) -> None:
    rows, audits, _, _ = history
    found = _attributed(history, *FINDINGS.values())
    assert [f.changed_by for f in found] == [TRENT, SYBIL, SYBIL, TRENT, SYBIL, TRENT, SYBIL, SYBIL, None, None]
    dave = next(r for r in rows if r["operation"] == "Add-MailboxPermission" and r["userPrincipalName"] == TRENT
                and any(p["Value"] == "dave" for p in r["auditData"]["Parameters"]))
    assert found[0].changed_at == dave["createdDateTime"]
    enable = next(a for a in audits if (a["initiatedBy"].get("user") or {}).get("userPrincipalName") == TRENT)
    assert found[5].changed_at == str(enable["activityDateTime"])


def test_no_history_explains_nothing(history: Any) -> None:
    _, _, directory, ids = history
    found = [dataclasses.replace(f) for f in FINDINGS.values()]
    attribute(found, [], [], directory, ids)
    assert all(f.changed_by is None and f.changed_at is None and NOT_YET in f.detail for f in found)


def test_a_failed_attempt_explains_nothing(tenant_app: TenantApp) -> None:
    """trent gave dave Full Access; later sybil tried to take it away and failed (the audit log records
    failed cmdlets too, ``ResultStatus: False``). dave's access is trent's doing."""
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)

    async def run() -> tuple[list[DriftFinding], list[dict[str, Any]]]:
        async with tenant_app.tenant() as t:
            await create_mailbox(t.exchange, MailboxSpec(address=SUPPORT, display_name="Support", domains=DOMAINS))
            await tenant_app.by_hand(TRENT, "Add-MailboxPermission", Identity=SUPPORT, User="dave",
                                     AccessRights=["FullAccess"])
            failed = await tenant_app.attempt_by_hand(SYBIL, "Remove-MailboxPermission", Identity=SUPPORT,
                                                      User="dave", AccessRights=["FullAccess"], InheritanceType="Nope")
            assert failed.status_code == 400
            rows = await auditlog.admin_records(auditlog.for_tenant(t, poll_first=0.01))
            await t.directory.preload()
            found = [dataclasses.replace(FINDINGS["dave's Full Access"])]
            attribute(found, rows, [], t.directory, {})
            return found, rows

    (finding,), rows = asyncio.run(run())
    assert [(r["userPrincipalName"], r["auditData"]["ResultStatus"]) for r in rows
            if r["operation"].endswith("MailboxPermission")] == [(TRENT, "True"), (SYBIL, "False")]
    assert finding.changed_by == TRENT


def test_a_directory_audit_of_another_property_explains_no_sign_in_finding(tenant_app: TenantApp) -> None:
    """trent allows sign-in; later sybil renames the mailbox, which Exchange copies to the account's
    display name (a directory audit by Exchange). Sign-in is still trent's doing."""
    async def run() -> list[DriftFinding]:
        async with tenant_app.tenant() as t:
            await create_mailbox(t.exchange, MailboxSpec(address=SUPPORT, display_name="Support", domains=DOMAINS))
            user = str((await t.exchange.get_mailbox(SUPPORT) or {})["ExternalDirectoryObjectId"])
            await t.graph.set_account_enabled(user, False)
            enable = await tenant_app.graph_by_hand(TRENT, "PATCH", f"/users/{user}", json={"accountEnabled": True})
            assert enable.status_code == 204
            await tenant_app.by_hand(SYBIL, "Set-Mailbox", Identity=SUPPORT, DisplayName="Help")
            await t.directory.preload()
            found = [dataclasses.replace(FINDINGS["sign-in allowed"])]
            attribute(found, await auditlog.admin_records(auditlog.for_tenant(t)), await t.graph.directory_audits(),
                      t.directory, {smtp_key(SUPPORT): user})
            return found

    (finding,) = asyncio.run(run())
    assert finding.changed_by == TRENT


def test_a_change_newer_than_the_log_is_not_yet_in_it_never_someone_elses(tenant_app: TenantApp) -> None:
    """trent gives erin Full Access and takes it away; sybil gives it back, but the log does not show sybil's
    grant yet (ingestion delay). The newest record the log has is trent's removal, which does not explain
    access erin has: the finding says "not yet in the audit log", and names sybil once the record arrives."""
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)

    async def run() -> tuple[DriftFinding, DriftFinding]:
        fa = {"AccessRights": ["FullAccess"]}
        async with tenant_app.tenant() as t:
            await create_mailbox(t.exchange, MailboxSpec(address=SUPPORT, display_name="Support", domains=DOMAINS))
            await tenant_app.by_hand(TRENT, "Add-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            await tenant_app.by_hand(TRENT, "Remove-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            tenant_app.audit_settings(ingestion_delay_s=0.6)
            await tenant_app.by_hand(SYBIL, "Add-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            await t.directory.preload()
            client = auditlog.for_tenant(t, poll_first=0.01)
            early = [dataclasses.replace(FINDINGS["erin's Full Access"])]
            attribute(early, await auditlog.admin_records(client), [], t.directory, {})
            await asyncio.sleep(0.6)
            late = [dataclasses.replace(FINDINGS["erin's Full Access"])]
            attribute(late, await auditlog.admin_records(client), [], t.directory, {})
            return early[0], late[0]

    early, late = asyncio.run(run())
    assert (early.changed_by, early.changed_at, early.detail) == (None, None, NOT_YET)
    assert late.changed_by == SYBIL and late.changed_at and NOT_YET not in late.detail


def test_a_record_older_than_a_run_that_saw_no_drift_is_not_its_cause(tenant_app: TenantApp) -> None:
    """trent gave erin Full Access; a drift run then saw no such finding (say erin was in the file then). Since,
    sybil took it away and gave it back, and neither record is in the log yet. trent's grant matches, but it is
    older than the run that saw the tenant without the finding: "not yet in the audit log", not trent."""
    tenant_app.audit_settings(ingestion_delay_s=0, start_s=0, run_s=0)

    async def run() -> tuple[DriftFinding, DriftFinding]:
        fa = {"AccessRights": ["FullAccess"]}
        async with tenant_app.tenant() as t:
            await create_mailbox(t.exchange, MailboxSpec(address=SUPPORT, display_name="Support", domains=DOMAINS))
            await tenant_app.by_hand(TRENT, "Add-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            await asyncio.sleep(0.01)
            previous_run = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            tenant_app.audit_settings(ingestion_delay_s=60)
            await tenant_app.by_hand(SYBIL, "Remove-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            await tenant_app.by_hand(SYBIL, "Add-MailboxPermission", Identity=SUPPORT, User="erin", **fa)
            await t.directory.preload()
            records = await auditlog.admin_records(auditlog.for_tenant(t, poll_first=0.01))
            guarded, unguarded = (dataclasses.replace(FINDINGS["erin's Full Access"]) for _ in range(2))
            attribute([guarded], records, [], t.directory, {}, not_before={guarded.key: previous_run})
            attribute([unguarded], records, [], t.directory, {})
            return guarded, unguarded

    guarded, unguarded = asyncio.run(run())
    assert unguarded.changed_by == TRENT  # what the log alone suggests
    assert (guarded.changed_by, guarded.changed_at, guarded.detail) == (None, None, NOT_YET)
