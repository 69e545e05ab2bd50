"""Stack configuration (``Pulumi.<stack>.yaml``, namespace ``mailroom``) → which tenant to use.

The stack ``local`` (every command's default) is the embedded local tenant,
started on demand. Any other stack names its tenant::

    config:
      mailroom:tenantId: 00000000-0000-0000-0000-000000000000
      mailroom:clientId: 11111111-1111-1111-1111-111111111111
      mailroom:authMode: workload-identity     # secret | certificate | workload-identity
      # optional, for sovereign clouds (auth.CLOUDS): sets the authority, both service URLs and
      # the token scopes at once
      mailroom:cloud: usgov-high               # public | usgov-high | usgov-dod | china
      # optional overrides of single endpoints:
      mailroom:exchangeUrl: https://outlook.office365.us
      mailroom:graphUrl: https://graph.microsoft.us/v1.0
      mailroom:authority: https://login.microsoftonline.us

Without ``mailroom:cloud`` the cloud is the one whose endpoints the overrides name, so a stack
written before the key existed keeps working; endpoints of two different clouds are an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from mailroom import paths
from mailroom.engine import embedded
from mailroom.errors import ConfigError
from mailroom.m365.auth import CLOUDS
from mailroom.m365.tenant import TenantConfig

LOCAL = "local"
_KEYS = {"tenantId": "tenant_id", "clientId": "client_id", "authMode": "auth_mode", "exchangeUrl": "exchange_url",
         "graphUrl": "graph_url", "authority": "authority", "cloud": "cloud"}
_ENDPOINTS = ("authority", "exchange_url", "graph_url")  # fields of both auth.Cloud and TenantConfig


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def tenant_config(project_dir: Path, stack: str) -> TenantConfig:
    if stack == LOCAL:
        info = embedded.ensure_running(project_dir)
        client_id = os.environ.get(paths.LOCAL_CLIENT_ID_ENV, "").strip()
        return TenantConfig.local(info.url, info.tenant_id, *([client_id] if client_id else []))
    path = stack_file(project_dir, stack)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"stack {stack!r} has no {path.name}; see README 'Real tenants'") from None
    config = data.get("config") or {}
    values = {field: str(config[f"mailroom:{key}"]) for key, field in _KEYS.items() if f"mailroom:{key}" in config}
    for required in ("tenant_id", "client_id", "auth_mode"):
        if required not in values:
            key = next(k for k, f in _KEYS.items() if f == required)
            raise ConfigError(f"{path.name}: config `mailroom:{key}` is required for stack {stack!r}")
    if values["auth_mode"] == "local":
        raise ConfigError(f"{path.name}: authMode local is only for the stack {LOCAL!r}")
    cloud = _cloud(values, path.name)
    return TenantConfig.in_cloud(cloud, **values)


def _cloud(values: dict[str, str], where: str) -> str:
    """The stack's cloud: ``mailroom:cloud``, else the one whose hosts the endpoint overrides name.
    An override on a host no cloud uses (a proxy, a regional host) says nothing about the cloud."""
    named = values.pop("cloud", None)
    if named is not None and named not in CLOUDS:
        raise ConfigError(f"{where}: unknown `mailroom:cloud` {named!r}; use one of {', '.join(CLOUDS)}")
    candidates = {named} if named else set(CLOUDS)
    for field in _ENDPOINTS:
        if field not in values:
            continue
        host = _host(values[field])
        owners = {name for name, c in CLOUDS.items() if _host(getattr(c, field)) == host}
        if owners and not owners & candidates:
            key = next(k for k, f in _KEYS.items() if f == field)
            raise ConfigError(f"{where}: `mailroom:{key}` {values[field]} belongs to the "
                              f"{' or '.join(sorted(owners))} cloud, the other endpoints to "
                              f"{' or '.join(sorted(candidates))}; set `mailroom:cloud` and drop the override")
        candidates &= owners or candidates
    if len(candidates) == 1:
        return candidates.pop()
    if "public" in candidates:
        return "public"
    raise ConfigError(f"{where}: the endpoints fit the clouds {' and '.join(sorted(candidates))}; "
                      "set `mailroom:cloud` to one of them")


def _host(url: str) -> str | None:
    return urlsplit(url if "://" in url else f"https://{url}").hostname  # azure-identity takes bare hosts too
