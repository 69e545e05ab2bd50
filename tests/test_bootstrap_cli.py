"""`mailroom bootstrap plan|apply|show` end to end on the local stack: the CLI against a real local tenant
server, then the identities it set up, over HTTP, as Exchange answers them (the error envelope of a write
outside the scope, the non-JSON 403 of a cmdlet outside the roles)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main
from reconcile_helpers import Project

SHARED = "support@contoso.com"


def bootstrap(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out = project.run("bootstrap", *args, capsys=capsys)
    return code, json.loads(out) if "--json" in args else out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bootstrap_plan_apply_show_on_the_local_tenant_and_the_bound_it_sets(
        tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    Project(tmp_path, local_tenant, monkeypatch)
    github = ("--ci", "github", "--repo", "contoso/mailboxes")

    code, out, _ = run(capsys, "bootstrap", "plan", "--stack", "local", *github)
    assert code == 2, out
    assert "+ role assignment" in out and "Mail Recipients  write scope mailroom-shared-mailboxes" in out
    assert "repo:contoso/mailboxes:environment:production" in out and out.rstrip().endswith("Changes pending.")

    code, out, err = run(capsys, "bootstrap", "apply", "--stack", "local", *github)  # no terminal, no --yes
    assert code == 1 and "pass --yes" in err
    code, out, _ = run(capsys, "bootstrap", "plan", "--stack", "local", "--json")
    plan = json.loads(out)
    assert (plan["format_version"], plan["command"], plan["has_changes"]) == (1, "bootstrap plan", True)
    assert plan["entra"]["applied"] is False and len(plan["exchange"]["changes"]) == 7  # nothing was made

    code, out, _ = run(capsys, "bootstrap", "apply", "--stack", "local", "--yes", "--json", *github)
    applied = json.loads(out)
    assert code == 0 and applied["command"] == "bootstrap apply" and len(applied["applied"]) == 7
    assert applied["client_ids"] == {"plan": "mailroom-plan", "apply": "mailroom-apply"}
    assert applied["ci_variables"]["MAILROOM_APPLY_CLIENT_ID"] == "mailroom-apply"
    assert applied["stack_yaml"] is None  # the local stack is the embedded tenant: no Pulumi.local.yaml

    code, out, _ = run(capsys, "bootstrap", "plan", "--stack", "local")
    assert code == 0 and out.rstrip().endswith("No changes.")
    # Every change is in the audit log, which verifies.
    code, out, _ = run(capsys, "audit", "show", "--json")
    entries = json.loads(out)["entries"]
    made = [(e["kind"], e["right"], e["subject"]) for e in entries if e["kind"] == "change"]
    assert len(made) == 7 and ("change", "exchange role assignment", "Mail Recipient Creation") in made
    assert [e["detail"] for e in entries if e["kind"].startswith("run_")] == ["bootstrap apply"] * 2
    assert run(capsys, "audit", "verify")[0] == 0
    code, out, _ = run(capsys, "bootstrap", "show", "--stack", "local", "--json", *github)
    shown = json.loads(out)
    assert code == 0 and shown["undeclared_assignments"] == []
    for ident in shown["identities"]:
        assert ident["registered_in_exchange"] is True
        assert all(r["in_place"] for r in ident["exchange_roles"]), ident["name"]
    apply_roles = {r["role"]: r["write_scope"] for r in shown["identities"][1]["exchange_roles"]}
    assert apply_roles["Mail Recipients"] == apply_roles["Mail Recipient Creation"] == "mailroom-shared-mailboxes"

    # The bound, over HTTP. apply: a shared mailbox yes, a person's mailbox no, with Exchange's error envelope.
    assert local_tenant.exchange("New-Mailbox", client_id="mailroom-apply", Shared=True, Name="support",
                                 PrimarySmtpAddress=SHARED).status_code == 200
    assert local_tenant.exchange("Set-Mailbox", client_id="mailroom-apply", Identity=SHARED,
                                 HiddenFromAddressListsEnabled=True).status_code == 200
    resp = local_tenant.exchange("Set-Mailbox", client_id="mailroom-apply", Identity="alice@contoso.com",
                                 HiddenFromAddressListsEnabled=True)
    assert resp.status_code == 400
    detail = resp.json()["error"]["details"][0]["message"]
    assert detail.startswith("|System.InvalidOperationException|The operation on mailbox")
    assert "out of the current user's write scope" in detail
    alice = local_tenant.exchange("Get-Mailbox", Identity="alice@contoso.com").json()["value"][0]
    assert alice["HiddenFromAddressListsEnabled"] is False
    # plan: reads, and every write is a cmdlet it does not have.
    assert local_tenant.exchange("Get-MailboxPermission", client_id="mailroom-plan", Identity=SHARED).status_code == 200
    refused = local_tenant.exchange("Set-Mailbox", client_id="mailroom-plan", Identity=SHARED, DisplayName="x")
    assert (refused.status_code, refused.content) == (403, b"")

    # A role added by hand to the apply identity is shown, and removed by the next apply.
    local_tenant.exchange("New-ManagementRoleAssignment", Name="by-hand", Role="Mail Recipients",
                          App="mailroom-apply")
    code, out, _ = run(capsys, "bootstrap", "show", "--stack", "local")
    assert "! undeclared role assignment by-hand (Mail Recipients) on mailroom-apply" in out
    code, out, _ = run(capsys, "bootstrap", "apply", "--stack", "local", "--yes")
    assert code == 0 and "1 Exchange change(s) made" in out
    assert local_tenant.exchange("Get-ManagementRoleAssignment", Identity="by-hand").status_code == 404


def test_ci_needs_the_stack_named_and_the_targets_flags_go_together(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("MAILROOM_STACK", raising=False)
    code, _, err = run(capsys, "bootstrap", "plan")
    assert code == 1 and "no stack is named" in err
    code, _, err = run(capsys, "bootstrap", "plan", "--stack", "prod", "--ci", "github")
    assert code == 64 and "--ci and --repo go together" in err
    code, _, err = run(capsys, "bootstrap", "plan", "--stack", "prod", "--ci", "azure-devops", "--repo", "o/p")
    assert code == 64 and "--issuer" in err


def test_a_real_stack_without_its_settings_fails_before_any_request(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "bootstrap", "plan", "--stack", "no-such-stack", "--ci", "github", "--repo", "o/r")
    assert (code, out) == (1, "") and "Pulumi.no-such-stack.yaml" in err


def test_mailroom_itself_runs_as_the_bootstrapped_identities(tmp_path: Path, local_tenant: Any,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """plan, apply and drift of the shipped file, each as the identity CI gives it, with exactly the app roles
    bootstrap declares consented (the test plays Entra's part: PUT /_emulator/apps)."""
    from mailroom.bootstrap.identities import APPLY, EXCHANGE_APP_ID, PLAN

    project = Project(tmp_path, local_tenant, monkeypatch)
    assert run(capsys, "bootstrap", "apply", "--stack", "local", "--yes")[0] == 0
    for identity in (PLAN, APPLY):
        roles: dict[str, list[str]] = {"https://graph.microsoft.com": [], "https://outlook.office365.com": []}
        for role in identity.app_roles:
            aud = "https://outlook.office365.com" if role.api_app_id == EXCHANGE_APP_ID else "https://graph.microsoft.com"
            roles[aud].append(role.name)
        local_tenant._client().put(f"/_emulator/apps/{identity.display_name}", json={"roles": roles}).raise_for_status()

    monkeypatch.setenv("MAILROOM_LOCAL_CLIENT_ID", "mailroom-plan")
    code, out = project.run("plan", "--refresh", "--json", capsys=capsys)
    assert code == 2 and json.loads(out)["has_changes"]
    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    failed = json.loads(out)
    assert code == 1 and failed["result"] == "failed" and not failed["applied"]
    assert "Forbidden" in json.dumps(failed["failed"])

    monkeypatch.setenv("MAILROOM_LOCAL_CLIENT_ID", "mailroom-apply")
    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["result"] == "ok", out

    monkeypatch.setenv("MAILROOM_LOCAL_CLIENT_ID", "mailroom-plan")
    code, out = project.run("plan", "--refresh", "--json", capsys=capsys)
    assert code == 0 and not json.loads(out)["has_changes"]
    code, out = project.run("drift", "--json", capsys=capsys)
    assert code == 0, out
    writers = {r["userPrincipalName"] for r in local_tenant.admin_audit()
               if r["auditData"]["ResultStatus"] == "True"
               and r["operation"] in ("New-Mailbox", "Set-Mailbox", "Add-MailboxPermission")}
    assert writers == {"mailroom-apply"}


def test_apply_refuses_when_exchange_changed_after_the_plan_was_shown(tmp_path: Path, local_tenant: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from mailroom.bootstrap import run as ops
    from mailroom.errors import ConfigError

    Project(tmp_path, local_tenant, monkeypatch)
    shown = ops.plan(ops.Target("local"))
    assert len(shown.exchange) == 7
    local_tenant.exchange("New-ManagementScope", Name="mailroom-shared-mailboxes",
                          RecipientRestrictionFilter="RecipientTypeDetails -eq 'UserMailbox'")
    with pytest.raises(ConfigError, match="changed since the plan was shown"):
        ops.apply(shown)
    assert local_tenant.exchange("Get-ServicePrincipal").json()["value"] == []  # nothing was made
    again = ops.plan(ops.Target("local"))
    assert [c.op for c in again.exchange if c.kind == "management scope"] == ["~"]
    _, done = ops.apply(again)
    assert len(done) == 7 and ops.plan(ops.Target("local")).exchange == []
