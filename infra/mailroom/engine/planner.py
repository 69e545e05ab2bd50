"""Making the plan, saving it, and checking a saved one before it is applied.

A plan compares the validated file with what the tenant holds, per mailbox, through
``mailroom.core.compare`` (the comparison the engine's provider diffs with), and starts from one
bulk read of live state (``mailroom.reconcile.bulk``):

- which mailboxes the engine manages comes from the stack's state (no tenant request);
- without ``refresh``, a managed mailbox is taken to be as the engine last left it, and only the
  mailboxes the engine does not manage yet are read (to adopt, create or refuse them): an unchanged
  file makes no tenant request at all;
- with ``refresh`` (what ``apply`` does), every mailbox of the file is read in one bulk scan.

The plan records, per mailbox it changes, the live state it assumed. ``apply`` hands the engine
exactly the mailboxes the plan changes (its targets) and the live state it read (the provider's
snapshot), so nothing is read twice; a saved plan is refused when the file, the stack or the live state
of any mailbox it changes is no longer what it assumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mailroom.core import rights
from mailroom.core.compare import Change, changes
from mailroom.core.identity import is_internal, smtp_key
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.engine.plan import MailboxPlan, Plan
from mailroom.engine.record import Adoption
from mailroom.engine.tokens import DYNAMIC_RESOURCE_TYPE, RESOURCE_TYPE
from mailroom.engine.workspace import PROJECT_NAME as PROJECT
from mailroom.errors import TenantError
from mailroom.m365.tenant import Tenant
from mailroom.reconcile import bulk
from mailroom.reconcile.live import LiveMailbox, missing_folders, refusal

# A stack made before mailroom had a provider of its own holds its mailboxes under the dynamic
# provider's type; both are mailboxes (the resource's alias migrates them on the next apply).
MAILBOX_TYPES = frozenset({RESOURCE_TYPE, DYNAMIC_RESOURCE_TYPE})

SAVED_KIND = "mailroom-plan"
SAVED_VERSION = 1


class StalePlan(TenantError):
    """A saved plan no longer holds: its file, stack or the live state it assumed changed."""


@dataclass
class Managed:
    """A mailbox the engine manages: its URN and its last outputs (what mailroom last set)."""

    urn: str
    spec: MailboxSpec
    dynamic: bool = False  # recorded by the Python dynamic provider mailroom used before its own plugin


def managed(deployment: dict[str, Any]) -> dict[str, Managed]:
    """The mailboxes in a stack's exported state, by address key."""
    out: dict[str, Managed] = {}
    for res in deployment.get("resources") or []:
        if res.get("type") not in MAILBOX_TYPES or res.get("delete"):
            continue
        props = dict(res.get("outputs") or res.get("inputs") or {})
        if props.get("address"):
            out[smtp_key(str(props["address"]))] = Managed(str(res["urn"]), MailboxSpec.from_props(props),
                                                           res.get("type") == DYNAMIC_RESOURCE_TYPE)
    return out


def urn(stack: str, address: str) -> str:
    """The URN the program gives a mailbox (its name is the lower-case address, see program.declare)."""
    return f"urn:pulumi:{stack}::{PROJECT}::{RESOURCE_TYPE}::{smtp_key(address)}"


def digest(desired: Desired) -> str:
    """What a saved plan was made from: every mailbox as the engine sees it, and the policy."""
    doc = {"mailboxes": sorted((MailboxSpec.from_model(mb, desired.domains).to_props() for mb in desired.mailboxes),
                               key=lambda p: smtp_key(str(p["address"]))),
           "policy": asdict(desired.policy)}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Planned:
    """A plan with what it rests on: the live state it read, the engine's URNs, and the mailboxes whose
    state must be brought up to date although nothing in the tenant changes."""

    plan: Plan
    stack: str
    digest: str
    refreshed: bool
    live: dict[str, LiveMailbox | None] = field(default_factory=dict)  # read this run: key → live (None: absent)
    assumed: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # key → spec props the plan assumed
    urns: dict[str, str] = field(default_factory=dict)  # key → URN of every mailbox in the plan
    resync: list[str] = field(default_factory=list)  # keys: state differs from the tenant, the file matches it

    def _target_keys(self) -> set[str]:
        """Every mailbox that changes, is released, or whose state is out of date."""
        keys = {smtp_key(m.address) for m in self.plan.mailboxes if m.changes or m.op == "release"}
        return (keys | set(self.resync)) & set(self.urns)

    def targets(self, recorded: Collection[str] = ()) -> list[str]:
        """The engine's targets (URNs): the mailboxes of ``_target_keys`` but the ``recorded`` ones (keys
        of adoptions written to state without an engine step, ``engine/record.py``)."""
        return sorted(self.urns[k] for k in self._target_keys() - set(recorded))

    def declared(self, recorded: Collection[str] = ()) -> set[str]:
        """The mailboxes the program declares for the targeted update: those it changes or brings up to
        date (a release is the deletion of a resource the program no longer declares), but ``recorded``."""
        return ({smtp_key(m.address) for m in self.plan.mailboxes if m.changes} | set(self.resync)) - set(recorded)

    def adoptions(self, desired: Desired) -> list[Adoption]:
        """The existing shared mailboxes this plan adopts as they are, with the live state it read for them."""
        models = {mb.key: mb for mb in desired.mailboxes}
        out = []
        for address in self.plan.adopted:  # a spec only for these, not for every mailbox of the file again
            key = smtp_key(address)
            live = self.live.get(key)
            if live is not None and key in models and key in self.urns:
                out.append(Adoption(self.urns[key], MailboxSpec.from_model(models[key], desired.domains), live))
        return out

    def snapshot(self) -> dict[str, Any]:
        """The live state the provider converges against, for the mailboxes the engine will touch."""
        keys = {smtp_key(m.address) for m in self.plan.mailboxes if m.changes} | set(self.resync)
        return {k: (v.to_dict() if v is not None else None) for k, v in self.live.items() if k in keys}

    # -- saved plans ---------------------------------------------------------------------------------
    def save(self, path: Path, file: Path) -> None:
        doc = {"kind": SAVED_KIND, "format_version": SAVED_VERSION, "stack": self.stack, "file": str(file),
               "digest": self.digest, "refreshed": self.refreshed,
               "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "summary": self.plan.summary(),
               "mailboxes": [{"address": m.address, "op": m.op, "changes": [c.to_dict() for c in m.changes],
                              **({"refused": m.refused} if m.refused else {}),
                              "assumed": self.assumed.get(smtp_key(m.address))}
                             for m in self.plan.mailboxes if m.shown],
               "resync": [{"address": k, "assumed": self.assumed.get(k)} for k in self.resync],
               "urns": {k: self.urns[k] for k in sorted(self._target_keys())}}
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> tuple[Planned, str]:
        """A saved plan and the file it was made from; ValueError when it is not one."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: not a saved mailroom plan ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("kind") != SAVED_KIND:
            raise ValueError(f"{path}: not a saved mailroom plan (made by `mailroom plan --out FILE`)")
        if doc.get("format_version") != SAVED_VERSION:
            raise ValueError(f"{path}: a plan of format {doc.get('format_version')}; this mailroom reads "
                             f"{SAVED_VERSION}. Plan again.")
        plan = Plan([MailboxPlan(m["address"], m["op"], [Change.from_dict(c) for c in m["changes"]],
                                 m.get("refused", "")) for m in doc["mailboxes"]])
        # A mailbox only brought up to date in state has no change to show, but the reviewed plan holds it
        # (as make_plan's plan does), or the provider would refuse it as a mailbox the plan never saw.
        shown = {smtp_key(m.address) for m in plan.mailboxes}
        plan.mailboxes += [MailboxPlan(str(r["address"]), "same") for r in doc.get("resync") or []
                           if smtp_key(str(r["address"])) not in shown]
        assumed = {smtp_key(m["address"]): m.get("assumed") for m in doc["mailboxes"]}
        assumed.update({smtp_key(r["address"]): r.get("assumed") for r in doc.get("resync") or []})
        planned = cls(plan, str(doc["stack"]), str(doc["digest"]), bool(doc.get("refreshed")), {}, assumed,
                      {str(k): str(v) for k, v in dict(doc.get("urns") or {}).items()},
                      [smtp_key(r["address"]) for r in doc.get("resync") or []])
        return planned, str(doc["file"])


async def make_plan(tenant: Tenant, desired: Desired, deployment: Awaitable[dict[str, Any]], stack: str, *,
                    refresh: bool, progress: bulk.Progress | None = None, rules: bool = False) -> Planned:
    """The plan of ``desired`` on ``stack`` (``deployment``: its exported state, on its way).

    With ``refresh`` the tenant is read while the engine still exports the stack (a process of its own):
    every mailbox of the file is read whatever the state holds, and only what mailroom last set for
    AutoMapping, which Exchange does not report, waits for the state. ``rules``: read the inbox rules too,
    so that the plan disables those that forward (drift --remediate; a plan with a read-only identity cannot
    read them: Get-InboxRule is not in the View-Only roles).
    """
    state = asyncio.ensure_future(_managed(deployment))
    by_key = desired.by_key()
    specs = {k: MailboxSpec.from_model(mb, desired.domains) for k, mb in by_key.items()}
    need = set(specs) if refresh else set(specs) - set(await state)
    try:
        read = await bulk.read(tenant, desired, need, progress, asyncio.ensure_future(_automap(state)), rules) \
            if need else bulk.ScanResult()
        known = await state
    finally:
        if not state.done():  # the read failed: the export still finishes (an engine run is not cut short)
            await asyncio.wait([state])
    if read.errors:
        first = "; ".join(f"{a}: {e}" for a, e in sorted(read.errors.items())[:3])
        raise TenantError(f"{len(read.errors)} mailbox(es) could not be read, so no plan was made: {first}")
    planned = Planned(Plan(), stack, digest(desired), refresh)
    for key, spec in sorted(specs.items()):
        # The URN the program registers (a stack from the dynamic provider moves to it through the alias).
        planned.urns[key] = urn(stack, spec.address)
        if key in read.holders:  # a person's mailbox, a room, a group: never taken over
            kind, name = read.holders[key]
            why = refusal(spec.address, kind, name) if kind.endswith("Mailbox") else (
                f"{spec.address} belongs to a {kind} that is not a mailbox; mailroom changes nothing on it")
            planned.plan.mailboxes.append(MailboxPlan(spec.address, "update" if key in known else "create", [],
                                                      why or ""))
            continue
        if key in need:
            live = read.live.get(key)
            planned.live[key] = live
            before = live.spec if live else None
        else:
            before = known[key].spec
        planned.assumed[key] = before.to_props() if before else None
        todo = changes(spec, before)
        # A folder named by path must exist (mailroom cannot create it): checked on what was just read.
        refused = (missing_folders(by_key[key], planned.live.get(key)) if key in need else "") or \
            await _forwarding_refusal(tenant, spec, todo, {k for k, s in specs.items() if s.state == "present"})
        if refused:
            planned.plan.mailboxes.append(MailboxPlan(spec.address, "update" if key in known else "create", [],
                                                      refused))
            continue
        if key in known:
            op = "update" if todo else "same"
            # Brought up to date with no tenant write: a state the tenant moved away from, and a record
            # the dynamic provider made (it moves to mailroom's own resource type through the alias).
            if not todo and (known[key].dynamic or (key in need and state_differs(known[key].spec, before))):
                planned.resync.append(key)
        elif before is not None and spec.state == "present":
            op = "adopt"
            if todo:
                todo = [Change(spec.address, "adopt", "mailbox", None, before.display_name), *todo]
            else:  # the mailbox is as the file says: brought under management with no tenant write
                planned.resync.append(key)
        else:
            op = "create" if todo else "same"
            if not todo:  # `state: absent` and already gone: recorded, so later plans need not read it again
                planned.resync.append(key)
        planned.plan.mailboxes.append(MailboxPlan(spec.address, op, todo))
    for key, gone in sorted(known.items()):
        if key not in specs:
            planned.urns[key] = gone.urn
            planned.plan.mailboxes.append(MailboxPlan(gone.spec.address, "release"))
    planned.plan.mailboxes.sort(key=lambda m: m.address.casefold())
    return planned


async def _forwarding_refusal(tenant: Tenant, spec: MailboxSpec, todo: list[Change], ours: set[str]) -> str:
    """Why the forwarding this plan sets cannot be applied, or "": an address in an accepted domain must be a
    recipient of the organisation that keeps mail inside it (a mail contact or mail user does not). A shared
    mailbox of the file (``ours``) is one, made first if this apply creates it (engine/program.py)."""
    for c in todo:
        row = rights.right(c.right)
        if not (c.op == "set" and row.person and row.exfiltration and c.after):
            continue
        target = str(c.after)
        if smtp_key(target) in ours:
            continue
        if tenant.directory.lookup(target) is None:
            await tenant.directory.resolve([target])
        found = tenant.directory.lookup(target)
        if not is_internal(target, found.kind if found else None, spec.domains):
            what = f"a {found.kind}, whose mail leaves the organisation" if found else \
                "not a recipient of the organisation"
            return (f"{spec.address}: forwarding to {target} is refused: it is {what}. Forward to a mailbox or "
                    "group of the organisation, or to an address in policy.allowed_forward_domains "
                    "(CIS 6.2.1, SCuBA MS.EXO.1.1)")
    return ""


async def _managed(deployment: Awaitable[dict[str, Any]]) -> dict[str, Managed]:
    return managed(await deployment)


async def _automap(state: Awaitable[dict[str, Managed]]) -> bulk.Automap:
    """What mailroom last set for AutoMapping, per mailbox and member (from the stack's state)."""
    return {k: m.spec.automap_by_key() for k, m in (await state).items()}


def state_differs(state: MailboxSpec, live: MailboxSpec | None) -> bool:
    """The engine's record of a mailbox is not what the tenant holds (it changed outside mailroom)."""
    if live is None:
        return state.state == "present"
    return bool(changes(state, live))


async def check_saved(tenant: Tenant, desired: Desired, saved: Planned, stack: str,
                      progress: bulk.Progress | None = None) -> Planned:
    """Refuse (StalePlan) a saved plan whose file, stack or assumed live state moved; else the plan with
    the live state just read, for the engine."""
    if saved.stack != stack:
        raise StalePlan(f"the plan was made for stack {saved.stack!r}, not {stack!r}")
    if saved.digest != digest(desired):
        raise StalePlan("the file changed since the plan was made (its mailboxes or policy differ)")
    keys = [k for k, _ in _affected(saved)]
    # AutoMapping, which Exchange does not report, as the plan assumed it.
    automap = {k: MailboxSpec.from_props(a).automap_by_key() for k, a in saved.assumed.items() if a}
    read = await bulk.read(tenant, desired, keys, progress, automap) if keys else bulk.ScanResult()
    moved: list[str] = []
    for key, address in _affected(saved):
        if address in read.errors or key in read.errors:
            raise TenantError(f"{address}: could not be read: {read.errors.get(address) or read.errors.get(key)}")
        live = read.live.get(key)
        saved.live[key] = live
        assumed = saved.assumed.get(key)
        now = live.spec if live else None
        if key in read.holders or (assumed is None) != (now is None) or (
                assumed is not None and now is not None and changes(MailboxSpec.from_props(assumed), now)):
            moved.append(address)
    if moved:
        listed = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
        raise StalePlan(f"the tenant changed since the plan was made, on {listed}")
    return saved


def save_snapshot(path: Path, snapshot: dict[str, Any]) -> None:
    """The live state the engine's provider converges against (owner-only: it names people)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(snapshot))


def load_snapshot(path: str) -> dict[str, LiveMailbox | None]:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return {str(k): (LiveMailbox.from_dict(v) if v is not None else None) for k, v in doc.items()}


def _affected(saved: Planned) -> Iterable[tuple[str, str]]:
    """The mailboxes whose live state a saved plan assumed: those it changes and those it resyncs."""
    for m in saved.plan.mailboxes:
        if m.changes:
            yield smtp_key(m.address), m.address
    for key in saved.resync:
        yield key, key
