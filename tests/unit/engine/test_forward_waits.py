"""Which mailbox's registration waits for which (engine/program.py): one that forwards to a mailbox of the file
waits for it, so that Exchange finds the recipient; chains wait in turn, a cycle waits for nothing. Pure."""

from __future__ import annotations

from mailroom.core.spec import MailboxSpec
from mailroom.engine.program import forward_waits


def box(name: str, to: str = "", state: str = "present") -> tuple[str, MailboxSpec]:
    return name, MailboxSpec(address=name, forwarding_address=to, state=state)


def test_a_mailbox_waits_for_the_mailbox_of_the_file_it_forwards_to_and_a_cycle_for_none() -> None:
    specs = [box("a@x.com", "B@x.com"), box("b@x.com", "c@x.com"), box("c@x.com"),  # a chain: a → b → c
             box("d@x.com", "dave@x.com"),  # a person outside the file: nothing to wait for
             box("e@x.com", "f@x.com"), box("f@x.com", "e@x.com"),  # a cycle
             box("g@x.com", "h@x.com"), box("h@x.com", state="absent"),  # a mailbox being deleted
             box("i@x.com", "i@x.com")]
    assert forward_waits(specs) == {"a@x.com": "b@x.com", "b@x.com": "c@x.com"}
