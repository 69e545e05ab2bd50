"""The review's reads, in bulk: the directory (to know every spelling of a person or mailbox), the shared
mailboxes' audit settings (one paged Get-Mailbox), the delegate records of the window (unified audit log,
streamed into ``Usage``), the members of each granted group (one Graph transitiveMembers listing per group,
not per mailbox) and, for mailboxes nobody acted on, the message traces of the window (10-day queries). Then
``review.build``: the verdicts."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from mailroom.activity.review import READS, Review, build, granted_people
from mailroom.activity.review import AuditSettings as Settings
from mailroom.activity.usage import Usage
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.errors import GraphError
from mailroom.m365 import auditlog
from mailroom.m365.tenant import Tenant, TenantConfig

# the delegate actions that show access used (exchange-features.md §5 report design)
OPERATIONS = ("SendAs", "SendOnBehalf", "Create", "Update", "Move", "MoveToDeletedItems", "SoftDelete",
              "HardDelete", *READS)


@dataclass
class Stats:
    mailboxes: int = 0
    records: int = 0
    delegate_records: int = 0
    audit: dict[str, Any] = field(default_factory=dict)
    trace_queries: int = 0
    traces: int = 0
    exchange_requests: int = 0
    graph_requests: int = 0
    throttled: int = 0
    groups: int = 0  # granted groups whose members were read
    groups_unread: dict[str, str] = field(default_factory=dict)  # group → why its members were not read

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def collect(desired: Desired, cfg: TenantConfig, since: timedelta, *, traces: bool = True,
                  concurrency: int = 32, now: datetime | None = None,
                  progress: auditlog.Progress | None = None) -> tuple[Review, Stats]:
    """``progress``: told (records read, records expected) after each page of audit records."""
    end = now or datetime.now(timezone.utc)
    start = end - since
    stats = Stats()
    async with Tenant(cfg, concurrency=concurrency) as t:
        settings: dict[str, Settings] = {}
        raw = Usage()  # keyed as the records write names; re-keyed once the directory is read
        traced: set[str] = set()
        client = auditlog.for_tenant(t)
        client.progress = progress

        members: dict[str, frozenset[str]] = {}  # a granted group's key → its members' keys (transitive)

        def canonical(value: str) -> str:
            found = t.directory.lookup(value)
            return smtp_key(found.primary_smtp) if found is not None and found.primary_smtp else smtp_key(value)

        async def exchange_reads() -> None:
            await t.directory.preload()
            await asyncio.gather(group_reads(), shared_mailboxes())

        async def shared_mailboxes() -> None:
            for row in await t.exchange.list_shared_mailboxes():
                settings[smtp_key(str(row.get("PrimarySmtpAddress") or ""))] = Settings.from_mailbox(row)

        async def group_reads() -> None:
            """One transitiveMembers listing per group granted anywhere in the files (not per mailbox)."""
            groups = {r.id: r for r in (t.directory.lookup(p) for p in granted_people(desired))
                      if r is not None and r.is_group}

            async def one(group_id: str) -> None:
                try:
                    rows = await t.graph.transitive_members(group_id)
                except GraphError as exc:  # no GroupMember.Read.All: the group stays unknown, said in its fix
                    stats.groups_unread[groups[group_id].primary_smtp] = f"{exc.status} {exc.code}"
                    return
                keys = (str(r.get("userPrincipalName") or r.get("mail") or r.get("id") or "") for r in rows)
                members[canonical(groups[group_id].primary_smtp)] = frozenset(canonical(k) for k in keys if k)

            await asyncio.gather(*(one(g) for g in groups))
            stats.groups = len(members)

        def trace_sink(page: list[dict[str, Any]]) -> None:
            stats.traces += len(page)
            traced.update(smtp_key(str(x.get("recipientAddress") or "")) for x in page)

        async def traces_read() -> None:
            stats.trace_queries = await client.message_traces(start, end, trace_sink)

        # The three reads share no input: the audit query runs (minutes on a real tenant) while Exchange and
        # the message traces are read. Message traces are one tenant-wide query per 10-day window, so reading
        # them for every mailbox costs no more than for the quiet ones.
        search = client.search(start, end, raw.add_page, record_types=auditlog.MAILBOX_ITEMS,
                               operations=OPERATIONS, name="mailroom review")
        await asyncio.gather(exchange_reads(), search, *([traces_read()] if traces else []))
        stats.audit = asdict(client.stats)
        stats.mailboxes = len(settings)

        usage = raw.rekey(canonical)
        stats.records, stats.delegate_records = usage.records, usage.records - usage.ignored
        inbound = {canonical(x) for x in traced} if traces else None
        review = build(desired, settings, usage, max(1, since.days), canonical=canonical,
                       is_group=lambda p: (r := t.directory.lookup(p)) is not None and r.is_group, inbound=inbound,
                       group_members=members)
        sent = (t.transport.stats, t.graph_transport.stats)
        stats.exchange_requests = t.transport.stats.requests
        stats.graph_requests = t.graph_transport.stats.requests
        stats.throttled = sum(s.throttled for s in sent)
    return review, stats
