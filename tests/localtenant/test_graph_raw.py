"""Graph wire details checked with raw httpx: $batch, query validation, user lifecycle,
directoryAudits filters and the error envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import LocalTenant


def test_batch_with_depends_on_absolute_urls_and_424(local_tenant: LocalTenant) -> None:
    alice = local_tenant.graph("GET", "/users/alice@contoso.com").json()["id"]
    requests = [
        {"id": "1", "method": "GET", "url": "/users/alice@contoso.com/mailboxSettings?$select=userPurpose"},
        {"id": "2", "method": "PATCH", "url": f"{local_tenant.base_url}/v1.0/users/{alice}",
         "headers": {"Content-Type": "application/json"}, "body": {"accountEnabled": False}},
        {"id": "3", "method": "GET", "url": "users?$filter=accountEnabled eq false&$count=true&$select=id",
         "headers": {"ConsistencyLevel": "eventual"}, "depends_on": ["2"]},
        {"id": "4", "method": "GET", "url": "/users/ghost@contoso.com"},
        {"id": "5", "method": "GET", "url": "/users/bob@contoso.com", "dependsOn": ["4"]},
    ]
    resp = local_tenant.graph("POST", "/$batch", json={"requests": requests})
    assert resp.status_code == 200
    items = {r["id"]: r for r in resp.json()["responses"]}
    assert items["1"]["status"] == 200 and items["1"]["body"]["userPurpose"] == "user"
    assert items["2"]["status"] == 204 and "body" not in items["2"]
    assert items["3"]["status"] == 200 and items["3"]["body"]["@odata.count"] == 4  # oscar, alice, room-1, projector
    assert items["4"]["status"] == 404 and items["4"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["5"]["status"] == 424
    metrics = local_tenant.metrics()
    assert metrics["batch_items"] == 5 and metrics["endpoints"]["PATCH /v1.0/users/{id}"] == 1
    too_many = [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]
    assert local_tenant.graph("POST", "/$batch", json={"requests": too_many}).status_code == 400
    forward = [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
               {"id": "2", "method": "GET", "url": "/users"}]
    assert local_tenant.graph("POST", "/$batch", json={"requests": forward}).status_code == 400


def test_query_validation_errors(local_tenant: LocalTenant) -> None:
    no_header = local_tenant.graph("GET", "/users", params={"$count": "true"})
    assert no_header.status_code == 400
    error = no_header.json()["error"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert local_tenant.graph("GET", "/users", params={"$select": "id,shoeSize"}).status_code == 400
    assert local_tenant.graph("GET", "/users", params={"$top": "1000"}).status_code == 400
    assert local_tenant.graph("GET", "/users", params={"$filter": "mail ne 'a@contoso.com'"}).status_code == 400
    advanced = local_tenant.graph("GET", "/users", params={"$filter": "endswith(mail,'@contoso.com')",
                                                          "$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert advanced.status_code == 200 and advanced.json()["@odata.count"] == 31 + 2  # people + room and equipment
    in_list = local_tenant.graph("GET", "/users", params={
        "$filter": "userPrincipalName in ('alice@contoso.com','bob@contoso.com') and startswith(displayName,'B')"})
    assert [u["userPrincipalName"] for u in in_list.json()["value"]] == ["bob@contoso.com"]
    syntax = local_tenant.graph("GET", "/users", params={"$filter": "mail eq"})
    assert syntax.status_code == 400


def test_user_create_update_delete_and_audit_filters(local_tenant: LocalTenant) -> None:
    created = local_tenant.graph("POST", "/users", json={
        "accountEnabled": True, "displayName": "Temp Worker", "mailNickname": "temp",
        "userPrincipalName": "temp@contoso.com", "passwordProfile": {"password": "P@ssw0rd!"}})
    assert created.status_code == 201
    user_id = created.json()["id"]
    renamed = local_tenant.graph("PATCH", f"/users/{user_id}", json={"@odata.type": "#microsoft.graph.user",
                                                                     "displayName": "Temporary Worker"},
                                 username="heidi@contoso.com")
    assert renamed.status_code == 204 and renamed.content == b""
    assert local_tenant.graph("PATCH", f"/users/{user_id}", json={"proxyAddresses": []}).status_code == 400
    assert local_tenant.graph("PATCH", f"/users/{user_id}", json={"accountEnabled": "no"}).status_code == 400
    # No mailbox: mailbox settings are not available, as for an unlicensed user.
    settings = local_tenant.graph("GET", f"/users/{user_id}/mailboxSettings")
    assert settings.status_code == 404 and settings.json()["error"]["code"] == "MailboxNotEnabledForRESTAPI"
    assert local_tenant.graph("DELETE", f"/users/{user_id}").status_code == 204
    assert local_tenant.graph("GET", f"/users/{user_id}").status_code == 404
    audits = local_tenant.graph("GET", "/auditLogs/directoryAudits", params={
        "$filter": f"activityDateTime ge 2020-01-01T00:00:00Z and targetResources/any(t:t/id eq '{user_id}')"})
    entries = audits.json()["value"]
    assert [e["activityDisplayName"] for e in entries] == ["Delete user", "Update user", "Add user"]
    assert entries[1]["initiatedBy"]["user"]["userPrincipalName"] == "heidi@contoso.com"
    assert entries[1]["activityDateTime"].endswith("Z")
    future = local_tenant.graph("GET", "/auditLogs/directoryAudits",
                                params={"$filter": "activityDateTime ge 2099-01-01T00:00:00Z"})
    assert future.json()["value"] == []
    paged = local_tenant.graph("GET", "/auditLogs/directoryAudits", params={"$top": "2"}).json()
    assert len(paged["value"]) == 2 and paged["@odata.nextLink"].startswith(local_tenant.base_url)


def test_deleting_a_shared_mailbox_user_soft_deletes_the_mailbox(local_tenant: LocalTenant) -> None:
    created = local_tenant.exchange("New-Mailbox", Shared=True, Name="sales", PrimarySmtpAddress="sales@contoso.com")
    user_id = created.json()["value"][0]["ExternalDirectoryObjectId"]
    assert local_tenant.graph("DELETE", f"/users/{user_id}").status_code == 204
    assert local_tenant.exchange("Get-Mailbox", Identity="sales").status_code == 404
    soft = local_tenant.exchange("Get-Mailbox", Identity="sales", SoftDeletedMailbox=True)
    assert soft.json()["value"][0]["IsSoftDeletedByRemove"] is True
