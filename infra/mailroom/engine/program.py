"""The Pulumi program: the validated model → one ``mailroom:index:SharedMailbox`` resource per mailbox.

It runs inline (``engine.Engine`` hands it to the Automation API), on the ``Desired`` that
``runner.prepare`` validated: the file is read and checked once per command, and what the engine
plans is exactly what was validated.

Each mailbox is registered with the engine's resource monitor directly, one ``RegisterResource``
request as the SDK would send it for a ``pulumi.CustomResource`` with no options but an alias,
not through ``pulumi.CustomResource``: the SDK spends about 8 ms of CPU a resource on machinery this
program has no use for (an ``Output`` per property, a stack trace and source position, asyncio tasks,
debug-log RPCs), and that made the program, not the tenant, the bound of a first apply of many
mailboxes (bench/reconcile.py, adoption of 1,000: 7.8 s of the SDK in a 26 s run). Nothing reads a
resource's outputs here, so nothing is lost. The stack resource and the stack output stay the SDK's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import settings
from pulumi.runtime.proto import alias_pb2, resource_pb2

from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.engine.tokens import DYNAMIC_RESOURCE_TYPE, RESOURCE_TYPE


def request(name: str, spec: MailboxSpec, parent: str,
            after: list[str] | None = None) -> resource_pb2.RegisterResourceRequest:
    """The registration of one mailbox: its inputs, the default provider, and the type the Python dynamic
    provider gave it as an alias (a stack it made keeps every resource: same name, new type)."""
    inputs = struct_pb2.Struct()
    inputs.update(spec.to_props())
    return resource_pb2.RegisterResourceRequest(
        type=RESOURCE_TYPE, name=name, parent=parent, custom=True, object=inputs,
        aliases=[alias_pb2.Alias(spec=alias_pb2.Alias.Spec(type=DYNAMIC_RESOURCE_TYPE))],
        acceptSecrets=True, acceptResources=True, supportsPartialValues=True, supportsResultReporting=True,
        dependencies=after or [],
    )


def declare(desired: Desired) -> Awaitable[list[str]]:
    """Register one resource per mailbox; the inline program awaits the result, the mailboxes' URNs.

    Names are the lower-case addresses: they are the URNs in existing state.
    """
    specs = [(smtp_key(mb.address), MailboxSpec.from_model(mb, desired.domains)) for mb in desired.mailboxes]
    pulumi.export("mailboxes", len(specs))
    return _register(specs)


async def _register(specs: list[tuple[str, MailboxSpec]]) -> list[str]:
    monitor = settings.get_monitor()
    if monitor is None:
        raise RuntimeError("no Pulumi engine: the program runs only inside `mailroom plan/apply`")
    root = settings.get_root_resource()
    parent = (await root.urn.future() or "") if root is not None else ""
    loop = asyncio.get_running_loop()
    # The engine answers a registration when its step is done (the mailbox created, adopted or updated), so
    # the calls run at once on the executor the Automation API sized to the engine's parallelism.
    # A mailbox that forwards to another mailbox of the file is registered once that one's step is done (and
    # depends on it): Exchange refuses ForwardingAddress to a recipient that does not exist yet, so forwarding
    # to a mailbox the same apply creates works in one apply. The others all start at once.
    waits = forward_waits(specs)
    started: dict[str, asyncio.Future[Any]] = {}

    async def register(name: str, spec: MailboxSpec) -> Any:
        target = waits.get(name)
        after = [str((await started[target]).urn)] if target else []
        return await loop.run_in_executor(None, monitor.RegisterResource, request(name, spec, parent, after))

    for name, spec in specs:
        started[name] = asyncio.ensure_future(register(name, spec))
    responses: list[Any] = await asyncio.gather(*started.values())
    return [str(r.urn) for r in responses]


def forward_waits(specs: list[tuple[str, MailboxSpec]]) -> dict[str, str]:
    """Mailbox name → the mailbox of the file it forwards to (ForwardingAddress), which it waits for; none in a
    cycle (each would wait for the other: they start at once, as before)."""
    present = {name for name, spec in specs if spec.state == "present"}
    target = {name: smtp_key(spec.forwarding_address) for name, spec in specs
              if spec.forwarding_address and smtp_key(spec.forwarding_address) in present
              and smtp_key(spec.forwarding_address) != name}
    out = {}
    for name in target:
        seen, at = {name}, target[name]
        while at in target and at not in seen:
            seen.add(at)
            at = target[at]
        if at not in seen:  # the chain ends outside a cycle
            out[name] = target[name]
    return out
