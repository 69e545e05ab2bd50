"""Turning a list of Changes into the tenant's write calls, idempotently.

Every write is safe to repeat: Exchange answers a duplicate grant or the
removal of a missing one with a warning, Set-Mailbox sets absolute values,
and creation adopts a mailbox that already exists. So re-running after a
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
from mailroom.live import LiveMailbox
from mailroom.spec import MailboxSpec

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
    """New-Mailbox -Shared, or adopt the mailbox that already has this address."""
    alias = spec.address.rpartition("@")[0]
    try:
        return await exchange.new_shared_mailbox(alias, spec.display_name or alias, spec.address)
    except ProxyAddressExists:
        existing = await exchange.get_mailbox(spec.address)
        if existing is None:
            raise
        return existing
    except ExchangeError as exc:
        if "already exists" in exc.service_message.casefold() or "AlreadyExists" in exc.error_type:
            existing = await exchange.get_mailbox(spec.address)
            if existing is not None:
                return existing
        raise


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

    calls: list[tuple[str, Params]] = []
    owners: list[list[Change]] = []
    for c in changes:
        subject = c.subject or ""
        if c.right == "member" and c.op == "add":
            calls.append(_full_access("Add-MailboxPermission", identity, subject, c.after))
        elif c.right == "member" and c.op == "remove":
            calls.append(_full_access("Remove-MailboxPermission", identity, _trustee(live, subject), None))
        elif c.right == "automap":
            # AutoMapping cannot be changed in place: the grant is removed and added again.
            calls.append(_full_access("Remove-MailboxPermission", identity, _trustee(live, subject), None))
            owners.append([c])
            calls.append(_full_access("Add-MailboxPermission", identity, subject, c.after))
        elif c.right == "send_as":
            cmdlet = "Add-RecipientPermission" if c.op == "add" else "Remove-RecipientPermission"
            trustee = subject if c.op == "add" else _trustee(live, subject)
            calls.append((cmdlet, {"Identity": identity, "Trustee": trustee, "AccessRights": ["SendAs"],
                                   "Confirm": False}))
        else:
            continue
        owners.append([c])
    if calls:
        results = await exchange.batch(calls)
        errors: dict[int, str] = {}
        for owned, result in zip(owners, results, strict=True):
            for c in owned:
                if not isinstance(result, CmdletResult):
                    errors.setdefault(id(c), str(result))
        for c in dict.fromkeys(c for owned in owners for c in owned):  # each change once, in order
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
