"""The bootstrap operations: plan, apply and show, for one stack. The CLI parses, calls these, and hands
the result to ``view.py``.

On the **local** stack there is no Entra: the identities are fixed client ids (``LOCAL_CLIENT_IDS``) and
only the Exchange side is planned and applied, on the embedded local tenant, as the admin (its own
client, which holds Exchange Administrator there). On a **real** stack the Entra side is the Pulumi
program ``entra.declare`` on its own stack, ``bootstrap-<stack>`` (same backend as mailroom's stacks);
its outputs name the apps for the Exchange side, which signs in as ``--admin-client-id`` (an app with
Exchange Administrator, or Organization Management, since it creates role assignments).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any

from mailroom import paths
from mailroom.audit.log import AuditLog, Kind
from mailroom.bootstrap import entra
from mailroom.bootstrap import exchange as bx
from mailroom.bootstrap.identities import IDENTITIES, LOCAL_CLIENT_IDS, CiTarget
from mailroom.errors import ConfigError
from mailroom.m365.tenant import LOCAL_CLIENT_ID, Tenant, TenantConfig

# The local tenant's service principal object ids are any GUIDs; these stay the same from run to run.
_LOCAL_NS = uuid.UUID("5b0c6a1e-2d4f-4c8e-9a51-0d6f1b7e3c42")
PENDING = "(created by apply)"  # an app id the Entra side has not made yet


@dataclass(frozen=True)
class Target:
    stack: str
    ci: CiTarget | None = None
    admin_client_id: str | None = None

    @property
    def local(self) -> bool:
        return self.stack == paths.LOCAL_STACK

    @property
    def entra_stack(self) -> str:
        return f"bootstrap-{self.stack}"


@dataclass
class Planned:
    target: Target
    tenant_id: str
    principals: tuple[bx.Principal, ...]
    entra: list[entra.Declared]
    entra_pending: dict[str, int] | None  # Pulumi's change summary; None on the local stack (no Entra)
    exchange: list[bx.Change] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        pending = self.entra_pending or {}
        return bool(self.exchange) or any(n for op, n in pending.items() if op != "same")


def local_principals() -> tuple[bx.Principal, ...]:
    return bx.local_principals(LOCAL_CLIENT_IDS, lambda app_id: str(uuid.uuid5(_LOCAL_NS, app_id)))


def _tenant_config(target: Target) -> TenantConfig:
    from mailroom.engine import stacks  # starts the embedded tenant for the local stack

    cfg = stacks.tenant_config(paths.PROJECT_DIR, target.stack)
    if target.local:  # the embedded tenant's admin, whatever identity $MAILROOM_LOCAL_CLIENT_ID names
        return dataclasses.replace(cfg, client_id=LOCAL_CLIENT_ID)
    if not target.admin_client_id:
        raise ConfigError(f"bootstrap on stack {target.stack!r} signs in to Exchange as an admin: pass "
                          "--admin-client-id (an app with Exchange Administrator); mailroom's own identities "
                          "cannot grant roles, by design")
    return dataclasses.replace(cfg, client_id=target.admin_client_id)


def _entra_engine(target: Target) -> Any:
    from mailroom.engine.workspace import Engine, EngineSettings

    if target.ci is None:
        raise ConfigError("bootstrap on a real tenant needs the CI system: --ci and --repo")
    ci = target.ci
    return Engine(EngineSettings(target.entra_stack), program=lambda: entra.declare(ci))


def _principals_from(outputs: dict[str, Any]) -> tuple[bx.Principal, ...]:
    def value(key: str) -> str:
        out = outputs.get(key)
        return str(getattr(out, "value", out) or PENDING)
    return tuple(bx.Principal(i, value(f"{i.key}_client_id"), value(f"{i.key}_object_id")) for i in IDENTITIES)


def plan(target: Target) -> Planned:
    """What apply would do; makes no write anywhere."""
    cfg = _tenant_config(target)
    pending: dict[str, int] | None = None
    if target.local:
        principals = local_principals()
    else:
        engine = _entra_engine(target)
        pending = dict(engine.preview().change_summary)
        principals = _principals_from(engine.stack.outputs())
    planned = Planned(target, cfg.tenant_id, principals, entra.declared(target.ci), pending)

    async def read() -> list[bx.Change]:
        want = bx.wanted(p for p in principals if p.app_id != PENDING)
        async with Tenant(cfg) as t:
            todo = bx.changes(want, await bx.read(t.exchange, want))
        # Apps that do not exist yet are planned in full: their registration waits for the Entra side.
        later = bx.wanted(p for p in principals if p.app_id == PENDING)
        return todo + bx.changes(later, bx.Live(frozenset(), {}, ()))
    planned.exchange = asyncio.run(read())
    return planned


def apply(planned: Planned) -> tuple[Planned, list[bx.Change]]:
    """The Entra side first (a real stack), then Exchange against what Entra now holds; returns the plan
    made again after the Entra side (app ids filled in) and the Exchange changes made."""
    target = planned.target
    shown = planned.exchange if all(p.app_id != PENDING for p in planned.principals) else None
    if not target.local:
        engine = _entra_engine(target)
        engine.up()
        planned = dataclasses.replace(planned, principals=_principals_from(engine.stack.outputs()))
    cfg = _tenant_config(target)
    principals = planned.principals

    log = AuditLog(paths.audit_log(), stack=target.stack)

    def record(change: bx.Change, error: str | None) -> None:
        # mailroom's own permissions change: the audit log holds it next to the mailbox changes it enables.
        # No mailbox: the entry is about an identity, so `audit show --mailbox` never lists it.
        log.append(log.entry(Kind.CHANGE_FAILED if error else Kind.CHANGE, right=f"exchange {change.kind}",
                             subject=change.subject, before=change.identity or None, after=change.detail,
                             result="failed" if error else "ok", detail=error or change.op))

    async def run() -> list[bx.Change]:
        want = bx.wanted(principals)
        async with Tenant(cfg) as t:
            todo = bx.changes(want, await bx.read(t.exchange, want))
            if shown is not None and todo != shown:  # what was shown is what is applied, or nothing
                raise ConfigError("Exchange changed since the plan was shown (another bootstrap, or a change by "
                                  "hand); nothing was changed in Exchange: run bootstrap apply again")
            if todo:
                log.start_run("bootstrap apply", context={"command": "bootstrap apply", "changes": len(todo)})
            try:
                done = await bx.apply(t.exchange, todo, record)
            except Exception:
                log.end_run("failed", {"changes": len(todo)}, detail="bootstrap apply")
                raise
            if todo:
                log.end_run("ok", {"applied": len(done)}, detail="bootstrap apply")
            return done
    return planned, asyncio.run(run())


@dataclass
class Shown:
    target: Target
    principals: tuple[bx.Principal, ...]
    entra: list[entra.Declared]
    live: bx.Live | None  # None: not read (a real stack whose Entra side was never applied)


def show(target: Target) -> Shown:
    if target.local:
        principals = local_principals()
    else:
        principals = _principals_from(_entra_engine(target).stack.outputs())
    known = tuple(p for p in principals if p.app_id != PENDING)
    live = None
    if known:
        cfg = _tenant_config(target)

        async def read() -> bx.Live:
            async with Tenant(cfg) as t:
                return await bx.read(t.exchange, bx.wanted(known))
        live = asyncio.run(read())
    return Shown(target, principals, entra.declared(target.ci), live)
