"""Which tenant to talk to, and one object holding both service clients for it.

TenantConfig holds no secret: credentials come from the environment at run
time (see ``mailroom.m365.auth.azure_credential``). The local tenant accepts a
fixed, documented client secret, which is not a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from mailroom.errors import ConfigError
from mailroom.m365.auth import (
    CLOUDS,
    PUBLIC,
    AzureTokenSource,
    LocalTokenSource,
    TokenSource,
    azure_credential,
    cloud_scopes,
)
from mailroom.m365.directory import Directory
from mailroom.m365.exchange import ExchangeClient
from mailroom.m365.transport import Limiter, RetryPolicy, Transport

ENV_VAR = "MAILROOM_TENANT"
LOCAL_CLIENT_ID = "mailroom-local"
LOCAL_CLIENT_SECRET = "local-tenant-not-a-secret"  # the local tenant accepts any; documented in README


@dataclass(frozen=True)
class TenantConfig:
    tenant_id: str
    auth_mode: str = "secret"  # local | secret | certificate | workload-identity
    client_id: str = ""
    exchange_url: str = PUBLIC.exchange_url
    graph_url: str = PUBLIC.graph_url
    authority: str = PUBLIC.authority
    cloud: str = "public"  # a key of auth.CLOUDS: which scopes tokens are asked for

    def __post_init__(self) -> None:
        if self.cloud not in CLOUDS:
            raise ConfigError(f"unknown cloud {self.cloud!r}; use one of {', '.join(CLOUDS)}")

    @classmethod
    def in_cloud(cls, cloud: str, tenant_id: str, **values: str) -> TenantConfig:
        """A tenant of ``cloud``: its authority and service URLs unless ``values`` override them."""
        c = CLOUDS.get(cloud, PUBLIC)  # an unknown name is refused by __post_init__
        defaults = {"exchange_url": c.exchange_url, "graph_url": c.graph_url, "authority": c.authority}
        return cls(tenant_id=tenant_id, cloud=cloud, **{**defaults, **values})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TenantConfig:
        return cls(**json.loads(text))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> TenantConfig:
        raw = env.get(ENV_VAR)
        if not raw:
            raise ConfigError(f"{ENV_VAR} is not set: run through `mailroom plan/apply`, which sets it per stack")
        return cls.from_json(raw)

    @classmethod
    def local(cls, url: str, tenant_id: str, client_id: str = LOCAL_CLIENT_ID) -> TenantConfig:
        url = url.rstrip("/")
        return cls(tenant_id=tenant_id, auth_mode="local", client_id=client_id, exchange_url=url,
                   graph_url=f"{url}/v1.0", authority=url)


def token_source(cfg: TenantConfig, *, http_transport: httpx.AsyncBaseTransport | None = None) -> TokenSource:
    if cfg.auth_mode == "local":
        return LocalTokenSource(cfg.authority, cfg.tenant_id, cfg.client_id or LOCAL_CLIENT_ID, LOCAL_CLIENT_SECRET,
                                http_transport=http_transport)
    credential = azure_credential(cfg.auth_mode, cfg.tenant_id, cfg.client_id, authority=cfg.authority)
    return AzureTokenSource(credential, cloud_scopes(CLOUDS[cfg.cloud]))


class Tenant:
    """Async context manager: ``async with Tenant(cfg) as t: await t.exchange.get_mailbox(...)``.

    ``http_transport``: the httpx transport every request of this tenant goes through (Exchange, Graph and
    the local tenant's token endpoint); by default the network. Tests pass an in-process app's
    (``httpx.ASGITransport``)."""

    def __init__(self, cfg: TenantConfig, *, concurrency: int = 32, retry: RetryPolicy | None = None,
                 http_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.cfg = cfg
        self._concurrency = concurrency
        self._retry = retry
        self._http_transport = http_transport
        self._graph: Any = None

    async def __aenter__(self) -> Tenant:
        maximum = self._concurrency
        limits = httpx.Limits(max_connections=maximum, max_keepalive_connections=maximum)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0), limits=limits,
                                       transport=self._http_transport)
        limiter = Limiter(maximum)
        self.transport = Transport(self._http, retry=self._retry, limiter=limiter)
        # Graph meters an app apart from Exchange (wire reference B.6), so it gets its own pacer
        # and statistics; retry policy, connections and the in-flight bound are shared.
        self.graph_transport = Transport(self._http, retry=self._retry, limiter=limiter)
        self.tokens = token_source(self.cfg, http_transport=self._http_transport)
        self.exchange = ExchangeClient(self.cfg.exchange_url, self.cfg.tenant_id, self.tokens, self.transport)
        self.directory = Directory(self.exchange)
        return self

    @property
    def graph(self) -> Any:
        if self._graph is None:  # msgraph-sdk is slow to import; only build it when used
            from mailroom.m365.graph import GraphClient

            self._graph = GraphClient(self.cfg.graph_url, self.tokens, self.graph_transport,
                                      http_transport=self._http_transport)
        return self._graph

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()
