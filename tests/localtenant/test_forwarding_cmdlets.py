"""Inbox rules (New-/Get-/Enable-/Disable-/Remove-InboxRule) and hidden rules made by a MAPI client, as
Exchange Online shows them (get-inboxrule, new-inboxrule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from test_exchange import new_shared, ok

if TYPE_CHECKING:
    from conftest import LocalTenant


def rules(tenant: LocalTenant, mailbox: str, **extra: Any) -> list[dict[str, Any]]:
    return list(ok(tenant.exchange("Get-InboxRule", Mailbox=mailbox, **extra))["value"])


def test_forwarding_actions_show_who_gets_the_mail(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    body = ok(local_tenant.exchange("New-InboxRule", Mailbox="sales@contoso.com", Name="to partner",
                                    RedirectTo=["x@partner.example"], ForwardTo="alice@contoso.com"))
    [created] = body["value"]
    assert created["Identity"] == f"sales\\{created['RuleIdentity']}" and created["RuleIdentity"].isdigit()
    [row] = rules(local_tenant, "sales")
    assert row["Enabled"] is True and row["Name"] == "to partner"
    assert row["RedirectTo"] == ['"x@partner.example" [SMTP:x@partner.example]']
    [alice] = row["ForwardTo"]
    assert alice.startswith('"') and alice.endswith('" [SMTP:alice@contoso.com]')  # her display name, quoted
    assert row["ForwardAsAttachmentTo"] == [] and row["ForwardTo@odata.type"] == "#Collection(String)"
    duplicate = local_tenant.exchange("New-InboxRule", Mailbox="sales", Name="TO PARTNER", RedirectTo="y@z.example")
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    nobody = local_tenant.exchange("New-InboxRule", Mailbox="sales", Name="r2", ForwardTo="nobody")
    assert nobody.status_code == 404  # not a recipient and not an SMTP address


def test_disable_keeps_the_rule_and_hidden_rules_need_include_hidden(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    made = local_tenant.http.post("/_emulator/mapi/inbox-rules", json={  # type: ignore[union-attr]
        "mailbox": "sales@contoso.com", "name": "sync", "hidden": True, "ForwardAsAttachmentTo": ["e@evil.example"]})
    assert made.status_code == 200, made.text
    assert rules(local_tenant, "sales") == []
    [hidden] = rules(local_tenant, "sales", IncludeHidden=True)
    assert hidden["ForwardAsAttachmentTo"] == ['"e@evil.example" [SMTP:e@evil.example]']
    ok(local_tenant.exchange("Disable-InboxRule", Identity=hidden["RuleIdentity"], Mailbox="sales", Confirm=False))
    [after] = rules(local_tenant, "sales", IncludeHidden=True)
    assert after["Enabled"] is False and after["RuleIdentity"] == hidden["RuleIdentity"]  # disabled, not deleted
    again = ok(local_tenant.exchange("Disable-InboxRule", Identity=hidden["Identity"]))
    assert again["@adminapi.warnings"]  # already disabled: nothing changed
    missing = local_tenant.exchange("Disable-InboxRule", Identity="12345", Mailbox="sales")
    assert missing.status_code == 404
    # A rule made by a MAPI client is not in the admin audit log; a cmdlet's change is.
    audit = local_tenant.admin_audit("sales")
    assert {a["operation"] for a in audit if "InboxRule" in a["operation"]} == {"Disable-InboxRule"}


def test_mailbox_forwarding_fields(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    fresh = ok(local_tenant.exchange("Get-Mailbox", Identity="sales"))["value"][0]
    assert (fresh["ForwardingAddress"], fresh["ForwardingSmtpAddress"], fresh["DeliverToMailboxAndForward"]) == \
        (None, None, False)
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", ForwardingAddress="alice@contoso.com",
                             ForwardingSmtpAddress="x@partner.example", DeliverToMailboxAndForward=True))
    row = ok(local_tenant.exchange("Get-Mailbox", Identity="sales"))["value"][0]
    alice = ok(local_tenant.exchange("Get-Recipient", Identity="alice@contoso.com"))["value"][0]
    assert row["ForwardingAddress"] == alice["Name"]  # the recipient's identity, not an SMTP address
    assert row["ForwardingSmtpAddress"] == "smtp:x@partner.example" and row["DeliverToMailboxAndForward"] is True
    ghost = local_tenant.exchange("Set-Mailbox", Identity="sales", ForwardingAddress="ghost@contoso.com",
                                  DisplayName="Renamed")
    assert ghost.status_code == 404  # ForwardingAddress must be a recipient; nothing of the call is applied
    bad = local_tenant.exchange("Set-Mailbox", Identity="sales", ForwardingSmtpAddress="not an address")
    assert bad.status_code == 400 and "ProxyAddress" in bad.text
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", ForwardingAddress=None, ForwardingSmtpAddress=None))
    row = ok(local_tenant.exchange("Get-Mailbox", Identity="sales"))["value"][0]
    assert (row["ForwardingAddress"], row["ForwardingSmtpAddress"], row["DisplayName"]) == (None, None, "Sales")


def test_mail_contacts_and_mail_users_are_recipients_whose_mail_leaves(local_tenant: LocalTenant) -> None:
    contact = ok(local_tenant.exchange("New-MailContact", Name="Partner Desk",
                                       ExternalEmailAddress="desk@partner.example"))
    user = ok(local_tenant.exchange("New-MailUser", Name="contractor", ExternalEmailAddress="contractor@gmail.com",
                                    MicrosoftOnlineServicesID="contractor@contoso.com", Password="x"))
    assert [(r["RecipientTypeDetails"], r["PrimarySmtpAddress"]) for r in contact["value"] + user["value"]] == [
        ("MailContact", "desk@partner.example"), ("MailUser", "contractor@contoso.com")]
    found = ok(local_tenant.exchange("Get-Recipient", Identity="contractor@contoso.com"))["value"][0]
    assert (found["RecipientType"], found["RecipientTypeDetails"]) == ("MailUser", "MailUser")
    outside = local_tenant.exchange("New-MailUser", Name="x", MicrosoftOnlineServicesID="x@fabrikam.com",
                                    ExternalEmailAddress="x@gmail.com", Password="x")
    assert outside.status_code == 400  # its own address must be in an accepted domain
    new_shared(local_tenant, "sales")  # Exchange forwards to either without a word: a ForwardingAddress is a recipient
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", ForwardingAddress="contractor@contoso.com"))
