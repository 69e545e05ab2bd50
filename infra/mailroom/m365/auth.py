"""Access tokens for Exchange admin REST and Graph.

A real tenant is reached through azure-identity (client secret, certificate, or
workload identity federation such as GitHub Actions OIDC); the local tenant
issues its own tokens from its token endpoint. Tokens are cached per scope in
memory only: they never reach state, logs or the audit log.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mailroom.errors import AuthError, ConfigError
from mailroom.m365.transport import retry_after


@dataclass(frozen=True)
class Cloud:
    """Where one Microsoft 365 cloud signs in and serves Exchange admin REST and Graph."""

    authority: str
    exchange_url: str
    exchange_scope: str
    graph_url: str
    graph_scope: str


# The clouds, declared once. Sources: the Entra and Graph endpoints and the rule that a Graph scope
# names the cloud's Graph host are Microsoft's "Microsoft Graph national cloud deployments" and
# "national clouds with the Graph SDKs" pages (learn.microsoft.com/graph/deployments); the Exchange
# scopes of GCC High and DoD are wire reference A.2 [code: ScubaGear]. GCC (moderate) uses the
# public cloud. Less certain [code/infer]: DoD's Exchange endpoint is webmail.apps.mil (the
# ExchangeOnlineManagement module's O365USGovDoD connection URI) while its token audience is
# outlook-dod.office365.us (ScubaGear), and 21Vianet's Exchange scope is partner.outlook.cn
# (several clients, no Microsoft page); `mailroom:exchangeUrl` overrides the endpoint.
CLOUDS: dict[str, Cloud] = {
    "public": Cloud("https://login.microsoftonline.com", "https://outlook.office365.com",
                    "https://outlook.office365.com/.default", "https://graph.microsoft.com/v1.0",
                    "https://graph.microsoft.com/.default"),
    "usgov-high": Cloud("https://login.microsoftonline.us", "https://outlook.office365.us",
                        "https://outlook.office365.us/.default", "https://graph.microsoft.us/v1.0",
                        "https://graph.microsoft.us/.default"),
    "usgov-dod": Cloud("https://login.microsoftonline.us", "https://webmail.apps.mil",
                       "https://outlook-dod.office365.us/.default", "https://dod-graph.microsoft.us/v1.0",
                       "https://dod-graph.microsoft.us/.default"),
    "china": Cloud("https://login.chinacloudapi.cn", "https://partner.outlook.cn",
                   "https://partner.outlook.cn/.default", "https://microsoftgraph.chinacloudapi.cn/v1.0",
                   "https://microsoftgraph.chinacloudapi.cn/.default"),
}
PUBLIC = CLOUDS["public"]
# Clients name the service they want a token for by its public-cloud scope; a token source
# serving another cloud asks for that cloud's scope of the same service (see _SingleFlight).
EXCHANGE_SCOPE = PUBLIC.exchange_scope
GRAPH_SCOPE = PUBLIC.graph_scope
_EARLY_REFRESH = 120  # seconds before expiry a cached token is renewed


class TokenSource(Protocol):
    async def token(self, scope: str) -> str: ...


class _Cache:
    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, scope: str) -> str | None:
        with self._lock:
            hit = self._tokens.get(scope)
        return hit[0] if hit and hit[1] - _EARLY_REFRESH > time.time() else None

    def put(self, scope: str, token: str, expires_at: float) -> None:
        with self._lock:
            self._tokens[scope] = (token, expires_at)


def cloud_scopes(cloud: Cloud) -> dict[str, str]:
    """Each service's public-cloud scope → the same service's scope in ``cloud``."""
    return {PUBLIC.exchange_scope: cloud.exchange_scope, PUBLIC.graph_scope: cloud.graph_scope}


class _SingleFlight:
    """Tokens cached per scope in memory; one fetch at a time per scope (a hundred requests
    starting together ask the token endpoint once). ``scopes`` maps the scope a client names to
    the one asked for (a sovereign cloud's, see ``cloud_scopes``)."""

    def __init__(self, scopes: dict[str, str] | None = None) -> None:
        self._cache = _Cache()
        self._locks: dict[str, asyncio.Lock] = {}
        self._scopes = scopes or {}

    async def token(self, scope: str) -> str:
        scope = self._scopes.get(scope, scope)
        cached = self._cache.get(scope)
        if cached:
            return cached
        async with self._locks.setdefault(scope, asyncio.Lock()):
            return self._cache.get(scope) or await self._fetch(scope)

    async def _fetch(self, scope: str) -> str:
        raise NotImplementedError


class LocalTokenSource(_SingleFlight):
    """Client credentials against the local tenant's token endpoint (plain HTTP on loopback)."""

    def __init__(self, authority: str, tenant: str, client_id: str, client_secret: str, *,
                 http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__()
        self.authority, self.tenant = authority, tenant  # authority e.g. http://127.0.0.1:8765
        self.client_id, self.client_secret = client_id, client_secret
        self._http_transport = http_transport  # None: the network

    async def _fetch(self, scope: str) -> str:
        url = f"{self.authority.rstrip('/')}/{self.tenant}/oauth2/v2.0/token"
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": scope}
        last: Exception | None = None
        for attempt in range(8):  # the token endpoint is throttled and faulted like the rest
            try:
                async with httpx.AsyncClient(timeout=30, transport=self._http_transport) as client:
                    resp = await client.post(url, data=form)
            except httpx.TransportError as exc:
                last = exc
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = AuthError(f"token endpoint answered {resp.status_code}")
                await asyncio.sleep(retry_after(resp) or 0.2 * 2**attempt)
                continue
            if resp.status_code != 200:
                raise AuthError(f"token request for {scope} refused: HTTP {resp.status_code} "
                                f"{resp.json().get('error_description', '') if resp.content else ''}".strip())
            body = resp.json()
            self._cache.put(scope, body["access_token"], time.time() + float(body.get("expires_in", 3599)))
            return str(body["access_token"])
        raise AuthError(f"token endpoint {url} unavailable: {last}")


class AzureTokenSource(_SingleFlight):
    """azure-identity credential for a real tenant; its sync API runs in a worker thread."""

    def __init__(self, credential: Any, scopes: dict[str, str] | None = None) -> None:
        super().__init__(scopes)
        self._credential = credential

    async def _fetch(self, scope: str) -> str:
        try:
            access = await asyncio.to_thread(self._credential.get_token, scope)
        except Exception as exc:  # azure-identity raises its own ClientAuthenticationError family
            raise AuthError(f"could not get a token for {scope}: {type(exc).__name__}: {exc}") from None
        self._cache.put(scope, access.token, float(access.expires_on))
        return str(access.token)


def azure_credential(mode: str, tenant_id: str, client_id: str, env: Any = os.environ, *,
                     authority: str = PUBLIC.authority, disable_instance_discovery: bool = False) -> Any:
    """The azure-identity credential for ``mode``, signing in at ``authority`` (the stack's cloud:
    every credential type gets it, or a sovereign tenant's tokens would be asked of the public
    cloud). Secrets come from the environment only.

    - ``secret``: AZURE_CLIENT_SECRET
    - ``certificate``: AZURE_CLIENT_CERTIFICATE_PATH (+ optional AZURE_CLIENT_CERTIFICATE_PASSWORD)
    - ``workload-identity``: AZURE_FEDERATED_TOKEN_FILE, or GitHub Actions OIDC
      (ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN) exchanged as a client assertion

    ``disable_instance_discovery``: skip MSAL's authority validation, only for an authority
    Microsoft's discovery endpoint does not know (a private cloud, a test's token endpoint).
    """
    import azure.identity as identity  # imported here: only real tenants need it

    if mode == "secret":
        secret = env.get("AZURE_CLIENT_SECRET")
        if not secret:
            raise ConfigError("auth mode 'secret' needs AZURE_CLIENT_SECRET in the environment")
        return identity.ClientSecretCredential(tenant_id, client_id, secret, authority=authority,
                                               disable_instance_discovery=disable_instance_discovery)
    if mode == "certificate":
        path = env.get("AZURE_CLIENT_CERTIFICATE_PATH")
        if not path:
            raise ConfigError("auth mode 'certificate' needs AZURE_CLIENT_CERTIFICATE_PATH in the environment")
        return identity.CertificateCredential(tenant_id, client_id, certificate_path=path,
                                              password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
                                              authority=authority,
                                              disable_instance_discovery=disable_instance_discovery)
    # The assertion credentials post straight to {authority}/{tenant}/oauth2/v2.0/token, with no
    # discovery (wire reference B.1), so they take no discovery option.
    if mode == "workload-identity":
        if env.get("AZURE_FEDERATED_TOKEN_FILE"):
            return identity.WorkloadIdentityCredential(tenant_id=tenant_id, client_id=client_id,
                                                       token_file_path=env["AZURE_FEDERATED_TOKEN_FILE"],
                                                       authority=authority)
        if env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
            return identity.ClientAssertionCredential(tenant_id, client_id, func=lambda: github_oidc_token(env),
                                                      authority=authority)
        raise ConfigError("auth mode 'workload-identity' needs AZURE_FEDERATED_TOKEN_FILE or a GitHub Actions "
                          "job with `permissions: id-token: write`")
    raise ConfigError(f"unknown auth mode {mode!r}; use secret, certificate or workload-identity")


def github_oidc_token(env: Any = os.environ) -> str:
    """The GitHub Actions OIDC token for Entra's federated credential audience."""
    url = env["ACTIONS_ID_TOKEN_REQUEST_URL"] + "&audience=api://AzureADTokenExchange"
    resp = httpx.get(url, headers={"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}, timeout=30)
    resp.raise_for_status()
    return str(resp.json()["value"])
