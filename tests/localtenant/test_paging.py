"""Exchange paging (A.5): Prefer: odata.maxpagesize, nextLink + $skiptoken with the same
body POSTed again, ResultSize as a cap on total rows, and the 30-minute expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
EXPIRED = "Expired or Invalid pagination request. Default Expiry time is 00:30:00"


def cmdlet(name: str, **params: Any) -> dict[str, Any]:
    return {"CmdletInput": {"CmdletName": name, "Parameters": params}}


def create_shared_mailboxes(tenant: LocalTenant, count: int, parallel: int = 8) -> None:
    """Seed quickly through the API itself: $batch of 10 New-Mailbox, several in flight."""
    url = tenant.exchange_url.replace("InvokeCommand", "$batch")
    headers = {"Authorization": f"Bearer {tenant.token(EXCHANGE_SCOPE)}"}

    async def main() -> None:
        gate = asyncio.Semaphore(parallel)
        async with httpx.AsyncClient(timeout=60) as client:
            async def batch(start: int) -> None:
                requests = [{"id": str(i), "method": "POST", "url": "InvokeCommand",
                             "body": cmdlet("New-Mailbox", Shared=True, Name=f"mbx{i:05d}",
                                            PrimarySmtpAddress=f"mbx{i:05d}@contoso.com")}
                            for i in range(start, min(start + 10, count))]
                async with gate:
                    resp = await client.post(url, json={"requests": requests}, headers=headers)
                assert resp.status_code == 200, resp.text
                assert {item["status"] for item in resp.json()["responses"]} == {200}

            await asyncio.gather(*(batch(s) for s in range(0, count, 10)))

    asyncio.run(main())


def walk(tenant: LocalTenant, body: dict[str, Any], page_size: int | None = 1000) -> list[dict[str, Any]]:
    """Follow nextLinks, POSTing the same body each time; returns the pages."""
    headers = {"Authorization": f"Bearer {tenant.token(EXCHANGE_SCOPE)}"}
    if page_size:
        headers["Prefer"] = f"odata.maxpagesize={page_size}"
    pages: list[dict[str, Any]] = []
    url: str | None = tenant.exchange_url
    while url:
        resp = httpx.post(url, json=body, headers=headers, timeout=60)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        url = pages[-1].get("@odata.nextLink")
    return pages


def test_paging_over_2500_mailboxes(local_tenant: LocalTenant) -> None:
    started = time.monotonic()
    create_shared_mailboxes(local_tenant, 2500)
    seeded = time.monotonic() - started
    pages = walk(local_tenant, cmdlet("Get-Mailbox", RecipientTypeDetails="SharedMailbox", ResultSize="Unlimited"))
    assert [len(p["value"]) for p in pages] == [1000, 1000, 500]
    names = [m["Name"] for p in pages for m in p["value"]]
    assert sorted(names) == [f"mbx{i:05d}" for i in range(2500)]  # complete, no duplicates
    for page in pages[:-1]:
        link = page["@odata.nextLink"]
        assert link.startswith(local_tenant.exchange_url + "?$skiptoken=")
        assert page["@adminapi.warnings"]  # a truncated page warns
    assert "@odata.nextLink" not in pages[-1] and pages[-1]["@adminapi.warnings"] == []

    # ResultSize caps the total across pages; the last page warns instead of linking on.
    capped = walk(local_tenant, cmdlet("Get-Mailbox", RecipientTypeDetails="SharedMailbox", ResultSize=1500))
    assert [len(p["value"]) for p in capped] == [1000, 500]
    assert "increase the value for the ResultSize parameter" in capped[-1]["@adminapi.warnings"][0]
    # Without ResultSize a cmdlet returns its documented default of 1000 rows.
    default = walk(local_tenant, cmdlet("Get-Mailbox", RecipientTypeDetails="SharedMailbox"), page_size=None)
    assert len(default) == 1 and len(default[0]["value"]) == 1000
    assert "By default, only the first 1000 items are returned" in default[0]["@adminapi.warnings"][0]

    # Tenant-wide SendAs listing pages the same way (one implicit SELF row per mailbox).
    grants = walk(local_tenant, cmdlet("Get-RecipientPermission", ResultSize="Unlimited"))
    rows = [(r["Identity"], r["Trustee"]) for p in grants for r in p["value"]]
    assert len(rows) == len(set(rows)) == 2500 + 31 + 2  # + the seeded room and equipment mailboxes
    assert seeded < 15, f"seeding 2,500 mailboxes took {seeded:.1f}s"


def test_next_link_rejects_other_body_and_tampering(local_tenant: LocalTenant) -> None:
    create_shared_mailboxes(local_tenant, 3)
    body = cmdlet("Get-Mailbox", RecipientTypeDetails="SharedMailbox", ResultSize="Unlimited")
    pages = walk(local_tenant, body, page_size=1)
    assert [len(p["value"]) for p in pages] == [1, 1, 1]
    headers = {"Authorization": f"Bearer {local_tenant.token(EXCHANGE_SCOPE)}"}
    link = pages[0]["@odata.nextLink"]
    other = httpx.post(link, json=cmdlet("Get-Recipient", ResultSize="Unlimited"), headers=headers)
    assert other.status_code == 400 and EXPIRED in other.json()["error"]["details"][0]["message"]
    tampered = httpx.post(link[:-3] + "abc", json=body, headers=headers)
    assert tampered.status_code == 400 and tampered.json()["error"]["code"] == "BadRequest"


def test_skiptoken_expires(local_tenant_factory: Callable[..., LocalTenant]) -> None:
    tenant = local_tenant_factory("--skiptoken-ttl", "1")
    create_shared_mailboxes(tenant, 2)
    body = cmdlet("Get-Mailbox", RecipientTypeDetails="SharedMailbox", ResultSize="Unlimited")
    headers = {"Authorization": f"Bearer {tenant.token(EXCHANGE_SCOPE)}", "Prefer": "odata.maxpagesize=1"}
    first = httpx.post(tenant.exchange_url, json=body, headers=headers).json()
    time.sleep(2.1)
    late = httpx.post(first["@odata.nextLink"], json=body, headers=headers)
    assert late.status_code == 400
    error = late.json()["error"]
    assert EXPIRED in error["details"][0]["message"] and EXPIRED in error["innererror"]["internalexception"]["message"]
