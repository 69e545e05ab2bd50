"""The running emulator's shared state, reachable from every route as ``request.app.state.emu``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from localtenant.directory import Tenant, load_tenant
from localtenant.faults import Faults
from localtenant.metrics import Metrics
from localtenant.store import Store, set_meta

# Documented Exchange continuation lifetime: "Default Expiry time is 00:30:00".
SKIPTOKEN_TTL = 30 * 60.0


@dataclass
class Emulator:
    store: Store
    tenant: Tenant
    secret: bytes
    faults: Faults = field(default_factory=Faults)
    metrics: Metrics = field(default_factory=Metrics)
    skiptoken_ttl: float = SKIPTOKEN_TTL

    @classmethod
    def open(cls, store: Store, faults: Faults | None = None, skiptoken_ttl: float = SKIPTOKEN_TTL) -> Emulator:
        with store.tx() as conn:
            tenant = load_tenant(conn)
            if tenant is None:
                raise RuntimeError(f"{store.path}: no tenant; seed a directory first")
            row = conn.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
            if row is None:
                # Kept in the state so tokens and skiptokens stay valid across restarts.
                secret = secrets.token_hex(32)
                set_meta(conn, "secret", secret)
            else:
                secret = row[0]
        return cls(store=store, tenant=tenant, secret=bytes.fromhex(secret), faults=faults or Faults(),
                   skiptoken_ttl=skiptoken_ttl)
