"""Folders a user made, named by path in ``folders:`` (issue 14): ``inbox/Reports`` is /Posteingang/Reports in a
German mailbox, found by type and FolderPath, planned and applied through the real engine with the path on each
plan line, a changed role Set in place with one call, import writing the folder back with a second plan showing
no changes, and a path the mailbox does not have refused at plan time at its line, before any write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main
from reconcile_helpers import Project, writes
from test_calendar_delegates import german_mailbox, ok

VERTRIEB = """
  - address: vertrieb@contoso.com
    display_name: Vertrieb
    owner: alice@contoso.com
    members: [alice@contoso.com]
    folders:
      inbox/Reports:
        reviewer: [bob@contoso.com, finance-team@contoso.com]
"""


def reports(tenant: Any) -> dict[str, list[str]]:
    rows = ok(tenant.exchange("Get-MailboxFolderPermission", Identity="vertrieb@contoso.com:\\Posteingang\\Reports"))
    return {r["User"]: r["AccessRights"] for r in rows}


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    german_mailbox(local_tenant)
    # A user of the mailbox makes the folder in Outlook (no admin cmdlet can make one in another mailbox).
    made = local_tenant.http.post("/_emulator/mapi/folders", json={"mailbox": "vertrieb@contoso.com",
                                                                    "path": "Posteingang/Reports"})
    assert made.status_code == 200, made.text
    p = Project(tmp_path, local_tenant, monkeypatch)
    p.file.write_text(p.file.read_text() + VERTRIEB)
    return p


def test_a_folder_a_user_made_under_a_german_inbox_is_managed_by_its_path_and_imported_back(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    capsys.readouterr()
    assert main(["validate", "--file", str(project.file)]) == 0
    code, text = project.run("plan", "--refresh", capsys=capsys)
    assert code == 2, text
    section = text[text.index("vertrieb@contoso.com"):]
    assert "+ inbox/Reports reviewer  bob@contoso.com" in section
    assert "+ inbox/Reports reviewer  finance-team@contoso.com" in section
    assert project.run("apply", "--yes")[0] == 0
    assert reports(project.tenant) == {"Default": ["None"], "Anonymous": ["None"], "Bob Baker": ["Reviewer"],
                                       "Finance Team": ["Reviewer"]}
    inbox = ok(project.tenant.exchange("Get-MailboxFolderPermission", Identity="vertrieb@contoso.com:\\Posteingang"))
    assert {r["User"] for r in inbox} == {"Default", "Anonymous"}  # the parent is not touched
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0

    # Bob becomes an editor: one change naming the folder, one Set-MailboxFolderPermission, nobody removed.
    project.edit("        reviewer: [bob@contoso.com, finance-team@contoso.com]\n",
                 "        reviewer: [finance-team@contoso.com]\n        editor: [bob@contoso.com]\n")
    code, out = project.run("plan", "--refresh", "--json", capsys=capsys)
    assert code == 2
    changed = [c for m in json.loads(out)["mailboxes"] for c in m["changes"]]
    assert [(c["op"], c["right"], c["subject"], c["before"], c["after"], c.get("folder")) for c in changed] == [
        ("set", "folder_editor", "bob@contoso.com", "reviewer", "editor", "inbox/Reports")], changed
    code, text = project.run("plan", "--refresh", capsys=capsys)
    assert "~ inbox/Reports bob@contoso.com reviewer → editor" in text, text
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 0
    assert writes(project.tenant.metrics()) == {"Set-MailboxFolderPermission": 1}
    assert reports(project.tenant)["Bob Baker"] == ["Editor"]
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0

    # Import (into a new stack) finds the folder a user made and writes its entries back by path.
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "imported-state"))
    imported = tmp_path / "imported" / "mailboxes.yaml"
    capsys.readouterr()
    assert main(["import", "--stack", "local", "--out", str(imported)]) == 0
    text = imported.read_text()
    entry = text[text.index("address: vertrieb@contoso.com"):]
    assert "    folders:\n      inbox/Reports:\n        reviewer: [finance-team@contoso.com]\n" \
        "        editor: [bob@contoso.com]\n" in entry, entry
    capsys.readouterr()
    assert main(["validate", "--file", str(imported)]) == 0
    capsys.readouterr()
    code = main(["plan", "--refresh", "--json", "--stack", "local", "--file", str(imported)])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and plan["has_changes"] is False, plan


def test_a_path_the_mailbox_does_not_have_fails_plan_at_its_line_before_any_write(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("      inbox/Reports:\n", "      inbox/Reports:\n        owner: [alice@contoso.com]\n"
                 "      inbox/Reports/2026:\n")
    lines = project.file.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == "inbox/Reports/2026:")
    project.tenant.reset_metrics()
    code, text = project.run("plan", "--refresh", capsys=capsys)
    assert code == 1, text
    assert f"mailboxes.yaml:{line}: vertrieb@contoso.com: folders: inbox/Reports/2026: the mailbox has no folder" \
        in text, text
    assert project.run("apply", "--yes", capsys=capsys)[0] == 1
    assert writes(project.tenant.metrics()) == {}
    assert reports(project.tenant) == {"Default": ["None"], "Anonymous": ["None"]}  # the folder that exists too
