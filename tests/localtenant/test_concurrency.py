"""Concurrent writers: 20 clients x 10 requests in flight at once must leave exactly the
grants an in-order run would, with one warning per duplicate and none lost."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
CLIENTS, PER_CLIENT = 20, 10
MAILBOXES = [f"shared{i}" for i in range(5)]
TRUSTEES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
            "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "wendy"]

Op = tuple[str, str, str, str]  # (Add|Remove, FullAccess|SendAs, mailbox, trustee)


def body(op: Op) -> dict[str, Any]:
    verb, right, mbx, trustee = op
    if right == "FullAccess":
        params = {"Identity": mbx, "User": f"{trustee}@contoso.com", "AccessRights": ["FullAccess"],
                  "InheritanceType": "All", "Confirm": False}
        if verb == "Add":
            params["AutoMapping"] = False
        return {"CmdletInput": {"CmdletName": f"{verb}-MailboxPermission", "Parameters": params}}
    params = {"Identity": mbx, "Trustee": f"{trustee}@contoso.com", "AccessRights": ["SendAs"], "Confirm": False}
    return {"CmdletInput": {"CmdletName": f"{verb}-RecipientPermission", "Parameters": params}}


def run_concurrently(tenant: LocalTenant, ops_per_client: list[list[Op]]) -> list[tuple[Op, dict[str, Any]]]:
    headers = {"Authorization": f"Bearer {tenant.token(EXCHANGE_SCOPE)}"}

    async def client_run(ops: list[Op], start: asyncio.Event) -> list[tuple[Op, dict[str, Any]]]:
        async with httpx.AsyncClient(timeout=60) as client:
            await start.wait()
            responses = await asyncio.gather(*(client.post(tenant.exchange_url, json=body(op), headers=headers)
                                               for op in ops))
        for resp in responses:
            assert resp.status_code == 200, resp.text
        return [(op, r.json()) for op, r in zip(ops, responses, strict=True)]

    async def main() -> list[tuple[Op, dict[str, Any]]]:
        start = asyncio.Event()
        tasks = [asyncio.create_task(client_run(ops, start)) for ops in ops_per_client]
        await asyncio.sleep(0.05)
        start.set()  # release all 200 at once
        return [pair for result in await asyncio.gather(*tasks) for pair in result]

    return asyncio.run(main())


def current_grants(tenant: LocalTenant) -> set[tuple[str, str, str]]:
    grants: set[tuple[str, str, str]] = set()
    for mbx in MAILBOXES:
        for row in tenant.exchange("Get-MailboxPermission", Identity=mbx).json()["value"]:
            if row["User"] != "NT AUTHORITY\\SELF" and not row["IsInherited"]:
                grants.add(("FullAccess", mbx, row["User"].split("@")[0]))
    rows = tenant.exchange("Get-RecipientPermission", ResultSize="Unlimited").json()["value"]
    grants |= {("SendAs", r["Identity"], r["Trustee"].split("@")[0]) for r in rows
               if r["Trustee"] != "NT AUTHORITY\\SELF"}
    return grants


def test_200_concurrent_grants_and_revokes(local_tenant: LocalTenant) -> None:
    for mbx in MAILBOXES:
        assert local_tenant.exchange("New-Mailbox", Shared=True, Name=mbx,
                                     PrimarySmtpAddress=f"{mbx}@contoso.com").status_code == 200
    # Phase 1: 200 adds, many of them the same grant from different clients at the same time.
    adds = [[("Add", "FullAccess" if j % 2 == 0 else "SendAs", MAILBOXES[(i + j) % 5], TRUSTEES[(i * 3 + j) % 20])
             for j in range(PER_CLIENT)] for i in range(CLIENTS)]
    results = run_concurrently(local_tenant, adds)
    wanted = {(right, mbx, trustee) for _, right, mbx, trustee in (op for ops in adds for op in ops)}
    duplicates = sum(bool(r["@adminapi.warnings"]) for _, r in results)
    assert duplicates == CLIENTS * PER_CLIENT - len(wanted)  # each grant was written exactly once
    assert current_grants(local_tenant) == wanted

    # Phase 2: concurrent revokes of half the grants (some revoked twice) mixed with re-adds of the rest.
    ordered = sorted(wanted)
    revoke, keep = ordered[::2], ordered[1::2]
    pool = [("Remove", *g) for g in revoke] * 2 + [("Add", *g) for g in keep]
    pool = (pool * (CLIENTS * PER_CLIENT // len(pool) + 1))[: CLIENTS * PER_CLIENT]
    mixed = [pool[i::CLIENTS] for i in range(CLIENTS)]
    results = run_concurrently(local_tenant, mixed)
    removes = [r for op, r in results if op[0] == "Remove"]
    missing = sum(bool(r["@adminapi.warnings"]) for r in removes)
    assert missing == len(removes) - len(revoke)  # each revoke took effect exactly once
    assert current_grants(local_tenant) == set(keep)
    metrics = local_tenant.metrics()
    assert metrics["statuses"].get("500", 0) == 0
    assert sum(metrics["cmdlets"][c] for c in ("Add-MailboxPermission", "Add-RecipientPermission",
                                               "Remove-MailboxPermission", "Remove-RecipientPermission")) == 400
