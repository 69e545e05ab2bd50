"""Recording in the stack's state the shared mailboxes a plan adopts as they are, with no engine step.

A mailbox that already exists and already matches the file has nothing to converge: its resource's
``create`` would read nothing (the run's bulk read is its snapshot), write nothing, and return its spec
and ids as outputs. Run through the engine, each such mailbox still costs one registration and one
resource step, about 7 ms of a 2-core machine per mailbox, and nothing overlaps them with the tenant: the
first apply of an imported tenant of 5,000 mailboxes spent 40 s in the engine after a 52 s bulk read
(bench/reconcile.py). So apply records those resources in the stack's state the way the engine would
have after ``create``, through the engine's own state import (``pulumi stack import``), which checks the
deployment's integrity before it replaces the state: same URN, id, type, parent, provider, inputs and
outputs as a ``create`` writes (the entry below mirrors one the engine wrote, v3.276).

Only adoptions are recorded this way: a change, a release, a resync of a managed mailbox and a
``state: absent`` still go through the engine. The entries name the stack's default mailroom provider;
a stack that has none yet (its first apply) gets it from the engine, which adopts one mailbox first.
Like every state write, this must not race another update of the stack: ``apply`` runs it while it
holds the stack, after its own update (if any) has ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from mailroom.core.identity import smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.engine.tokens import PACKAGE, RESOURCE_TYPE
from mailroom.reconcile.live import LiveMailbox

PROVIDER_TYPE = f"pulumi:providers:{PACKAGE}"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Adoption:
    """One mailbox adopted as it is: the resource's URN, the file's spec, and the live mailbox it matches."""

    urn: str
    spec: MailboxSpec
    live: LiveMailbox


def outputs(spec: MailboxSpec, live: LiveMailbox | None) -> dict[str, Any]:
    """A mailbox resource's outputs: its spec as mailroom set it, and the tenant's ids for it."""
    outs = spec.to_props()
    outs["object_id"] = live.object_id if live else ""
    outs["exchange_id"] = live.identity if live else ""
    return outs


def provider_ref(deployment: Mapping[str, Any]) -> str | None:
    """The reference (``URN::id``) of the stack's default mailroom provider, or None if it has none."""
    for res in deployment.get("resources") or []:
        if res.get("type") == PROVIDER_TYPE and str(res.get("urn", "")).endswith("::default") \
                and not res.get("delete") and res.get("id"):
            return f"{res['urn']}::{res['id']}"
    return None


def _stack_urn(deployment: Mapping[str, Any]) -> str | None:
    for res in deployment.get("resources") or []:
        if res.get("type") == STACK_TYPE and not res.get("delete"):
            return str(res["urn"])
    return None


def with_adopted(deployment: Mapping[str, Any], adoptions: Iterable[Adoption]) -> dict[str, Any] | None:
    """``deployment`` with one mailbox resource per adoption, as ``create`` would have left it; None when
    the stack has no mailroom provider (or no stack resource) to hang them on yet.

    A mailbox the state already holds is left as it is (it is not an adoption, whatever the caller says).
    """
    provider, parent = provider_ref(deployment), _stack_urn(deployment)
    if provider is None or parent is None:
        return None
    out = dict(deployment)  # the caller's deployment is left as it was: only the resource list is new
    resources: list[dict[str, Any]] = list(out.get("resources") or [])
    held = {str(r.get("urn")) for r in resources if not r.get("delete")}
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    for a in adoptions:
        if a.urn in held:
            continue
        inputs = a.spec.to_props()
        resources.append({
            "urn": a.urn, "custom": True, "id": smtp_key(a.spec.address), "type": RESOURCE_TYPE,
            "inputs": inputs, "outputs": outputs(a.spec, a.live), "parent": parent, "provider": provider,
            "propertyDependencies": {k: [] for k in inputs}, "created": now, "modified": now,
        })
        held.add(a.urn)
    out["resources"] = resources
    return out
