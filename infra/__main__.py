"""mailroom's Pulumi program (Pulumi.yaml `main: infra/`): one resource per shared mailbox."""

from mailroom.program import declare

declare()
