"""`calendar:` in the file: its schema, its rules located at their lines, the model and the spec it makes, and
import writing it back so that it loads as the same model. Pure: no tenant, no processes."""

from __future__ import annotations

from pathlib import Path

from mailroom.core.model import FolderAccess, FolderDelegate, Mailbox
from mailroom.core.spec import FolderGrant, MailboxSpec
from mailroom.file import emit
from mailroom.file.load import load_desired

HEAD = "version: 1\ntenant: {domains: [contoso.com]}\n"
BOX = """mailboxes:
  - address: vertrieb@contoso.com
    display_name: Vertrieb
    calendar:
"""


def write(tmp_path: Path, calendar: str, policy: str = "") -> Path:
    path = tmp_path / "mailboxes.yaml"
    path.write_text(HEAD + policy + BOX + calendar)
    return path


def findings(path: Path) -> list[tuple[str, int, str]]:
    return [(f.code, f.line, f.pointer) for f in load_desired(str(path)).findings]


def test_calendar_loads_as_people_per_role_and_becomes_entries_with_exchanges_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """      reviewer: [bob@contoso.com, finance-team@contoso.com]
      editor:
        - dave@contoso.com
        - {user: alice@contoso.com, delegate: true, private_items: true}
""")
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    [mb] = result.desired.mailboxes
    assert mb.calendar == FolderAccess(None, None, (
        FolderDelegate("bob@contoso.com", "reviewer"), FolderDelegate("finance-team@contoso.com", "reviewer"),
        FolderDelegate("dave@contoso.com", "editor"), FolderDelegate("alice@contoso.com", "editor", True, True)))
    spec = MailboxSpec.from_model(mb, ("contoso.com",))
    assert spec.folder_grants[:2] == (FolderGrant("calendar", "Default", "availability_only"),
                                      FolderGrant("calendar", "Anonymous", "none"))
    assert spec.folder_grants[-1] == FolderGrant("calendar", "alice@contoso.com", "editor+delegate+private_items")
    assert spec.folders() == ("calendar",)
    assert MailboxSpec.from_props(spec.to_props()) == spec  # the engine's state keeps it as it is
    assert ("calendar_editor", "alice@contoso.com") in spec.grants()
    assert MailboxSpec.from_model(Mailbox("x@contoso.com", "X"), ()).folder_grants == ()  # not named: not managed


def test_the_rules_are_located_at_their_lines(tmp_path: Path) -> None:
    path = write(tmp_path, """      default: reviewer
      reviewer: [bob@contoso.com]
      editor:
        - {user: carol@contoso.com, private_items: true}
        - Bob@contoso.com
        - mallory@fabrikam.com
""", "policy: {max_default_calendar_access: limited_details}\n")
    assert findings(path) == [
        ("calendar-access-above-policy", 8, "/mailboxes/0/calendar/default"),
        ("private-items-needs-delegate", 11, "/mailboxes/0/calendar/editor/0/private_items"),
        ("duplicate-entry", 12, "/mailboxes/0/calendar/editor/1"),
        ("external-member", 13, "/mailboxes/0/calendar/editor/2")]


def test_an_omitted_default_is_exchanges_and_is_checked_against_the_policy_too(tmp_path: Path) -> None:
    path = write(tmp_path, "      reviewer: [bob@contoso.com]\n", "policy: {max_default_calendar_access: none}\n")
    [(code, line, pointer)] = findings(path)
    assert (code, line, pointer) == ("calendar-access-above-policy", 8, "/mailboxes/0/calendar")  # its first line
    message = load_desired(str(path)).findings[0].message
    assert "availability_only" in message and "write `default:`" in message
    ok = write(tmp_path, "      default: none\n      anonymous: none\n",
               "policy: {max_default_calendar_access: none}\n")
    assert findings(ok) == []


def test_the_schema_refuses_unknown_roles_flags_outside_editor_and_wrong_shapes(tmp_path: Path) -> None:
    cases = {
        "      default: everything\n": ("invalid-value", "/mailboxes/0/calendar/default"),
        "      readers: [bob@contoso.com]\n": ("unknown-field", "/mailboxes/0/calendar/readers"),
        "      reviewer: [{user: bob@contoso.com, delegate: true}]\n": ("wrong-type",  # flags: editors only
                                                                         "/mailboxes/0/calendar/reviewer/0"),
        "      editor: [{user: bob@contoso.com, automap: true}]\n": ("wrong-type", "/mailboxes/0/calendar/editor/0"),
        "      editor: [not-an-address]\n": ("address-syntax", "/mailboxes/0/calendar/editor/0"),
    }
    for text, (code, pointer) in cases.items():
        got = [(c, p) for c, _, p in findings(write(tmp_path, text))]
        assert (code, pointer) in got, (text, got)
    wrong = load_desired(str(write(tmp_path, "      editor: [{user: bob@contoso.com, automap: true}]\n")))
    assert "{user: ADDRESS, delegate: BOOL, private_items: BOOL}" in wrong.findings[0].message


def test_import_writes_the_calendar_so_that_it_loads_back_as_the_same_model(tmp_path: Path) -> None:
    access = FolderAccess("none", None, (FolderDelegate("bob@contoso.com", "reviewer"),
                                         FolderDelegate("dave@contoso.com", "editor"),
                                         FolderDelegate("alice@contoso.com", "editor", True, True)))
    mb = Mailbox("vertrieb@contoso.com", "Vertrieb", calendar=access)
    lines = emit.field_lines("calendar", mb, load_desired(str(write(tmp_path, "      default: none\n"))).desired
                             .defaults)  # type: ignore[union-attr]
    assert lines == ["    calendar:", "      default: none", "      reviewer: [bob@contoso.com]", "      editor:",
                     "        - dave@contoso.com",
                     "        - {user: alice@contoso.com, delegate: true, private_items: true}"]
    path = tmp_path / "mailboxes.yaml"
    path.write_text(HEAD + BOX.rsplit("    calendar:\n", 1)[0] + "\n".join(lines) + "\n")
    loaded = load_desired(str(path))
    assert loaded.findings == [] and loaded.desired is not None
    assert loaded.desired.mailboxes[0].calendar == FolderAccess("none", None, (
        FolderDelegate("bob@contoso.com", "reviewer"), FolderDelegate("dave@contoso.com", "editor"),
        FolderDelegate("alice@contoso.com", "editor", True, True)))


def test_folders_inbox_and_contacts_are_managed_like_the_calendar_without_its_roles_and_delegates(
        tmp_path: Path) -> None:
    path = tmp_path / "mailboxes.yaml"
    path.write_text(HEAD + BOX.rsplit("    calendar:\n", 1)[0] + """    folders:
      inbox:
        reviewer: [bob@contoso.com]
        editor: [{user: alice@contoso.com, delegate: true}]
      contacts:
        default: availability_only
        author: [carol@contoso.com]
""")
    assert findings(path) == [("delegate-calendar-only", 9, "/mailboxes/0/folders/inbox/editor/0"),
                              ("calendar-only-role", 11, "/mailboxes/0/folders/contacts/default")]
    path.write_text(path.read_text().replace("[{user: alice@contoso.com, delegate: true}]", "[alice@contoso.com]")
                    .replace("default: availability_only", "default: reviewer"))
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    mb = result.desired.mailboxes[0]
    assert [k for k, _ in mb.folders] == ["inbox", "contacts"] and mb.calendar is None
    spec = MailboxSpec.from_model(mb, ("contoso.com",))
    assert spec.folders() == ("contacts", "inbox")
    assert FolderGrant("inbox", "Default", "none") in spec.folder_grants  # Exchange's: nobody sees an inbox
    assert FolderGrant("contacts", "Default", "reviewer") in spec.folder_grants
    assert ("inbox_editor", "alice@contoso.com") in spec.grants() and ("contacts_author", "carol@contoso.com") \
        in spec.grants()
    lines = emit.field_lines("folders", mb, result.desired.defaults)
    assert lines == ["    folders:", "      inbox:", "        reviewer: [bob@contoso.com]",
                     "        editor: [alice@contoso.com]", "      contacts:", "        default: reviewer",
                     "        author: [carol@contoso.com]"]
