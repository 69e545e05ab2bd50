"""``folders:`` entries by path (``inbox/Reports``: a folder a user made): the schema's shape and its errors at
their lines, the model, spec and plan lines they make, where a live read finds them (FolderPath under the localized
parent), and import writing them back so that they load as the same model. Pure: no tenant, no processes."""

from __future__ import annotations

from pathlib import Path

from mailroom.core import rights
from mailroom.core.compare import Change, changes
from mailroom.core.model import FolderAccess, FolderDelegate, Mailbox
from mailroom.core.spec import FolderGrant, MailboxSpec
from mailroom.file import emit
from mailroom.file.edit import Removal, propose_removals
from mailroom.file.load import load_desired
from mailroom.reconcile.live import folder_addresses, folder_stats_call, user_folders

HEAD = "version: 1\ntenant: {domains: [contoso.com]}\nmailboxes:\n  - address: vertrieb@contoso.com\n" \
       "    display_name: Vertrieb\n    folders:\n"
# Get-MailboxFolderStatistics of a German mailbox (the fields mailroom reads).
GERMAN = [{"Name": n, "FolderPath": p, "FolderType": t, "FolderId": i} for n, p, t, i in (
    ("Posteingang", "/Posteingang", "Inbox", "AAA1"), ("Reports", "/Posteingang/Reports", "User Created", "AAA2"),
    ("2026", "/Posteingang/Reports/2026", "User Created", "AAA3"), ("Kontakte", "/Kontakte", "Contacts", "AAA4"),
    ("Kalender", "/Kalender", "Calendar", "AAA5"), ("Urlaub", "/Kalender/Urlaub", "User Created", "AAA6"),
    ("Projects", "/Projects", "User Created", "AAA7"))]


def write(tmp_path: Path, folders: str) -> Path:
    path = tmp_path / "mailboxes.yaml"
    path.write_text(HEAD + folders)
    return path


def findings(path: Path) -> list[tuple[str, int, str]]:
    return [(f.code, f.line, f.pointer) for f in load_desired(str(path)).findings]


def test_a_path_entry_loads_as_a_folder_whose_entries_use_the_folder_rows_and_name_it(tmp_path: Path) -> None:
    path = write(tmp_path, """      inbox:
        reviewer: [carol@contoso.com]
      inbox/Reports:
        reviewer: [bob@contoso.com]
      root/Projects:
        default: reviewer
""")
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    [mb] = result.desired.mailboxes
    assert [k for k, _ in mb.folders] == ["inbox", "inbox/Reports", "root/Projects"]
    assert mb.origin is not None and mb.origin.folder_line("inbox/Reports") == 9
    spec = MailboxSpec.from_model(mb, ("contoso.com",))
    assert FolderGrant("inbox/Reports", "Default", "none") in spec.folder_grants  # Exchange's for any folder
    assert ("folder_reviewer", "bob@contoso.com") in spec.grants()
    assert MailboxSpec.from_props(spec.to_props()) == spec
    made = changes(spec, MailboxSpec(address="vertrieb@contoso.com", display_name="Vertrieb"))
    reports = [c for c in made if c.folder == "inbox/Reports"]
    assert [c.line() for c in reports] == ["+ folder reviewer  bob@contoso.com".replace("folder", "inbox/Reports")]
    projects = next(c for c in made if c.folder == "root/Projects")
    assert projects.line() == "~ root/Projects Default (everyone in the organisation) none → reviewer"
    assert Change.from_dict(projects.to_dict()) == projects  # a saved plan keeps the folder
    # The well-known inbox's entries are the inbox rows, and name no folder.
    assert next(c for c in made if c.subject == "carol@contoso.com").folder is None


def test_path_errors_are_located_at_their_lines(tmp_path: Path) -> None:
    # The shape first (schema): the mailbox is not built while it is wrong.
    path = write(tmp_path, """      inbox/Reports:
        reviewer: [bob@contoso.com]
      calendar/Urlaub:
        reviewer: [bob@contoso.com]
      inbox//Reports:
        reviewer: [bob@contoso.com]
      INBOX/reports:
        owner: [bob@contoso.com]
""")
    assert findings(path) == [("unknown-field", 9, "/mailboxes/0/folders/calendar~1Urlaub"),  # not a calendar's
                              ("unknown-field", 11, "/mailboxes/0/folders/inbox~1~1Reports"),  # an empty name
                              ("unknown-field", 13, "/mailboxes/0/folders/INBOX~1reports")]  # keys are lower case
    unknown = load_desired(str(path)).findings[0]
    assert "inbox/NAME" in unknown.message
    # Then the rules: a folder's roles, and one folder given twice (names are case-insensitive).
    path = write(tmp_path, """      inbox/Reports:
        availability_only: [bob@contoso.com]
      inbox/reports:
        editor: [{user: alice@contoso.com, delegate: true}]
""")
    assert findings(path) == [("calendar-only-role", 8, "/mailboxes/0/folders/inbox~1Reports/availability_only/0"),
                              ("duplicate-folder", 9, "/mailboxes/0/folders/inbox~1reports")]


def test_a_live_read_finds_a_path_under_its_localized_parent_and_import_lists_what_users_made() -> None:
    assert folder_stats_call("v", ["inbox/Reports"])[1]["FolderScope"] == "Inbox"  # the inbox and its subfolders
    assert folder_stats_call("v", ["inbox/Reports", "calendar"])[1]["FolderScope"] == "All"
    assert folder_stats_call("v", ["root/Projects"])[1]["FolderScope"] == "All"
    found = folder_addresses("v", GERMAN, ["inbox/Reports", "inbox/reports/2026", "root/Projects", "inbox/Missing",
                                           "calendar"])
    assert found == {"inbox/Reports": "v:AAA2", "inbox/reports/2026": "v:AAA3", "root/Projects": "v:AAA7",
                     "calendar": "v:AAA5"}
    # Under the calendar (another calendar, not manageable by path) is left out.
    assert user_folders(GERMAN) == ["inbox/Reports", "inbox/Reports/2026", "root/Projects"]
    assert rights.folder_path("inbox/Reports", {"Inbox": "Posteingang"}) == "/Posteingang/Reports"


def test_import_writes_a_path_entry_so_that_it_loads_back_as_the_same_model(tmp_path: Path) -> None:
    access = FolderAccess(None, None, (FolderDelegate("bob@contoso.com", "reviewer"),))
    mb = Mailbox("vertrieb@contoso.com", "Vertrieb", folders=(("inbox/Reports: 2026", access),))
    defaults = load_desired(str(write(tmp_path, "      inbox: {}\n"))).desired.defaults  # type: ignore[union-attr]
    lines = emit.field_lines("folders", mb, defaults)
    assert lines == ["    folders:", '      "inbox/Reports: 2026":', "        reviewer: [bob@contoso.com]"]
    path = write(tmp_path, "\n".join(lines[1:]) + "\n")
    loaded = load_desired(str(path))
    assert loaded.findings == [] and loaded.desired is not None
    assert loaded.desired.mailboxes[0].folders == (("inbox/Reports: 2026", access),)


def test_file_edit_removes_an_inbox_entry_under_folders_and_reports_a_path_folders_as_not_found() -> None:
    text = """mailboxes:
  - address: a@contoso.com
    folders:
      inbox:
        reviewer: [bob@contoso.com, carol@contoso.com]
      inbox/Reports:
        reviewer: [bob@contoso.com]
"""
    proposal = propose_removals({"m.yaml": text}, [Removal("a@contoso.com", "inbox_reviewer", "bob@contoso.com"),
                                                   Removal("a@contoso.com", "folder_reviewer", "bob@contoso.com")])
    [change] = proposal.changes
    assert change.after == text.replace("[bob@contoso.com, carol@contoso.com]", "[carol@contoso.com]")
    # A path folder's rows are every path folder's: a removal by row cannot say which folder, so none is edited.
    assert proposal.missing == [Removal("a@contoso.com", "folder_reviewer", "bob@contoso.com")]
