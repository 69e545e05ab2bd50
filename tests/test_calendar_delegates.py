"""Calendar delegates end to end (issue 14): a German mailbox's calendar ("Kalender") found by its type, grants
planned at grant level and applied through the real engine, a changed role Set in place with one call and no
removal, policy.max_default_calendar_access refused at its line, drift of a grant made by hand, and import
bringing the calendar back with a second plan showing no changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main
from reconcile_helpers import Project, writes

ADMIN = "trent@contoso.com"
VERTRIEB = """
  - address: vertrieb@contoso.com
    display_name: Vertrieb
    owner: alice@contoso.com
    members: [alice@contoso.com]
    calendar:
      default: limited_details
      reviewer: [bob@contoso.com, finance-team@contoso.com]
      editor:
        - user: alice@contoso.com
          delegate: true
          private_items: true
"""


def ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()["value"]


def german_mailbox(tenant: Any) -> None:
    """A shared mailbox whose folders are named in German, as an admin set it up before mailroom."""
    ok(tenant.exchange("New-Mailbox", username=ADMIN, Shared=True, Name="vertrieb", DisplayName="Vertrieb",
                       PrimarySmtpAddress="vertrieb@contoso.com"))
    ok(tenant.exchange("Set-MailboxRegionalConfiguration", username=ADMIN, Identity="vertrieb@contoso.com",
                       Language="de-DE", LocalizeDefaultFolderName=True))


def calendar(tenant: Any, mailbox: str = "vertrieb@contoso.com") -> dict[str, tuple[list[str], Any]]:
    rows = ok(tenant.exchange("Get-MailboxFolderPermission", Identity=f"{mailbox}:\\Kalender"))
    return {r["User"]: (r["AccessRights"], r["SharingPermissionFlags"]) for r in rows}


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    german_mailbox(local_tenant)
    p = Project(tmp_path, local_tenant, monkeypatch)
    p.file.write_text(p.file.read_text() + VERTRIEB)
    return p


def test_a_german_calendar_gets_its_delegates_and_one_changed_role_is_one_set_call(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert ok(project.tenant.exchange("Get-MailboxFolderStatistics", Identity="vertrieb@contoso.com",
                                      FolderScope="Calendar"))[0]["Name"] == "Kalender"
    capsys.readouterr()
    assert main(["validate", "--file", str(project.file)]) == 0
    code, text = project.run("plan", capsys=capsys)
    assert code == 2, text
    section = text[text.index("vertrieb@contoso.com"):]
    assert "+ calendar reviewer  bob@contoso.com" in section
    assert "+ calendar reviewer  finance-team@contoso.com" in section
    assert "+ calendar editor (delegate, private items)  alice@contoso.com" in section
    assert "~ calendar Default (everyone in the organisation) availability_only → limited_details" in section

    assert project.run("apply", "--yes")[0] == 0
    assert calendar(project.tenant) == {
        "Default": (["LimitedDetails"], None), "Anonymous": (["None"], None),
        "Alice Anderson": (["Editor"], "Delegate, CanViewPrivateItems"), "Bob Baker": (["Reviewer"], None),
        "Finance Team": (["Reviewer"], None)}
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0

    # Bob becomes an editor: one line in the plan, one Set-MailboxFolderPermission, nobody removed.
    project.edit("      reviewer: [bob@contoso.com, finance-team@contoso.com]\n      editor:\n",
                 "      reviewer: [finance-team@contoso.com]\n      editor:\n        - bob@contoso.com\n")
    code, out = project.run("plan", "--refresh", "--json", capsys=capsys)
    assert code == 2
    changed = [(m["address"], c) for m in json.loads(out)["mailboxes"] for c in m["changes"]]
    assert [(a, c["op"], c["right"], c["subject"], c["before"], c["after"]) for a, c in changed] == [
        ("vertrieb@contoso.com", "set", "calendar_editor", "bob@contoso.com", "reviewer", "editor")], changed
    code, text = project.run("plan", "--refresh", capsys=capsys)
    assert "~ calendar bob@contoso.com reviewer → editor" in text
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 0
    assert writes(project.tenant.metrics()) == {"Set-MailboxFolderPermission": 1}
    after = calendar(project.tenant)
    assert after["Bob Baker"] == (["Editor"], None)
    assert after["Alice Anderson"] == (["Editor"], "Delegate, CanViewPrivateItems")  # untouched, still a delegate
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0


def test_policy_refuses_a_default_broader_than_allowed_at_its_line(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("  max_default_calendar_access: limited_details", "  max_default_calendar_access: availability_only")
    capsys.readouterr()
    code = main(["validate", "--json", "--file", str(project.file)])
    assert code == 1
    [finding] = json.loads(capsys.readouterr().out)["findings"]
    assert (finding["code"], finding["pointer"]) == ("calendar-access-above-policy", "/mailboxes/5/calendar/default")
    assert project.file.read_text().splitlines()[finding["line"] - 1].strip() == "default: limited_details"
    project.tenant.reset_metrics()
    assert project.run("plan")[0] == 1 and project.tenant.metrics()["calls"] == 0  # refused before any request


def test_a_calendar_grant_made_by_hand_is_drift_and_import_brings_the_calendar_back(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert "  max_default_calendar_access: limited_details" in project.file.read_text()  # the shipped policy
    assert project.run("apply", "--yes")[0] == 0
    cal = "vertrieb@contoso.com:\\Kalender"
    ok(project.tenant.exchange("Add-MailboxFolderPermission", username=ADMIN, Identity=cal, User="dave@contoso.com",
                               AccessRights=["Author"]))
    ok(project.tenant.exchange("Set-MailboxFolderPermission", username=ADMIN, Identity=cal, User="Default",
                               AccessRights=["Reviewer"]))
    # An entry of an account deleted since: shown as its SID, never managed (as an orphaned Full Access entry).
    ok(project.tenant.exchange("Add-MailboxFolderPermission", username=ADMIN, Identity=cal, User="niaj@contoso.com",
                               AccessRights=["Reviewer"]))
    gone = project.tenant.graph("DELETE", "/users/niaj@contoso.com", username=ADMIN)
    assert gone.status_code == 204, gone.text
    out = tmp_path / "drift.json"
    project.tenant.reset_metrics()
    assert project.run("drift", "--json", str(out), "--html", str(tmp_path / "drift.html"))[0] == 2
    # What reading calendars costs: per mailbox that names one (careers@ and vertrieb@), one statistics and one
    # permissions item, in $batch requests shared with the rest of the scan.
    read = project.tenant.metrics()["cmdlets"]
    assert (read["Get-MailboxFolderStatistics"], read["Get-MailboxFolderPermission"]) == (2, 2)
    found = {(f["kind"], f["right"], f["subject"]): f for f in json.loads(out.read_text())["findings"]
             if f["mailbox"] == "vertrieb@contoso.com"}
    orphan = [k for k in found if k[0] == "stale_access"]
    assert len(orphan) == 1 and orphan[0][1] == "calendar_reviewer" and orphan[0][2].startswith("S-1-5-21-")
    assert set(found) - set(orphan) == {("extra_grant", "calendar_author", "dave@contoso.com"),
                                        ("changed_setting", "calendar_default", None),
                                        ("folder_access_above_policy", "calendar_default", None)}, found
    default = found[("changed_setting", "calendar_default", None)]
    assert (default["expected"], default["actual"]) == ("limited_details", "reviewer")
    above = found[("folder_access_above_policy", "calendar_default", None)]
    assert above["severity"] == "high" and "allows at most limited_details" in above["description"]
    # The access matrix marks each person's role on the calendar (the rights table's marks).
    page = (tmp_path / "drift.html").read_text()
    assert "Cal:A" in page and "Cal:E" in page and "Cal:R" in page

    # Import (into a new stack, as a first import is) writes the calendar as the tenant has it; a plan of the
    # imported file changes nothing.
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "imported-state"))
    imported = tmp_path / "imported" / "mailboxes.yaml"
    capsys.readouterr()
    assert main(["import", "--stack", "local", "--out", str(imported)]) == 0
    text = imported.read_text()
    entry = text[text.index("address: vertrieb@contoso.com"):]
    assert "    calendar:\n      default: reviewer\n      reviewer: [bob@contoso.com, finance-team@contoso.com]\n" \
        "      author: [dave@contoso.com]\n      editor:\n" \
        "        - {user: alice@contoso.com, delegate: true, private_items: true}\n" in entry, entry
    assert "    # not imported: calendar Reviewer for S-1-5-21-" in entry
    capsys.readouterr()
    assert main(["validate", "--file", str(imported)]) == 0
    capsys.readouterr()
    code = main(["plan", "--refresh", "--json", "--stack", "local", "--file", str(imported)])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0 and plan["has_changes"] is False, plan
    [vertrieb] = [m for m in plan["mailboxes"] if m["address"] == "vertrieb@contoso.com"]
    assert (vertrieb["op"], vertrieb["changes"]) == ("adopt", [])


def test_folders_inbox_of_a_german_mailbox_is_found_by_type_too(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("          private_items: true\n", "          private_items: true\n    folders:\n"
                 "      inbox:\n        reviewer: [bob@contoso.com]\n")
    code, text = project.run("plan", capsys=capsys)
    assert code == 2 and "+ inbox reviewer  bob@contoso.com" in text, text
    assert project.run("apply", "--yes")[0] == 0
    rows = ok(project.tenant.exchange("Get-MailboxFolderPermission", Identity="vertrieb@contoso.com:\\Posteingang"))
    assert {r["User"]: r["AccessRights"] for r in rows} == {"Default": ["None"], "Anonymous": ["None"],
                                                            "Bob Baker": ["Reviewer"]}
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0
