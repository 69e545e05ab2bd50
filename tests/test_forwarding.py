"""The forwarding guard end to end: `forwarding:` validated offline, planned and applied through the real engine,
and forwarding or forwarding inbox rules made outside git reported by drift (high severity, internal/external,
who did it) and removed or disabled, never deleted, by drift --remediate."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main
from reconcile_helpers import Project

ADMIN = "trent@contoso.com"


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    return Project(tmp_path, local_tenant, monkeypatch)


def forwarding(tenant: Any, address: str) -> tuple[Any, Any, bool]:
    row = tenant.exchange("Get-Mailbox", Identity=address).json()["value"][0]
    return row["ForwardingAddress"], row["ForwardingSmtpAddress"], row["DeliverToMailboxAndForward"]


def rules(tenant: Any, address: str) -> list[dict[str, Any]]:
    return list(tenant.exchange("Get-InboxRule", Mailbox=address, IncludeHidden=True).json()["value"])


def test_forwarding_to_a_personal_domain_fails_validation_and_with_the_domain_allowed_plans_and_applies(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.edit("    forwarding: {to: dave@contoso.com, keep_copy: true}",
                 "    forwarding: {to: dave.private@gmail.com}")
    capsys.readouterr()
    code = main(["validate", "--json", "--file", str(project.file)])
    out = capsys.readouterr().out
    assert code == 1
    [finding] = json.loads(out)["findings"]
    assert (finding["code"], finding["pointer"]) == ("forward-external", "/mailboxes/1/forwarding/to")
    assert project.file.read_text().splitlines()[finding["line"] - 1].strip().startswith(
        "forwarding: {to: dave.private@gmail.com}")
    project.tenant.reset_metrics()
    assert project.run("plan")[0] == 1 and project.tenant.metrics()["calls"] == 0  # refused before any request

    project.edit("  allowed_forward_domains: []", "  allowed_forward_domains: [gmail.com]")
    project.edit("forwarding: {to: dave.private@gmail.com}",
                 "forwarding: {to: dave.private@gmail.com, keep_copy: true}")
    project.edit("    owner: grace@contoso.com\n", "    owner: grace@contoso.com\n"
                 "    forwarding: {to: Grace@contoso.com, keep_copy: false}\n")
    # An address in an accepted domain that is no recipient: refused by plan (it resolves it), nothing applied.
    project.edit("    forwarding: {to: Grace@contoso.com, keep_copy: false}\n",
                 "    forwarding: {to: nobody@contoso.com, keep_copy: false}\n")
    code, text = project.run("plan", capsys=capsys)
    assert code == 1 and "! refused: legal-hold@contoso.com: forwarding to nobody@contoso.com is refused: it is not " \
        "a recipient of the organisation" in text, text
    # A mail user has an address in an accepted domain, but its mail goes outside: refused too.
    made = project.tenant.exchange("New-MailUser", username=ADMIN, Name="contractor", Password="x",
                                   MicrosoftOnlineServicesID="contractor@contoso.com",
                                   ExternalEmailAddress="contractor@gmail.com")
    assert made.status_code == 200, made.text
    project.edit("nobody@contoso.com", "contractor@contoso.com")
    code, text = project.run("plan", capsys=capsys)
    assert code == 1 and "forwarding to contractor@contoso.com is refused: it is a MailUser, whose mail leaves the " \
        "organisation" in text, text
    project.tenant.reset_metrics()
    assert project.run("apply", "--yes")[0] == 1
    assert not [k for k in project.tenant.metrics()["cmdlets"] if not k.startswith("Get-")]  # nothing written
    project.edit("contractor@contoso.com", "Grace@contoso.com")
    code, text = project.run("plan", capsys=capsys)
    assert code == 2
    assert '~ forwarding to external "" → "dave.private@gmail.com"' in text
    assert '~ forwarding to "" → "Grace@contoso.com"' in text
    assert project.run("apply", "--yes")[0] == 0
    assert forwarding(project.tenant, "info@contoso.com") == (None, "smtp:dave.private@gmail.com", True)
    grace = project.tenant.exchange("Get-Recipient", Identity="grace@contoso.com").json()["value"][0]
    assert forwarding(project.tenant, "legal-hold@contoso.com") == (grace["Name"], None, False)
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0


def test_forwarding_and_forwarding_rules_made_by_hand_are_high_severity_drift_and_remediated(
        project: Project, tmp_path: Path) -> None:
    assert project.run("apply", "--yes")[0] == 0
    t = project.tenant

    def ok(resp: Any) -> Any:
        assert resp.status_code == 200, resp.text
        return resp.json()

    ok(t.exchange("Set-Mailbox", username=ADMIN, Identity="noreply@contoso.com",
                  ForwardingSmtpAddress="x@gmail.com", DeliverToMailboxAndForward=True))
    ok(t.exchange("New-InboxRule", username=ADMIN, Mailbox="support@contoso.com", Name="to me",
                  RedirectTo=["x@evil.example"]))
    ok(t.exchange("New-InboxRule", username=ADMIN, Mailbox="support@contoso.com", Name="copy to bob",
                  ForwardTo=["bob@contoso.com"]))
    ok(t.exchange("New-InboxRule", username=ADMIN, Mailbox="support@contoso.com", Name="off", Enabled=False,
                  RedirectTo=["y@evil.example"]))  # disabled: sends nothing
    ok(t.exchange("New-InboxRule", username=ADMIN, Mailbox="support@contoso.com", Name="tidy"))  # no forwarding
    hidden = t.http.post("/_emulator/mapi/inbox-rules", json={
        "mailbox": "noreply@contoso.com", "name": "sync", "hidden": True, "ForwardAsAttachmentTo": ["e@evil.example"]})
    assert hidden.status_code == 200, hidden.text

    out = tmp_path / "drift.json"
    assert project.run("drift", "--json", str(out), "--markdown", str(tmp_path / "drift.md"),
                       "--html", str(tmp_path / "drift.html"))[0] == 2
    found = json.loads(out.read_text())["findings"]
    high = sorted((f["kind"], f["mailbox"], f["right"], f["detail"], f["changed_by"]) for f in found
                  if f["severity"] == "high")
    assert high == [
        ("forwarding", "noreply@contoso.com", "forwarding_smtp", "external", ADMIN),
        ("forwarding_rule", "noreply@contoso.com", "forward_rule", "enabled inbox rule; not yet in the audit log",
         None),  # MAPI: not audited, so no record ever comes; no name is guessed
        ("forwarding_rule", "support@contoso.com", "forward_rule", "enabled inbox rule", ADMIN),
        ("forwarding_rule", "support@contoso.com", "forward_rule", "enabled inbox rule", ADMIN),
    ], found
    # Each rule by its RuleIdentity (what remediation disables), name, action and target, classified.
    assert sorted(f["subject"].split(": ", 1)[1] for f in found if f["kind"] == "forwarding_rule") == [
        '"copy to bob" forwards to bob@contoso.com (internal)', '"sync" forwards as attachment to e@evil.example '
        '(external)', '"to me" redirects to x@evil.example (external)']
    assert all(f["subject"].split(": ", 1)[0].isdigit() for f in found if f["kind"] == "forwarding_rule")
    assert all(f["control"] == "CIS 6.2.1, SCuBA MS.EXO.1.1v2" for f in found if f["severity"] == "high")
    assert "HIGH: " in (tmp_path / "drift.md").read_text()
    # The report says where each mailbox's mail goes, with a status word (not colour alone): HIGH where the
    # file does not say so, OK where it does.
    page = (tmp_path / "drift.html").read_text()
    heads = {h.split(" ", 1)[0]: h for h in re.findall(r"<h3[^>]*>(.*?)</h3>", page)}
    assert "<span class='st st-high'>HIGH</span>" in heads["noreply@contoso.com"]
    assert "forwards to x@gmail.com, inbox rule " in heads["noreply@contoso.com"]  # and its hidden rule
    assert heads["info@contoso.com"].startswith("info@contoso.com OK ")  # declared in the file
    assert "forwards to dave@contoso.com" in heads["info@contoso.com"]
    keep = [f for f in found if f["right"] == "forward_keep_copy"]
    assert [(k["kind"], k["severity"]) for k in keep] == [("changed_setting", "")]

    assert project.run("drift", "--json", str(out), "--remediate", "--yes")[0] == 2
    assert forwarding(t, "noreply@contoso.com") == (None, None, False)
    dave = t.exchange("Get-Recipient", Identity="dave@contoso.com").json()["value"][0]["Name"]
    assert forwarding(t, "info@contoso.com") == (dave, None, True)  # declared in the file: kept
    support = {r["Name"]: r["Enabled"] for r in rules(t, "support@contoso.com")}
    assert support == {"to me": False, "copy to bob": False, "off": False, "tidy": True}  # disabled, never deleted
    assert [r["Enabled"] for r in rules(t, "noreply@contoso.com")] == [False]
    entries = [json.loads(line) for line in project.audit.read_text().splitlines()]
    disabled = [e for e in entries if e["kind"] == "change" and e["right"] == "forward_rule"]
    assert len(disabled) == 3 and all(e["detail"] == "remove" for e in disabled)
    assert project.run("drift", "--json", str(out))[0] == 0


def test_forwarding_to_a_mailbox_the_same_apply_creates_takes_one_apply(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """Exchange refuses ForwardingAddress to a recipient that does not exist: the forwarding mailbox is made once
    its target is (the engine waits for it), so one apply does both, in either order in the file."""
    project.file.write_text(project.file.read_text() + """
  - address: intake@contoso.com
    display_name: Intake
    owner: grace@contoso.com
    forwarding: {to: triage@contoso.com, keep_copy: false}
  - address: triage@contoso.com
    display_name: Triage
    owner: grace@contoso.com
""")
    code, text = project.run("plan", capsys=capsys)
    assert code == 2 and "refused" not in text, text
    assert project.run("apply", "--yes", capsys=capsys)[0] == 0
    target, smtp, keep = forwarding(project.tenant, "intake@contoso.com")
    assert (target, smtp, keep) == ("triage", None, False)
    assert project.run("plan", "--refresh", capsys=capsys)[0] == 0
