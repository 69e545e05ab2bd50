"""Reconcile end to end: mailroom plan/apply on the real Pulumi engine against a local tenant."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mailroom.engine.workspace import pulumi_bin_dir
from mailroom.file.load import load_desired
from reconcile_helpers import Project, view, writes


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path, local_tenant, monkeypatch)


def expected(project: Project) -> dict[str, dict[str, Any]]:
    desired = load_desired(str(project.file)).desired
    assert desired is not None
    out = {}
    for mb in desired.mailboxes:
        if mb.state.value == "absent":
            continue
        out[mb.address] = {
            "display_name": mb.display_name, "aliases": sorted(a.lower() for a in mb.aliases),
            "members": sorted(m.address.lower() for m in mb.members),
            "send_as": sorted(a.lower() for a in mb.send_as),
            "send_on_behalf": sorted(a.lower() for a in mb.send_on_behalf),
            "hidden_from_gal": mb.hidden_from_gal, "copy_send_as": mb.sent_items.copy_send_as,
            "copy_send_on_behalf": mb.sent_items.copy_send_on_behalf, "audit_enabled": mb.audit_enabled,
            "sign_in_blocked": mb.sign_in_blocked,
        }
    return out


def test_apply_from_empty_tenant_then_no_changes(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = project.run("plan", "--json", capsys=capsys)
    assert code == 2
    plan = json.loads(out)
    want = expected(project)
    planned = {m["address"] for m in plan["mailboxes"]}
    assert set(want) <= planned
    support = next(m for m in plan["mailboxes"] if m["address"] == "support@contoso.com")
    lines = {(c["op"], c["right"], c["subject"]) for c in support["changes"]}
    assert ("add", "send_on_behalf", "carol@contoso.com") in lines and ("add", "alias", "helpdesk@contoso.com") in lines
    assert writes(project.tenant.metrics()) == {}  # a plan writes nothing

    code, _ = project.run("apply", "--yes", capsys=capsys)
    assert code == 0
    for address, state in want.items():
        assert view(project.tenant, address) == state, address
    assert view(project.tenant, "old-projects@contoso.com") is None  # state: absent, never created

    project.tenant.reset_metrics()
    code, out = project.run("plan", capsys=capsys)
    assert code == 0 and "No changes" in out
    assert project.tenant.metrics()["calls"] == 0  # an unchanged plan makes no tenant request at all
    code, out = project.run("plan", "--refresh", capsys=capsys)
    assert code == 0 and "No changes" in out
    assert writes(project.tenant.metrics()) == {}


def test_edit_plans_and_applies_exactly_those_changes(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    project.edit("aliases: [contact@contoso.com]", "aliases: [contact@contoso.com, hello@contoso.com]")
    project.edit("members: [dave@contoso.com, erin@contoso.com]", "members: [dave@contoso.com]")
    project.edit("      - user: carol@contoso.com\n        automap: false",
                 "      - user: carol@contoso.com\n        automap: true")
    project.edit("    send_as: [dave@contoso.com]\n", "    send_as: [dave@contoso.com]\n"
                 "    send_on_behalf: [dave@contoso.com]\n")
    code, out = project.run("plan", capsys=capsys)
    assert code == 2
    assert [line.split(None, 1)[1].strip() for line in out.splitlines() if "@contoso.com  " in line] == [
        "+ alias  hello@contoso.com",
        "- member  erin@contoso.com",
        "+ Send on Behalf  dave@contoso.com",
        "~ AutoMapping carol@contoso.com on → off".replace("on → off", "off → on"),
    ]
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 0
    # alias and Send on Behalf in one Set-Mailbox; the member removed; AutoMapping re-granted (remove + add)
    assert writes(project.tenant.metrics()) == {
        "Set-Mailbox": 1, "Remove-MailboxPermission": 2, "Add-MailboxPermission": 1}
    info = view(project.tenant, "info@contoso.com")
    assert info is not None and info["members"] == ["dave@contoso.com"]
    assert info["aliases"] == ["contact@contoso.com", "hello@contoso.com"]
    assert info["send_on_behalf"] == ["dave@contoso.com"]
    assert project.run("plan", "--refresh")[0] == 0


def test_out_of_band_grant_is_seen_by_refresh_and_removed(project: Project) -> None:
    assert project.run("apply", "--yes")[0] == 0
    resp = project.tenant.exchange("Add-MailboxPermission", client_id="admin-portal", Identity="payroll@contoso.com",
                                   User="mallory@contoso.com", AccessRights=["FullAccess"], AutoMapping=True)
    assert resp.status_code == 200
    from mailroom.engine.runner import prepare

    events: list[Any] = []
    prepare(str(project.file), "local").engine().refresh_preview(events.append)
    updated = [e.res_outputs_event.metadata.urn.rsplit("::", 1)[-1] for e in events
               if getattr(e, "res_outputs_event", None) is not None
               and getattr(e.res_outputs_event.metadata.op, "value", "") == "update"]
    assert updated == ["payroll@contoso.com"]
    assert project.run("apply", "--yes")[0] == 0
    payroll = view(project.tenant, "payroll@contoso.com")
    assert payroll is not None and "mallory@contoso.com" not in payroll["members"]


def test_removed_from_file_is_released_absent_is_deleted(project: Project) -> None:
    assert project.run("apply", "--yes")[0] == 0
    project.edit("""  - address: payroll@contoso.com
    display_name: Payroll
    owner: judy@contoso.com
    members: [judy@contoso.com, olivia@contoso.com]
    send_on_behalf: [judy@contoso.com]
    hidden_from_gal: false
""", "", name="mailboxes.d/finance.yaml")
    assert project.run("apply", "--yes")[0] == 0
    payroll = view(project.tenant, "payroll@contoso.com")
    assert payroll is not None and payroll["members"] == ["judy@contoso.com", "olivia@contoso.com"]  # kept
    entries = [json.loads(line) for line in project.audit.read_text().splitlines()]
    assert any(e["mailbox"] == "payroll@contoso.com" and "released" in (e["detail"] or "") for e in entries)
    project.edit("  - address: careers@contoso.com\n", "  - address: careers@contoso.com\n    state: absent\n",
                 name="mailboxes.d/hr.yaml")
    assert project.run("apply", "--yes")[0] == 0
    assert view(project.tenant, "careers@contoso.com") is None
    soft = project.tenant.exchange("Get-Mailbox", Identity="careers@contoso.com", SoftDeletedMailbox=True)
    assert soft.status_code == 200 and soft.json()["value"]  # soft-deleted, recoverable


def test_mass_removal_guard(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert project.run("apply", "--yes")[0] == 0
    # 11 removals: support loses 4 members, 2 Send As, 1 Send on Behalf; info loses 2 members, 1 Send As;
    # noreply loses its Send As.
    project.edit("""    members:
      - alice@contoso.com
      - bob@contoso.com
      - user: carol@contoso.com
        automap: false         # Carol works from several mailboxes and opens this one by hand
      - group: support-team@contoso.com
    send_as: [alice@contoso.com, bob@contoso.com]
    send_on_behalf: [carol@contoso.com]
""", "")
    project.edit("    members: [dave@contoso.com, erin@contoso.com]\n    send_as: [dave@contoso.com]\n", "")
    project.edit("    send_as: [frank@contoso.com]\n", "")
    project.tenant.reset_metrics()
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 3
    assert writes(project.tenant.metrics()) == {}
    assert view(project.tenant, "support@contoso.com")["members"] != []  # type: ignore[index]
    code, _ = project.run("apply", "--yes", "--allow-mass-removal")
    assert code == 0
    assert view(project.tenant, "support@contoso.com")["members"] == []  # type: ignore[index]


def test_apply_converges_under_throttling_and_faults(project: Project) -> None:
    project.tenant.set_profile({"seed": 11, "throttle_rate": 0.2, "error_rate": 0.05})
    code, _ = project.run("apply", "--yes")
    injected = project.tenant.metrics()["injected"]
    assert injected["throttled"] > 0 and injected["errors"] > 0
    assert code == 0  # retries (Retry-After honoured) absorb every injected fault
    project.tenant.set_profile({})
    for address, state in expected(project).items():
        actual = view(project.tenant, address)
        assert actual == state, address  # no duplicates: lists compare equal, sorted, entry by entry
    for address in expected(project):
        rows = project.tenant.exchange("Get-MailboxPermission", Identity=address).json()["value"]
        users = [r["User"] for r in rows if not r["IsInherited"]]  # the inherited ones repeat names
        assert len(users) == len(set(users))
    assert project.run("plan", "--refresh")[0] == 0


def test_invalid_file_makes_no_tenant_request(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("display_name: Contoso Info", "display_name: Contoso Info\n    sign_in_blocked: maybe")
    project.tenant.reset_metrics()
    for command in (["plan"], ["apply", "--yes"]):
        code, out = project.run(*command, capsys=capsys)
        assert code == 1
        assert "mailboxes.yaml:" in out and "sign_in_blocked" in out
    assert project.tenant.metrics()["calls"] == 0
    assert not (project.state / "state").exists()  # the engine never started


def test_no_secret_in_state_or_logs(project: Project) -> None:
    assert project.run("apply", "--yes")[0] == 0
    env = {"PULUMI_BACKEND_URL": (project.state / "state").as_uri(), "PULUMI_CONFIG_PASSPHRASE": "mailroom-local-stack",
           "PULUMI_SKIP_UPDATE_CHECK": "true", "PATH": f"{pulumi_bin_dir()}:/usr/bin:/bin"}
    root = Path(__file__).resolve().parents[1]
    export = subprocess.run([str(pulumi_bin_dir() / "pulumi"), "stack", "export", "--show-secrets", "--stack", "local",
                             "--cwd", str(root)], capture_output=True, text=True, env=env, check=True).stdout
    data = json.loads(export)
    assert len(data["deployment"]["resources"]) >= 9
    for text in (export, project.audit.read_text(), (project.state / "state").as_posix()):
        assert "eyJ" not in text  # no bearer token
        assert "local-tenant-not-a-secret" not in text
        assert "client_secret" not in text.lower()


def test_failed_change_is_reported_and_audited(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("members: [frank@contoso.com]", "members: [frank@contoso.com, ghost@contoso.com]")
    project.edit("    send_as: [frank@contoso.com]\n", "    send_as: [frank@contoso.com]\n", )
    code, out = project.run("apply", "--yes", capsys=capsys)
    assert code == 1
    assert "noreply@contoso.com: FAILED" in out and "ghost@contoso.com" in out
    assert "support@contoso.com: applied" in out  # the rest was applied, and says so
    entries = [json.loads(line) for line in project.audit.read_text().splitlines()]
    failed = [e for e in entries if e["kind"] == "change_failed"]
    assert [(e["mailbox"], e["subject"]) for e in failed] == [("noreply@contoso.com", "ghost@contoso.com")]
    assert any(e["kind"] == "change" and e["mailbox"] == "support@contoso.com" for e in entries)
