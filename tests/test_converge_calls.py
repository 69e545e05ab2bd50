"""Turning Changes into the tenant's write calls (converge.plan_calls), and the thin loop that sends them
(converge.apply_changes) against a scripted client: one test per write kind, and the two write phases.
Pure: no tenant, no processes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from mailroom.core.compare import Change, changes
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.errors import ExchangeError
from mailroom.m365.exchange import CmdletResult
from mailroom.reconcile.converge import apply_changes, plan_calls
from mailroom.reconcile.live import LiveMailbox

MB = "support@contoso.com"
# The tenant names bob by his display name: a removal must use that name, an addition the file's.
LIVE = LiveMailbox(MailboxSpec(address=MB), "guid-1", "user-1", trustees={"bob@contoso.com": "Bob Jones"})
FA = {"AccessRights": ["FullAccess"], "InheritanceType": "All", "Confirm": False}


def test_mailbox_lists_and_settings_are_one_set_mailbox() -> None:
    todo = [Change(MB, "add", "alias", "hd@contoso.com"), Change(MB, "remove", "alias", "old@contoso.com"),
            Change(MB, "add", "send_on_behalf", "carol@contoso.com"),
            Change(MB, "remove", "send_on_behalf", "bob@contoso.com"),
            Change(MB, "set", "display_name", None, "Help", "Support"),
            Change(MB, "set", "hidden_from_gal", None, False, True),
            Change(MB, "set", "copy_send_as", None, True, False),
            Change(MB, "set", "copy_send_on_behalf", None, True, False),
            Change(MB, "set", "audit_enabled", None, False, True)]
    calls = plan_calls(LIVE, todo)
    assert calls.set_mailbox == {
        "EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["smtp:hd@contoso.com"],
                           "Remove": ["smtp:old@contoso.com"]},
        "GrantSendOnBehalfTo": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["carol@contoso.com"],
                                "Remove": ["Bob Jones"]},
        "DisplayName": "Support", "HiddenFromAddressListsEnabled": True, "MessageCopyForSentAsEnabled": False,
        "MessageCopyForSendOnBehalfEnabled": False, "AuditEnabled": True}
    assert list(calls.set_mailbox)[:2] == ["EmailAddresses", "GrantSendOnBehalfTo"]  # lists first, as before
    assert calls.set_changes == todo
    assert not calls.removes and not calls.adds and not calls.user


def test_permission_pairs_and_automapping_as_a_remove_and_an_add() -> None:
    add = Change(MB, "add", "member", "carol@contoso.com", None, False)
    remove = Change(MB, "remove", "member", "bob@contoso.com", True, None)
    flip = Change(MB, "set", "automap", "dave@contoso.com", True, False)
    sa_add = Change(MB, "add", "send_as", "carol@contoso.com")
    sa_remove = Change(MB, "remove", "send_as", "bob@contoso.com")
    calls = plan_calls(LIVE, [add, remove, flip, sa_add, sa_remove])
    assert calls.removes == [
        (remove, ("Remove-MailboxPermission", {"Identity": "guid-1", "User": "Bob Jones", **FA})),
        (flip, ("Remove-MailboxPermission", {"Identity": "guid-1", "User": "dave@contoso.com", **FA})),
        (sa_remove, ("Remove-RecipientPermission", {"Identity": "guid-1", "Trustee": "Bob Jones",
                                                    "AccessRights": ["SendAs"], "Confirm": False}))]
    assert calls.adds == [
        (add, ("Add-MailboxPermission", {"Identity": "guid-1", "User": "carol@contoso.com", **FA,
                                         "AutoMapping": False})),
        (flip, ("Add-MailboxPermission", {"Identity": "guid-1", "User": "dave@contoso.com", **FA,
                                          "AutoMapping": False})),
        (sa_add, ("Add-RecipientPermission", {"Identity": "guid-1", "Trustee": "carol@contoso.com",
                                              "AccessRights": ["SendAs"], "Confirm": False}))]
    assert not calls.set_mailbox and not calls.set_changes and not calls.user


def test_graph_user_property_inverted_and_lifecycle_left_to_the_caller() -> None:
    block = Change(MB, "set", "sign_in_blocked", None, False, True)
    calls = plan_calls(LIVE, [Change(MB, "create", "mailbox", None, None, "S"), block,
                              Change(MB, "delete", "mailbox")])
    assert calls.user == [(block, "accountEnabled", False)]
    assert not calls.set_mailbox and not calls.removes and not calls.adds


def test_every_change_of_a_full_diff_is_planned_exactly_once() -> None:
    before = MailboxSpec(address=MB, display_name="S", aliases=("old@contoso.com",),
                         members=(Grant("bob@contoso.com"), Grant("dave@contoso.com")), send_as=("bob@contoso.com",),
                         send_on_behalf=("bob@contoso.com",))
    after = MailboxSpec(address=MB, display_name="T", aliases=("hd@contoso.com",),
                        members=(Grant("carol@contoso.com"), Grant("dave@contoso.com", False)),
                        send_as=("carol@contoso.com",), send_on_behalf=("carol@contoso.com",), hidden_from_gal=True,
                        copy_send_as=False, copy_send_on_behalf=False, audit_enabled=False, sign_in_blocked=False)
    todo = changes(after, before)
    calls = plan_calls(LIVE, todo)
    planned = calls.set_changes + list(dict.fromkeys(c for c, _ in calls.removes + calls.adds)) + \
        [c for c, _, _ in calls.user]
    assert sorted(map(repr, planned)) == sorted(map(repr, todo))


class _Exchange:
    """Answers ``batch`` from a script: a call whose (cmdlet, person) is in ``fail`` fails."""

    def __init__(self, fail: set[tuple[str, str]]) -> None:
        self.fail = fail
        self.batches: list[list[tuple[str, dict[str, Any]]]] = []
        self.set_mailbox_calls: list[tuple[str, dict[str, Any]]] = []

    async def batch(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[CmdletResult | ExchangeError]:
        self.batches.append(list(calls))
        out: list[CmdletResult | ExchangeError] = []
        for cmdlet, params in calls:
            who = str(params.get("User") or params.get("Trustee"))
            failed = ExchangeError(cmdlet, who, 429, "TooManyRequests", "throttled")
            out.append(failed if (cmdlet, who) in self.fail else CmdletResult([]))
        return out

    async def set_mailbox(self, identity: str, params: dict[str, Any]) -> CmdletResult:
        self.set_mailbox_calls.append((identity, params))
        return CmdletResult([])


class _Graph:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    async def set_account_enabled(self, user_id: str, enabled: bool) -> None:
        self.calls.append((user_id, enabled))


def test_removals_go_first_and_an_add_whose_remove_failed_is_not_sent() -> None:
    flip = Change(MB, "set", "automap", "dave@contoso.com", True, False)
    flip_ok = Change(MB, "set", "automap", "erin@contoso.com", True, False)
    add = Change(MB, "add", "send_as", "carol@contoso.com")
    rename = Change(MB, "set", "display_name", None, "S", "T")
    block = Change(MB, "set", "sign_in_blocked", None, False, True)
    exchange, graph = _Exchange({("Remove-MailboxPermission", "dave@contoso.com")}), _Graph()
    desired = MailboxSpec(address=MB)
    outcome = asyncio.run(apply_changes(exchange, graph, LIVE, [flip, flip_ok, add, rename, block],  # type: ignore[arg-type]
                                        desired))
    assert exchange.set_mailbox_calls == [("guid-1", {"DisplayName": "T"})]
    assert [[c for c, _ in batch] for batch in exchange.batches] == [
        ["Remove-MailboxPermission", "Remove-MailboxPermission"],
        ["Add-MailboxPermission", "Add-RecipientPermission"]]  # dave's add is never sent
    assert exchange.batches[1][0][1]["User"] == "erin@contoso.com"
    assert graph.calls == [("user-1", False)]
    assert outcome.done == [rename, flip_ok, add, block]
    assert [(c, "throttled" in error) for c, error in outcome.failed] == [(flip, True)]
