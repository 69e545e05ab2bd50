"""The writes of folder entries (reconcile.converge.plan_calls): one call per changed entry, by the folder's id, a
changed role Set in place, Default and Anonymous named as Exchange names them. Pure: no tenant."""

from __future__ import annotations

from mailroom.core.compare import changes
from mailroom.core.spec import FolderGrant, MailboxSpec
from mailroom.reconcile.converge import plan_calls
from mailroom.reconcile.live import LiveMailbox, folder_addresses

FOLDER = "vertrieb@contoso.com:LgAAAACal"


def spec(*entries: tuple[str, str]) -> MailboxSpec:
    return MailboxSpec(address="vertrieb@contoso.com",
                       folder_grants=tuple(FolderGrant("calendar", p, a) for p, a in entries))


def test_each_changed_entry_is_one_call_and_a_changed_role_is_a_set() -> None:
    live = spec(("Default", "availability_only"), ("Anonymous", "none"), ("bob@contoso.com", "reviewer"),
                ("erin@contoso.com", "author"))
    want = spec(("Default", "none"), ("Anonymous", "none"), ("bob@contoso.com", "editor"),
                ("alice@contoso.com", "editor+delegate"))
    calls = plan_calls(LiveMailbox(live, "guid", "oid", folder_ids={"calendar": FOLDER}), changes(want, live))
    assert [call for _, call in calls.removes] == [
        ("Remove-MailboxFolderPermission", {"Identity": FOLDER, "User": "erin@contoso.com", "Confirm": False})]
    assert [call for _, call in calls.adds] == [
        ("Set-MailboxFolderPermission", {"Identity": FOLDER, "User": "Default", "AccessRights": ["None"],
                                         "Confirm": False}),
        ("Set-MailboxFolderPermission", {"Identity": FOLDER, "User": "bob@contoso.com", "AccessRights": ["Editor"],
                                         "SharingPermissionFlags": "None", "Confirm": False}),
        ("Add-MailboxFolderPermission", {"Identity": FOLDER, "User": "alice@contoso.com", "AccessRights": ["Editor"],
                                         "SharingPermissionFlags": "Delegate", "Confirm": False})]
    assert calls.set_mailbox == {} and calls.set_cas == {} and calls.unaddressed == []


def test_a_folder_that_was_not_found_is_not_written_and_the_root_folder_of_its_type_is_the_one() -> None:
    want = spec(("Default", "none"), ("Anonymous", "none"))
    calls = plan_calls(LiveMailbox(spec(), "guid", "oid"), changes(want, spec()))
    assert calls.adds == [] and [c.right for c in calls.unaddressed] == ["calendar_default"]
    rows = [{"FolderType": "Calendar", "FolderId": "sub", "FolderPath": "/Kalender/Feiertage"},
            {"FolderType": "Calendar", "FolderId": "root", "FolderPath": "/Kalender"},
            {"FolderType": "Inbox", "FolderId": "in", "FolderPath": "/Posteingang"}]
    assert folder_addresses("v@contoso.com", rows, ("calendar", "inbox", "contacts")) == {
        "calendar": "v@contoso.com:root", "inbox": "v@contoso.com:in"}
