"""Unified audit records folded, page by page, into what the review needs: per (mailbox, person) the last
delegate action, its kind and a count; per mailbox the last delegate action of anyone; which mailboxes have
shown MailItemsAccessed records (proof that they record reads). Nothing else of a record is kept, so a
million records cost a few megabytes.

Record fields (exchange-features.md §5): ``auditData.LogonType`` 2 is a delegate (0 owner, 1 admin);
``MailboxOwnerUPN`` is the mailbox acted on; for SendAs and SendOnBehalf the mailbox sent as is in
``SendAsUserSmtp`` / ``SendOnBehalfOfUserSmtp`` where the record has them [uncertain: which of the two
fields the service fills for a shared mailbox; both are read]. ``userPrincipalName`` (``UserId``) is who acted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mailroom.core.identity import smtp_key

DELEGATE = 2


@dataclass
class Seen:
    last: str  # ISO time of the newest record
    operation: str  # what that record was
    count: int = 0
    operations: set[str] = field(default_factory=set)

    def add(self, when: str, operation: str, n: int) -> None:
        self.count += n
        self.operations.add(operation)
        if when > self.last:
            self.last, self.operation = when, operation


@dataclass
class Usage:
    """``canonical``: a record's mailbox or person spelling → the key the review uses (e.g. a UPN → the
    primary SMTP address, through the directory); identity by default."""

    canonical: Callable[[str], str] = smtp_key
    pairs: dict[tuple[str, str], Seen] = field(default_factory=dict)
    mailboxes: dict[str, str] = field(default_factory=dict)  # mailbox → last delegate action
    reads_recorded: set[str] = field(default_factory=set)  # mailboxes that wrote MailItemsAccessed records
    records: int = 0
    ignored: int = 0  # not a delegate's, or no mailbox
    _names: dict[str, str] = field(default_factory=dict)

    def _key(self, value: str) -> str:
        got = self._names.get(value)
        if got is None:
            got = self._names[value] = self.canonical(value)
        return got

    def rekey(self, canonical: Callable[[str], str]) -> Usage:
        """The same usage under other keys (e.g. once the directory is read: UPNs → primary addresses), merged."""
        out = Usage(canonical=canonical, records=self.records, ignored=self.ignored)
        for (box, who), seen in self.pairs.items():
            key = (out._key(box), out._key(who))
            have = out.pairs.get(key)
            if have is None:
                out.pairs[key] = Seen(seen.last, seen.operation, seen.count, set(seen.operations))
            else:
                for op in seen.operations:
                    have.operations.add(op)
                have.count += seen.count
                if seen.last > have.last:
                    have.last, have.operation = seen.last, seen.operation
        for box, when in self.mailboxes.items():
            k = out._key(box)
            out.mailboxes[k] = max(when, out.mailboxes.get(k, ""))
        out.reads_recorded = {out._key(b) for b in self.reads_recorded}
        return out

    def add_page(self, records: Iterable[dict[str, Any]]) -> None:
        for r in records:
            self.records += 1
            data = r.get("auditData") or {}
            if data.get("LogonType") != DELEGATE:
                self.ignored += 1
                continue
            operation = str(r.get("operation") or data.get("Operation") or "")
            box = data.get("SendAsUserSmtp") or data.get("SendOnBehalfOfUserSmtp") or data.get("MailboxOwnerUPN")
            user = r.get("userPrincipalName") or data.get("UserId")
            if not box or not user:
                self.ignored += 1
                continue
            mailbox, person = self._key(str(box)), self._key(str(user))
            if mailbox == person:
                self.ignored += 1
                continue
            when = str(r.get("createdDateTime") or "")
            n = int(data.get("OperationCount") or 1)
            seen = self.pairs.get((mailbox, person))
            if seen is None:
                self.pairs[(mailbox, person)] = Seen(when, operation, n, {operation})
            else:
                seen.add(when, operation, n)
            if when > self.mailboxes.get(mailbox, ""):
                self.mailboxes[mailbox] = when
            if operation == "MailItemsAccessed":
                self.reads_recorded.add(mailbox)
