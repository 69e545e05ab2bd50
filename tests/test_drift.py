"""Drift end to end: out-of-band changes through the emulator's APIs, reported with who did them."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mailroom.audit.log import verify
from reconcile_helpers import Project, view

ADMIN = "trent@contoso.com"  # a human admin acting outside git


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = Project(tmp_path, local_tenant, monkeypatch)
    assert p.run("apply", "--yes")[0] == 0
    return p


def out_of_band(t: Any) -> None:
    def ok(resp: Any) -> None:
        assert resp.status_code in (200, 204), resp.text

    ok(t.exchange("Add-MailboxPermission", username=ADMIN, Identity="support@contoso.com", User="mallory@contoso.com",
                  AccessRights=["FullAccess"], AutoMapping=True))
    ok(t.exchange("Add-RecipientPermission", username=ADMIN, Identity="info@contoso.com", Trustee="mallory@contoso.com",
                  AccessRights=["SendAs"]))
    ok(t.exchange("Set-Mailbox", username=ADMIN, Identity="support@contoso.com",
                  EmailAddresses={"@odata.type": "#Exchange.GenericHashTable", "Remove": ["smtp:help@contoso.com"]}))
    noreply = t.exchange("Get-Mailbox", Identity="noreply@contoso.com").json()["value"][0]
    noreply_user = f"/users/{noreply['ExternalDirectoryObjectId']}"
    ok(t.graph("PATCH", noreply_user, username=ADMIN, json={"accountEnabled": True}))
    ok(t.graph("PATCH", "/users/bob@contoso.com", username=ADMIN, json={"accountEnabled": False}))
    ok(t.exchange("New-Mailbox", username=ADMIN, Shared=True, Name="marketing", DisplayName="Marketing",
                  PrimarySmtpAddress="marketing@contoso.com"))


def drift(project: Project, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "drift.json"
    code = project.run("drift", "--json", str(out), *extra)[0]
    return code, json.loads(out.read_text())


def keyed(report: dict[str, Any]) -> dict[tuple[str, str, str | None, str | None], dict[str, Any]]:
    return {(f["kind"], f["mailbox"], f["right"], f["subject"]): f for f in report["findings"]}


def test_clean_tenant_has_no_drift(project: Project, tmp_path: Path) -> None:
    code, report = drift(project, tmp_path)
    assert code == 0 and report["findings"] == []


def test_out_of_band_changes_are_reported_with_who_then_remediated(project: Project, tmp_path: Path) -> None:
    # Records reach the unified audit log a while after the change (the ingestion delay): until then a change
    # is "not yet in the audit log", never someone else's; then each is its admin's.
    project.tenant.audit_settings(ingestion_delay_s=4.0, start_s=0.2, run_s=0.3)
    out_of_band(project.tenant)
    changed = time.monotonic()
    code, early = drift(project, tmp_path)
    assert code == 2 and time.monotonic() - changed < 4.0, "the drift run was slower than the delay"
    exchange_made = {("extra_grant", "support@contoso.com", "member", "mallory@contoso.com"),
                     ("extra_grant", "info@contoso.com", "send_as", "mallory@contoso.com"),
                     ("changed_setting", "support@contoso.com", "alias", "help@contoso.com"),
                     ("unmanaged_mailbox", "marketing@contoso.com", "mailbox", None)}
    for key in exchange_made:
        f = keyed(early)[key]
        assert (f["changed_by"], f["changed_at"]) == (None, None) and "not yet in the audit log" in f["detail"], f
    time.sleep(max(0.0, 4.0 - (time.monotonic() - changed)))
    code, report = drift(project, tmp_path, "--html", str(tmp_path / "report.html"))
    assert code == 2
    found = keyed(report)
    want = {
        ("extra_grant", "support@contoso.com", "member", "mallory@contoso.com"),
        ("extra_grant", "info@contoso.com", "send_as", "mallory@contoso.com"),
        ("changed_setting", "support@contoso.com", "alias", "help@contoso.com"),
        ("changed_setting", "noreply@contoso.com", "sign_in_blocked", None),
        ("stale_access", "support@contoso.com", "member", "bob@contoso.com"),
        ("stale_access", "support@contoso.com", "send_as", "bob@contoso.com"),
        ("unmanaged_mailbox", "marketing@contoso.com", "mailbox", None),
    }
    assert set(found) == want, sorted(set(found) ^ want)
    for key in want - {("stale_access", "support@contoso.com", "send_as", "bob@contoso.com")}:
        assert found[key]["changed_by"] == ADMIN, (key, found[key])
        assert found[key]["changed_at"]
    assert all(f["first_seen"] for f in report["findings"])

    code, _ = drift(project, tmp_path, "--remediate", "--yes")
    assert code == 2  # drift was found (and handed to apply)
    support = view(project.tenant, "support@contoso.com")
    assert support is not None and "mallory@contoso.com" not in support["members"]
    assert "help@contoso.com" in support["aliases"]
    assert view(project.tenant, "noreply@contoso.com")["sign_in_blocked"] is True  # type: ignore[index]
    assert view(project.tenant, "marketing@contoso.com") is not None  # unmanaged: reported, never touched

    code, report = drift(project, tmp_path)
    assert code == 2
    assert set(keyed(report)) == {
        ("stale_access", "support@contoso.com", "member", "bob@contoso.com"),
        ("stale_access", "support@contoso.com", "send_as", "bob@contoso.com"),
        ("unmanaged_mailbox", "marketing@contoso.com", "mailbox", None),
    }
    first = {f["kind"]: f["first_seen"] for f in report["findings"]}
    assert first["unmanaged_mailbox"] == found[("unmanaged_mailbox", "marketing@contoso.com", "mailbox", None)][
        "first_seen"]  # kept between runs

    entries = [json.loads(line) for line in project.audit.read_text().splitlines()]
    kinds = {e["kind"] for e in entries}
    assert {"drift_new", "drift_present", "drift_resolved", "change", "run_start", "run_end"} <= kinds
    assert verify(project.audit).ok


def test_scan_under_faults_equals_fault_free(project: Project, tmp_path: Path) -> None:
    out_of_band(project.tenant)
    code, clean = drift(project, tmp_path)
    project.tenant.set_profile({"seed": 5, "throttle_rate": 0.2, "error_rate": 0.15, "drop_rate": 0.15})
    code2, faulty = drift(project, tmp_path)
    injected = project.tenant.metrics()["injected"]
    project.tenant.set_profile({})
    assert injected["throttled"] and injected["errors"] and injected["dropped"]
    assert code == code2 == 2

    def strip(report: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((f["kind"], f["mailbox"], f["right"], f["subject"], f["changed_by"]) for f in report["findings"])

    assert strip(faulty) == strip(clean)


def test_scan_under_5xx_on_every_service_equals_fault_free(project: Project, tmp_path: Path) -> None:
    """30% of Exchange, Graph and token calls answer 500 or 502: Graph pages are retried like
    Exchange calls, so no run stops on one 502 (one in five did)."""
    out_of_band(project.tenant)
    code, clean = drift(project, tmp_path)

    def strip(report: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((f["kind"], f["mailbox"], f["right"], f["subject"], f["changed_by"]) for f in report["findings"])

    for seed in range(3):
        project.tenant.set_profile({"seed": seed, "error_rate": 0.3, "error_statuses": [500, 502]})
        code2, faulty = drift(project, tmp_path)
        assert project.tenant.metrics()["injected"]["errors"]
        assert (code2, strip(faulty)) == (code, strip(clean)), seed
        assert faulty["scan"]["retries"] > 0
    project.tenant.set_profile({})


def test_remediate_confirms_and_keeps_to_the_mass_removal_guard(project: Project, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """drift --remediate is apply: no terminal and no --yes changes nothing; the guard holds (exit 3)."""
    out_of_band(project.tenant)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal

    def mallory_has_access() -> bool:
        support = view(project.tenant, "support@contoso.com")
        return support is not None and "mallory@contoso.com" in support["members"]

    code, report = drift(project, tmp_path, "--remediate")
    assert code == 1 and report["drift"] is True
    assert mallory_has_access()  # nothing was changed

    # Reverting the out-of-band changes removes two grants from mallory: over a limit of 1.
    project.edit("max_removals_per_apply: 10", "max_removals_per_apply: 1")
    code, _ = drift(project, tmp_path, "--remediate", "--yes")
    assert code == 3
    assert mallory_has_access()

    code, _ = drift(project, tmp_path, "--remediate", "--yes", "--allow-mass-removal")
    assert code == 2  # drift was found, and reverted
    assert not mallory_has_access()
    runs = [json.loads(line) for line in project.audit.read_text().splitlines()]
    refused = [e for e in runs if e["kind"] == "run_end" and e["result"] == "refused"]
    assert refused and refused[-1]["after"]["limit"] == 1


def test_drift_json_on_stdout_is_one_document(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    out_of_band(project.tenant)
    code, out = project.run("drift", "--json", capsys=capsys)
    doc = json.loads(out)  # the whole of stdout: no text report before it
    assert code == 2 and (doc["format_version"], doc["command"], doc["drift"]) == (1, "drift", True)
    assert doc["remediation"] is None and doc["findings"] and "scan" in doc
