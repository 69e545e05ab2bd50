"""Drift: the live tenant against the file, for every managed mailbox, from one bulk scan.

The scan is ``mailroom.reconcile.bulk`` (plan and apply start from the same one). A mailbox that could
not be read is an error finding, never "clean". Findings come from ``mailroom.core.compare`` (the same
comparison apply uses) plus what only a scan sees: unmanaged shared mailboxes and stale access.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mailroom.core import rights
from mailroom.core.compare import Change, changes, show
from mailroom.core.identity import is_internal, smtp_key
from mailroom.core.model import Desired, State
from mailroom.core.spec import MailboxSpec
from mailroom.core.textsafe import printable
from mailroom.reconcile.bulk import ScanResult, scan
from mailroom.reconcile.live import LiveMailbox

__all__ = ["KINDS", "DriftFinding", "ScanResult", "findings", "scan", "track"]

# kind → what it means to a reader
KINDS = {
    "missing_grant": "in the file, not in the tenant",
    "extra_grant": "in the tenant, not in the file (unmanaged access)",
    "changed_setting": "setting differs from the file",
    "mailbox_missing": "managed mailbox no longer exists",
    "mailbox_not_deleted": "file says absent, mailbox still exists",
    "unmanaged_mailbox": "shared mailbox the file does not manage",
    "stale_access": "access held by a disabled or deleted account",
    "forwarding": "mail is forwarded, not as the file says (high severity)",
    "forwarding_rule": "an enabled inbox rule forwards or redirects mail (high severity)",
    "folder_access_above_policy": "a calendar's Default or Anonymous entry gives more than the policy allows "
                                  "(high severity)",
    "scan_error": "could not be read: not checked",
}


@dataclass
class DriftFinding:
    kind: str
    mailbox: str
    right: str | None = None
    subject: str | None = None
    expected: Any = None
    actual: Any = None
    detail: str = ""
    first_seen: str = ""
    last_seen: str = ""
    changed_by: str | None = None
    changed_at: str | None = None
    control: str | None = None  # the CIS / CISA SCuBA baseline control it relates to (the rights table's)
    severity: str = ""  # "high": a way for mail to leave the mailbox

    @property
    def key(self) -> str:
        # A path folder's entry: its rows are every path folder's, its folder (in ``detail``) tells them apart.
        right = f"{self.right}@{self.detail.casefold()}" if self.right in _PATH_KEYS and self.detail else self.right
        return "|".join([self.kind, smtp_key(self.mailbox), right or "", smtp_key(self.subject or "")])

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.describe()}

    def describe(self) -> str:
        """What differs, in words: the one wording text, Markdown and HTML reports share."""
        said = self._describe()
        said = f"{said} [{self.control}]".lstrip() if self.control else said
        return f"{self.severity.upper()}: {said}" if self.severity else said

    def _describe(self) -> str:
        if self.kind == "forwarding":
            wanted = f"to {self.expected}" if self.expected else "no forwarding"
            return f"{rights.label(self.right)} {self.actual} ({self.detail}); the file says {wanted}"
        if self.kind == "forwarding_rule":
            return f"enabled inbox rule {self.subject}"
        if self.kind == "folder_access_above_policy":
            return (f"{rights.label(self.right)}: {rights.show_access(str(self.actual))} in the tenant; "
                    f"policy.max_default_calendar_access allows at most {self.expected}")
        if self.kind == "changed_setting" and self.right in _FOLDER_KEYS:
            label = rights.folder_label(rights.right(self.right), self.detail or None)
            return f"{label}: file {rights.show_access(str(self.expected))}, tenant " \
                   f"{rights.show_access(str(self.actual))}"
        if self.kind != "changed_setting":
            return self.detail
        if self.subject is not None:  # an alias or an AutoMapping of one person
            if self.right == "alias":
                missing = self.expected is True
                return "in the file, missing in the tenant" if missing else "in the tenant, not in the file"
            return f"file: {show(self.expected)}, tenant: {show(self.actual)}"
        return f"{rights.label(self.right)}: file {show(self.expected)}, tenant {show(self.actual)}"

    def line(self) -> str:
        """The finding on one terminal line."""
        what = {"missing_grant": "missing", "extra_grant": "extra", "changed_setting": "changed"}.get(self.kind,
                                                                                                       self.kind)
        parts = [f"{self.mailbox}  {what}"]
        if self.right:
            parts.append(self.right)
        if self.subject:
            parts.append(self.subject)
        if self.describe():
            parts.append(f"({self.describe()})")
        if self.changed_by:
            parts.append(f"— by {self.changed_by} at {self.changed_at}")
        return printable("  ".join(parts))  # for a terminal: tenant values hold no escapes or newlines


_FOLDER_KEYS = {r.key for r in rights.FOLDER_RIGHTS}
_PATH_KEYS = {r.key for r in rights.FOLDER_RIGHTS if getattr(r.write, "folder", "") == rights.PATH_FOLDER}


def _above_policy(mailbox: str, live: LiveMailbox, limit: str | None) -> list[DriftFinding]:
    """A calendar's Default or Anonymous entry in the tenant that gives more than the policy allows (ScubaGear
    proposal #1420: such entries expose a calendar to everyone, or to anyone with the link)."""
    if limit is None:
        return []
    return [DriftFinding("folder_access_above_policy", mailbox, g.right, None, limit, g.access, severity="high")
            for g in live.spec.folder_grants
            if g.special and g.folder == "calendar" and rights.role_rank(g.role) > rights.role_rank(limit)]


def findings(desired: Desired, result: ScanResult, directory: Any) -> list[DriftFinding]:
    out: list[DriftFinding] = []
    for mb in desired.mailboxes:
        spec = MailboxSpec.from_model(mb, desired.domains)
        if mb.address in result.errors:
            out.append(DriftFinding("scan_error", mb.address, detail=result.errors[mb.address]))
            continue
        live = result.live.get(mb.key)
        if mb.state is State.ABSENT:
            if live is not None:
                out.append(DriftFinding("mailbox_not_deleted", mb.address, "mailbox"))
            continue
        if live is None:
            out.append(DriftFinding("mailbox_missing", mb.address, "mailbox"))
            continue
        out += [_from_change(c, directory, desired.domains) for c in changes(spec, live.spec)]
        out += _above_policy(mb.address, live, desired.policy.max_default_calendar_access)
        out += _stale(mb.address, live, result.disabled, directory)
    for row in result.unmanaged:
        out.append(DriftFinding("unmanaged_mailbox", str(row.get("PrimarySmtpAddress")), "mailbox",
                                detail=str(row.get("DisplayName") or "")))
    return out


def _from_change(c: Change, directory: Any, domains: Sequence[str]) -> DriftFinding:
    row = rights.right(c.right)
    found = _finding(c)
    found.control = row.control
    if c.folder:  # a path folder's entry names its folder (the one detail a grant finding shows)
        found.detail = c.folder
    if row.exfiltration and row.shape is rights.Shape.RULES:
        found.kind, found.severity, found.detail = "forwarding_rule", "high", "enabled inbox rule"
    elif row.exfiltration and c.before:  # forwarding the file does not declare (or to elsewhere)
        target = str(c.before)
        recipient = directory.lookup(target) if directory is not None else None
        where = "internal" if is_internal(target, recipient.kind if recipient else None, domains) else "external"
        found.kind, found.severity, found.detail = "forwarding", "high", where
    return found


def _finding(c: Change) -> DriftFinding:
    if c.op == "add":
        return DriftFinding("missing_grant" if c.right != "alias" else "changed_setting", c.mailbox, c.right,
                            c.subject, expected=True if c.after is None else c.after, actual=None)
    if c.op == "remove":
        return DriftFinding("extra_grant" if c.right != "alias" else "changed_setting", c.mailbox, c.right,
                            c.subject, expected=None, actual=True if c.before is None else c.before)
    return DriftFinding("changed_setting", c.mailbox, c.right, c.subject, expected=c.after, actual=c.before)


def _stale(mailbox: str, live: LiveMailbox, disabled: set[str], directory: Any) -> list[DriftFinding]:
    out = []
    grants = live.spec.grants()
    unresolved = {smtp_key(u) for u in live.unresolved}
    for right, address in grants:
        recipient = directory.lookup(address)
        if recipient is None or smtp_key(address) in unresolved:
            out.append(DriftFinding("stale_access", mailbox, right, address, detail="account deleted"))
        elif recipient.id in disabled:
            out.append(DriftFinding("stale_access", mailbox, right, address, detail="account disabled"))
    for right, sid in live.orphans:  # never managed (no address to write), so only seen here
        out.append(DriftFinding("stale_access", mailbox, right, sid,
                                detail="account deleted: the grant remains as its orphaned SID"))
    return out


# -- first seen / last seen, kept between runs ------------------------------------------------------

def state_path(state_dir: Path, stack: str) -> Path:
    return state_dir / f"drift-{stack}.json"


def track(found: Sequence[DriftFinding], path: Path, now: str | None = None) -> tuple[list[DriftFinding],
                                                                                      list[dict[str, Any]]]:
    """Stamp first/last seen from the previous run; returns (findings, resolved since last run)."""
    try:
        previous: dict[str, dict[str, Any]] = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        previous = {}
    current, resolved = stamp(found, previous, now)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return list(found), resolved


def track_shared(found: Sequence[DriftFinding], document: Any, now: str | None = None) -> tuple[
        list[DriftFinding], list[dict[str, Any]]]:
    """``track`` on a shared store's document (``store.azblob.JsonDocument``): read, stamp, written back
    only if nobody wrote it meanwhile (ETag), else stamped again from what they wrote."""
    resolved: list[dict[str, Any]] = []

    def change(previous: dict[str, Any] | None) -> dict[str, Any]:
        current, gone = stamp(found, previous or {}, now)
        resolved[:] = gone
        return current

    document.update(change)
    return list(found), resolved


def stamp(found: Sequence[DriftFinding], previous: dict[str, dict[str, Any]], now: str | None = None) -> tuple[
        dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """First/last seen of ``found`` from ``previous``; (what to keep, what was resolved, with ``resolved_at``)."""
    # Milliseconds: two runs within one second (CI jobs back to back) are still told apart, and a finding is
    # new exactly when its first sighting is this run's.
    now = now or datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    current: dict[str, dict[str, Any]] = {}
    for f in found:
        f.first_seen = str(previous.get(f.key, {}).get("first_seen") or now)
        f.last_seen = now
        current[f.key] = f.to_dict()
    unread = {smtp_key(f.mailbox) for f in found if f.kind == "scan_error"}
    resolved = []
    for key, value in previous.items():
        if key in current:
            continue
        if key.split("|")[1] in unread:
            current[key] = value  # a mailbox that could not be read: what was known about it stands
        elif value.get("kind") != "scan_error":
            resolved.append({**value, "resolved_at": now})
    return current, resolved
