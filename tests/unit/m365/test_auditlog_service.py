"""The local tenant's unified audit log and message trace, over HTTP in this process: what the real services
do that mailroom's clients must cope with (asynchronous queries, paging, limits, 429, the v1.0 → beta move,
ingestion delay, which mailbox actions are recorded at all), and the retired Search-AdminAuditLog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from ..conftest import BASE_URL, TenantApp

WINDOW = {"filterStartDateTime": "2020-01-01T00:00:00Z", "filterEndDateTime": "2099-01-01T00:00:00Z"}


class Client:
    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self.http, self.headers = http, {"Authorization": f"Bearer {token}"}

    async def get(self, url: str) -> httpx.Response:
        return await self.http.get(url, headers=self.headers)

    async def post(self, url: str, body: Any) -> httpx.Response:
        return await self.http.post(url, json=body, headers=self.headers)

    async def control(self, method: str, url: str, body: Any = None) -> httpx.Response:
        return await self.http.request(method, url, json=body)

    async def finished(self, query_id: str, version: str = "v1.0") -> dict[str, Any]:
        for _ in range(100):
            doc: dict[str, Any] = (await self.get(f"/{version}/security/auditLog/queries/{query_id}")).json()
            if doc["status"] == "succeeded":
                return doc
            await asyncio.sleep(0.05)
        raise AssertionError("the query never finished")

    async def records(self, query_id: str, top: int | None = None) -> tuple[list[dict[str, Any]], int]:
        url: str = f"/v1.0/security/auditLog/queries/{query_id}/records" + (f"?$top={top}" if top else "")
        out, pages = [], 0
        while url:
            resp = await self.get(url)
            assert resp.status_code == 200, resp.text
            pages += 1
            out += resp.json()["value"]
            url = resp.json().get("@odata.nextLink", "")
        return out, pages


@asynccontextmanager
async def client(app: TenantApp, roles: list[str] | None = None) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(transport=app.http_transport, base_url=BASE_URL) as http:
        if roles is not None:  # the app's consented roles, in the tokens the token endpoint issues it
            put = await http.put("/_emulator/apps/auditor", json={"roles": {"https://graph.microsoft.com": roles}})
            assert put.status_code == 200, put.text
        form = {"grant_type": "client_credentials", "client_id": "auditor", "client_secret": "x",
                "scope": "https://graph.microsoft.com/.default"}
        token = (await http.post(f"/{app.tenant_id}/oauth2/v2.0/token", data=form)).json()["access_token"]
        c = Client(http, token)
        assert (await c.control("PUT", "/_emulator/auditlog", {"ingestion_delay_s": 0.0, "start_s": 0.05,
                                                                "run_s": 0.05})).status_code == 200
        yield c


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_query_runs_then_pages_its_records_with_the_cmdlets_that_made_them(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app) as c:
            await tenant_app.by_hand("trent@contoso.com", "Add-MailboxPermission", Identity="alice@contoso.com",
                                     User="bob", AccessRights=["FullAccess"])
            for user in ("carol", "dave", "erin"):
                await tenant_app.by_hand("sybil@contoso.com", "Add-RecipientPermission",
                                         Identity="alice@contoso.com", Trustee=user, AccessRights=["SendAs"])
            created = await c.post("/v1.0/security/auditLog/queries",
                                   {**WINDOW, "recordTypeFilters": ["exchangeAdmin"]})
            assert created.status_code == 201 and created.json()["status"] == "notStarted"
            early = await c.get(f"/v1.0/security/auditLog/queries/{created.json()['id']}/records")
            assert early.status_code == 400  # nothing to page before it has finished
            done = await c.finished(created.json()["id"])
            assert done["approximateReturnedRecordCount"] == 4 and done["isRecordCountLimitExceeded"] is False
            records, pages = await c.records(done["id"], top=3)
            assert pages == 2
            first = records[0]
            assert (first["auditLogRecordType"], first["operation"], first["userPrincipalName"]) == \
                ("exchangeAdmin", "Add-MailboxPermission", "trent@contoso.com")
            assert {"Name": "User", "Value": "bob"} in first["auditData"]["Parameters"]
            mine = await c.post("/v1.0/security/auditLog/queries", {**WINDOW, "userPrincipalNameFilters": [
                "SYBIL@contoso.com"], "operationFilters": ["add-recipientpermission"]})
            assert len((await c.records((await c.finished(mine.json()["id"]))["id"]))[0]) == 3

    run(go())


def test_records_arrive_after_the_ingestion_delay(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app) as c:
            await c.control("PUT", "/_emulator/auditlog", {"ingestion_delay_s": 0.5})
            await tenant_app.by_hand("trent@contoso.com", "Set-Mailbox", Identity="alice",
                                     HiddenFromAddressListsEnabled=True)
            soon = await c.finished((await c.post("/v1.0/security/auditLog/queries", WINDOW)).json()["id"])
            await asyncio.sleep(0.5)
            later = await c.finished((await c.post("/v1.0/security/auditLog/queries", WINDOW)).json()["id"])
            assert (soon["approximateReturnedRecordCount"], later["approximateReturnedRecordCount"]) == (0, 1)

    run(go())


def test_limits_answer_429_with_retry_after_and_cap_records(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app) as c:
            await c.control("PUT", "/_emulator/auditlog", {"max_active": 2, "run_s": 2.0})
            for _ in range(2):
                assert (await c.post("/v1.0/security/auditLog/queries", WINDOW)).status_code == 201
            third = await c.post("/v1.0/security/auditLog/queries", WINDOW)
            assert third.status_code == 429 and 1 <= int(third.headers["Retry-After"]) <= 3
            await c.control("PUT", "/_emulator/auditlog", {"max_active": 50, "max_per_day": 3, "run_s": 0.05})
            assert (await c.post("/v1.0/security/auditLog/queries", WINDOW)).status_code == 201
            fifth = await c.post("/v1.0/security/auditLog/queries", WINDOW)
            assert fifth.status_code == 429 and int(fifth.headers["Retry-After"]) > 3600  # a day's budget
            await c.control("PUT", "/_emulator/auditlog", {"max_per_day": 200})
            for user in ("carol", "dave", "erin"):
                await tenant_app.by_hand("sybil@contoso.com", "Add-RecipientPermission", Identity="alice",
                                         Trustee=user, AccessRights=["SendAs"])
            capped = await c.finished((await c.post("/v1.0/security/auditLog/queries",
                                                    {**WINDOW, "recordCountLimit": 2})).json()["id"])
            assert capped["isRecordCountLimitExceeded"] is True
            assert len((await c.records(capped["id"]))[0]) == 2

    run(go())


def test_v1_switched_off_answers_as_a_missing_segment_and_beta_still_serves(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app) as c:
            await c.control("PUT", "/_emulator/auditlog", {"v1": False})
            gone = await c.post("/v1.0/security/auditLog/queries", WINDOW)
            assert gone.status_code == 400 and "segment" in gone.json()["error"]["message"]
            beta = await c.post("/beta/security/auditLog/queries", WINDOW)
            assert beta.status_code == 201 and "recordCountLimit" not in beta.json()  # a v1.0-only property
            assert (await c.finished(beta.json()["id"], "beta"))["status"] == "succeeded"

    run(go())


def test_the_query_api_needs_an_audit_log_query_permission(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app, roles=["User.Read.All", "AuditLog.Read.All"]) as c:
            assert (await c.post("/v1.0/security/auditLog/queries", WINDOW)).status_code == 403
        async with client(tenant_app, roles=["AuditLogsQuery-Exchange.Read.All"]) as c:
            assert (await c.post("/v1.0/security/auditLog/queries", WINDOW)).status_code == 201

    run(go())


@pytest.mark.parametrize(("setup", "operation", "recorded"), [
    ({}, "SendAs", True),  # a default delegate action
    ({}, "FolderBind", False),  # not a default delegate action
    ({"AuditDelegate": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["FolderBind"]}}, "FolderBind", True),
    ({}, "MailItemsAccessed", False),  # in the default set, but only with Audit (Premium)
    ({"AuditEnabled": False}, "SendAs", False),
])
def test_a_mailbox_records_only_the_actions_its_audit_settings_name(tenant_app: TenantApp, setup: dict[str, Any],
                                                                     operation: str, recorded: bool) -> None:
    async def go() -> bool:
        if setup:
            await tenant_app.by_hand("trent@contoso.com", "Set-Mailbox", Identity="alice", **setup)
        async with client(tenant_app) as c:
            resp = await c.control("POST", "/_emulator/activity", {"mailbox": "alice@contoso.com",
                                                                   "user": "bob@contoso.com", "operation": operation})
            assert resp.status_code == 200, resp.text
            done = await c.finished((await c.post("/v1.0/security/auditLog/queries",
                                                  {**WINDOW, "operationFilters": [operation]})).json()["id"])
            assert done["approximateReturnedRecordCount"] == int(resp.json()["recorded"])
            return bool(resp.json()["recorded"])

    assert run(go()) is recorded


def test_mail_items_accessed_with_audit_premium_is_an_aggregated_delegate_record(tenant_app: TenantApp) -> None:
    async def go() -> dict[str, Any]:
        async with client(tenant_app) as c:
            await c.control("PUT", "/_emulator/auditlog", {"audit_premium": ["alice@contoso.com"]})
            await c.control("POST", "/_emulator/activity", {"mailbox": "alice", "user": "bob",
                                                            "operation": "MailItemsAccessed", "count": 3})
            done = await c.finished((await c.post("/v1.0/security/auditLog/queries", WINDOW)).json()["id"])
            records, _ = await c.records(done["id"])
            return records[-1]

    record = run(go())
    assert record["auditLogRecordType"] == "exchangeItemAggregated"
    data = record["auditData"]
    assert (data["LogonType"], data["MailboxOwnerUPN"], data["OperationCount"]) == (2, "alice@contoso.com", 3)


def test_search_admin_audit_log_is_retired(tenant_app: TenantApp) -> None:
    resp = run(tenant_app.attempt_by_hand("trent@contoso.com", "Search-AdminAuditLog"))
    assert resp.status_code == 403 and not resp.content  # as for any cmdlet the service does not have


def test_message_traces_keep_to_ten_day_windows_and_their_rate_limit(tenant_app: TenantApp) -> None:
    async def go() -> None:
        async with client(tenant_app) as c:
            now = datetime.now(timezone.utc)
            mail = [{"to": "alice@contoso.com", "time": (now - timedelta(days=d)).isoformat()} for d in (1, 2, 15)]
            assert (await c.control("POST", "/_emulator/mail", {"messages": mail})).json() == {"delivered": 3}

            def window(days_back: int, span: int) -> str:
                end = now - timedelta(days=days_back)
                start = end - timedelta(days=span)
                return (f"/v1.0/admin/exchange/tracing/messageTraces?$filter=receivedDateTime ge "
                        f"{start:%Y-%m-%dT%H:%M:%SZ} and receivedDateTime le {end:%Y-%m-%dT%H:%M:%SZ} and "
                        "recipientAddress eq 'alice@contoso.com'&$top=1")

            first = await c.get(window(0, 10))
            assert first.status_code == 200 and len(first.json()["value"]) == 1 and "@odata.nextLink" in first.json()
            assert (await c.get(first.json()["@odata.nextLink"])).json()["value"][0]["recipientAddress"] == \
                "alice@contoso.com"
            assert (await c.get(window(0, 11))).status_code == 400
            assert (await c.get(window(85, 10))).status_code == 400  # before the 90 days of history
            codes = [(await c.get(window(10, 10))).status_code for _ in range(100)]
            assert codes[:96] == [200] * 96 and codes[96:] == [429] * 4  # 4 spent above: 100 per 5 minutes

    run(go())
