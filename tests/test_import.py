"""mailroom import end to end: a tenant built by hand through the emulator's APIs is adopted with no write.

import → validate (exit 0) → plan (nothing but adoption) → apply (0 write requests) → plan (no changes) →
drift (only the stale grant to a deleted account); then --merge after one change made by hand, and bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main
from reconcile_helpers import writes

ADMIN = "trent@contoso.com"


def ok(resp: Any) -> Any:
    assert resp.status_code in (200, 204), resp.text
    return resp.json()["value"] if resp.status_code == 200 and resp.content else None


def by_hand(t: Any) -> None:
    """Shared mailboxes as an admin built them over the years, through Exchange and Graph."""
    def ex(cmdlet: str, **params: Any) -> Any:
        return ok(t.exchange(cmdlet, username=ADMIN, **params))

    ex("New-Mailbox", Shared=True, Name="support", DisplayName="Customer Support: first line",
       PrimarySmtpAddress="Support@contoso.com")
    ex("Set-Mailbox", Identity="support", EmailAddresses={"@odata.type": "#Exchange.GenericHashTable",
                                                          "Add": ["smtp:help@contoso.com"]},
       MessageCopyForSentAsEnabled=True, GrantSendOnBehalfTo={"Add": ["carol@contoso.com"]})
    ex("Add-MailboxPermission", Identity="support", User="alice@contoso.com", AccessRights=["FullAccess"])
    ex("Add-MailboxPermission", Identity="support", User="carol@contoso.com", AccessRights=["FullAccess"],
       AutoMapping=False)
    ex("Add-MailboxPermission", Identity="support", User="support-team", AccessRights=["FullAccess"])
    ex("Add-MailboxPermission", Identity="support", User="bob@contoso.com", AccessRights=["FullAccess"])
    ex("Add-RecipientPermission", Identity="support", Trustee="alice@contoso.com", AccessRights=["SendAs"])
    ex("New-Mailbox", Shared=True, Name="legal", DisplayName="Legal Hold", PrimarySmtpAddress="legal@contoso.com")
    ex("Set-Mailbox", Identity="legal", HiddenFromAddressListsEnabled=True, AuditEnabled=False)
    ex("Set-CASMailbox", Identity="legal", PopEnabled=False, ImapEnabled=False, SmtpClientAuthenticationDisabled=True)
    ex("Set-Mailbox", Identity="legal", ForwardingSmtpAddress="archive@lawfirm.example")
    ex("Add-MailboxPermission", Identity="legal", User="grace@contoso.com", AccessRights=["FullAccess"])
    ex("New-Mailbox", Shared=True, Name="info", DisplayName="Info", PrimarySmtpAddress="info@contoso.com")
    ex("Add-MailboxPermission", Identity="info", User="dave@contoso.com", AccessRights=["FullAccess"])
    ex("Set-Mailbox", Identity="info", ForwardingAddress="dave", DeliverToMailboxAndForward=True)
    support = ex("Get-Mailbox", Identity="support")[0]
    ok(t.graph("PATCH", f"/users/{support['ExternalDirectoryObjectId']}", username=ADMIN,
               json={"department": "Customer Care"}))
    legal = ex("Get-Mailbox", Identity="legal")[0]
    ok(t.graph("PATCH", f"/users/{legal['ExternalDirectoryObjectId']}", username=ADMIN,
               json={"accountEnabled": False}))
    ok(t.graph("DELETE", "/users/bob@contoso.com", username=ADMIN))  # bob's grant stays, as a bare SID


@pytest.fixture
def env(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("MAILROOM_LOCAL_TENANT_URL", local_tenant.base_url)
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    by_hand(local_tenant)
    return local_tenant


def mailroom(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_adopts_a_hand_built_tenant_without_a_single_write(env: Any, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    main_file = tmp_path / "repo" / "mailboxes.yaml"
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--split-by",
                              "department", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["format_version"] == 1 and doc["command"] == "import" and doc["mailboxes"] == 3
    # SELF: a Full Access and a Send As row per mailbox
    assert doc["skipped"]["self"] == 6 and doc["skipped"]["inherited"] > 0 and doc["skipped"]["orphan"] == 1
    care = tmp_path / "repo" / "mailboxes.d" / "customer-care.yaml"
    assert sorted(doc["files"]) == sorted([str(main_file), str(care)])
    text, support = main_file.read_text(), care.read_text()
    assert "include:\n  - mailboxes.d/*.yaml\n" in text and "support@contoso.com" not in text
    assert "  - address: support@contoso.com\n    display_name: \"Customer Support: first line\"\n" in support
    assert "      - alice@contoso.com\n      - carol@contoso.com\n      - group: support-team@contoso.com\n" \
        in support  # AutoMapping is not readable in Exchange Online: carol has the default, written as such
    assert "    aliases: [help@contoso.com]\n" in support and "    send_on_behalf: [carol@contoso.com]\n" in support
    assert "# not imported: Full Access for S-1-5-21-" in support and "bob" not in support
    assert "hidden_from_gal: true" in text and "audit: {enabled: false}" in text
    # Two of three mailboxes can be signed in to (New-Mailbox leaves them so): the defaults say so, legal differs.
    assert "  sign_in_blocked: false\n" in text and "    sign_in_blocked: true\n" in text
    assert text.index("address: info@contoso.com") < text.index("address: legal@contoso.com")
    # Protocols: the defaults are each protocol's commonest value (New-Mailbox leaves them all on, SMTP AUTH to
    # the organisation); legal, hardened by hand, lists what differs.
    assert "  protocols: {pop: true, imap: true, activesync: true, ews: true, smtp_auth: null, owa: true, " \
        "mapi: true}\n" in text
    assert "    protocols: {pop: false, imap: false, smtp_auth: false}\n" in text
    # Forwarding comes back as the file says it; the domain mail leaves for is allowed, and says why.
    assert "    forwarding: {to: dave@contoso.com, keep_copy: true}\n" in text
    assert "    forwarding: {to: archive@lawfirm.example, keep_copy: false}\n" in text
    assert "  allowed_forward_domains: [lawfirm.example]  # mailboxes forward mail there today" in text

    code, out, err = mailroom(capsys, "validate", "--json", "--file", str(main_file))
    assert code == 0 and json.loads(out)["warnings"] == 0, out

    code, out, err = mailroom(capsys, "plan", "--refresh", "--json", "--stack", "local", "--file", str(main_file))
    plan = json.loads(out)
    # No change at all: every mailbox is adopted as it is, which the next apply records with no write.
    assert code == 0 and plan["has_changes"] is False, plan
    assert {m["op"] for m in plan["mailboxes"]} == {"adopt"} and plan["adopted"] == len(plan["mailboxes"]) == 3, plan
    assert all(m["changes"] == [] for m in plan["mailboxes"]), plan

    env.reset_metrics()
    code, out, err = mailroom(capsys, "apply", "--yes", "--stack", "local", "--file", str(main_file))
    assert code == 0, out + err
    assert writes(env.metrics()) == {}

    code, out, err = mailroom(capsys, "plan", "--refresh", "--stack", "local", "--file", str(main_file))
    assert code == 0 and "No changes" in out, out + err

    code, out, err = mailroom(capsys, "drift", "--json", "--stack", "local", "--file", str(main_file))
    findings = json.loads(out)["findings"]
    assert [(f["kind"], f["mailbox"], f["right"]) for f in findings] == \
        [("stale_access", "support@contoso.com", "member")], findings
    assert findings[0]["subject"].startswith("S-1-5-21-")


def test_merge_after_one_change_by_hand_rewrites_exactly_that_line(env: Any, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    main_file = tmp_path / "mailboxes.yaml"
    assert mailroom(capsys, "import", "--stack", "local", "--out", str(main_file))[0] == 0
    reviewed = main_file.read_text().replace("  - address: info@contoso.com\n",
                                             "  # the public inbox: keep it small\n  - address: info@contoso.com\n")
    reviewed = reviewed.replace("    display_name: Info\n", "    display_name: Info   # as on the website\n")
    main_file.write_text(reviewed)
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--merge")
    assert code == 0 and "no changes" in out and main_file.read_text() == reviewed, out + err

    ok(env.exchange("Add-RecipientPermission", username=ADMIN, Identity="info", Trustee="dave@contoso.com",
                    AccessRights=["SendAs"]))
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--merge", "--json")
    assert code == 0, err
    assert json.loads(out)["changes"] == ["info@contoso.com: send_as changed"]
    after = main_file.read_text().splitlines()
    before = reviewed.splitlines()
    assert [line for line in after if line not in before] == ["    send_as: [dave@contoso.com]"]
    assert [line for line in before if line not in after] == []  # every comment and line kept


def test_merge_leaves_out_forwarding_the_files_policy_does_not_allow_with_a_note(
        env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The file's policy allows no external forwarding, and the tenant forwards legal@ out: the merged file is
    valid, still allows no such domain, and says why the forwarding is not in it (the next plan removes it)."""
    main_file = tmp_path / "mailboxes.yaml"
    assert mailroom(capsys, "import", "--stack", "local", "--out", str(main_file))[0] == 0
    text = main_file.read_text()
    text = text.replace("  allowed_forward_domains: [lawfirm.example]", "  allowed_forward_domains: []")
    text = text.replace("    forwarding: {to: archive@lawfirm.example, keep_copy: false}\n", "")
    main_file.write_text(text)
    assert mailroom(capsys, "validate", "--file", str(main_file))[0] == 0
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--merge")
    assert code == 0, out + err
    merged = main_file.read_text()
    assert "lawfirm.example]" not in merged and "forwarding: {to: archive@lawfirm.example" not in merged
    assert "# not imported: forwarding to archive@lawfirm.example: 'lawfirm.example' is not in " \
        "policy.allowed_forward_domains" in merged, merged
    code, out, err = mailroom(capsys, "validate", "--file", str(main_file))
    assert code == 0, out + err
    # Forwarding to a mailbox of the organisation (info@ to dave) is imported as it is.
    assert "forwarding: {to: dave@contoso.com" in merged


def test_bad_input_is_a_clear_error_and_never_a_half_written_file(env: Any, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    main_file = tmp_path / "mailboxes.yaml"
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--split-by", "size")
    assert code == 64 and "--split-by" in err
    main_file.write_text("version: 1\n")
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file))
    assert code == 1 and "--merge" in err and main_file.read_text() == "version: 1\n"
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(main_file), "--merge")
    assert code == 1 and "invalid" in err and main_file.read_text() == "version: 1\n"
    monkeypatch.setenv("MAILROOM_LOCAL_TENANT_URL", "http://127.0.0.1:9")  # nothing listens there
    fresh = tmp_path / "fresh.yaml"
    code, out, err = mailroom(capsys, "import", "--stack", "local", "--out", str(fresh), "--json")
    assert code == 1 and out == "" and "does not answer" in err and not fresh.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def _mailbox_resources(state_dir: Path) -> list[dict[str, Any]]:
    """The mailbox resources of the local stack, read from the engine's file backend."""
    doc = json.loads((state_dir / "state" / ".pulumi" / "stacks" / "mailroom" / "local.json").read_text())
    return [r for r in doc["checkpoint"]["latest"]["resources"] if r["type"] == "mailroom:index:SharedMailbox"]


def test_adoptions_are_recorded_as_the_engine_records_a_create_and_change_like_any_other(
        env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_file = tmp_path / "repo" / "mailboxes.yaml"
    assert mailroom(capsys, "import", "--stack", "local", "--out", str(main_file))[0] == 0
    env.reset_metrics()
    code, out, err = mailroom(capsys, "apply", "--yes", "--stack", "local", "--file", str(main_file))
    assert code == 0 and writes(env.metrics()) == {}, out + err

    # An empty stack has no mailroom provider yet: the engine adopts the first mailbox (and makes the
    # provider); the others are recorded in state as that create left its mailbox.
    resources = sorted(_mailbox_resources(tmp_path / "state"), key=lambda r: r["created"])
    assert [r["id"] for r in resources[1:]] == ["legal@contoso.com", "support@contoso.com"], resources
    by_engine, recorded = resources[0], resources[1:]
    live = {row["PrimarySmtpAddress"].lower(): row for row in ok(env.exchange("Get-Mailbox", ResultSize="Unlimited"))}
    for r in recorded:
        assert set(r) == set(by_engine) and r["type"] == by_engine["type"], r
        assert (r["provider"], r["parent"]) == (by_engine["provider"], by_engine["parent"])
        assert r["urn"].endswith("::" + r["id"]) and set(r["propertyDependencies"]) == set(r["inputs"])
        ids = {k: r["outputs"].pop(k) for k in ("object_id", "exchange_id")}
        assert r["outputs"] == r["inputs"] and ids["object_id"] == live[r["id"]]["ExternalDirectoryObjectId"]
        assert ids["exchange_id"], r

    # A recorded mailbox changes through the engine like any other: one change, then nothing to do.
    main_file.write_text(main_file.read_text().replace("display_name: Legal Hold", "display_name: Legal (hold)"))
    env.reset_metrics()
    code, out, err = mailroom(capsys, "apply", "--yes", "--stack", "local", "--file", str(main_file))
    assert code == 0 and "legal@contoso.com: applied" in out, out + err
    assert ok(env.exchange("Get-Mailbox", Identity="legal"))[0]["DisplayName"] == "Legal (hold)"
    code, out, err = mailroom(capsys, "plan", "--refresh", "--stack", "local", "--file", str(main_file))
    assert code == 0 and "No changes" in out, out + err
