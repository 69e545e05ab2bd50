"""Microsoft Graph: users, accountEnabled, mailboxSettings, directory audits.

Single typed calls go through msgraph-sdk: mailroom adds a token provider that
serves tokens from its TokenSource and points the adapter at the configured base
URL (the real Graph or the local tenant); msgraph-sdk is imported lazily (it takes
a second to import and validate never needs it). Paged listings are plain JSON
over the shared Transport, so each page is retried (429, 5xx, dropped
connections, Retry-After) by the same policy as every Exchange call.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from mailroom.errors import GraphError
from mailroom.m365.auth import GRAPH_SCOPE, TokenSource
from mailroom.m365.transport import RETRY_STATUSES, Transport

PAGE_SIZE = 999  # Graph's largest $top for users
# department: what `mailroom import --split-by department` files a shared mailbox under (its Entra user's).
USER_FIELDS = ["id", "userPrincipalName", "displayName", "mail", "accountEnabled", "proxyAddresses", "userType",
               "department"]


def _token_provider(tokens: TokenSource, host: str) -> Any:
    from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator

    class _Provider(AccessTokenProvider):
        def __init__(self) -> None:
            self._hosts = AllowedHostsValidator([host])

        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            return await tokens.token(GRAPH_SCOPE) if self._hosts.is_url_host_valid(uri) else ""

        def get_allowed_hosts_validator(self) -> Any:
            return self._hosts

    return _Provider()


class GraphClient:
    def __init__(self, base_url: str, tokens: TokenSource, transport: Transport, *,
                 page_size: int = PAGE_SIZE, http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``http_transport``: what the SDK's own client sends through (default: the network)."""
        from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
        from msgraph import GraphRequestAdapter, GraphServiceClient

        self.base_url = base_url.rstrip("/")
        host = urlsplit(self.base_url).hostname or ""
        self.tokens, self.transport, self.page_size = tokens, transport, page_size
        sdk_http = None
        if http_transport is not None:  # the SDK's middleware (its RetryHandler) stays in front of it
            from msgraph_core import GraphClientFactory

            sdk_http = GraphClientFactory.create_with_default_middleware(
                client=httpx.AsyncClient(timeout=httpx.Timeout(100.0, connect=30.0), transport=http_transport))
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(_token_provider(tokens, host)),
                                      client=sdk_http)
        adapter.base_url = self.base_url  # before the client is built: .batch reads it once
        self.client = GraphServiceClient(request_adapter=adapter)
        self.sdk_requests = 0
        self.max_attempts = 8

    @property
    def requests(self) -> int:
        """Graph requests sent, retries included."""
        return self.sdk_requests + self.transport.stats.requests

    async def _call(self, operation: str, make: Callable[[], Awaitable[Any]]) -> Any:
        """Run one SDK call. The SDK's RetryHandler retries 429/503/504 itself; 500/502 and
        dropped connections it does not, so those are retried here with jittered backoff."""
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        for attempt in range(1, self.max_attempts + 1):
            self.sdk_requests += 1
            try:
                return await make()
            except ODataError as exc:
                status = int(exc.response_status_code or 0)
                err = exc.error
                error = GraphError(operation, status, str(getattr(err, "code", "") or ""),
                                   str(getattr(err, "message", "") or ""))
                if status not in RETRY_STATUSES or attempt == self.max_attempts:
                    raise error from None
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if attempt == self.max_attempts:
                    raise GraphError(operation, 0, type(exc).__name__, str(exc)) from None
            await asyncio.sleep(random.uniform(0, min(10.0, 0.25 * 2**attempt)))
        raise AssertionError("unreachable")

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        qp = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=USER_FIELDS)
        try:
            user = await self._call(f"GET /users/{user_id}", lambda: self.client.users.by_user_id(user_id).get(
                request_configuration=RequestConfiguration(query_parameters=qp)))
        except GraphError as exc:
            if exc.status == 404:
                return None
            raise
        return _user(user)

    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        from msgraph.generated.models.user import User

        await self._call(f"PATCH /users/{user_id}", lambda: self.client.users.by_user_id(user_id).patch(
            User(account_enabled=enabled)))

    async def list_users(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """Every user (or those matching ``filter_``), paged, as plain JSON.

        Plain JSON skips the SDK's typed models: kiota's parsing costs ~5 ms a user, 25 s for a
        5,000-user tenant."""
        query = f"$select={','.join(USER_FIELDS)}&$top={self.page_size}"
        if filter_:
            query += "&$count=true&$filter=" + quote(filter_, safe="")
        return await self._get_all("GET /users", f"{self.base_url}/users?{query}",
                                   {"ConsistencyLevel": "eventual"} if filter_ else {})

    async def transitive_member_of(self, principal_id: str) -> list[dict[str, Any]]:
        """The groups ``principal_id`` is a member of, directly or through nested groups (one paged listing:
        ``GET /users/{id}/transitiveMemberOf/microsoft.graph.group``, GroupMember.Read.All)."""
        return await self._groups("users", principal_id, "transitiveMemberOf")

    async def member_of(self, principal_id: str, *, group: bool = False) -> list[dict[str, Any]]:
        """The groups a user (or, with ``group``, a group) is a direct member of: one step of a nesting
        (``GET /users|groups/{id}/memberOf/microsoft.graph.group``, GroupMember.Read.All)."""
        return await self._groups("groups" if group else "users", principal_id, "memberOf")

    async def transitive_members(self, group_id: str) -> list[dict[str, Any]]:
        """A group's members, nested groups' included, flat (``GET /groups/{id}/transitiveMembers``,
        GroupMember.Read.All; users need User.Read.All too, or they come with their id alone)."""
        url = (f"{self.base_url}/groups/{quote(group_id, safe='')}/transitiveMembers"
               f"?$select=id,displayName,mail,userPrincipalName&$top={self.page_size}")
        return await self._get_all("GET /groups/{id}/transitiveMembers", url, {})

    async def _groups(self, kind: str, key: str, relation: str) -> list[dict[str, Any]]:
        url = (f"{self.base_url}/{kind}/{quote(key, safe='')}/{relation}/microsoft.graph.group"
               f"?$select=id,displayName,mail&$top={self.page_size}")
        return await self._get_all(f"GET /{kind}/{{id}}/{relation}", url, {})

    async def _get_all(self, operation: str, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every page of a listing, each sent through the Transport (its retry policy)."""
        out: list[dict[str, Any]] = []
        while url:
            if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]:  # the token is for Graph only, nowhere else
                raise GraphError(operation, 0, "UnexpectedNextLink", f"next page on another host: {url}")

            async def make(url: str = url) -> httpx.Request:
                token = await self.tokens.token(GRAPH_SCOPE)
                return self.transport.client.build_request(
                    "GET", url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **headers})

            resp = await self.transport.send(make, operation)
            data = _json(resp)
            if resp.status_code != 200:
                err = data.get("error") or {}
                raise GraphError(operation, resp.status_code, str(err.get("code") or ""),
                                 str(err.get("message") or ""))
            out.extend(data.get("value") or [])
            url = data.get("@odata.nextLink") or ""
        return out

    async def directory_audits(self, filter_: str | None = None) -> list[dict[str, Any]]:
        """Raw JSON of ``/auditLogs/directoryAudits`` (who changed accountEnabled, and when)."""
        url = f"{self.base_url}/auditLogs/directoryAudits"
        if filter_:
            url += "?$filter=" + quote(filter_, safe="")
        return await self._get_all("GET /auditLogs/directoryAudits", url, {})


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json() if resp.content else {}
    except ValueError:  # a gateway's HTML error page
        return {}
    return data if isinstance(data, dict) else {}


def _user(user: Any) -> dict[str, Any]:
    return {"id": user.id, "userPrincipalName": user.user_principal_name, "displayName": user.display_name,
            "mail": user.mail, "accountEnabled": user.account_enabled,
            "proxyAddresses": list(user.proxy_addresses or []), "userType": user.user_type,
            "department": user.department}
