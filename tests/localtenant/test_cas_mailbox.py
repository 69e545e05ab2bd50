"""Get-/Set-CASMailbox: a mailbox's client protocols, as Exchange Online answers them (set-casmailbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from test_exchange import new_shared, ok

if TYPE_CHECKING:
    from conftest import LocalTenant

SWITCHES = ("PopEnabled", "ImapEnabled", "ActiveSyncEnabled", "EwsEnabled", "MAPIEnabled", "OWAEnabled")


def cas(tenant: LocalTenant, identity: str) -> dict[str, Any]:
    return dict(ok(tenant.exchange("Get-CASMailbox", Identity=identity))["value"][0])


def test_a_new_shared_mailbox_starts_with_every_protocol_on(local_tenant: LocalTenant) -> None:
    created = new_shared(local_tenant, "sales")
    row = cas(local_tenant, "sales@contoso.com")
    assert all(row[s] is True for s in SWITCHES)
    assert row["SmtpClientAuthenticationDisabled"] is None  # the organisation's setting decides
    assert row["PrimarySmtpAddress"] == "sales@contoso.com" and row["Guid"] == created["Guid"]
    assert row["ExternalDirectoryObjectId"] == created["ExternalDirectoryObjectId"]


def test_set_cas_mailbox_changes_only_what_it_names_and_warns_when_nothing_changes(
        local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    body = ok(local_tenant.exchange("Set-CASMailbox", Identity="sales", PopEnabled=False, ImapEnabled="$false",
                                    SmtpClientAuthenticationDisabled=True))
    assert body["value"] == [] and body["@adminapi.warnings"] == []
    row = cas(local_tenant, "sales")
    assert (row["PopEnabled"], row["ImapEnabled"], row["EwsEnabled"], row["SmtpClientAuthenticationDisabled"]) == \
        (False, False, True, True)
    again = ok(local_tenant.exchange("Set-CASMailbox", Identity="sales", PopEnabled=False))
    assert again["@adminapi.warnings"] and "no settings of 'sales' have been modified" in again["@adminapi.warnings"][0]
    # $null hands SMTP AUTH back to the organisation's setting.
    ok(local_tenant.exchange("Set-CASMailbox", Identity="sales", SmtpClientAuthenticationDisabled=None))
    assert cas(local_tenant, "sales")["SmtpClientAuthenticationDisabled"] is None


def test_set_cas_mailbox_refuses_what_exchange_refuses(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    missing = local_tenant.exchange("Set-CASMailbox", Identity="ghost@contoso.com", PopEnabled=False)
    assert missing.status_code == 404
    assert "ManagementObjectNotFoundException" in missing.json()["error"]["details"][0]["message"]
    unknown = local_tenant.exchange("Set-CASMailbox", Identity="sales", FaxEnabled=False)
    assert unknown.status_code == 400 and "FaxEnabled" in unknown.text
    not_bool = local_tenant.exchange("Set-CASMailbox", Identity="sales", PopEnabled="sometimes")
    assert not_bool.status_code == 400 and "System.Boolean" in not_bool.text
    assert cas(local_tenant, "sales")["PopEnabled"] is True  # nothing half-applied


def test_get_cas_mailbox_lists_every_mailbox_in_pages_and_the_change_is_audited(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    ok(local_tenant.exchange("Set-CASMailbox", Identity="sales", EwsEnabled=False))
    everyone = ok(local_tenant.exchange("Get-CASMailbox", ResultSize="Unlimited"))["value"]
    mailboxes = ok(local_tenant.exchange("Get-Mailbox", ResultSize="Unlimited"))["value"]
    assert sorted(r["Guid"] for r in everyone) == sorted(m["Guid"] for m in mailboxes)  # users' mailboxes too
    assert [r["EwsEnabled"] for r in everyone if r["Name"] == "sales"] == [False]
    first = local_tenant.exchange("Get-CASMailbox", ResultSize="Unlimited", headers={"Prefer": "odata.maxpagesize=5"})
    assert len(ok(first)["value"]) == 5 and "@odata.nextLink" in first.json()
    audit = local_tenant.admin_audit(operationFilters=["Set-CASMailbox"])
    assert [(a["operation"], a["auditData"]["ObjectId"]) for a in audit] == [("Set-CASMailbox", "sales")]
