"""Group membership on the local tenant's Graph: a user's memberships (direct and transitive, with the
``microsoft.graph.group`` cast), a group's members (direct and transitive), paging, ``$select``, and the
permissions each needs. The seed nests payroll-team (peggy, faythe) in finance-team and hr-team."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import pytest
from localtenant.seed import SeedError, seed
from localtenant.store import Store

if TYPE_CHECKING:
    from conftest import LocalTenant


def _group_id(local_tenant: LocalTenant, mail: str) -> str:
    found = local_tenant.exchange("Get-Recipient", Identity=mail)
    assert found.status_code == 200, found.text
    return str(found.json()["value"][0]["ExternalDirectoryObjectId"])


def test_a_users_transitive_groups_follow_nesting_and_direct_ones_do_not(local_tenant: LocalTenant) -> None:
    peggy = local_tenant.graph("GET", "/users/peggy@contoso.com").json()["id"]
    for key in (peggy, "Peggy@Contoso.com"):  # the id or the UPN, as Graph accepts either
        resp = local_tenant.graph("GET", f"/users/{key}/transitiveMemberOf/microsoft.graph.group",
                                  params={"$select": "id,displayName,mail"})
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert doc["@odata.context"].endswith("$metadata#groups(id,displayName,mail)")
        assert sorted(g["mail"] for g in doc["value"]) == [
            "finance-team@contoso.com", "hr-team@contoso.com", "payroll-team@contoso.com"]
        assert all("@odata.type" not in g for g in doc["value"])  # a cast collection is of one type
    direct = local_tenant.graph("GET", "/users/peggy@contoso.com/memberOf").json()["value"]
    assert [(g["@odata.type"], g["mail"], g["securityEnabled"]) for g in direct] == [
        ("#microsoft.graph.group", "payroll-team@contoso.com", True)]
    nobody = local_tenant.graph("GET", "/users/mallory@contoso.com/transitiveMemberOf").json()
    assert nobody["value"] == [] and "@odata.nextLink" not in nobody
    missing = local_tenant.graph("GET", "/users/ghost@contoso.com/transitiveMemberOf")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    bad_cast = local_tenant.graph("GET", "/users/peggy@contoso.com/transitiveMemberOf/microsoft.graph.user")
    assert bad_cast.status_code == 400 and bad_cast.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_group_members_direct_transitive_paged_and_selected(local_tenant: LocalTenant) -> None:
    finance = _group_id(local_tenant, "finance-team@contoso.com")
    direct = local_tenant.graph("GET", f"/groups/{finance}/members").json()["value"]
    assert [(m["@odata.type"], m.get("userPrincipalName") or m.get("mail")) for m in direct] == [
        ("#microsoft.graph.user", "alice@contoso.com"), ("#microsoft.graph.user", "bob@contoso.com"),
        ("#microsoft.graph.user", "quentin@contoso.com"), ("#microsoft.graph.group", "payroll-team@contoso.com")]
    seen: list[str] = []
    path, params = f"/groups/{finance}/transitiveMembers/microsoft.graph.user", {"$top": "2", "$select": "id,mail"}
    pages = 0
    while True:
        resp = local_tenant.graph("GET", path, params=params)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        pages += 1
        assert all(set(u) == {"id", "mail"} for u in doc["value"])
        seen += [u["mail"] for u in doc["value"]]
        link = doc.get("@odata.nextLink")
        if not link:
            break
        parts = urlsplit(link)
        path, params = parts.path.split("/v1.0", 1)[1], dict(parse_qsl(parts.query))
    assert pages == 3 and sorted(seen) == ["alice@contoso.com", "bob@contoso.com", "faythe@contoso.com",
                                           "peggy@contoso.com", "quentin@contoso.com"]
    assert local_tenant.graph("GET", f"/groups/{finance}/members", params={"$top": "0"}).status_code == 400
    assert local_tenant.graph("GET", f"/groups/{finance}/members", params={"$select": "shoeSize"}).status_code == 400
    assert local_tenant.graph("GET", "/groups/finance-team@contoso.com/members").status_code == 404  # ids only


def test_membership_reads_need_a_group_permission(local_tenant: LocalTenant) -> None:
    """GroupMember.Read.All (or Group.Read.All, Directory.Read.All) reads members; User.Read.All alone lists a
    user's groups with their id and type only, and may not list a group's members."""
    finance = _group_id(local_tenant, "finance-team@contoso.com")
    for app, roles in (("groups-reader", ["GroupMember.Read.All"]), ("users-only", ["User.Read.All"]),
                       ("nothing", ["MailboxSettings.Read"])):
        local_tenant._client().put(f"/_emulator/apps/{app}", json={"roles": {
            "https://graph.microsoft.com": roles}}).raise_for_status()
    members = local_tenant.graph("GET", f"/groups/{finance}/members", client_id="groups-reader")
    assert members.status_code == 200
    # GroupMember.Read.All without User.Read.All: users in the list are there, limited to id and type
    user_rows = [m for m in members.json()["value"] if m["@odata.type"] == "#microsoft.graph.user"]
    assert len(user_rows) == 3 and all(m["id"] and m["displayName"] is None for m in user_rows)
    assert local_tenant.graph("GET", f"/groups/{finance}/members", client_id="users-only").status_code == 403
    limited = local_tenant.graph("GET", "/users/peggy@contoso.com/transitiveMemberOf/microsoft.graph.group",
                                 client_id="users-only")
    assert limited.status_code == 200
    assert len(limited.json()["value"]) == 3 and all(g["id"] and g["displayName"] is None and g["mail"] is None
                                                     for g in limited.json()["value"])
    refused = local_tenant.graph("GET", "/users/peggy@contoso.com/transitiveMemberOf", client_id="nothing")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authorization_RequestDenied"


def test_seed_members_name_the_bad_entry_and_refuse_a_cycle(tmp_path: Path) -> None:
    tenant = {"id": "6e2f4d3a-9c1b-4f7e-8a5d-2b0c9e1f4a73", "initial_domain": "contoso.onmicrosoft.com",
              "accepted_domains": ["contoso.com"]}
    users = [{"upn": "ann@contoso.com", "display_name": "Ann"}]
    for members, expected in (
            ([["ann@contoso.com", "ghost@contoso.com"], []], "groups[0].members[1]: ghost@contoso.com"),
            ([["b@contoso.com"], ["a@contoso.com"]], "groups[1].members[0]: a@contoso.com: A group cannot")):
        groups = [{"name": n, "mail": f"{n}@contoso.com", "members": m} for n, m in zip("ab", members, strict=True)]
        with pytest.raises(SeedError, match=re.escape(expected)):
            seed(Store(tmp_path / f"{len(expected)}.db"), {"tenant": tenant, "users": users, "groups": groups},
                 "dir.yaml")
