"""`mailroom revoke` and `mailroom who` from the command line, on the local tenant (issue 15, part 3).

Acceptance: a leaver written in four files (the main file and three includes) is removed by one change that
touches exactly those lines, as a patch `git apply` accepts."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mailroom.file.load import load_desired
from reconcile_helpers import Project

IT = """\
# IT mailboxes (CODEOWNERS: @contoso/it-admins).
mailboxes:
  - address: it-alerts@contoso.com
    display_name: IT Alerts
    owner: alice@contoso.com
    members:
      - alice@contoso.com
      - Ivan@Contoso.com       # on call this quarter
    send_as: [alice@contoso.com]
"""


def changed_lines(patch: str) -> dict[str, list[str]]:
    """File → the lines the patch removes (-) and adds (+), in order."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in patch.splitlines():
        if line.startswith("+++ b/"):
            current = line[6:]
            out[current] = []
        elif line.startswith(("-", "+")) and not line.startswith(("---", "+++")):
            out[current].append(line)
    return out


def test_revoke_a_leaver_in_four_files_is_one_change_of_exactly_those_lines(
        tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    project.edit("      - bob@contoso.com\n", "      - bob@contoso.com\n      - ivan@contoso.com\n")
    project.edit("      - peggy@contoso.com\n", "      - peggy@contoso.com\n      - ivan@contoso.com\n",
                 name="mailboxes.d/hr.yaml")
    project.edit("    send_as: [peggy@contoso.com]", "    send_as: [peggy@contoso.com, ivan@contoso.com]",
                 name="mailboxes.d/hr.yaml")
    (project.dir / "mailboxes.d" / "it.yaml").write_text(IT)
    subprocess.run(["git", "init", "-q", str(project.dir)], check=True)
    subprocess.run(["git", "-C", str(project.dir), "add", "."], check=True)
    subprocess.run(["git", "-C", str(project.dir), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"],
                   check=True)
    before = {p: p.read_text() for p in project.dir.rglob("*.yaml")}
    patch = tmp_path / "ivan.patch"

    code, out = project.run("revoke", "ivan", "--propose", str(patch), "--json", capsys=capsys)
    assert code == 2, out
    doc = json.loads(out)
    assert doc["command"] == "revoke" and doc["format_version"] == 1 and doc["written"] == str(patch)
    assert {p.read_text() for p in project.dir.rglob("*.yaml")} == set(before.values())  # only the patch written
    assert changed_lines(patch.read_text()) == {
        "mailboxes.yaml": ["-      - ivan@contoso.com"],
        "mailboxes.d/finance.yaml": ["-      - ivan@contoso.com", "-    send_on_behalf: [ivan@contoso.com]",
                                     "+    send_on_behalf: []"],
        "mailboxes.d/hr.yaml": ["-      - ivan@contoso.com", "-    send_as: [peggy@contoso.com, ivan@contoso.com]",
                                "+    send_as: [peggy@contoso.com]"],
        "mailboxes.d/it.yaml": ["-      - Ivan@Contoso.com       # on call this quarter"],
    }
    assert sorted((r["mailbox"], r["right"]) for r in doc["removed"]) == [
        ("careers@contoso.com", "member"), ("careers@contoso.com", "send_as"), ("invoices@contoso.com", "member"),
        ("invoices@contoso.com", "send_on_behalf"), ("it-alerts@contoso.com", "member"),
        ("support@contoso.com", "member")]
    assert subprocess.run(["git", "-C", str(project.dir), "apply", str(patch)]).returncode == 0
    loaded = load_desired(str(project.file))
    assert loaded.ok(), loaded.findings
    # applied, the files grant Ivan nothing: a second revoke (offline too) has nothing to do
    code, out = project.run("revoke", "ivan@contoso.com", "--offline", capsys=capsys)
    assert code == 0 and "grant nothing" in out, out
    assert not re.search(r"ivan", "".join(p.read_text() for p in project.dir.rglob("*.yaml")), re.I)


def test_who_lists_access_outside_the_files_and_revoke_reports_it(
        tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    admin = "trent@contoso.com"
    for args in (("New-Mailbox", {"Shared": True, "Name": "marketing", "DisplayName": "Marketing",
                                  "PrimarySmtpAddress": "marketing@contoso.com"}),
                 ("Add-MailboxPermission", {"Identity": "marketing@contoso.com", "User": "mallory@contoso.com",
                                            "AccessRights": ["FullAccess"]})):
        resp = local_tenant.exchange(args[0], username=admin, **args[1])
        assert resp.status_code == 200, resp.text
    code, out = project.run("who", "mallory@contoso.com", "--json", capsys=capsys)
    assert code == 0, out
    doc = json.loads(out)
    assert doc["command"] == "who"
    assert [(a["mailbox"], a["right"], a["status"]) for a in doc["access"]] == [
        ("marketing@contoso.com", "member", "unmanaged")]
    assert doc["groups"] == [] and not doc["groups_unread"]  # membership read: mallory is in no group
    code, out = project.run("who", "mallory@contoso.com", capsys=capsys)
    assert "marketing@contoso.com" in out and "do not manage" in out
    code, out = project.run("revoke", "mallory@contoso.com", capsys=capsys)
    assert code == 2 and "The files grant nothing" in out and "manual" in out, out
    code, _ = project.run("who", "no-such-person@contoso.com", capsys=capsys)
    assert code == 1


def test_who_follows_nested_groups_to_managed_and_unmanaged_mailboxes_and_revoke_names_the_group(
        tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """faythe holds no grant herself: she is in payroll-team, which the seed nests in finance-team and hr-team.
    The files grant finance-team on invoices (managed); the tenant grants it on marketing (unmanaged)."""
    project = Project(tmp_path, local_tenant, monkeypatch)
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 0, out
    for args in (("New-Mailbox", {"Shared": True, "Name": "marketing", "DisplayName": "Marketing",
                                  "PrimarySmtpAddress": "marketing@contoso.com"}),
                 ("Add-MailboxPermission", {"Identity": "marketing@contoso.com", "User": "finance-team",
                                            "AccessRights": ["FullAccess"]})):
        resp = local_tenant.exchange(args[0], username="trent@contoso.com", **args[1])
        assert resp.status_code == 200, resp.text
    code, out = project.run("who", "faythe@contoso.com", "--json", capsys=capsys)
    assert code == 0, out
    doc = json.loads(out)
    assert not doc["groups_unread"]
    assert sorted(g["mail"] for g in doc["groups"]) == [
        "finance-team@contoso.com", "hr-team@contoso.com", "payroll-team@contoso.com"]
    rows = sorted((a["mailbox"], a["right"], a["status"], tuple(a["via"])) for a in doc["access"])
    finance = ("finance-team@contoso.com", "payroll-team@contoso.com")
    hr = ("hr-team@contoso.com", "payroll-team@contoso.com")
    assert rows == [("careers@contoso.com", "calendar_reviewer", "in-file", hr),
                    ("careers@contoso.com", "member", "in-file", hr),
                    ("invoices@contoso.com", "member", "in-file", finance),
                    ("marketing@contoso.com", "member", "unmanaged", finance)]
    code, out = project.run("who", "faythe@contoso.com", capsys=capsys)
    assert code == 0 and "via finance-team@contoso.com <- payroll-team@contoso.com" in out, out
    code, out = project.run("revoke", "faythe@contoso.com", capsys=capsys)
    assert code == 2, out
    assert "The files grant nothing" in out and "Access through groups (4)" in out, out
    assert "through a group: remove the person from payroll-team@contoso.com or finance-team@contoso.com's grant" \
        in out, out
