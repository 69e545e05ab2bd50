"""The drift operation: one bulk read, the findings, who caused them (the unified audit log), first and last
seen from the team's history, and the audit log entries. ``cli/drift.py`` parses and shows; this does.

The history is the previous run's findings of the stack: a file in the local state directory, or one
document per stack in the shared store (``$MAILROOM_STORE``), so every runner of a team sees the same
first-seen times and the same "absent last run" guard for attribution.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mailroom import paths
from mailroom.core.identity import smtp_key
from mailroom.drift import history
from mailroom.drift import scan as drift_scan
from mailroom.drift.scan import DriftFinding, ScanResult
from mailroom.engine.runner import Run
from mailroom.m365 import auditlog
from mailroom.m365.tenant import Tenant


@dataclass
class Drift:
    found: list[DriftFinding]
    resolved: list[dict[str, Any]]
    result: ScanResult
    stats: dict[str, Any]


class History:
    """The previous run's findings of a stack, where the team keeps them (local file or shared store)."""

    def __init__(self, prepared: Run) -> None:
        shared = paths.store_url()
        self._doc: Any = None
        self._path = paths.drift_state(prepared.stack, prepared.project_dir)
        if shared:
            from mailroom.store.azblob import BlobStore  # only a shared store needs the Azure SDK

            self._doc = BlobStore(shared).document(prepared.stack, "drift.json")

    def previous(self) -> dict[str, dict[str, Any]]:
        if self._doc is not None:
            return self._doc.read() or {}
        try:
            previous: dict[str, dict[str, Any]] = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return previous

    def track(self, found: list[DriftFinding]) -> tuple[list[DriftFinding], list[dict[str, Any]]]:
        if self._doc is not None:
            return drift_scan.track_shared(found, self._doc)
        return drift_scan.track(found, self._path)


def absent_since(previous: dict[str, dict[str, Any]], found: list[DriftFinding]) -> dict[str, str]:
    """Finding key → when the previous run saw the tenant without it (so no older record can be its cause).
    Nothing for a first run, or for a mailbox the previous run could not read."""
    seen = [str(v.get("last_seen") or "") for v in previous.values() if isinstance(v, dict)]
    unread = {smtp_key(str(v.get("mailbox") or "")) for v in previous.values()
              if isinstance(v, dict) and v.get("kind") == "scan_error"}
    if not seen:
        return {}
    at = max(seen)
    return {f.key: at for f in found if f.key not in previous and smtp_key(f.mailbox) not in unread}


async def collect(prepared: Run, concurrency: int, previous: dict[str, dict[str, Any]],
                  progress: Callable[..., Any] | None = None, others: bool = False) -> tuple[
        list[DriftFinding], ScanResult, dict[str, Any]]:
    """The findings, attributed. ``others``: read the access of shared mailboxes the file does not manage too
    (the HTML and CSV reports)."""
    async with Tenant(prepared.tenant, concurrency=concurrency) as t:
        result = await drift_scan.scan(t, prepared.desired, progress, rules=True,
                                       others=(lambda _key: True) if others else None)
        found = drift_scan.findings(prepared.desired, result, t.directory)
        if found:
            boxes = sorted({f.mailbox for f in found if f.kind != "scan_error"})
            # Who: ExchangeAdmin records of the cmdlets that cause findings, from the unified audit log.
            causes = sorted({c for cmdlets, _ in history.CAUSES.values() for c in cmdlets})
            rows = await auditlog.admin_records(auditlog.for_tenant(t), operations=causes) if boxes else []
            needs_graph = any(f.right == "sign_in_blocked" or f.kind == "stale_access" for f in found)
            audits = await t.graph.directory_audits() if needs_graph else []
            ids = {key: live.object_id for key, live in result.live.items()}
            for f in found:
                recipient = t.directory.lookup(f.subject) if f.subject else None
                if recipient is not None:
                    ids[smtp_key(f.subject or "")] = recipient.id
            history.attribute(found, rows, audits, t.directory, ids, not_before=absent_since(previous, found))
        sent = (t.transport.stats, t.graph_transport.stats)
        stats = {"mailboxes": len(result.live) + len(result.errors), "unmanaged": len(result.unmanaged),
                 "exchange_requests": t.transport.stats.requests, "graph_requests": t.graph.requests,
                 "retries": sum(s.retries for s in sent), "throttled": sum(s.throttled for s in sent),
                 "errors": len(result.errors),
                 "inbox_rules": f"not checked: {result.rules_unread}" if result.rules_unread else "checked"}
    return found, result, stats


def record(prepared: Run, log: Any, found: list[DriftFinding], resolved: list[dict[str, Any]]) -> None:
    """Every finding (new or still present) and every resolution, as one append to the audit log."""
    entries = []
    for f in found:
        kind = "drift_new" if f.first_seen == f.last_seen else "drift_present"
        entries.append(log.entry(kind, mailbox=f.mailbox, subject=f.subject, right=f.right, before=f.expected,
                                 after=f.actual, detail=f"{f.kind}: {f.detail}".rstrip(": ")
                                 + (f" by {f.changed_by} at {f.changed_at}" if f.changed_by else "")))
    for r in resolved:
        entries.append(log.entry("drift_resolved", mailbox=r.get("mailbox"), subject=r.get("subject"),
                                 right=r.get("right"), detail=str(r.get("kind"))))
    if entries:
        log.append(entries)


async def drift(prepared: Run, concurrency: int, progress: Callable[..., Any] | None = None,
                others: bool = False) -> Drift:
    """Scan, attribute and stamp against the history (which this run then becomes)."""
    kept = History(prepared)
    found, result, stats = await collect(prepared, concurrency, kept.previous(), progress, others)
    found, resolved = kept.track(found)
    return Drift(found, resolved, result, stats)
