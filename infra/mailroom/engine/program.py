"""The Pulumi program: the validated model → one SharedMailbox resource per mailbox.

It runs inline (``engine.Engine`` hands it to the Automation API), on the ``Desired`` that
``runner.prepare`` validated: the file is read and checked once per command, and what the engine
plans is exactly what was validated.
"""

from __future__ import annotations

import pulumi

from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.engine.provider import SharedMailbox


def declare(desired: Desired) -> list[SharedMailbox]:
    """Register the resources. Names are the lower-case addresses: they are the URNs in existing state."""
    resources = [SharedMailbox(smtp_key(mb.address), MailboxSpec.from_model(mb, desired.domains))
                 for mb in desired.mailboxes]
    pulumi.export("mailboxes", len(resources))
    return resources
