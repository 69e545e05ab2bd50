"""Exchange admin API (InvokeCommand) against the running emulator, in the documented
wire shapes (raw httpx, as mailroom's client sends them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"

ACE_PRESENT = "The appropriate access control entry is already present on the object"
ACE_MISSING = "because the ACE doesn't exist on the object"


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["adminapi.warnings@odata.type"] == "#Collection(String)"
    assert isinstance(body["@adminapi.warnings"], list)
    assert isinstance(body["value"], list)
    return body


def new_shared(tenant: LocalTenant, name: str, **extra: Any) -> dict[str, Any]:
    body = ok(tenant.exchange("New-Mailbox", Shared=True, Name=name, DisplayName=name.title(),
                              PrimarySmtpAddress=f"{name}@contoso.com", **extra))
    return dict(body["value"][0])


def mailbox(tenant: LocalTenant, identity: str, **extra: Any) -> dict[str, Any]:
    return dict(ok(tenant.exchange("Get-Mailbox", Identity=identity, **extra))["value"][0])


def test_new_shared_mailbox_shape_and_entra_user(local_tenant: LocalTenant) -> None:
    created = new_shared(local_tenant, "sales")
    assert created["RecipientTypeDetails"] == "SharedMailbox"
    assert created["RecipientType"] == "UserMailbox"
    assert created["IsShared"] is True
    assert created["EmailAddresses"] == ["SMTP:sales@contoso.com", "smtp:sales@contoso.onmicrosoft.com"]
    assert created["EmailAddresses@odata.type"] == "#Collection(String)"
    assert created["Guid@odata.type"] == "#Guid" and created["ExchangeGuid@data.type"] == "System.Guid"
    assert created["WhenCreatedUTC"].endswith("Z") and created["WhenChanged"].endswith("+00:00")
    assert created["AuditEnabled"] is True and "Owner" in created["DefaultAuditSet"]
    assert created["GrantSendOnBehalfTo"] == [] and created["MessageCopyForSentAsEnabled"] is False
    # Every identity form resolves, case-insensitively.
    for identity in ("SALES@contoso.com", "sales", "sales@contoso.onmicrosoft.com", created["Guid"],
                     created["ExternalDirectoryObjectId"], created["UserPrincipalName"].upper()):
        assert mailbox(local_tenant, identity)["Guid"] == created["Guid"]
    # The real service creates the Entra user with sign-in enabled; Graph sees it at once.
    user = local_tenant.graph("GET", f"/users/{created['ExternalDirectoryObjectId']}",
                              params={"$select": "accountEnabled,mail,userPrincipalName"}).json()
    assert user["accountEnabled"] is True and user["mail"] == "sales@contoso.com"


def test_get_mailbox_filters_shared_and_unknown_identity(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    new_shared(local_tenant, "support")
    shared = ok(local_tenant.exchange("Get-Mailbox", RecipientTypeDetails="SharedMailbox", ResultSize="Unlimited"))
    assert [m["Name"] for m in shared["value"]] == ["sales", "support"]
    everyone = ok(local_tenant.exchange("Get-Mailbox", ResultSize="Unlimited"))["value"]
    # seeded user mailboxes (oscar included) + a room and an equipment mailbox + 2 shared
    assert len(everyone) == 31 + 2 + 2
    missing = local_tenant.exchange("Get-Mailbox", Identity="ghost@contoso.com")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "NotFound"
    ident, exc_type, text = error["details"][0]["message"].split("|", 2)
    assert exc_type.endswith("ManagementObjectNotFoundException") and "ghost@contoso.com" in text
    assert "ghost@contoso.com" in error["innererror"]["internalexception"]["message"]


def test_aliases_add_remove_replace_and_primary_swap(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    change = {"@odata.type": "#Exchange.GenericHashTable", "add": ["smtp:orders@contoso.com", "quotes@contoso.com"]}
    assert ok(local_tenant.exchange("Set-Mailbox", Identity="sales", EmailAddresses=change))["value"] == []
    got = mailbox(local_tenant, "orders@contoso.com")
    assert "smtp:orders@contoso.com" in got["EmailAddresses"] and "smtp:quotes@contoso.com" in got["EmailAddresses"]
    # Remove with the other key case, value as a bare string; no @odata.type (lenient like the service).
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", EmailAddresses={"Remove": "smtp:quotes@contoso.com"}))
    assert "smtp:quotes@contoso.com" not in mailbox(local_tenant, "sales")["EmailAddresses"]
    # Adding SMTP: makes a new primary and demotes the old one.
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", EmailAddresses={"Add": "SMTP:team-sales@contoso.com"}))
    got = mailbox(local_tenant, "sales")
    assert got["PrimarySmtpAddress"] == "team-sales@contoso.com"
    assert "smtp:sales@contoso.com" in got["EmailAddresses"]
    # A plain array replaces the whole list.
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales",
                             EmailAddresses=["SMTP:sales@contoso.com", "smtp:sales@contoso.onmicrosoft.com"]))
    assert mailbox(local_tenant, "sales")["EmailAddresses"] == ["SMTP:sales@contoso.com",
                                                                 "smtp:sales@contoso.onmicrosoft.com"]
    # Removing the primary is refused; a domain outside the accepted domains too.
    assert local_tenant.exchange("Set-Mailbox", Identity="sales",
                                 EmailAddresses={"Remove": "sales@contoso.com"}).status_code == 400
    assert local_tenant.exchange("Set-Mailbox", Identity="sales",
                                 EmailAddresses={"Add": "x@fabrikam.com"}).status_code == 400


def test_alias_collision_is_proxy_address_exists(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    resp = local_tenant.exchange("Set-Mailbox", Identity="sales", EmailAddresses={"Add": "smtp:ALICE@contoso.com"})
    assert resp.status_code == 400
    detail = resp.json()["error"]["details"][0]["message"]
    assert "ProxyAddressExistsException" in detail
    assert 'The proxy address "SMTP:ALICE@contoso.com" is already being used' in detail
    # Across mailboxes and on create as well.
    clash = local_tenant.exchange("New-Mailbox", Shared=True, Name="sales2", PrimarySmtpAddress="Sales@Contoso.com")
    assert clash.status_code == 400 and "ProxyAddressExistsException" in clash.text
    dup_name = local_tenant.exchange("New-Mailbox", Shared=True, Name="SALES", PrimarySmtpAddress="s3@contoso.com")
    assert dup_name.status_code == 400 and "already being used" in dup_name.text


def test_full_access_grant_duplicate_and_revoke(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    add = {"Identity": "sales@contoso.com", "User": "alice@contoso.com", "AccessRights": ["FullAccess"],
           "InheritanceType": "All", "AutoMapping": False, "Confirm": False}
    first = ok(local_tenant.exchange("Add-MailboxPermission", **add))
    assert first["value"][0]["User"] == "alice@contoso.com" and first["@adminapi.warnings"] == []
    again = ok(local_tenant.exchange("Add-MailboxPermission", **add))
    assert again["value"] == [] and again["@adminapi.warnings"][0].startswith(ACE_PRESENT)
    ok(local_tenant.exchange("Add-MailboxPermission", Identity="sales", User="finance-team", AccessRights="FullAccess"))
    rows = ok(local_tenant.exchange("Get-MailboxPermission", Identity="sales"))["value"]
    by_user = {r["User"]: r for r in rows}
    assert by_user["NT AUTHORITY\\SELF"]["AccessRights"] == ["FullAccess, ReadPermission"]
    assert by_user["alice@contoso.com"]["AccessRights"] == ["FullAccess"]
    assert by_user["alice@contoso.com"]["InheritanceType"] == "All" and by_user["alice@contoso.com"]["Deny"] is False
    assert "finance-team" in by_user  # groups show by Name
    only = ok(local_tenant.exchange("Get-MailboxPermission", Identity="sales", User="alice"))["value"]
    assert [r["User"] for r in only] == ["alice@contoso.com"]
    remove = {k: v for k, v in add.items() if k != "AutoMapping"}
    assert ok(local_tenant.exchange("Remove-MailboxPermission", **remove))["@adminapi.warnings"] == []
    gone = ok(local_tenant.exchange("Remove-MailboxPermission", **remove))
    assert ACE_MISSING in gone["@adminapi.warnings"][0]
    users = [r["User"] for r in ok(local_tenant.exchange("Get-MailboxPermission", Identity="sales"))["value"]]
    assert "alice@contoso.com" not in users
    ghost = local_tenant.exchange("Add-MailboxPermission", Identity="sales", User="ghost@contoso.com",
                                  AccessRights=["FullAccess"])
    assert ghost.status_code == 404 and "ManagementObjectNotFoundException" in ghost.text


def test_send_as_grant_and_tenant_wide_listing(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    new_shared(local_tenant, "support")
    grant = {"Identity": "sales", "Trustee": "bob@contoso.com", "AccessRights": ["SendAs"], "Confirm": False}
    assert ok(local_tenant.exchange("Add-RecipientPermission", **grant))["value"][0]["Trustee"] == "bob@contoso.com"
    assert ACE_PRESENT in ok(local_tenant.exchange("Add-RecipientPermission", **grant))["@adminapi.warnings"][0]
    ok(local_tenant.exchange("Add-RecipientPermission", Identity="support", Trustee="support-team",
                             AccessRights="SendAs"))
    one = ok(local_tenant.exchange("Get-RecipientPermission", Identity="sales"))["value"]
    assert [(r["Trustee"], r["AccessRights"]) for r in one] == [("NT AUTHORITY\\SELF", ["SendAs"]),
                                                                ("bob@contoso.com", ["SendAs"])]
    everything = ok(local_tenant.exchange("Get-RecipientPermission", ResultSize="Unlimited"))["value"]
    grants = {(r["Identity"], r["Trustee"]) for r in everything if r["Trustee"] != "NT AUTHORITY\\SELF"}
    assert grants == {("sales", "bob@contoso.com"), ("support", "support-team")}
    assert sum(r["Trustee"] == "NT AUTHORITY\\SELF" for r in everything) == 35  # one per mailbox
    by_trustee = ok(local_tenant.exchange("Get-RecipientPermission", Trustee="bob@contoso.com"))["value"]
    assert [r["Identity"] for r in by_trustee] == ["sales"]
    ok(local_tenant.exchange("Remove-RecipientPermission", **grant))
    assert ACE_MISSING in ok(local_tenant.exchange("Remove-RecipientPermission", **grant))["@adminapi.warnings"][0]


def test_send_on_behalf_and_mailbox_flags(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    ok(local_tenant.exchange(
        "Set-Mailbox", Identity="sales",
        GrantSendOnBehalfTo={"@odata.type": "#Exchange.GenericHashTable", "add": ["carol@contoso.com", "dave"]},
        MessageCopyForSentAsEnabled=True, MessageCopyForSendOnBehalfEnabled=True, HiddenFromAddressListsEnabled=True,
        AuditDelegate={"@odata.type": "#Exchange.GenericHashTable", "Remove": "MailItemsAccessed, SendAs"},
        DisplayName="Sales Team"))
    got = mailbox(local_tenant, "sales", IncludeGrantSendOnBehalfToWithDisplayNames=True)
    assert got["GrantSendOnBehalfTo"] == ["carol", "dave"]  # recipient Names, as the service returns them
    assert got["GrantSendOnBehalfToWithDisplayNames"] == ["Carol Clarke", "Dave Davies"]
    assert got["MessageCopyForSentAsEnabled"] and got["MessageCopyForSendOnBehalfEnabled"]
    assert got["HiddenFromAddressListsEnabled"] and got["DisplayName"] == "Sales Team"
    assert "SendAs" not in got["AuditDelegate"] and "Delegate" not in got["DefaultAuditSet"]
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", GrantSendOnBehalfTo={"Remove": "carol@contoso.com"}))
    assert mailbox(local_tenant, "sales")["GrantSendOnBehalfTo"] == ["dave"]
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", GrantSendOnBehalfTo=["erin@contoso.com"]))
    assert mailbox(local_tenant, "sales")["GrantSendOnBehalfTo"] == ["erin"]
    noop = ok(local_tenant.exchange("Set-Mailbox", Identity="sales", DisplayName="Sales Team"))
    assert "no settings of 'sales' have been modified" in noop["@adminapi.warnings"][0]
    bad = local_tenant.exchange("Set-Mailbox", Identity="sales", AuditOwner={"Add": "Teleport"})
    assert bad.status_code == 400 and "ParameterBindingException" in bad.text
    unknown = local_tenant.exchange("Set-Mailbox", Identity="sales", Frobnicate=True)
    assert unknown.status_code == 400 and "Frobnicate" in unknown.text
    ghost = local_tenant.exchange("Set-Mailbox", Identity="sales", GrantSendOnBehalfTo={"Add": "ghost"})
    assert ghost.status_code == 404


def test_remove_mailbox_soft_deletes_and_keeps_addresses_reserved(local_tenant: LocalTenant) -> None:
    created = new_shared(local_tenant, "sales")
    ok(local_tenant.exchange("Remove-Mailbox", Identity="sales", Confirm=False))
    assert local_tenant.exchange("Get-Mailbox", Identity="sales").status_code == 404
    soft = mailbox(local_tenant, "sales", SoftDeletedMailbox=True)
    assert soft["IsSoftDeletedByRemove"] is True and soft["WhenSoftDeleted"]
    assert local_tenant.graph("GET", f"/users/{created['ExternalDirectoryObjectId']}").status_code == 404
    reuse = local_tenant.exchange("New-Mailbox", Shared=True, Name="sales", PrimarySmtpAddress="sales@contoso.com")
    assert reuse.status_code == 400 and "ProxyAddressExistsException" in reuse.text
    ok(local_tenant.exchange("Remove-Mailbox", Identity="sales", PermanentlyDelete=True, Confirm=False))
    new_shared(local_tenant, "sales")


def test_unknown_cmdlet_is_empty_403_and_bad_body_400(local_tenant: LocalTenant) -> None:
    resp = local_tenant.exchange("Get-SecretSauce")
    assert resp.status_code == 403 and resp.content == b""
    token = local_tenant.token(EXCHANGE_SCOPE)
    bad = httpx.post(local_tenant.exchange_url, content=b"{not json", headers={"Authorization": f"Bearer {token}"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"


def test_batch_of_ten(local_tenant: LocalTenant) -> None:
    token = local_tenant.token(EXCHANGE_SCOPE)
    requests = [{"id": str(i), "method": "POST", "url": local_tenant.exchange_url,
                 "headers": {"X-CmdletName": "New-Mailbox"},
                 "body": {"CmdletInput": {"CmdletName": "New-Mailbox", "Parameters": {
                     "Shared": True, "Name": f"team{i}", "PrimarySmtpAddress": f"team{i}@contoso.com"}}}}
                for i in range(9)]
    requests.append({"id": "9", "method": "POST", "url": "InvokeCommand",
                     "body": {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "nobody"}}}})
    url = local_tenant.exchange_url.replace("InvokeCommand", "$batch")
    resp = httpx.post(url, json={"requests": requests}, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    items = resp.json()["responses"]
    assert [i["id"] for i in items] == [str(i) for i in range(10)]
    assert [i["status"] for i in items] == [200] * 9 + [404]
    assert items[0]["body"]["value"][0]["PrimarySmtpAddress"] == "team0@contoso.com"
    metrics = local_tenant.metrics()
    assert metrics["cmdlets"]["New-Mailbox"] == 9 and metrics["batch_items"] == 10
    eleven = httpx.post(url, json={"requests": requests + [requests[0]]}, headers={"Authorization": f"Bearer {token}"})
    assert eleven.status_code == 400


def test_select_and_state_survives_restart(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    local_tenant.exchange("Add-RecipientPermission", Identity="sales", Trustee="bob", AccessRights=["SendAs"])
    token = local_tenant.token(EXCHANGE_SCOPE)
    local_tenant.restart()
    body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "sales"}}}
    resp = httpx.post(local_tenant.exchange_url + "?$select=Name,Guid", json=body,
                      headers={"Authorization": f"Bearer {token}"})  # the old token is still valid
    row = ok(resp)["value"][0]
    assert set(row) == {"Name", "Guid", "Guid@odata.type", "Guid@data.type"}
    trustees = [r["Trustee"] for r in ok(local_tenant.exchange("Get-RecipientPermission", Identity="sales"))["value"]]
    assert "bob@contoso.com" in trustees


def test_mailbox_permissions_list_the_inherited_entries_after_the_explicit_ones(local_tenant: LocalTenant) -> None:
    new_shared(local_tenant, "sales")
    ok(local_tenant.exchange("Add-MailboxPermission", Identity="sales", User="alice", AccessRights="FullAccess"))
    rows = ok(local_tenant.exchange("Get-MailboxPermission", Identity="sales"))["value"]
    assert [r["User"] for r in rows[:2]] == ["NT AUTHORITY\\SELF", "alice@contoso.com"]
    inherited = rows[2:]
    assert inherited and all(r["IsInherited"] is True for r in inherited)
    denied = {r["User"].split("\\")[1] for r in inherited if r["Deny"]}
    assert denied == {"Administrator", "Domain Admins", "Enterprise Admins", "Organization Management"}
    assert {"NT AUTHORITY\\SYSTEM", "EMUPR01A001\\Exchange Trusted Subsystem"} <= {r["User"] for r in inherited}
    only = ok(local_tenant.exchange("Get-MailboxPermission", Identity="sales", User="alice"))["value"]
    assert [r["User"] for r in only] == ["alice@contoso.com"]  # -User: that trustee's entries alone


def test_accepted_domains_and_custom_attributes(local_tenant: LocalTenant) -> None:
    domains = ok(local_tenant.exchange("Get-AcceptedDomain"))["value"]
    by_name = {d["DomainName"]: d for d in domains}
    assert by_name["contoso.com"]["Default"] is True and by_name["contoso.com"]["InitialDomain"] is False
    assert by_name["contoso.onmicrosoft.com"]["InitialDomain"] is True
    new_shared(local_tenant, "sales")
    ok(local_tenant.exchange("Set-Mailbox", Identity="sales", CustomAttribute3="Finance"))
    row = ok(local_tenant.exchange("Get-Mailbox", Identity="sales"))["value"][0]
    assert row["CustomAttribute3"] == "Finance" and row["CustomAttribute1"] == ""
