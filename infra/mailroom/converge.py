"""Turning a list of Changes into the tenant's write calls, idempotently.

Every write is safe to repeat: Exchange answers a duplicate grant or the
removal of a missing one with a warning, Set-Mailbox sets absolute values,
and creation adopts a shared mailbox that already exists. So re-running after a
crash converges without duplicate grants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.compare import Change
from mailroom.errors import ExchangeError, ProxyAddressExists, TenantError
from mailroom.exchange import CmdletResult, ExchangeClient, Params, hashtable
from mailroom.identity import proxy, smtp_key
from mailroom.live import SHARED, LiveMailbox
from mailroom.spec import MailboxSpec
from mailroom.textsafe import printable

_SET_PARAMS = {
    "display_name": "DisplayName",
    "hidden_from_gal": "HiddenFromAddressListsEnabled",
    "copy_send_as": "MessageCopyForSentAsEnabled",
    "copy_send_on_behalf": "MessageCopyForSendOnBehalfEnabled",
    "audit_enabled": "AuditEnabled",
}


@dataclass
class Outcome:
    done: list[Change] = field(default_factory=list)
    failed: list[tuple[Change, str]] = field(default_factory=list)


async def create_mailbox(exchange: ExchangeClient, spec: MailboxSpec) -> dict[str, Any]:
    """New-Mailbox -Shared, or adopt the *shared* mailbox that already has this address.

    Any other holder of the address (a person's mailbox, a room, a group) is refused: adopting it
    would rename it, block its owner's sign-in and hand its mail to the file's members.
    """
    alias = spec.address.rpartition("@")[0]
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
        kind = str(existing.get("RecipientTypeDetails") or "unknown recipient type")
        if kind != SHARED:
            raise TenantError(f"{spec.address} is a {printable(kind)}, not a shared mailbox; mailroom manages "
                              "shared mailboxes only and changes nothing on it") from exc
        return existing


def _trustee(live: LiveMailbox | None, subject: str) -> str:
    return (live.trustees.get(smtp_key(subject)) if live else None) or subject


async def apply_changes(exchange: ExchangeClient, graph: Any, live: LiveMailbox, changes: Sequence[Change],
                        desired: MailboxSpec) -> Outcome:
    """Make ``changes`` on the existing mailbox ``live`` (creation and deletion are the caller's)."""
    outcome = Outcome()
    identity = live.identity
    params: Params = {}
    set_changes: list[Change] = []
    add_aliases = [proxy(c.subject, primary=False) for c in changes
                   if c.right == "alias" and c.op == "add" and c.subject]
    remove_aliases = [proxy(c.subject, primary=False) for c in changes
                      if c.right == "alias" and c.op == "remove" and c.subject]
    if add_aliases or remove_aliases:
        params["EmailAddresses"] = hashtable(add_aliases, remove_aliases)
    add_sob = [c.subject for c in changes if c.right == "send_on_behalf" and c.op == "add" and c.subject]
    remove_sob = [_trustee(live, c.subject) for c in changes
                  if c.right == "send_on_behalf" and c.op == "remove" and c.subject]
    if add_sob or remove_sob:
        params["GrantSendOnBehalfTo"] = hashtable(add_sob, remove_sob)
    for c in changes:
        if c.right in _SET_PARAMS:
            params[_SET_PARAMS[c.right]] = c.after
        if c.right in _SET_PARAMS or c.right in ("alias", "send_on_behalf"):
            set_changes.append(c)
    if params:
        try:
            await exchange.set_mailbox(identity, params)
            outcome.done.extend(set_changes)
        except TenantError as exc:
            outcome.failed.extend((c, str(exc)) for c in set_changes)

    # Grants go in two phases, removals first: an AutoMapping change is a remove and an add of the same
    # grant, and in one $batch a throttled remove would be retried after the add and delete the grant.
    # An add whose remove failed is not sent (the grant stays as it was, and the change is reported failed).
    removes: list[tuple[Change, tuple[str, Params]]] = []
    adds: list[tuple[Change, tuple[str, Params]]] = []
    for c in changes:
        subject = c.subject or ""
        if c.right == "member" and c.op == "add":
            adds.append((c, _full_access("Add-MailboxPermission", identity, subject, c.after)))
        elif c.right == "member" and c.op == "remove":
            removes.append((c, _full_access("Remove-MailboxPermission", identity, _trustee(live, subject), None)))
        elif c.right == "automap":
            # AutoMapping cannot be changed in place: the grant is removed and added again.
            removes.append((c, _full_access("Remove-MailboxPermission", identity, _trustee(live, subject), None)))
            adds.append((c, _full_access("Add-MailboxPermission", identity, subject, c.after)))
        elif c.right == "send_as":
            cmdlet = "Add-RecipientPermission" if c.op == "add" else "Remove-RecipientPermission"
            trustee = subject if c.op == "add" else _trustee(live, subject)
            call = (cmdlet, {"Identity": identity, "Trustee": trustee, "AccessRights": ["SendAs"], "Confirm": False})
            (adds if c.op == "add" else removes).append((c, call))
    errors: dict[int, str] = {}
    for phase in (removes, adds):
        phase = [(c, call) for c, call in phase if id(c) not in errors]
        if not phase:
            continue
        results = await exchange.batch([call for _, call in phase])
        for (c, _), result in zip(phase, results, strict=True):
            if not isinstance(result, CmdletResult):
                errors.setdefault(id(c), str(result))
    for c in dict.fromkeys(c for c, _ in removes + adds):  # each change once, in order
        if id(c) in errors:
            outcome.failed.append((c, errors[id(c)]))
        else:
            outcome.done.append(c)

    for c in changes:
        if c.right == "sign_in_blocked":
            try:
                if not live.object_id:
                    raise TenantError(f"{desired.address} has no Entra user to block sign-in on")
                await graph.set_account_enabled(live.object_id, not bool(c.after))
                outcome.done.append(c)
            except TenantError as exc:
                outcome.failed.append((c, str(exc)))
    return outcome


def _full_access(cmdlet: str, identity: str, user: str, automap: Any) -> tuple[str, Params]:
    params: Params = {"Identity": identity, "User": user, "AccessRights": ["FullAccess"],
                      "InheritanceType": "All", "Confirm": False}
    if automap is not None:
        params["AutoMapping"] = bool(automap)
    return cmdlet, params
