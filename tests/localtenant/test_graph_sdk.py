"""Graph through the real msgraph-sdk client, unchanged: only the base URL and a static
token provider differ from production (wire reference C.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.automatic_replies_setting import AutomaticRepliesSetting
from msgraph.generated.models.automatic_replies_status import AutomaticRepliesStatus
from msgraph.generated.models.mailbox_settings import MailboxSettings
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.user import User
from msgraph.generated.models.user_purpose import UserPurpose
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.generated.users.users_request_builder import UsersRequestBuilder

if TYPE_CHECKING:
    from conftest import LocalTenant

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
T = TypeVar("T")


class StaticTokenProvider(AccessTokenProvider):
    def __init__(self, token: str, hosts: list[str]) -> None:
        self._token, self._hosts = token, AllowedHostsValidator(hosts)

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict[str, Any] = {}) -> str:  # noqa: B006
        return self._token if self._hosts.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._hosts


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def sdk(tenant: LocalTenant) -> GraphServiceClient:
    provider = StaticTokenProvider(tenant.token(GRAPH_SCOPE), ["127.0.0.1"])
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(provider))
    adapter.base_url = f"{tenant.base_url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def users_query(**params: Any) -> RequestConfiguration[Any]:
    qp = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**params)
    cfg: RequestConfiguration[Any] = RequestConfiguration(query_parameters=qp)
    cfg.headers.add("ConsistencyLevel", "eventual")
    return cfg


def test_list_users_with_filter_count_and_paging(local_tenant: LocalTenant) -> None:
    async def scenario() -> tuple[int | None, list[str], int]:
        client = sdk(local_tenant)
        cfg = users_query(filter="accountEnabled eq true", count=True, top=7,
                          select=["id", "displayName", "userPrincipalName", "accountEnabled"])
        page = await client.users.get(request_configuration=cfg)
        assert page is not None and page.value is not None
        count, upns, pages = page.odata_count, [u.user_principal_name or "" for u in page.value], 1
        while page.odata_next_link:
            assert page.odata_next_link.startswith(local_tenant.base_url)  # absolute, on the emulator
            page = await client.users.with_url(page.odata_next_link).get()
            assert page is not None and page.value is not None
            upns += [u.user_principal_name or "" for u in page.value]
            pages += 1
        return count, upns, pages

    count, upns, pages = run(scenario())
    assert count == 30 and len(upns) == 30 and len(set(upns)) == 30 and pages == 5
    assert "oscar@contoso.com" not in upns


def test_filter_on_proxy_addresses_and_combined(local_tenant: LocalTenant) -> None:
    async def scenario() -> tuple[list[str], list[str], list[Any]]:
        client = sdk(local_tenant)
        by_proxy = await client.users.get(request_configuration=users_query(
            filter="proxyAddresses/any(x:x eq 'smtp:alice@contoso.onmicrosoft.com')", count=True,
            select=["id", "userPrincipalName", "proxyAddresses"]))
        combined = await client.users.get(request_configuration=users_query(
            filter="userPrincipalName eq 'oscar@contoso.com' and accountEnabled eq false"))
        by_mail = await client.users.get(request_configuration=users_query(filter="mail eq 'BOB@contoso.com'"))
        assert by_proxy and by_proxy.value is not None and combined and combined.value is not None
        assert by_mail and by_mail.value is not None
        return ([u.user_principal_name or "" for u in by_proxy.value],
                [u.user_principal_name or "" for u in combined.value], by_mail.value)

    proxy, combined, by_mail = run(scenario())
    assert proxy == ["alice@contoso.com"] and combined == ["oscar@contoso.com"]
    assert by_mail[0].mail == "bob@contoso.com"


def test_get_by_upn_and_not_found(local_tenant: LocalTenant) -> None:
    async def scenario() -> None:
        client = sdk(local_tenant)
        user = await client.users.by_user_id("alice@contoso.com").get()  # sent as alice%40contoso.com
        assert user is not None and user.display_name == "Alice Anderson" and user.mail == "alice@contoso.com"
        with pytest.raises(ODataError) as err:
            await client.users.by_user_id("nobody@contoso.com").get()
        assert err.value.response_status_code == 404
        assert err.value.error is not None and err.value.error.code == "Request_ResourceNotFound"
        assert err.value.error.inner_error is not None

    run(scenario())


def test_patch_account_enabled_is_audited(local_tenant: LocalTenant) -> None:
    created = local_tenant.exchange("New-Mailbox", Shared=True, Name="sales", PrimarySmtpAddress="sales@contoso.com")
    user_id = created.json()["value"][0]["ExternalDirectoryObjectId"]

    async def scenario() -> None:
        client = sdk(local_tenant)
        assert await client.users.by_user_id(user_id).patch(User(account_enabled=False)) is None  # 204
        cfg = RequestConfiguration(query_parameters=UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["accountEnabled"]))
        user = await client.users.by_user_id(user_id).get(request_configuration=cfg)
        assert user is not None and user.account_enabled is False

    run(scenario())
    mailbox = local_tenant.exchange("Get-Mailbox", Identity="sales").json()["value"][0]
    assert mailbox["AccountDisabled"] is True
    audits = local_tenant.graph("GET", "/auditLogs/directoryAudits",
                                params={"$filter": f"targetResources/any(t:t/id eq '{user_id}')"}).json()["value"]
    update = next(a for a in audits if a["activityDisplayName"] == "Update user")
    assert update["initiatedBy"]["app"]["appId"] == "mailroom-tests"
    assert update["targetResources"][0]["modifiedProperties"] == [
        {"displayName": "AccountEnabled", "oldValue": "[true]", "newValue": "[false]"}]
    assert any(a["activityDisplayName"] == "Add user" for a in audits)  # New-Mailbox created the user


def test_mailbox_settings(local_tenant: LocalTenant) -> None:
    local_tenant.exchange("New-Mailbox", Shared=True, Name="sales", PrimarySmtpAddress="sales@contoso.com")
    upn = local_tenant.exchange("Get-Mailbox", Identity="sales").json()["value"][0]["UserPrincipalName"]

    async def scenario() -> None:
        client = sdk(local_tenant)
        shared = await client.users.by_user_id(upn).mailbox_settings.get()
        person = await client.users.by_user_id("alice@contoso.com").mailbox_settings.get()
        assert shared is not None and shared.user_purpose == UserPurpose.Shared
        assert person is not None and person.user_purpose == UserPurpose.User
        patch = MailboxSettings(automatic_replies_setting=AutomaticRepliesSetting(
            status=AutomaticRepliesStatus.AlwaysEnabled, internal_reply_message="<p>Back Monday</p>"))
        updated = await client.users.by_user_id(upn).mailbox_settings.patch(patch)
        assert updated is not None and updated.automatic_replies_setting is not None
        assert updated.automatic_replies_setting.status == AutomaticRepliesStatus.AlwaysEnabled
        again = await client.users.by_user_id(upn).mailbox_settings.get()
        assert again is not None and again.automatic_replies_setting is not None
        assert again.automatic_replies_setting.internal_reply_message == "<p>Back Monday</p>"

    run(scenario())
    raw = local_tenant.graph("GET", f"/users/{upn}/mailboxSettings", params={"$select": "userPurpose"}).json()
    assert set(raw) == {"@odata.context", "userPurpose"} and raw["userPurpose"] == "shared"


def test_sdk_retry_handler_recovers_from_injected_429(local_tenant: LocalTenant) -> None:
    # One request per second per app, burst 1: the second call is throttled with Retry-After: 1,
    # and the SDK's own RetryHandler waits and retries it.
    local_tenant.token(GRAPH_SCOPE)  # fetched before the counters restart, so only Graph calls count
    local_tenant.set_profile({"seed": 3, "rate_limit": {"per_second": 1, "burst": 1}})
    local_tenant.reset_metrics()

    async def scenario() -> list[str | None]:
        client = sdk(local_tenant)
        first = await client.users.by_user_id("alice@contoso.com").get()
        second = await client.users.by_user_id("bob@contoso.com").get()
        return [u.display_name if u else None for u in (first, second)]

    assert run(scenario()) == ["Alice Anderson", "Bob Baker"]
    metrics = local_tenant.metrics()
    assert metrics["statuses"].get("429", 0) >= 1 and metrics["statuses"]["200"] == 2
    assert metrics["injected"]["throttled_rate_limit"] == metrics["statuses"]["429"]
    assert metrics["endpoints"]["GET /v1.0/users/{id}"] == 2 + metrics["statuses"]["429"]
