"""Mailbox folders and folder permissions, as Exchange Online answers them (exchange-features.md §1):
localized folder names found by FolderType, Default and Anonymous entries that can only be Set, the delegate
flags' rules and the Set pitfall that resets them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from localtenant.directory import resolve
from localtenant.exchange import folders
from localtenant.seed import SeedError, seed
from localtenant.store import Store
from test_exchange import new_shared, ok

if TYPE_CHECKING:
    from conftest import LocalTenant


def german(tenant: LocalTenant, name: str = "vertrieb") -> str:
    new_shared(tenant, name)
    ok(tenant.exchange("Set-MailboxRegionalConfiguration", Identity=f"{name}@contoso.com", Language="de-DE",
                       LocalizeDefaultFolderName=True))
    return f"{name}@contoso.com"


def calendar(tenant: LocalTenant, mailbox: str) -> dict[str, Any]:
    rows = ok(tenant.exchange("Get-MailboxFolderStatistics", Identity=mailbox, FolderScope="Calendar"))["value"]
    return next(r for r in rows if r["FolderType"] == "Calendar")


def perms(tenant: LocalTenant, identity: str) -> dict[str, tuple[list[str], Any]]:
    rows = ok(tenant.exchange("Get-MailboxFolderPermission", Identity=identity))["value"]
    return {r["User"]: (r["AccessRights"], r["SharingPermissionFlags"]) for r in rows}


def error(resp: Any) -> str:
    return str(resp.json()["error"]["details"][0]["message"])


def test_a_german_mailbox_names_its_calendar_kalender_and_mbx_calendar_is_not_found(
        local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    folder = calendar(local_tenant, box)
    assert (folder["Name"], folder["FolderPath"], folder["FolderType"]) == ("Kalender", "/Kalender", "Calendar")
    everything = ok(local_tenant.exchange("Get-MailboxFolderStatistics", Identity=box))["value"]
    assert {r["FolderType"]: r["Name"] for r in everything}["Inbox"] == "Posteingang"
    assert {r["FolderType"]: r["Name"] for r in everything}["Contacts"] == "Kontakte"
    missing = local_tenant.exchange("Get-MailboxFolderPermission", Identity=f"{box}:\\Calendar")
    assert missing.status_code == 404
    assert f"'{box}:\\Calendar' couldn't be found" in error(missing)
    assert "ManagementObjectNotFoundException" in error(missing)
    # By its localized name or by its FolderId: the same folder, with Exchange's default entries.
    by_name = perms(local_tenant, f"{box}:\\Kalender")
    assert by_name == perms(local_tenant, f"{box}:{folder['FolderId']}")
    assert by_name == {"Default": (["AvailabilityOnly"], None), "Anonymous": (["None"], None)}
    # An English mailbox's calendar is "Calendar"; its inbox's Default entry is None.
    new_shared(local_tenant, "sales")
    assert calendar(local_tenant, "sales@contoso.com")["Name"] == "Calendar"
    assert perms(local_tenant, "sales@contoso.com:\\Inbox")["Default"] == (["None"], None)


def test_add_set_remove_as_exchange_does(local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    cal = f"{box}:{calendar(local_tenant, box)['FolderId']}"
    ok(local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="alice@contoso.com",
                             AccessRights=["Editor"], SharingPermissionFlags="Delegate,CanViewPrivateItems"))
    ok(local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="finance-team@contoso.com",
                             AccessRights="Reviewer"))
    # A second Add for someone who has an entry fails (Set changes it).
    again = local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="alice@contoso.com",
                                  AccessRights="Reviewer")
    assert again.status_code == 400 and "An existing permission entry was found for user: Alice Anderson" in \
        error(again)
    default_add = local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="Default",
                                        AccessRights="Reviewer")
    assert default_add.status_code == 400 and "existing permission entry" in error(default_add)
    assert perms(local_tenant, cal)["Alice Anderson"] == (["Editor"], "Delegate, CanViewPrivateItems")
    assert perms(local_tenant, cal)["Finance Team"] == (["Reviewer"], None)

    # Set without the notification keeps the delegate; with it (either value) the flags are reset.
    ok(local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="alice@contoso.com",
                             AccessRights="Editor"))
    assert perms(local_tenant, cal)["Alice Anderson"] == (["Editor"], "Delegate, CanViewPrivateItems")
    ok(local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="alice@contoso.com",
                             AccessRights="Editor", SendNotificationToUser=False))
    assert perms(local_tenant, cal)["Alice Anderson"] == (["Editor"], None)
    unchanged = ok(local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="alice@contoso.com",
                                         AccessRights="Editor"))
    assert "no settings" in unchanged["@adminapi.warnings"][0]
    ok(local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="Default", AccessRights="None"))
    assert perms(local_tenant, cal)["Default"] == (["None"], None)

    # Default and Anonymous exist on every folder and can only be Set; others are removed whole.
    for who in ("Default", "Anonymous"):
        refused = local_tenant.exchange("Remove-MailboxFolderPermission", Identity=cal, User=who)
        assert refused.status_code == 400 and "can't be removed" in error(refused)
    ok(local_tenant.exchange("Remove-MailboxFolderPermission", Identity=cal, User="finance-team@contoso.com"))
    gone = local_tenant.exchange("Remove-MailboxFolderPermission", Identity=cal, User="finance-team@contoso.com")
    assert gone.status_code == 400 and "There is no existing permission entry found for user: Finance Team" in \
        error(gone)
    not_there = local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="bob@contoso.com",
                                      AccessRights="Reviewer")
    assert not_there.status_code == 400 and "no existing permission entry" in error(not_there)
    assert set(perms(local_tenant, cal)) == {"Default", "Anonymous", "Alice Anderson"}
    # Every write is in the unified audit log against the mailbox.
    logged = local_tenant.admin_audit(box)
    assert {r["operation"] for r in logged if r["auditData"]["ResultStatus"] == "True"} >= {
        "Add-MailboxFolderPermission", "Set-MailboxFolderPermission", "Remove-MailboxFolderPermission"}


def test_delegate_flags_only_on_a_calendar_with_editor_and_private_items_only_with_delegate(
        local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    cal = f"{box}:\\Kalender"
    for rights, flags in (("Reviewer", "Delegate"), ("Author", "Delegate"), ("Editor", "CanViewPrivateItems")):
        refused = local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="bob@contoso.com",
                                        AccessRights=rights, SharingPermissionFlags=flags)
        assert refused.status_code == 400, (rights, flags)
    inbox = local_tenant.exchange("Add-MailboxFolderPermission", Identity=f"{box}:\\Posteingang",
                                  User="bob@contoso.com", AccessRights="Editor", SharingPermissionFlags="Delegate")
    assert inbox.status_code == 400 and "calendar" in error(inbox)
    free_busy = local_tenant.exchange("Add-MailboxFolderPermission", Identity=f"{box}:\\Posteingang",
                                      User="bob@contoso.com", AccessRights="AvailabilityOnly")
    assert free_busy.status_code == 400  # a calendar-only role
    bad = local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="bob@contoso.com",
                                AccessRights="Everything")
    assert bad.status_code == 400 and "MailboxFolderAccessRight" in error(bad)
    assert set(perms(local_tenant, cal)) == {"Default", "Anonymous"}  # nothing half-written
    # Setting a delegate to another role drops the flags with it.
    ok(local_tenant.exchange("Add-MailboxFolderPermission", Identity=cal, User="bob@contoso.com",
                             AccessRights="Editor", SharingPermissionFlags="Delegate"))
    ok(local_tenant.exchange("Set-MailboxFolderPermission", Identity=cal, User="bob@contoso.com",
                             AccessRights="Reviewer"))
    assert perms(local_tenant, cal)["Bob Baker"] == (["Reviewer"], None)


def test_get_with_user_returns_that_entry_or_fails(local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    rows = ok(local_tenant.exchange("Get-MailboxFolderPermission", Identity=f"{box}:\\Kalender", User="Default"))
    assert [r["User"] for r in rows["value"]] == ["Default"]
    missing = local_tenant.exchange("Get-MailboxFolderPermission", Identity=f"{box}:\\Kalender",
                                    User="bob@contoso.com")
    assert missing.status_code == 400 and "no existing permission entry" in error(missing)


def make_folder(tenant: LocalTenant, mailbox: str, path: str) -> Any:
    return tenant.http.post("/_emulator/mapi/folders", json={"mailbox": mailbox, "path": path})  # type: ignore[union-attr]


def test_a_folder_a_user_made_is_listed_user_created_and_addressed_by_its_localized_path_or_id(
        local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    made = make_folder(local_tenant, box, "Inbox/Reports")  # by the parent's type or its localized name
    assert made.status_code == 200, made.text
    assert made.json()["FolderPath"] == "/Posteingang/Reports"
    assert make_folder(local_tenant, box, "Posteingang/Reports/2026").status_code == 200
    assert make_folder(local_tenant, box, "Projects").status_code == 200  # the top of the information store
    # Refused: a parent that does not exist, a name already there (case-insensitive), a well-known folder.
    for path in ("Inbox/Missing/Deep", "inbox/reports", "Posteingang"):
        assert make_folder(local_tenant, box, path).status_code == 400, path
    inbox = ok(local_tenant.exchange("Get-MailboxFolderStatistics", Identity=box, FolderScope="Inbox"))["value"]
    shown = {r["FolderPath"]: r["FolderType"] for r in inbox}
    assert shown == {"/Posteingang": "Inbox", "/Posteingang/Reports": "User Created",
                     "/Posteingang/Reports/2026": "User Created"}
    everything = ok(local_tenant.exchange("Get-MailboxFolderStatistics", Identity=box))["value"]
    assert {r["FolderPath"]: r["FolderType"] for r in everything}["/Projects"] == "User Created"
    reports = next(r for r in inbox if r["FolderPath"] == "/Posteingang/Reports")
    # Permissions like any non-calendar folder: by path (localized names) or FolderId, the same entries.
    ok(local_tenant.exchange("Add-MailboxFolderPermission", Identity=f"{box}:\\Posteingang\\Reports",
                             User="alice@contoso.com", AccessRights="Reviewer"))
    assert perms(local_tenant, f"{box}:{reports['FolderId']}") == {
        "Default": (["None"], None), "Anonymous": (["None"], None), "Alice Anderson": (["Reviewer"], None)}
    assert "Alice Anderson" not in perms(local_tenant, f"{box}:\\Posteingang")  # not the parent's entry
    assert "Alice Anderson" not in perms(local_tenant, f"{box}:\\Posteingang\\Reports\\2026")
    english = local_tenant.exchange("Get-MailboxFolderPermission", Identity=f"{box}:\\Inbox\\Reports")
    assert english.status_code == 404
    free_busy = local_tenant.exchange("Set-MailboxFolderPermission", Identity=f"{box}:{reports['FolderId']}",
                                      User="alice@contoso.com", AccessRights="AvailabilityOnly")
    assert free_busy.status_code == 400 and "only valid for calendar folders" in error(free_busy)


def test_seed_makes_the_folders_its_users_made_after_the_language_and_names_a_bad_one(tmp_path: Path) -> None:
    tenant = {"id": "6e2f4d3a-9c1b-4f7e-8a5d-2b0c9e1f4a73", "initial_domain": "contoso.onmicrosoft.com",
              "accepted_domains": ["contoso.com"]}
    box = {"name": "vertrieb", "primary_smtp_address": "vertrieb@contoso.com", "language": "de-DE",
           "folders": ["Posteingang/Reports", "Inbox/Reports/2026"]}
    store = Store(tmp_path / "ok.db")
    seed(store, {"tenant": tenant, "shared_mailboxes": [box]}, "dir.yaml")
    with store.read() as conn:
        mbx = resolve(conn, "vertrieb@contoso.com")
        made = [f for f in folders.folders(mbx, conn) if f.folder_type == folders.USER_CREATED]
    assert [folders.statistics_row(f)["FolderPath"] for f in made] == ["/Posteingang/Reports",
                                                                      "/Posteingang/Reports/2026"]
    bad = {**box, "folders": ["Posteingang/Missing/Deep"]}
    with pytest.raises(SeedError, match=re.escape("shared_mailboxes[0].folders[0]: the parent of")):
        seed(Store(tmp_path / "bad.db"), {"tenant": tenant, "shared_mailboxes": [bad]}, "dir.yaml")


def test_a_folder_a_user_made_under_the_calendar_is_a_calendar(local_tenant: LocalTenant) -> None:
    box = german(local_tenant)
    assert make_folder(local_tenant, box, "Kalender/Urlaub").status_code == 200
    rows = ok(local_tenant.exchange("Get-MailboxFolderStatistics", Identity=box, FolderScope="Calendar"))["value"]
    urlaub = next(r for r in rows if r["FolderPath"] == "/Kalender/Urlaub")
    assert (urlaub["FolderType"], urlaub["ContainerClass"]) == ("User Created", "IPF.Appointment")
    ok(local_tenant.exchange("Add-MailboxFolderPermission", Identity=f"{box}:\\Kalender\\Urlaub",
                             User="alice@contoso.com", AccessRights="AvailabilityOnly"))
    assert perms(local_tenant, f"{box}:{urlaub['FolderId']}")["Alice Anderson"] == (["AvailabilityOnly"], None)
