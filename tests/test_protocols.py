"""Protocols end to end (defaults.protocols, a mailbox's own `protocols`): plan, apply through the real
engine, drift with who changed it, remediation and import, against a local tenant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import Project

ADMIN = "trent@contoso.com"
SWITCHES = {"pop": "PopEnabled", "imap": "ImapEnabled", "activesync": "ActiveSyncEnabled", "ews": "EwsEnabled",
            "owa": "OWAEnabled", "mapi": "MAPIEnabled"}


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path, local_tenant, monkeypatch)


def protocols(tenant: Any, address: str) -> dict[str, Any]:
    """The mailbox's protocols as the emulator reports them, in the file's terms."""
    row = tenant.exchange("Get-CASMailbox", Identity=address).json()["value"][0]
    out: dict[str, Any] = {key: row[field] for key, field in SWITCHES.items()}
    disabled = row["SmtpClientAuthenticationDisabled"]
    out["smtp_auth"] = None if disabled is None else not disabled
    return out


PROFILE = {"pop": False, "imap": False, "activesync": False, "ews": False, "smtp_auth": False, "owa": True,
           "mapi": True}


def test_a_mailbox_created_by_apply_has_its_protocols_before_any_member(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = project.run("plan", "--json", capsys=capsys)
    assert code == 2
    support = next(m for m in json.loads(out)["mailboxes"] if m["address"] == "support@contoso.com")
    sets = {c["right"]: (c["before"], c["after"]) for c in support["changes"] if c["op"] == "set"}
    # What Exchange leaves a new mailbox (everything on, SMTP AUTH the organisation's) → the profile; IMAP stays on
    # for support (its own `protocols: {imap: true}`), OWA and MAPI stay on: no line for them.
    assert {k: v for k, v in sets.items() if k in PROFILE} == {
        "pop": (True, False), "activesync": (True, False), "ews": (True, False), "smtp_auth": (None, False)}
    code, text = project.run("plan", capsys=capsys)
    assert "~ SMTP AUTH organisation default → off" in text and "~ POP on → off" in text

    assert project.run("apply", "--yes")[0] == 0
    assert protocols(project.tenant, "support@contoso.com") == {**PROFILE, "imap": True}
    assert protocols(project.tenant, "info@contoso.com") == PROFILE
    # Per mailbox, the tenant's own audit log: the protocols were set before the first grant was written.
    for address in ("support@contoso.com", "info@contoso.com", "legal-hold@contoso.com"):
        rows = project.tenant.admin_audit(address)
        order = [r["operation"] for r in sorted(rows, key=lambda r: r["createdDateTime"])]
        assert order[0] == "New-Mailbox" and "Set-CASMailbox" in order, (address, order)
        assert order.index("Set-CASMailbox") < order.index("Add-MailboxPermission"), (address, order)
        assert order.index("Set-CASMailbox") < order.index("Set-Mailbox"), (address, order)  # Send on Behalf

    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0  # the tenant now holds the file's protocols


def test_a_protocol_turned_on_by_hand_is_drift_with_who_and_its_control_and_is_remediated(
        project: Project, tmp_path: Path) -> None:
    assert project.run("apply", "--yes")[0] == 0
    resp = project.tenant.exchange("Set-CASMailbox", username=ADMIN, Identity="info@contoso.com", PopEnabled=True,
                                   SmtpClientAuthenticationDisabled=False)
    assert resp.status_code == 200, resp.text
    out = tmp_path / "drift.json"
    assert project.run("drift", "--json", str(out))[0] == 2
    found = {(f["kind"], f["mailbox"], f["right"]): f for f in json.loads(out.read_text())["findings"]}
    assert set(found) == {("changed_setting", "info@contoso.com", "pop"),
                          ("changed_setting", "info@contoso.com", "smtp_auth")}
    smtp = found[("changed_setting", "info@contoso.com", "smtp_auth")]
    assert (smtp["expected"], smtp["actual"], smtp["changed_by"]) == (False, True, ADMIN)
    assert smtp["control"] == "SCuBA MS.EXO.5.1v1" and "[SCuBA MS.EXO.5.1v1]" in smtp["description"]
    assert found[("changed_setting", "info@contoso.com", "pop")]["changed_by"] == ADMIN

    assert project.run("drift", "--json", str(out), "--remediate", "--yes")[0] == 2
    assert protocols(project.tenant, "info@contoso.com") == PROFILE
    assert project.run("drift", "--json", str(out))[0] == 0
