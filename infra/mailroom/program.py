"""The Pulumi program: the validated file → one SharedMailbox resource per mailbox."""

from __future__ import annotations

import os
from pathlib import Path

import pulumi

from mailroom.commands.validate import render_text
from mailroom.identity import smtp_key
from mailroom.load import load_desired
from mailroom.provider import SharedMailbox
from mailroom.spec import MailboxSpec

PROJECT_DIR = Path(__file__).resolve().parents[2]


def mailboxes_file() -> str:
    return os.environ.get("MAILROOM_FILE") or str(PROJECT_DIR / "mailboxes.yaml")


def declare(path: str | None = None) -> list[SharedMailbox]:
    """Register the resources; an invalid file fails the program before anything is registered."""
    result = load_desired(path or mailboxes_file())
    if result.desired is None or result.errors:
        raise pulumi.RunError("mailboxes file is invalid; nothing was planned:\n" + render_text(result.findings))
    desired = result.desired
    resources = []
    for mb in desired.mailboxes:
        spec = MailboxSpec.from_model(mb, desired.domains)
        resources.append(SharedMailbox(smtp_key(mb.address), spec))
    pulumi.export("mailboxes", len(resources))
    return resources
