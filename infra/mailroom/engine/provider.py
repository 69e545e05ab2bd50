"""The Pulumi dynamic provider for shared mailboxes, and its resource.

The provider lives in an importable module so dill pickles it by reference
(the state keeps ~60 bytes, and code changes never show as spurious diffs).
It holds no client: every method builds one from the run's ``ProviderEnv`` (the
environment mailroom's engine wrapper sets per run, see ``providerenv.py``), so no
credential or connection ever enters Pulumi state.

- ``create`` adopts a *shared* mailbox that already has the address, then converges it; a
  mailbox of any other type (a person's, a room) is refused before any write.
- during ``mailroom apply``, every write is checked against the reviewed plan
  (``mailroom.engine.plan.Approval``) and every mailbox is read back after its writes.
- ``delete`` only releases the mailbox from management: its mail is data.
  Deletion happens only through ``state: absent`` (an update).
- ``diff`` compares inputs with the last known outputs through
  ``mailroom.core.compare``, so refresh reports drift for this resource.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from mailroom.audit.log import AuditLog
from mailroom.core.compare import changes
from mailroom.core.identity import is_valid_smtp, smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.engine.plan import Approval, approved
from mailroom.errors import ConfigError, TenantError
from mailroom.m365.tenant import Tenant, TenantConfig
from mailroom.providerenv import ProviderEnv
from mailroom.reconcile.converge import Outcome, converge_mailbox
from mailroom.reconcile.live import LiveMailbox, read_mailbox

OUTPUT_KEYS = ("object_id", "exchange_id")


def _outputs(spec: MailboxSpec, live: LiveMailbox | None) -> dict[str, Any]:
    outs = spec.to_props()
    outs["object_id"] = live.object_id if live else ""
    outs["exchange_id"] = live.identity if live else ""
    return outs


def _tenant() -> TenantConfig:
    """The tenant of the run that started this provider."""
    raw = ProviderEnv.from_env().tenant
    if not raw:
        raise ConfigError("no tenant in the environment: run through `mailroom plan/apply`, which sets it per stack")
    return TenantConfig.from_json(raw)


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


async def converge(spec: MailboxSpec, known: MailboxSpec | None = None,
                   approved: Approval | None = None) -> tuple[LiveMailbox | None, Outcome]:
    """Converge one mailbox on the tenant of this run (see ``reconcile.converge.converge_mailbox``)."""
    async with Tenant(_tenant()) as t:
        return await converge_mailbox(t, spec, known, approved.check if approved else None)


class MailboxProvider(ResourceProvider):
    # Nothing secret is captured (credentials come from the environment at run time),
    # so the pickled provider need not be a secret blob in state.
    serialize_as_secret_always = False

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
        return DiffResult(changes=bool(changes(desired, before)))

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = MailboxSpec.from_props(props)
        live, outcome = asyncio.run(converge(spec, approved=approved()))
        _audit(outcome)
        _raise_if_failed(spec, outcome)
        return CreateResult(smtp_key(spec.address), _outputs(spec, live))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        known = MailboxSpec.from_props(props) if props.get("address") else MailboxSpec(address=id_)

        async def read() -> LiveMailbox | None:
            async with Tenant(_tenant()) as t:
                return await read_mailbox(t.exchange, t.graph, t.directory, known.address, known.people(),
                                          known.domains, known.automap_by_key())

        live = asyncio.run(read())
        if known.state == "absent":
            spec = MailboxSpec(**{**known.__dict__, "state": "present" if live else "absent"})
            return ReadResult(id_, _outputs(spec, live))
        if live is None:
            return ReadResult(None, {})  # gone: the engine treats it as deleted and the next up creates it
        spec = MailboxSpec(**{**live.spec.__dict__, "address": known.address, "domains": known.domains})
        return ReadResult(id_, _outputs(spec, live))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        spec = MailboxSpec.from_props(news)
        known = MailboxSpec.from_props(olds) if olds.get("address") else None
        live, outcome = asyncio.run(converge(spec, known, approved()))
        _audit(outcome)
        _raise_if_failed(spec, outcome)
        return UpdateResult(_outputs(spec, live))

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


class SharedMailbox(Resource, module="mailroom", name="SharedMailbox"):
    """One shared mailbox, authoritative for everything the file says about it."""

    object_id: pulumi.Output[str]
    exchange_id: pulumi.Output[str]

    def __init__(self, name: str, spec: MailboxSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {**spec.to_props(), **{k: None for k in OUTPUT_KEYS}}
        super().__init__(MailboxProvider(), name, props, opts)
