"""Resolving how the tenant names people to one canonical identity.

Exchange names the same person by UPN in Get-MailboxPermission, by Name in
GrantSendOnBehalfTo and by whatever address the file uses; all of them resolve
here to the Entra object id, so comparison never mistakes one spelling of a
person for another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mailroom.core.identity import is_system_principal, parse_proxy, smtp_key
from mailroom.errors import NotFound
from mailroom.m365.exchange import CmdletResult, ExchangeClient


@dataclass(frozen=True)
class Recipient:
    id: str  # Entra object id (ExternalDirectoryObjectId), else the Exchange Guid
    primary_smtp: str
    name: str
    kind: str  # RecipientTypeDetails
    keys: tuple[str, ...]  # every spelling that names it, case-folded

    @property
    def is_group(self) -> bool:
        return "group" in self.kind.casefold()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Recipient:
        rid = str(row.get("ExternalDirectoryObjectId") or row.get("Guid") or row.get("Identity") or "")
        primary = str(row.get("PrimarySmtpAddress") or row.get("WindowsEmailAddress") or "")
        keys = {rid, str(row.get("Guid") or ""), str(row.get("Name") or ""), str(row.get("Alias") or ""),
                str(row.get("Identity") or ""), str(row.get("UserPrincipalName") or ""),
                str(row.get("WindowsLiveID") or ""), str(row.get("DisplayName") or ""), primary}
        for proxy in row.get("EmailAddresses") or ():
            kind, addr, _ = parse_proxy(str(proxy))
            if kind == "smtp":
                keys.add(addr)
        return cls(rid, primary, str(row.get("Name") or ""), str(row.get("RecipientTypeDetails") or ""),
                   tuple(sorted({smtp_key(k) for k in keys if k})))


class Directory:
    """A cache of resolved recipients, filled in bulk (drift) or on demand (apply)."""

    def __init__(self, exchange: ExchangeClient) -> None:
        self.exchange = exchange
        self._by_key: dict[str, Recipient | None] = {}
        self.complete = False  # True once every recipient was listed: a miss is then final

    def add(self, recipient: Recipient) -> None:
        for key in recipient.keys:
            self._by_key[key] = recipient

    def lookup(self, identity: str) -> Recipient | None:
        return self._by_key.get(smtp_key(identity))

    async def preload(self) -> None:
        for row in await self.exchange.list_recipients():
            self.add(Recipient.from_row(row))
        self.complete = True

    async def resolve(self, identities: Iterable[str]) -> None:
        """Make sure every identity is looked up once (Get-Recipient, batched by ten)."""
        unknown = sorted({smtp_key(i) for i in identities if i and not is_system_principal(i)} - set(self._by_key))
        if not unknown or self.complete:
            return
        results = await self.exchange.batch([("Get-Recipient", {"Identity": i}) for i in unknown])
        for key, result in zip(unknown, results, strict=True):
            if isinstance(result, CmdletResult):
                if result.value:
                    self.add(Recipient.from_row(result.value[0]))
            elif not isinstance(result, NotFound):
                raise result  # anything but "not found" says nothing about the person
            self._by_key.setdefault(key, None)  # not found (deleted account): remembered as such

    def canonical(self, identity: str, written: dict[str, str]) -> str:
        """The address to show for ``identity``: the file's spelling when the file names the
        same person (``written`` maps object id → written address), else its primary SMTP."""
        recipient = self.lookup(identity)
        if recipient is None:
            return identity
        return written.get(recipient.id) or recipient.primary_smtp or identity

    def written_by_id(self, addresses: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for address in addresses:
            recipient = self.lookup(address)
            if recipient is not None:
                out.setdefault(recipient.id, address)
        return out
