"""Grants never drop silently: the provider's converge against a local tenant, no engine.

An AutoMapping change is a remove and an add of the same Full Access grant. Under per-item
throttling in ``$batch`` a throttled remove must never run after its add (which deleted the
grant while apply said "ok"), and every success must be confirmed by a read-back.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.engine.plan import Approval, MailboxPlan, Plan, PlanMismatch
from mailroom.engine.provider import converge
from mailroom.errors import TenantError
from mailroom.m365.tenant import ENV_VAR, TenantConfig
from reconcile_helpers import names

FLIPS = 20
SPEC = MailboxSpec(address="flip@contoso.com", display_name="Flip",
                   members=(Grant("carol@contoso.com", False), Grant("dave@contoso.com", True)),
                   send_as=("dave@contoso.com",), domains=("contoso.com",))


@pytest.fixture
def tenant(local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(ENV_VAR, TenantConfig.local(local_tenant.base_url, local_tenant.tenant_id).to_json())
    return local_tenant


def full_access(tenant: Any, address: str) -> set[str]:
    who = names(tenant)
    rows = tenant.exchange("Get-MailboxPermission", Identity=address).json()["value"]
    return {who.get(str(r["User"]).lower(), str(r["User"]).lower()) for r in rows
            if not str(r["User"]).startswith("NT AUTHORITY") and not r["IsInherited"]}


def test_automapping_flips_under_half_item_throttling_never_drop_full_access(tenant: Any) -> None:
    # 20 mailboxes flipped at once (each its own converge, as the engine runs them), twice over.
    specs = [replace(SPEC, address=f"flip-{i:02d}@contoso.com") for i in range(FLIPS)]

    async def each(pairs: list[tuple[MailboxSpec, MailboxSpec | None]]) -> list[Any]:
        return await asyncio.gather(*(converge(want, known) for want, known in pairs), return_exceptions=True)

    assert all(not r[1].failed for r in asyncio.run(each([(s, None) for s in specs])))
    succeeded = 0
    for round_ in range(2):
        wants = [replace(s, members=tuple(Grant(g.address, not g.automap) for g in s.members)) for s in specs]
        tenant.set_profile({"seed": 1000 + round_, "throttle_rate": 0.5, "retry_after_seconds": 1})
        results = asyncio.run(each(list(zip(wants, specs, strict=True))))
        assert tenant.metrics()["injected"]["throttled"] >= FLIPS  # the faults really hit the runs
        tenant.set_profile({})
        retry = []
        for want, known, result in zip(wants, specs, results, strict=True):
            ok = not isinstance(result, BaseException) and not result[1].failed
            if ok:  # success is only ever reported when both members still hold Full Access
                holders = full_access(tenant, want.address)
                assert {"carol@contoso.com", "dave@contoso.com"} <= holders, (want.address, holders)
                succeeded += 1
            else:
                assert isinstance(result, (BaseException, tuple))
                retry.append((want, known))
        # A failure is reported as such, and the next converge restores every grant.
        for (want, _), result in zip(retry, asyncio.run(each(retry)), strict=True):
            assert not isinstance(result, BaseException) and not result[1].failed
            assert {"carol@contoso.com", "dave@contoso.com"} <= full_access(tenant, want.address)
        specs = wants
    assert succeeded >= FLIPS  # most flips went through despite the faults


def test_a_change_the_reviewed_plan_does_not_hold_is_refused_before_any_write(tenant: Any) -> None:
    asyncio.run(converge(SPEC))
    # Someone grants mallory by hand after the plan; the plan (no change for this mailbox) is applied.
    resp = tenant.exchange("Add-MailboxPermission", client_id="admin-portal", Identity=SPEC.address,
                           User="mallory@contoso.com", AccessRights=["FullAccess"], AutoMapping=False)
    assert resp.status_code == 200
    approval = Approval.from_plan(Plan([MailboxPlan(SPEC.address, "same")]))
    tenant.reset_metrics()
    with pytest.raises(PlanMismatch, match="member  mallory@contoso.com was not in the reviewed plan"):
        asyncio.run(converge(SPEC, SPEC, approval))
    assert not [k for k in tenant.metrics()["cmdlets"] if not k.startswith("Get-")]
    assert "mallory@contoso.com" in full_access(tenant, SPEC.address)
    # A mailbox missing from the plan altogether is refused too.
    with pytest.raises(PlanMismatch, match="not in the reviewed plan"):
        asyncio.run(converge(SPEC, SPEC, Approval.from_plan(Plan([]))))


def test_a_persons_mailbox_is_never_converged(tenant: Any) -> None:
    bob = replace(SPEC, address="bob@contoso.com", display_name="Shared Bob")
    tenant.reset_metrics()
    with pytest.raises(TenantError, match="bob@contoso.com is a UserMailbox"):
        asyncio.run(converge(bob))
    with pytest.raises(TenantError, match="UserMailbox"):
        asyncio.run(converge(replace(bob, state="absent")))
    assert not [k for k in tenant.metrics()["cmdlets"] if not k.startswith("Get-")]
