"""Turning a list of Changes into the tenant's write calls, idempotently.

How each right is written is the rights table's (``mailroom.core.rights``): ``plan_calls`` turns Changes
into calls without I/O, and ``apply_changes`` sends them.

Every write is safe to repeat: Exchange answers a duplicate grant or the
removal of a missing one with a warning, Set-Mailbox sets absolute values,
and creation adopts a shared mailbox that already exists. So re-running after a
crash converges without duplicate grants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.core import rights
from mailroom.core.compare import Change, changes
from mailroom.core.identity import exchange_alias, proxy, smtp_key
from mailroom.core.rights import (
    SET_CAS,
    Call,
    FolderPermission,
    MailboxList,
    MailboxSetting,
    PermissionPair,
    RuleSwitch,
    UserProperty,
)
from mailroom.core.spec import MailboxSpec
from mailroom.errors import ExchangeError, ProxyAddressExists, TenantError
from mailroom.m365.exchange import CmdletResult, ExchangeClient, Params, hashtable
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.live import LiveMailbox, read_mailbox, recipient_kind, refusal

Approve = Callable[[str, Sequence[Change]], None]


class Unread:
    """Marks "not read yet" apart from None (read: no such mailbox)."""


UNREAD = Unread()


@dataclass
class Outcome:
    done: list[Change] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)


async def create_mailbox(exchange: ExchangeClient, spec: MailboxSpec) -> dict[str, Any]:
    """New-Mailbox -Shared, or adopt the *shared* mailbox that already has this address.

    Any other holder of the address (a person's mailbox, a room, a group) is refused: adopting it
    would rename it, block its owner's sign-in and hand its mail to the file's members.
    """
    alias = exchange_alias(spec.address)
    try:
        return await exchange.new_shared_mailbox(alias, spec.display_name or alias, spec.address)
    except ExchangeError as exc:
        exists = isinstance(exc, ProxyAddressExists) or "already exists" in exc.service_message.casefold() \
            or "AlreadyExists" in exc.error_type
        if not exists:
            raise
        existing = await exchange.get_mailbox(spec.address)
        if existing is None:
            raise TenantError(f"{spec.address}: the address belongs to a recipient that is not a mailbox "
                              "(a group, contact or mail user), or its name is taken; nothing was changed") from exc
        refused = refusal(spec.address, recipient_kind(existing), str(existing.get("DisplayName") or ""))
        if refused:
            raise TenantError(refused) from exc
        return existing


def _trustee(live: LiveMailbox | None, subject: str) -> str:
    return (live.trustees.get(smtp_key(subject)) if live else None) or subject


@dataclass
class Calls:
    """The writes that make a list of Changes, in the order they are sent; see ``plan_calls``."""

    set_mailbox: Params = field(default_factory=dict)  # one Set-Mailbox with every list and setting
    set_changes: list[Change] = field(default_factory=list)  # what that Set-Mailbox makes
    set_cas: Params = field(default_factory=dict)  # one Set-CASMailbox with every protocol
    cas_changes: list[Change] = field(default_factory=list)  # what that Set-CASMailbox makes
    removes: list[tuple[Change, Call]] = field(default_factory=list)  # grants, first phase
    adds: list[tuple[Change, Call]] = field(default_factory=list)  # grants, second phase
    user: list[tuple[Change, str, bool]] = field(default_factory=list)  # Graph user (property, value)
    unaddressed: list[Change] = field(default_factory=list)  # folder entries of a folder that was not found


def plan_calls(live: LiveMailbox, changes: Sequence[Change]) -> Calls:
    """Turn Changes on the existing mailbox ``live`` into the tenant's write calls, as the rights table says.

    Pure: ``apply_changes`` sends what this returns. A removal names the person as the tenant does
    (``live.trustees``); an addition as the file does.
    """
    calls = Calls()
    identity = live.identity
    lists: dict[str, tuple[list[str], list[str]]] = {}  # Set-Mailbox list parameter → (add, remove)
    for c in changes:
        row = rights.right(c.right)
        w = row.write
        subject = c.subject or ""
        if isinstance(w, MailboxList):
            add, remove = lists.setdefault(w.param, ([], []))
            if c.subject and w.proxies:
                (add if c.op == "add" else remove).append(proxy(subject, primary=False))
            elif c.subject:
                (add if c.op == "add" else remove).append(subject if c.op == "add" else _trustee(live, subject))
            calls.set_changes.append(c)
        elif isinstance(w, MailboxSetting) and w.cmdlet == SET_CAS:
            calls.set_cas[w.param] = w.wire(c.after)
            calls.cas_changes.append(c)
        elif isinstance(w, MailboxSetting):
            calls.set_mailbox[w.param] = w.wire(c.after)
            calls.set_changes.append(c)
        elif isinstance(w, PermissionPair):
            # A changed option (AutoMapping) cannot be set in place: the grant is removed and added again.
            if c.op in ("remove", "set"):
                calls.removes.append((c, w.call(False, identity, _trustee(live, subject))))
            if c.op in ("add", "set"):
                calls.adds.append((c, w.call(True, identity, subject, c.after)))
        elif isinstance(w, UserProperty):
            calls.user.append((c, w.prop, w.value(c.after)))
        elif isinstance(w, RuleSwitch) and c.op == "remove":  # disabled with the first phase, never deleted
            calls.removes.append((c, w.call(identity, subject)))
        elif isinstance(w, FolderPermission):
            # One call per entry: a changed role or flag is Set in place, so nobody else's access is touched.
            # People are named by the file's address (a display name can be ambiguous, CIPP #244).
            folder = live.folder_ids.get(c.folder or w.folder)  # a path folder's entry names its folder
            if folder is None:
                calls.unaddressed.append(c)
            else:
                call = w.call(c.op if c.op in ("add", "remove") else "set", folder, w.entry or subject, c.after)
                (calls.removes if c.op == "remove" else calls.adds).append((c, call))
        # Lifecycle: creation and deletion are the caller's (create_mailbox, remove_mailbox).
    lists_first = {param: hashtable(add, remove) for param, (add, remove) in lists.items() if add or remove}
    calls.set_mailbox = {**lists_first, **calls.set_mailbox}
    return calls


async def apply_changes(exchange: ExchangeClient, graph: Any, live: LiveMailbox, changes: Sequence[Change],
                        desired: MailboxSpec) -> Outcome:
    """Make ``changes`` on the existing mailbox ``live`` (creation and deletion are the caller's)."""
    outcome = Outcome()
    calls = plan_calls(live, changes)
    # Protocols first, before any grant (Send on Behalf rides in Set-Mailbox): a new mailbox gets its profile
    # before anyone can open it over POP, IMAP, EWS or SMTP AUTH (Exchange turns them all on at creation).
    # If they cannot be set, nothing else is sent: access is never given to a mailbox left wide open.
    if calls.set_cas:
        try:
            await exchange.invoke(SET_CAS, {"Identity": live.identity, **calls.set_cas})
            outcome.done.extend(calls.cas_changes)
        except TenantError as exc:
            outcome.failed.extend((c, str(exc)) for c in calls.cas_changes)
            held = "not sent: the mailbox's protocols could not be set first"
            outcome.failed.extend((c, held) for c in calls.set_changes)
            outcome.failed.extend((c, held) for c in dict.fromkeys(c for c, _ in calls.removes + calls.adds))
            outcome.failed.extend((c, held) for c, _, _ in calls.user)
            return outcome
    if calls.set_mailbox:
        try:
            await exchange.set_mailbox(live.identity, calls.set_mailbox)
            outcome.done.extend(calls.set_changes)
        except TenantError as exc:
            outcome.failed.extend((c, str(exc)) for c in calls.set_changes)

    outcome.failed.extend((c, f"{desired.address}: the folder of {rights.folder_label(rights.right(c.right), c.folder)}"
                              " was not found (Get-MailboxFolderStatistics lists no such folder)")
                          for c in calls.unaddressed)
    # Grants go in two phases, removals first: an AutoMapping change is a remove and an add of the same
    # grant, and in one $batch a throttled remove would be retried after the add and delete the grant.
    # An add whose remove failed is not sent (the grant stays as it was, and the change is reported failed).
    errors: dict[int, str] = {}
    for phase in (calls.removes, calls.adds):
        phase = [(c, call) for c, call in phase if id(c) not in errors]
        if not phase:
            continue
        results = await exchange.batch([call for _, call in phase])
        for (c, _), result in zip(phase, results, strict=True):
            if not isinstance(result, CmdletResult):
                errors.setdefault(id(c), str(result))
    for c in dict.fromkeys(c for c, _ in calls.removes + calls.adds):  # each change once, in order
        if id(c) in errors:
            outcome.failed.append((c, errors[id(c)]))
        else:
            outcome.done.append(c)

    for c, prop, value in calls.user:
        try:
            if not live.object_id:
                raise TenantError(f"{desired.address} has no Entra user to block sign-in on")
            if prop != "accountEnabled":  # the one user property the Graph client writes
                raise TenantError(f"{desired.address}: mailroom cannot write the user property {prop}")
            await graph.set_account_enabled(live.object_id, value)
            outcome.done.append(c)
        except TenantError as exc:
            outcome.failed.append((c, str(exc)))
    return outcome


async def converge_mailbox(t: Tenant, spec: MailboxSpec, known: MailboxSpec | None = None,
                           approve: Approve | None = None,
                           live: LiveMailbox | None | Unread = UNREAD) -> tuple[LiveMailbox | None, Outcome]:
    """Make the tenant match ``spec``; returns the mailbox as it now is and what was done.

    ``known``: the last outputs (what mailroom set), for what Exchange does not report (AutoMapping).
    ``approve``: the reviewed plan's check; a change it does not hold is refused before any write, so a
    grant added by hand after the plan was shown is never removed by the apply of that plan.
    ``live``: the mailbox as a bulk read of this run found it (None: absent), so it is not read again;
    by default it is read here.
    Every write is followed by a read-back: a change the tenant does not hold afterwards is failed.
    """
    automap = known.automap_by_key() if known else {}
    check: Approve = approve or (lambda _address, _todo: None)

    async def read(automap: dict[str, bool]) -> LiveMailbox | None:
        found = await read_mailbox(t.exchange, t.graph, t.directory, spec.address, spec.people(), spec.domains,
                                   automap, folders=spec.folders())
        refused = found.refusal() if found else None
        if refused:
            raise TenantError(refused)
        return found

    if isinstance(live, Unread):
        live = await read(automap)
    todo = changes(spec, live.spec if live else None)
    check(spec.address, todo)
    outcome = Outcome()
    if spec.state == "absent":
        if live is not None:
            await t.exchange.remove_mailbox(live.identity)
            outcome.done.extend(todo)
        return None, outcome
    if live is None:
        await create_mailbox(t.exchange, spec)
        outcome.done.extend(c for c in todo if c.op == "create")
        live = await read({})
        if live is None:
            raise TenantError(f"{spec.address}: created, but Get-Mailbox does not find it yet")
        todo = changes(spec, live.spec)
        check(spec.address, todo)
    for attempt in (1, 2):
        if not todo:
            break
        step = await apply_changes(t.exchange, t.graph, live, todo, spec)
        outcome.done.extend(step.done)
        outcome.failed.extend(step.failed)
        if step.failed:
            break
        # The read-back: what the tenant holds now, with the AutoMapping just set.
        after = await read(spec.automap_by_key())
        if after is None:
            raise TenantError(f"{spec.address}: changed, but Get-Mailbox no longer finds it")
        live, todo = after, changes(spec, after.spec)
        if not todo:
            break
        if attempt == 2:
            _unconfirmed(outcome, todo)
            break
        check(spec.address, todo)
    return live, outcome


def _unconfirmed(outcome: Outcome, missing: list[Change]) -> None:
    """Changes the read-back does not find in the tenant: failed, whatever the write calls answered."""
    def family(c: Change) -> tuple[str, str]:
        return ("member" if c.right == "automap" else c.right, smtp_key(c.subject or ""))

    gone = {family(c) for c in missing}
    outcome.done[:] = [c for c in outcome.done if family(c) not in gone]
    outcome.failed.extend((c, "the read-back after apply does not find this in the tenant") for c in missing)
