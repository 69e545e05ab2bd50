"""The emulator refuses what Exchange refuses and reports recipient types as Exchange does,
for the mailboxes mailroom must never take for shared ones: people's mailboxes, rooms,
equipment, and groups (the shipped seed has a room, room-1@, and equipment, projector@)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import LocalTenant

PROXY_EXISTS = "Microsoft.Exchange.Configuration.ObjectModel.ProxyAddressExistsException"
ALREADY_EXISTS = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"


def get_mailbox(tenant: LocalTenant, identity: str, **extra: Any) -> dict[str, Any]:
    resp = tenant.exchange("Get-Mailbox", Identity=identity, **extra)
    assert resp.status_code == 200, resp.text
    (row,) = resp.json()["value"]
    return dict(row)


def failure(resp: Any) -> tuple[str, str]:
    """(exception type, text) of an Exchange error envelope."""
    _, exc_type, text = resp.json()["error"]["details"][0]["message"].split("|", 2)
    return exc_type, text


@pytest.mark.parametrize(("identity", "rtd", "shared", "resource"), [
    ("alice@contoso.com", "UserMailbox", False, None),
    ("alice@contoso.onmicrosoft.com", "UserMailbox", False, None),  # a secondary address
    ("bob", "UserMailbox", False, None),  # by Name/alias
    ("oscar@contoso.com", "UserMailbox", False, None),  # a leaver, sign-in blocked: still a person
    ("room-1@contoso.com", "RoomMailbox", False, "Room"),
    ("projector@contoso.com", "EquipmentMailbox", False, "Equipment"),
])
def test_get_mailbox_reports_the_real_type(local_tenant: LocalTenant, identity: str, rtd: str, shared: bool,
                                           resource: str | None) -> None:
    row = get_mailbox(local_tenant, identity)
    assert row["RecipientTypeDetails"] == rtd and row["RecipientType"] == "UserMailbox"
    assert row["IsShared"] is shared and row["IsResource"] is (resource is not None)
    assert row["ResourceType"] == resource


def test_resources_are_listed_by_type_and_in_graph(local_tenant: LocalTenant) -> None:
    rooms = local_tenant.exchange("Get-Mailbox", RecipientTypeDetails="RoomMailbox").json()["value"]
    assert [r["PrimarySmtpAddress"] for r in rooms] == ["room-1@contoso.com"]
    shared = local_tenant.exchange("Get-Mailbox", RecipientTypeDetails="SharedMailbox").json()["value"]
    assert shared == []  # no resource or person passes for a shared mailbox
    for identity, purpose in (("room-1@contoso.com", "room"), ("projector@contoso.com", "equipment"),
                              ("alice@contoso.com", "user")):
        row = get_mailbox(local_tenant, identity)
        settings = local_tenant.graph("GET", f"/users/{row['ExternalDirectoryObjectId']}/mailboxSettings",
                                      params={"$select": "userPurpose"})
        assert settings.json()["userPurpose"] == purpose
    room = local_tenant.graph("GET", f"/users/{get_mailbox(local_tenant, 'room-1')['ExternalDirectoryObjectId']}",
                              params={"$select": "accountEnabled,mail"}).json()
    assert room == {**room, "accountEnabled": False, "mail": "room-1@contoso.com"}


# (what is reused, New-Mailbox parameters, expected exception type, text that must appear)
REFUSED = [
    ("a person's address", {"PrimarySmtpAddress": "alice@contoso.com"}, PROXY_EXISTS, '"SMTP:alice@contoso.com"'),
    ("a person's address, other case", {"PrimarySmtpAddress": "Alice@CONTOSO.com"}, PROXY_EXISTS, "alice"),
    ("a person's secondary address", {"PrimarySmtpAddress": "bob@contoso.onmicrosoft.com"}, PROXY_EXISTS, "bob"),
    ("a room's address", {"PrimarySmtpAddress": "room-1@contoso.com"}, PROXY_EXISTS, "room-1"),
    ("equipment's address", {"PrimarySmtpAddress": "projector@contoso.com"}, PROXY_EXISTS, "projector"),
    ("a group's address", {"PrimarySmtpAddress": "finance-team@contoso.com"}, PROXY_EXISTS, "finance-team"),
    ("a person's name", {"Name": "carol"}, ALREADY_EXISTS, "already being used"),
    ("a room's name", {"Name": "room-1"}, ALREADY_EXISTS, "already being used"),
    ("a group's name", {"Name": "hr-team"}, ALREADY_EXISTS, "already being used"),
    ("a person's alias", {"Alias": "dave"}, ALREADY_EXISTS, '"dave" is already being used'),
    ("equipment's alias", {"Alias": "projector"}, ALREADY_EXISTS, '"projector" is already being used'),
    ("a group's alias", {"Alias": "support-team"}, ALREADY_EXISTS, '"support-team" is already being used'),
]


@pytest.mark.parametrize(("what", "reused", "exc_type", "text"), REFUSED, ids=[r[0] for r in REFUSED])
def test_new_shared_mailbox_refuses_what_any_recipient_uses(local_tenant: LocalTenant, what: str,
                                                           reused: dict[str, str], exc_type: str,
                                                           text: str) -> None:
    params = {"Shared": True, "Name": "newbox", "DisplayName": "New Box", "PrimarySmtpAddress": "newbox@contoso.com",
              **reused}
    resp = local_tenant.exchange("New-Mailbox", **params)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest"
    got_type, got_text = failure(resp)
    assert got_type == exc_type and text in got_text and "already" in got_text
    # Nothing was created, and the holder is untouched.
    assert local_tenant.exchange("Get-Mailbox", RecipientTypeDetails="SharedMailbox").json()["value"] == []
    assert local_tenant.exchange("Get-Mailbox", Identity="newbox@contoso.com").status_code == 404


def test_new_shared_mailbox_with_fresh_names_is_created(local_tenant: LocalTenant) -> None:
    resp = local_tenant.exchange("New-Mailbox", Shared=True, Name="newbox", Alias="newbox",
                                 PrimarySmtpAddress="newbox@contoso.com")
    assert resp.status_code == 200 and resp.json()["value"][0]["RecipientTypeDetails"] == "SharedMailbox"
    again = local_tenant.exchange("New-Mailbox", Shared=True, Name="other", Alias="newbox",
                                  PrimarySmtpAddress="other@contoso.com")
    assert failure(again)[0] == ALREADY_EXISTS  # a shared mailbox's alias is taken too


@pytest.mark.parametrize(("identity", "rtd"), [("bob@contoso.com", "UserMailbox"),
                                               ("room-1@contoso.com", "RoomMailbox"),
                                               ("projector", "EquipmentMailbox")])
def test_remove_mailbox_works_on_any_mailbox_type(local_tenant: LocalTenant, identity: str, rtd: str) -> None:
    entra_id = get_mailbox(local_tenant, identity)["ExternalDirectoryObjectId"]
    removed = local_tenant.exchange("Remove-Mailbox", Identity=identity, Confirm=False)
    assert removed.status_code == 200 and removed.json()["value"] == []
    assert local_tenant.exchange("Get-Mailbox", Identity=identity).status_code == 404
    soft = get_mailbox(local_tenant, identity, SoftDeletedMailbox=True)
    assert soft["RecipientTypeDetails"] == rtd  # soft-deleted, type kept
    assert local_tenant.graph("GET", f"/users/{entra_id}").status_code == 404  # its Entra user goes too
    # Its addresses stay reserved while it is soft-deleted.
    reuse = local_tenant.exchange("New-Mailbox", Shared=True, Name="reuse",
                                  PrimarySmtpAddress=soft["PrimarySmtpAddress"])
    assert failure(reuse)[0] == PROXY_EXISTS
    purged = local_tenant.exchange("Remove-Mailbox", Identity=identity, PermanentlyDelete=True, Confirm=False)
    assert purged.status_code == 200
    assert local_tenant.exchange("Get-Mailbox", Identity=identity, SoftDeletedMailbox=True).status_code == 404


def test_remove_mailbox_on_a_group_is_not_found(local_tenant: LocalTenant) -> None:
    resp = local_tenant.exchange("Remove-Mailbox", Identity="finance-team@contoso.com", Confirm=False)
    assert resp.status_code == 404
    assert failure(resp)[0] == "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    assert local_tenant.exchange("Get-Recipient", Identity="finance-team").status_code == 200
