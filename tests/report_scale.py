"""A synthetic tenant at scale for the drift report (tests/test_report.py): the real model,
the real live-state types and drift's own findings, built in memory (no tenant: 5,000 mailboxes would take
minutes to seed and scan, and the page's size and print are what is measured here)."""

from __future__ import annotations

import random
from dataclasses import replace

from mailroom.core.model import DEFAULTS, POLICY, Desired, Mailbox, Member, Origin
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.drift.scan import DriftFinding, ScanResult, findings
from mailroom.m365.directory import Recipient
from mailroom.reconcile.live import LiveMailbox

DOMAINS = ("contoso.com",)


class Directory:
    """Every synthetic person resolves (drift's stale-access check asks), none is disabled."""

    def lookup(self, address: str) -> Recipient:
        key = address.strip().casefold()
        return Recipient(key, key, key.partition("@")[0], "UserMailbox", (key,))


def person(i: int) -> str:
    return f"person{i:05d}@contoso.com"


def synthetic(mailboxes: int = 5_000, people: int = 20_000, unmanaged: int = 200,
              seed: int = 15) -> tuple[list[DriftFinding], Desired, ScanResult]:
    """``mailboxes`` managed mailboxes, each granting 4 members, 1 Send As and 1 Send on Behalf out of
    ``people``; in the tenant 5% carry an extra Full Access, 3% lack a member, 1% forward elsewhere; and
    ``unmanaged`` shared mailboxes the file does not manage, with 3 grants each."""
    rnd = random.Random(seed)
    boxes = []
    result = ScanResult()
    for i in range(mailboxes):
        chosen = rnd.sample(range(people), 6)
        members = tuple(Member(person(p), True) for p in chosen[:4])
        mb = Mailbox(f"box{i:05d}@contoso.com", f"Department box {i}", owner=person(chosen[0]), members=members,
                     send_as=(person(chosen[4]),), send_on_behalf=(person(chosen[5]),),
                     origin=Origin(f"mailboxes.d/dept{i % 50:02d}.yaml", i // 50, 1 + 12 * (i // 50)))
        boxes.append(mb)
        spec = MailboxSpec.from_model(mb, DOMAINS)
        roll = rnd.random()
        if roll < 0.05:
            spec = replace(spec, members=spec.members + (Grant(person(rnd.randrange(people)), True),))
        elif roll < 0.08:
            spec = replace(spec, members=spec.members[1:])
        elif roll < 0.09:
            spec = replace(spec, forwarding_smtp=f"outside{i}@fabrikam.example")
        result.live[mb.key] = LiveMailbox(spec, f"guid-{i}", f"oid-{i}")
    for j in range(unmanaged):
        address = f"other{j:04d}@contoso.com"
        result.unmanaged.append({"PrimarySmtpAddress": address, "DisplayName": f"Other {j}"})
        chosen = rnd.sample(range(people), 3)
        spec = MailboxSpec(address=address, members=(Grant(person(chosen[0]), True), Grant(person(chosen[1]), True)),
                           send_as=(person(chosen[2]),), domains=DOMAINS)
        result.live[address] = LiveMailbox(spec, f"guid-o{j}", f"oid-o{j}")
    desired = Desired(DOMAINS, DEFAULTS, POLICY, tuple(boxes), ("mailboxes.yaml",))
    return findings(desired, result, Directory()), desired, result
