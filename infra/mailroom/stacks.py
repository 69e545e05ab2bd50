"""Stack configuration (``Pulumi.<stack>.yaml``, namespace ``mailroom``) → which tenant to use.

The stack ``local`` (every command's default) is the embedded local tenant,
started on demand. Any other stack names its tenant::

    config:
      mailroom:tenantId: 00000000-0000-0000-0000-000000000000
      mailroom:clientId: 11111111-1111-1111-1111-111111111111
      mailroom:authMode: workload-identity     # secret | certificate | workload-identity
      # optional, for sovereign clouds:
      mailroom:exchangeUrl: https://outlook.office365.us
      mailroom:graphUrl: https://graph.microsoft.us/v1.0
      mailroom:authority: https://login.microsoftonline.us
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mailroom import embedded
from mailroom.errors import ConfigError
from mailroom.tenant import TenantConfig

LOCAL = "local"
_KEYS = {"tenantId": "tenant_id", "clientId": "client_id", "authMode": "auth_mode", "exchangeUrl": "exchange_url",
         "graphUrl": "graph_url", "authority": "authority"}


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def tenant_config(project_dir: Path, stack: str) -> TenantConfig:
    if stack == LOCAL:
        info = embedded.ensure_running(project_dir)
        return TenantConfig.local(info.url, info.tenant_id)
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
    return TenantConfig(**values)
