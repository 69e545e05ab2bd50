"""Saved, reviewed plans and one bulk read per run: end to end on the real engine and a local tenant.

`mailroom plan --out FILE` writes the exact plan; `mailroom apply FILE` applies exactly that plan or
refuses (exit 4) when the file, the stack or the live state of a mailbox it changes moved. A plan
without --refresh of an unchanged file makes no tenant request; apply reads the tenant once, in bulk.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import Project, view, writes

TEAM = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"]


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = Project(tmp_path, local_tenant, monkeypatch)
    assert p.run("apply", "--yes")[0] == 0
    return p


def grant_by_hand(project: Project, mailbox: str, who: str) -> None:
    resp = project.tenant.exchange("Add-MailboxPermission", client_id="admin-portal", Identity=mailbox,
                                   User=f"{who}@contoso.com", AccessRights=["FullAccess"], AutoMapping=False)
    assert resp.status_code == 200, resp.text


def remove_by_hand(project: Project, mailbox: str, who: str) -> None:
    resp = project.tenant.exchange("Remove-MailboxPermission", client_id="admin-portal", Identity=mailbox,
                                   User=f"{who}@contoso.com", AccessRights=["FullAccess"], Confirm=False)
    assert resp.status_code == 200, resp.text


def members(project: Project, mailbox: str) -> set[str]:
    seen = view(project.tenant, mailbox)
    assert seen is not None
    return set(seen["members"])


def test_a_saved_plan_applies_exactly_that_plan(project: Project, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "plan.json"
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    code, out = project.run("plan", "--refresh", "--out", str(saved), capsys=capsys)
    assert code == 2 and "hello@contoso.com" in out
    doc = json.loads(saved.read_text())
    assert doc["kind"] == "mailroom-plan" and doc["stack"] == "local" and doc["digest"].startswith("sha256:")
    [changed] = doc["mailboxes"]
    assert changed["address"] == "info@contoso.com" and changed["assumed"]["address"] == "info@contoso.com"
    assert oct(saved.stat().st_mode & 0o777) == "0o600"  # it holds who has access to what

    # A change by hand to a mailbox the plan does not change: the plan still holds.
    grant_by_hand(project, "payroll@contoso.com", "mallory")
    project.tenant.reset_metrics()
    code = project.run("apply", str(saved), "--yes")[0]
    assert code == 0
    done = writes(project.tenant.metrics())
    assert set(done) <= {"Set-Mailbox"}, done  # only the alias of info, nothing on payroll
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and "hello@contoso.com" in info["aliases"]
    assert "mallory@contoso.com" in members(project, "payroll@contoso.com")


def test_a_stale_saved_plan_is_refused_and_changes_nothing(project: Project, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "plan.json"
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    assert project.run("plan", "--out", str(saved))[0] == 2

    # The live state of the mailbox the plan changes moved: refused, exit 4, nothing written.
    grant_by_hand(project, "info@contoso.com", "mallory")
    project.tenant.reset_metrics()
    code, out = project.run("apply", str(saved), "--yes", "--json", capsys=capsys)
    assert code == 4
    assert writes(project.tenant.metrics()) == {}
    doc = json.loads(out)
    assert doc["result"] == "refused" and doc["reason"] == "stale-plan"
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and "hello@contoso.com" not in info["aliases"]
    assert "mallory@contoso.com" in info["members"]

    # Once the tenant is back to what the plan assumed, the plan holds again.
    remove_by_hand(project, "info@contoso.com", "mallory")
    assert project.run("apply", str(saved), "--yes")[0] == 0
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and "hello@contoso.com" in info["aliases"]

    # The file changed after the plan was made: refused.
    project.edit("hello@contoso.com]", "hello@contoso.com, hi@contoso.com]")
    assert project.run("plan", "--out", str(saved))[0] == 2
    project.edit("display_name: Payroll", "display_name: Payroll Team", name="mailboxes.d/finance.yaml")
    project.tenant.reset_metrics()
    assert project.run("apply", str(saved), "--yes")[0] == 4
    assert writes(project.tenant.metrics()) == {}

    # Another stack than the plan's: refused before anything is read.
    assert project.run("plan", "--out", str(saved))[0] == 2
    code, out = project.run("apply", str(saved), "--yes", "--stack", "other", capsys=capsys)
    assert code == 4
    assert writes(project.tenant.metrics()) == {}


def test_the_guard_counts_the_saved_plan_even_if_the_tenant_changed(project: Project, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    entry = ("  - address: team@contoso.com\n    display_name: Team\n    owner: alice@contoso.com\n"
             f"    members: [{', '.join(f'{w}@contoso.com' for w in TEAM)}]\n")
    project.edit("mailboxes:\n", "mailboxes:\n" + entry)
    assert project.run("apply", "--yes")[0] == 0
    assert len(members(project, "team@contoso.com")) == 11

    project.edit(f"    members: [{', '.join(f'{w}@contoso.com' for w in TEAM)}]\n", "")
    saved = tmp_path / "plan.json"
    code, out = project.run("plan", "--json", "--out", str(saved), capsys=capsys)
    assert code == 2 and json.loads(out)["removals"] == 11
    for who in TEAM[:6]:  # the tenant changes in between: re-planning now would remove only 5
        remove_by_hand(project, "team@contoso.com", who)
    project.tenant.reset_metrics()
    assert project.run("apply", str(saved), "--yes")[0] == 3
    assert writes(project.tenant.metrics()) == {}
    assert len(members(project, "team@contoso.com")) == 5


def test_an_unchanged_file_plans_without_a_tenant_request(project: Project) -> None:
    project.tenant.reset_metrics()
    assert project.run("plan")[0] == 0
    assert project.tenant.metrics()["requests"] == 0


def test_apply_keeps_the_engines_state_truthful(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    # Removed by hand, and from the file: nothing to write, but the state must stop claiming the grant,
    # or a plan without --refresh would show a removal that is not there.
    remove_by_hand(project, "payroll@contoso.com", "olivia")
    project.edit("members: [judy@contoso.com, olivia@contoso.com]", "members: [judy@contoso.com]",
                 name="mailboxes.d/finance.yaml")
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 0
    assert writes(project.tenant.metrics()) == {}
    code, out = project.run("plan", capsys=capsys)
    assert code == 0, out

    # Removed by hand, still in the file: apply puts it back (the bulk read sees it).
    remove_by_hand(project, "payroll@contoso.com", "judy")
    assert project.run("apply", "--yes")[0] == 0
    assert "judy@contoso.com" in members(project, "payroll@contoso.com")
    assert project.run("plan", "--refresh")[0] == 0


def test_a_saved_plan_creates_the_mailboxes_on_a_new_stack(tmp_path: Path, local_tenant: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The first reviewed plan of a team (nothing in the stack yet) creates every mailbox when applied."""
    fresh = Project(tmp_path, local_tenant, monkeypatch)
    saved = tmp_path / "plan.json"
    assert fresh.run("plan", "--out", str(saved))[0] == 2
    assert fresh.run("apply", str(saved), "--yes")[0] == 0
    assert {"alice@contoso.com", "bob@contoso.com"} <= members(fresh, "support@contoso.com")
    assert view(local_tenant, "old-projects@contoso.com") is None  # `state: absent`: held by the plan, not made
    assert fresh.run("plan", "--refresh")[0] == 0  # the tenant and the stack agree with the file
