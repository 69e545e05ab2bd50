"""The planner: what the engine manages (its state) and one bulk read of the tenant make the plan; a
saved plan is refused when the file or the live state it assumed moved. On the emulator in process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.engine import planner
from mailroom.engine.plan import Plan
from mailroom.engine.planner import Planned, StalePlan, check_saved, digest, make_plan, managed
from mailroom.engine.tokens import DYNAMIC_RESOURCE_TYPE, RESOURCE_TYPE
from mailroom.file.load import load_desired
from mailroom.reconcile import bulk

from tests.unit.conftest import TenantApp

FILE = """version: 1
tenant: {domains: [contoso.com]}
policy: {require_owner: false}
mailboxes:
  - address: desk@contoso.com
    display_name: Front Desk
    members: [alice@contoso.com, dave@contoso.com]
    send_as: [alice@contoso.com]
  - address: bob@contoso.com
    display_name: Shared Bob
    members: [alice@contoso.com]
"""


def desired(tmp_path: Path, text: str = FILE) -> Desired:
    path = tmp_path / "mailboxes.yaml"
    path.write_text(text)
    result = load_desired(str(path))
    assert result.desired is not None and not result.errors, result.findings
    return result.desired


def state_of(d: Desired, *, stack: str = "local", type_: str = RESOURCE_TYPE, only: str = "") -> dict[str, Any]:
    """A stack's exported deployment in which the engine last left every mailbox as the file says."""
    resources: list[dict[str, Any]] = [{"urn": f"urn:pulumi:{stack}::mailroom::pulumi:pulumi:Stack::mailroom-local",
                                        "type": "pulumi:pulumi:Stack", "outputs": {}}]
    for mb in d.mailboxes:
        if only and mb.address != only:
            continue
        props = {**MailboxSpec.from_model(mb, d.domains).to_props(), "object_id": "x", "exchange_id": "y"}
        resources.append({"urn": planner.urn(stack, mb.address).replace(RESOURCE_TYPE, type_), "type": type_,
                          "inputs": props, "outputs": props})
    return {"resources": resources}


def plan(app: TenantApp, d: Desired, deployment: dict[str, Any], *, refresh: bool) -> Planned:
    async def exported() -> dict[str, Any]:
        return deployment

    async def go() -> Planned:
        async with app.tenant() as t:
            return await make_plan(t, d, exported(), "local", refresh=refresh)
    return asyncio.run(go())


def test_managed_reads_both_resource_types_and_skips_the_rest(tmp_path: Path) -> None:
    d = desired(tmp_path)
    deployment = state_of(d, type_=DYNAMIC_RESOURCE_TYPE)
    deployment["resources"].append({"urn": "urn:x", "type": "random:index:Thing", "outputs": {"address": "a@b.c"}})
    deployment["resources"].append({**deployment["resources"][1], "delete": True})  # pending delete: not managed
    assert sorted(managed(deployment)) == ["bob@contoso.com", "desk@contoso.com"]


def test_an_unchanged_file_plans_from_state_alone(tenant_app: TenantApp, tmp_path: Path) -> None:
    d = desired(tmp_path)
    tenant_app.reset_metrics()
    planned = plan(tenant_app, d, state_of(d), refresh=False)
    assert not planned.plan.has_changes and planned.targets() == []
    assert tenant_app.metrics()["requests"] == 0  # not even a token


@pytest.mark.parametrize("bulk_scan", [False, True], ids=["one-by-one", "bulk"])
def test_unmanaged_addresses_are_created_adopted_or_refused(tenant_app: TenantApp, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, bulk_scan: bool) -> None:
    if bulk_scan:
        monkeypatch.setattr(bulk, "SMALL", 0)  # the tenant-wide scan, as for more than a handful
    d = desired(tmp_path)
    planned = plan(tenant_app, d, {"resources": []}, refresh=False)
    ops = {m.address: (m.op, m.refused) for m in planned.plan.mailboxes}
    assert ops["desk@contoso.com"] == ("create", "")
    op, refused = ops["bob@contoso.com"]
    assert refused.startswith("bob@contoso.com is a UserMailbox") and "changes nothing" in refused
    assert planned.plan.refusals == [refused]

    async def make_desk() -> None:
        await tenant_app.by_hand("alice@contoso.com", "New-Mailbox", Shared=True, Name="desk", Alias="desk",
                                 DisplayName="Desk (by hand)", PrimarySmtpAddress="desk@contoso.com")
    asyncio.run(make_desk())
    planned = plan(tenant_app, d, {"resources": []}, refresh=False)
    [desk] = [m for m in planned.plan.mailboxes if m.address == "desk@contoso.com"]
    assert desk.op == "adopt"
    assert desk.changes[0].line() == '~ adopt existing shared mailbox "Desk (by hand)"'
    assert {c.right for c in desk.changes[1:]} >= {"display_name", "member", "send_as"}
    assert planned.assumed["desk@contoso.com"]["display_name"] == "Desk (by hand)"


def test_a_shared_mailbox_that_already_matches_is_adopted_with_no_change(tenant_app: TenantApp,
                                                                        tmp_path: Path) -> None:
    """Adoption of a mailbox that is as the file says is no tenant change (plan exits 0), yet the next
    apply records it: it is in the targets, and a saved plan keeps what it assumed."""
    async def by_hand() -> None:
        await tenant_app.by_hand("alice@contoso.com", "New-Mailbox", Shared=True, Name="desk", Alias="desk",
                                 DisplayName="Front Desk", PrimarySmtpAddress="desk@contoso.com")
        await tenant_app.by_hand("alice@contoso.com", "Add-MailboxPermission", Identity="desk@contoso.com",
                                 User="alice@contoso.com", AccessRights=["FullAccess"])
        # hardened by hand to the file's (the default) protocol profile
        await tenant_app.by_hand("alice@contoso.com", "Set-CASMailbox", Identity="desk@contoso.com",
                                 PopEnabled=False, ImapEnabled=False, ActiveSyncEnabled=False, EwsEnabled=False,
                                 SmtpClientAuthenticationDisabled=True)
    asyncio.run(by_hand())
    text = FILE.replace("members: [alice@contoso.com, dave@contoso.com]\n    send_as: [alice@contoso.com]",
                        "members: [alice@contoso.com]\n    sign_in_blocked: false\n"
                        "    sent_items: {copy_send_as: false, copy_send_on_behalf: false}")
    d = desired(tmp_path, text)
    planned = plan(tenant_app, d, {"resources": []}, refresh=False)
    [desk] = [m for m in planned.plan.mailboxes if m.address == "desk@contoso.com"]
    assert (desk.op, desk.changes, desk.adopted_as_is) == ("adopt", [], True)
    assert planned.plan.adopted == ["desk@contoso.com"] and "desk@contoso.com" in planned.resync
    assert planned.urns["desk@contoso.com"] in planned.targets()
    assert "desk@contoso.com" in planned.declared() and "desk@contoso.com" in planned.snapshot()
    assert "= adopt existing shared mailbox as it is (no tenant change)" in planned.plan.render_text()
    saved = tmp_path / "plan.json"
    planned.save(saved, tmp_path / "mailboxes.yaml")
    loaded, _ = Planned.load(saved)
    assert loaded.plan.adopted == ["desk@contoso.com"] and loaded.assumed["desk@contoso.com"] is not None
    only_adoption = Planned(Plan([desk]), "local", "", True)
    assert not only_adoption.plan.has_changes and only_adoption.plan.summary().startswith("No changes to the tenant")


def test_digest_follows_the_mailboxes_and_the_policy(tmp_path: Path) -> None:
    base = digest(desired(tmp_path))
    assert digest(desired(tmp_path, FILE.replace("# nothing", ""))) == base
    assert digest(desired(tmp_path, FILE.replace("dave@contoso.com", "erin@contoso.com"))) != base
    assert digest(desired(tmp_path, FILE.replace("require_owner: false", "require_owner: false, "
                                                                          "max_removals_per_apply: 3"))) != base


def test_a_saved_plan_is_checked_against_the_live_state_it_assumed(tenant_app: TenantApp, tmp_path: Path) -> None:
    d = desired(tmp_path, FILE.split("  - address: bob")[0])
    planned = plan(tenant_app, d, {"resources": []}, refresh=True)
    saved_path = tmp_path / "plan.json"
    planned.save(saved_path, tmp_path / "mailboxes.yaml")
    saved, file = Planned.load(saved_path)
    assert file.endswith("mailboxes.yaml") and saved.digest == planned.digest
    assert [(m.address, m.op) for m in saved.plan.mailboxes] == [("desk@contoso.com", "create")]

    def check(s: Planned, dd: Desired = d, stack: str = "local") -> Planned:
        async def go() -> Planned:
            async with tenant_app.tenant() as t:
                return await check_saved(t, dd, s, stack)
        return asyncio.run(go())

    assert check(saved).live == {"desk@contoso.com": None}  # still absent: the plan holds
    with pytest.raises(StalePlan, match="stack"):
        check(Planned.load(saved_path)[0], stack="prod")
    with pytest.raises(StalePlan, match="file changed"):
        renamed = desired(tmp_path, FILE.replace("Front Desk", "Desk").split("  - address: bob")[0])
        check(Planned.load(saved_path)[0], renamed)

    async def make_desk() -> None:  # someone creates the mailbox by hand after the plan was made
        await tenant_app.by_hand("alice@contoso.com", "New-Mailbox", Shared=True, Name="desk", Alias="desk",
                                 DisplayName="Desk", PrimarySmtpAddress="desk@contoso.com")
    asyncio.run(make_desk())
    with pytest.raises(StalePlan, match="desk@contoso.com"):
        check(Planned.load(saved_path)[0])
