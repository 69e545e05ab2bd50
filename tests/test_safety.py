"""The reviewed plan tells the truth: end to end on the real engine against a local tenant.

Each test is one finding of the safety review (issue 9): a person's mailbox taken over by an
entry, grants added by hand between plan and apply removed unseen, releases not guarded,
refreshed mailboxes reported as applied, world-readable state, locks left by dead runs.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli import apply as apply_command
from reconcile_helpers import Project, view, writes

PERSON = """  - address: bob@contoso.com
    display_name: Shared Bob
    owner: alice@contoso.com
    members: [alice@contoso.com]
    send_as: [alice@contoso.com]
"""


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path, local_tenant, monkeypatch)


def add_entry(project: Project, entry: str) -> None:
    project.edit("mailboxes:\n", "mailboxes:\n" + entry)


def lines_for(out: str, address: str) -> list[str]:
    """The plan's lines for one mailbox, without the address column."""
    return [ln.split(None, 1)[1].strip() for ln in out.splitlines() if ln.startswith(address + " ")]


def account_enabled(project: Project, address: str) -> bool:
    row = project.tenant.exchange("Get-Mailbox", Identity=address).json()["value"][0]
    user = project.tenant.graph("GET", f"/users/{row['ExternalDirectoryObjectId']}?$select=accountEnabled").json()
    return bool(user["accountEnabled"])


def test_an_entry_with_a_persons_address_is_refused(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    add_entry(project, PERSON)
    project.tenant.reset_metrics()
    code, out = project.run("plan", capsys=capsys)
    assert code == 1
    assert lines_for(out, "bob@contoso.com") == [
        '! refused: bob@contoso.com is a UserMailbox "Bob Baker", not a shared mailbox; mailroom manages shared '
        'mailboxes only and changes nothing on it']
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 1
    assert writes(project.tenant.metrics()) == {}  # nothing at all was applied, not even other mailboxes
    row = project.tenant.exchange("Get-Mailbox", Identity="bob@contoso.com").json()["value"][0]
    assert row["DisplayName"] == "Bob Baker" and row["RecipientTypeDetails"] == "UserMailbox"
    assert account_enabled(project, "bob@contoso.com")
    perms = project.tenant.exchange("Get-MailboxPermission", Identity="bob@contoso.com").json()["value"]
    assert not any("alice" in str(r["User"]).lower() for r in perms)

    # `state: absent` on a person's address must not soft-delete their mailbox either.
    project.edit("    display_name: Shared Bob\n", "    display_name: Shared Bob\n    state: absent\n")
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 1 and "UserMailbox" in out
    assert project.tenant.exchange("Get-Mailbox", Identity="bob@contoso.com").status_code == 200


def test_a_groups_address_is_refused(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    add_entry(project, PERSON.replace("bob@contoso.com", "support-team@contoso.com"))
    code, out = project.run("plan", capsys=capsys)
    assert code == 1
    [line] = lines_for(out, "support-team@contoso.com")
    assert line.startswith("! refused: support-team@contoso.com belongs to a MailUniversalSecurityGroup")


def test_an_existing_shared_mailbox_is_adopted_not_created(project: Project,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    made = project.tenant.exchange("New-Mailbox", client_id="admin-portal", Shared=True, Name="desk", Alias="desk",
                                   DisplayName="Front Desk (by hand)", PrimarySmtpAddress="desk@contoso.com")
    assert made.status_code == 200
    add_entry(project, PERSON.replace("bob@contoso.com", "desk@contoso.com").replace("Shared Bob", "Front Desk"))
    code, out = project.run("plan", capsys=capsys)
    assert code == 2
    lines = lines_for(out, "desk@contoso.com")
    assert lines[0] == '~ adopt existing shared mailbox "Front Desk (by hand)"'
    assert not any("+ create shared mailbox" in ln for ln in lines)
    assert any('~ display name "Front Desk (by hand)" → "Front Desk"' in ln for ln in lines)
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 0
    assert writes(project.tenant.metrics())["New-Mailbox"] == 7  # the shipped file's 7 present mailboxes, not desk
    desk = view(project.tenant, "desk@contoso.com")
    assert desk is not None and desk["display_name"] == "Front Desk" and desk["members"] == ["alice@contoso.com"]


def test_grants_added_by_hand_between_plan_and_apply_are_never_removed(
        project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    people = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
              "niaj", "olivia", "peggy", "rupert"]
    make_plan = apply_command.make_plan

    def plan_then_grant_by_hand(*args: Any, **kwargs: Any) -> Any:
        plan = make_plan(*args, **kwargs)  # the reviewer sees this plan; then an admin grants 15 people by hand
        for who in people:
            resp = project.tenant.exchange("Add-MailboxPermission", client_id="admin-portal",
                                           Identity="payroll@contoso.com", User=f"{who}@contoso.com",
                                           AccessRights=["FullAccess"], AutoMapping=True)
            assert resp.status_code == 200, resp.text
        return plan

    monkeypatch.setattr(apply_command, "make_plan", plan_then_grant_by_hand)
    code, out = project.run("apply", "--yes", capsys=capsys)
    # The engine applies exactly the reviewed plan: info's alias, and nothing on payroll, which the
    # reviewer never saw change.
    assert code == 0 and "info@contoso.com: applied" in out and "payroll@contoso.com: applied" not in out
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and "hello@contoso.com" in info["aliases"]
    payroll = view(project.tenant, "payroll@contoso.com")
    assert payroll is not None
    assert set(f"{who}@contoso.com" for who in people) <= set(payroll["members"])
    monkeypatch.setattr(apply_command, "make_plan", make_plan)
    # The next plan shows the 15 removals, and the guard stops them.
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 3
    payroll = view(project.tenant, "payroll@contoso.com")
    assert payroll is not None and len(payroll["members"]) >= 15


def test_a_grant_by_hand_on_a_mailbox_the_plan_changes_is_never_removed(
        project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    make_plan = apply_command.make_plan

    def plan_then_grant_by_hand(*args: Any, **kwargs: Any) -> Any:
        plan = make_plan(*args, **kwargs)  # the reviewer sees "+ alias" on info; then mallory is granted by hand
        resp = project.tenant.exchange("Add-MailboxPermission", client_id="admin-portal",
                                       Identity="info@contoso.com", User="mallory@contoso.com",
                                       AccessRights=["FullAccess"], AutoMapping=True)
        assert resp.status_code == 200, resp.text
        return plan

    monkeypatch.setattr(apply_command, "make_plan", plan_then_grant_by_hand)
    code, out = project.run("apply", "--yes", capsys=capsys)
    # The read-back after the alias finds mallory, whose removal the reviewer never saw: refused.
    assert code == 1 and "info@contoso.com" in out and "not in the reviewed plan" in out
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and "mallory@contoso.com" in info["members"]


def test_releases_count_toward_the_removal_guard(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    project.edit("max_removals_per_apply: 10", "max_removals_per_apply: 2")
    text = project.file.read_text()
    start = text.index("  - address: info@contoso.com")
    end = text.index("  - address: legal-hold@contoso.com")
    project.file.write_text(text[:start] + text[end:])  # info and noreply leave the file...
    project.edit("  - address: careers@contoso.com\n", "  - address: careers@contoso.com\n    state: absent\n",
                 name="mailboxes.d/hr.yaml")  # ...and careers is deleted: 2 releases + 1 deletion
    project.tenant.reset_metrics()
    code, _ = project.run("apply", "--yes", capsys=capsys)
    assert code == 3
    assert writes(project.tenant.metrics()) == {}
    code, out = project.run("apply", "--yes", "--allow-mass-removal", capsys=capsys)
    assert code == 0
    assert view(project.tenant, "info@contoso.com") is not None  # released, not deleted


def test_apply_reports_and_audits_only_what_it_changed(project: Project,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 0 and "support@contoso.com: applied" in out
    assert "old-projects@contoso.com" not in out  # state: absent and never there: nothing was written
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    before = len(project.audit.read_text().splitlines())
    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    assert code == 0
    result = json.loads(out[out.index("{"):])
    assert result["applied"] == ["info@contoso.com"]
    entries = [json.loads(line) for line in project.audit.read_text().splitlines()[before:]]
    changed = {e["mailbox"] for e in entries if e["kind"] == "change"}
    assert changed == {"info@contoso.com"}
    end = [e for e in entries if e["kind"] == "run_end"][-1]
    assert "info@contoso.com" in json.dumps(end) and "support@contoso.com" not in json.dumps(end)


def test_state_audit_log_and_tenant_are_owner_only(project: Project) -> None:
    old = os.umask(0o022)
    try:
        assert project.run("apply", "--yes")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    assert stat.S_IMODE((project.state / "state").stat().st_mode) == 0o700
    assert stat.S_IMODE(project.audit.stat().st_mode) == 0o600
    # Loose permissions left by an older version are tightened on the next run.
    project.state.chmod(0o755)
    project.audit.chmod(0o644)
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    assert project.run("apply", "--yes")[0] == 0
    assert stat.S_IMODE(project.state.stat().st_mode) == 0o700
    assert stat.S_IMODE(project.audit.stat().st_mode) == 0o600


def _lock(project: Project, pid: int) -> Path:
    folder = project.state / "state" / ".pulumi" / "locks" / "organization" / "mailroom" / "local"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0b5e1c7e-dead-4e5f-9a1b-000000000001.json"
    path.write_text(json.dumps({"pid": pid, "username": "ci", "hostname": socket.gethostname(),
                                "timestamp": "2026-12-01T03:00:00Z"}))
    return path


def test_a_lock_left_by_a_dead_run_is_cleared_and_a_live_one_is_named(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    gone = subprocess.Popen(["true"])
    gone.wait()
    lock = _lock(project, gone.pid)
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    assert project.run("apply", "--yes")[0] == 0  # no manual step
    assert not lock.exists()
    assert capsys.readouterr().err.count("removed the lock of stack local left by a run that is gone") == 1

    # A holder that still runs (a Pulumi CLI by its command line) is left alone, and named.
    holder = subprocess.Popen(["bash", "-c", "exec -a pulumi-stuck sleep 60"])
    try:
        lock = _lock(project, holder.pid)
        project.edit("aliases: [contact@contoso.com, hello@contoso.com]", "aliases: [contact@contoso.com]")
        code, _ = project.run("apply", "--yes")
        assert code == 1 and lock.exists()
        assert f"(pid {holder.pid})" in capsys.readouterr().err
        from mailroom.cli.main import main

        assert main(["unlock", "--stack", "local"]) == 1
        assert lock.exists()
        capsys.readouterr()
        assert main(["unlock", "--stack", "local", "--force"]) == 0
        out = capsys.readouterr().out
        assert f"removed the lock {lock.name}, held by ci@{socket.gethostname()} (pid {holder.pid})" in out
        assert not lock.exists()
        assert project.run("apply", "--yes")[0] == 0
        assert project.run("plan", "--refresh")[0] == 0
    finally:
        holder.kill()
        holder.wait()
