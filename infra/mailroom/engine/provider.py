"""The provider logic behind the SharedMailbox resource.

The program (``engine/program.py``) registers one resource of type ``mailroom:index:SharedMailbox``
(``engine/tokens.py``) per mailbox, served by mailroom's own resource provider plugin,
``pulumi-resource-mailroom`` (``engine/plugin.py``). Nothing of the provider is kept in state: no pickled
``__provider``, no client, no credential. The resource declares the type the Python dynamic provider gave
it before as an alias, so a stack applied then moves over in place (same names, nothing created or deleted).

``MailboxProvider`` holds the logic, whoever calls it:

- ``create`` adopts a *shared* mailbox that already has the address, then converges it; a
  mailbox of any other type (a person's, a room) is refused before any write.
- during ``mailroom apply``, every write is checked against the reviewed plan
  (``mailroom.engine.plan.Approval``) and every mailbox is read back after its writes.
- ``delete`` only releases the mailbox from management: its mail is data.
  Deletion happens only through ``state: absent`` (an update).
- ``diff`` compares inputs with the last known outputs through
  ``mailroom.core.compare``, so refresh reports drift for this resource.

Every tenant call goes through the provider's ``on_tenant``: in the plugin, the one ``Tenant`` of the
run on the plugin's one event loop (one pacer and retry policy for every mailbox); by default, a tenant
of the call's own (``own_tenant``), which is how the Python dynamic provider host still runs this class
for a stack that has not moved over yet (its state names this class, pickled by reference).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Protocol, TypeVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from mailroom.audit.log import AuditLog
from mailroom.core.compare import changes
from mailroom.core.identity import is_valid_smtp, smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.engine.plan import Approval, approved
from mailroom.engine.planner import load_snapshot, state_differs
from mailroom.engine.record import outputs
from mailroom.engine.tokens import DYNAMIC_PROVIDER_KEY
from mailroom.errors import ConfigError, TenantError
from mailroom.m365.tenant import Tenant, TenantConfig
from mailroom.providerenv import ProviderEnv
from mailroom.reconcile.converge import UNREAD, Outcome, Unread, converge_mailbox
from mailroom.reconcile.live import LiveMailbox, read_mailbox

OUTPUT_KEYS = ("object_id", "exchange_id")
T = TypeVar("T")


class OnTenant(Protocol):
    """Runs ``work`` on an open tenant and returns its result (blocking the calling thread)."""

    def __call__(self, work: Callable[[Tenant], Awaitable[T]]) -> T: ...


def tenant_config() -> TenantConfig:
    """The tenant of the run that started this provider."""
    raw = ProviderEnv.from_env().tenant
    if not raw:
        raise ConfigError("no tenant in the environment: run through `mailroom plan/apply`, which sets it per stack")
    return TenantConfig.from_json(raw)


def own_tenant(work: Callable[[Tenant], Awaitable[T]]) -> T:
    """``work`` on a tenant of its own, in an event loop of its own (one call, one client)."""
    async def run() -> T:
        async with Tenant(tenant_config()) as t:
            return await work(t)

    return asyncio.run(run())


def known_live(address: str) -> LiveMailbox | None | Unread:
    """The mailbox at ``address`` as this run already read it (None: it does not exist), or ``UNREAD``.

    ``mailroom apply`` reads the tenant once, in bulk, and hands the engine the live state of every
    mailbox its plan touches (``ProviderEnv.snapshot``): ``diff`` compares the file with it, and
    ``converge_mailbox`` starts from it instead of reading the mailbox again. A mailbox the snapshot
    does not hold (or a run without one, e.g. ``pulumi up`` by hand) is read on its own.
    """
    path = ProviderEnv.from_env().snapshot
    if not path:
        return UNREAD
    return _snapshot(path).get(smtp_key(address), UNREAD)


@cache
def _snapshot(path: str) -> dict[str, LiveMailbox | None]:
    return load_snapshot(path)


def _log() -> AuditLog:
    """The audit log of the run that started this provider (path, stack and run id)."""
    env = ProviderEnv.from_env()
    return AuditLog(env.audit_log, stack=env.stack or "unknown", run_id=env.run_id)


def _audit(outcome: Outcome) -> None:
    """Record every change made (or failed) in the audit log of this run."""
    log = _log()
    entries = []
    for c in outcome.done:
        entries.append(log.entry("change", mailbox=c.mailbox, subject=c.subject, right=c.right,
                                 before=c.before, after=c.after, result="ok", detail=c.op))
    for c, error in outcome.failed:
        entries.append(log.entry("change_failed", mailbox=c.mailbox, subject=c.subject, right=c.right,
                                 before=c.before, after=c.after, result="failed", detail=f"{c.op}: {error}"))
    if entries:
        log.append(entries)


async def converge_on(t: Tenant, spec: MailboxSpec, known: MailboxSpec | None = None,
                      approved: Approval | None = None) -> tuple[LiveMailbox | None, Outcome]:
    """Converge one mailbox on the open tenant ``t`` (see ``reconcile.converge.converge_mailbox``)."""
    return await converge_mailbox(t, spec, known, approved.check if approved else None,
                                  live=known_live(spec.address))


async def converge(spec: MailboxSpec, known: MailboxSpec | None = None,
                   approved: Approval | None = None) -> tuple[LiveMailbox | None, Outcome]:
    """Converge one mailbox on a tenant client of its own (``converge_on`` with a fresh ``Tenant``)."""
    async with Tenant(tenant_config()) as t:
        return await converge_on(t, spec, known, approved)


async def read_live(t: Tenant, known: MailboxSpec) -> LiveMailbox | None:
    """The mailbox as it is now (None: gone), from this run's snapshot or read on its own."""
    live = known_live(known.address)
    if not isinstance(live, Unread):
        return live
    return await read_mailbox(t.exchange, t.graph, t.directory, known.address, known.people(), known.domains,
                              known.automap_by_key(), folders=known.folders())


def is_dynamic_state(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """The last state was written by the dynamic provider and the plugin now serves the resource."""
    return DYNAMIC_PROVIDER_KEY in olds and DYNAMIC_PROVIDER_KEY not in news


class MailboxProvider(ResourceProvider):
    # Nothing secret is captured (credentials come from the environment at run time),
    # so the pickled provider (dynamic provider host only) need not be a secret blob in state.
    serialize_as_secret_always = False

    # A class default: instances the dynamic provider host unpickles from old state have no attribute.
    _on_tenant: OnTenant | None = None

    def __init__(self, on_tenant: OnTenant | None = None) -> None:
        if on_tenant is not None:  # only when given: a default provider pickles to the same few bytes as before
            self._on_tenant = on_tenant

    def on_tenant(self, work: Callable[[Tenant], Awaitable[T]]) -> T:
        return (self._on_tenant or own_tenant)(work)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        address = str(news.get("address") or "")
        if not is_valid_smtp(address):
            failures.append(CheckFailure("address", f"{address!r} is not a valid SMTP address"))
        if news.get("state", "present") not in ("present", "absent"):
            failures.append(CheckFailure("state", "state must be present or absent"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        desired = MailboxSpec.from_props(news)
        before = MailboxSpec.from_props(olds) if olds.get("address") else None
        if before is not None and smtp_key(before.address) != smtp_key(desired.address):
            return DiffResult(changes=True, replaces=["address"], delete_before_replace=False)
        live = known_live(desired.address)
        if not isinstance(live, Unread):
            # This run read the tenant: what changes is the file against the tenant, and a state that no
            # longer says what the tenant holds is brought up to date (an update with no tenant call).
            now = live.spec if live else None
            stale = before is None or state_differs(before, now)
            return DiffResult(changes=bool(changes(desired, now)) or stale or is_dynamic_state(olds, news))
        # A state the dynamic provider wrote is rewritten once without its pickled provider (``update``
        # does that without a tenant call); the plan shows no change for it.
        return DiffResult(changes=bool(changes(desired, before)) or is_dynamic_state(olds, news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = MailboxSpec.from_props(props)
        plan = approved()
        live, outcome = self.on_tenant(lambda t: converge_on(t, spec, approved=plan))
        _audit(outcome)
        _raise_if_failed(spec, outcome)
        return CreateResult(smtp_key(spec.address), outputs(spec, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        known = MailboxSpec.from_props(props) if props.get("address") else MailboxSpec(address=id_)
        live = self.on_tenant(lambda t: read_live(t, known))
        if known.state == "absent":
            spec = MailboxSpec(**{**known.__dict__, "state": "present" if live else "absent"})
            return ReadResult(id_, outputs(spec, live))
        if live is None:
            return ReadResult(None, {})  # gone: the engine treats it as deleted and the next up creates it
        spec = MailboxSpec(**{**live.spec.__dict__, "address": known.address, "domains": known.domains})
        return ReadResult(id_, outputs(spec, live))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        spec = MailboxSpec.from_props(news)
        known = MailboxSpec.from_props(olds) if olds.get("address") else None
        if known is not None and is_dynamic_state(olds, news) and not changes(spec, known) and \
                isinstance(known_live(spec.address), Unread):
            # Only the dynamic provider's pickled provider goes; the tenant matched the state already.
            return UpdateResult({**spec.to_props(), **{k: str(olds.get(k) or "") for k in OUTPUT_KEYS}})
        plan = approved()
        live, outcome = self.on_tenant(lambda t: converge_on(t, spec, known, plan))
        _audit(outcome)
        _raise_if_failed(spec, outcome)
        return UpdateResult(outputs(spec, live))

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Released from management, never deleted: only `state: absent` deletes a mailbox.
        address = str(props.get("address") or _id)
        plan = approved()
        if plan is not None:
            plan.check_release(address)
        log = _log()
        log.append(log.entry("change", mailbox=address, right="mailbox", result="ok",
                             detail="released from management; the mailbox and its access are kept"))
        pulumi.log.info(f"{address}: released from management (the mailbox is kept)")


def _raise_if_failed(spec: MailboxSpec, outcome: Outcome) -> None:
    if outcome.failed:
        lines = "; ".join(f"{c.line()}: {err}" for c, err in outcome.failed)
        done = len(outcome.done)
        raise TenantError(f"{spec.address}: {len(outcome.failed)} change(s) failed ({done} applied): {lines}")
