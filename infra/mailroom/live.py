"""The live side of a mailbox: what the tenant has, as a MailboxSpec in the file's spelling.

``live_spec`` is pure and shared by the one-mailbox read (provider read and
update) and the bulk scan (drift), so both see a mailbox the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mailroom.directory import Directory
from mailroom.errors import NotFound
from mailroom.exchange import CmdletResult, ExchangeClient
from mailroom.identity import access_rights, is_managed_permission, managed_addresses, smtp_key
from mailroom.spec import Grant, MailboxSpec
from mailroom.textsafe import printable

SHARED = "SharedMailbox"


@dataclass
class LiveMailbox:
    spec: MailboxSpec
    identity: str  # what Exchange calls take: the mailbox Guid
    object_id: str  # its Entra user
    # canonical address key → how the tenant names that trustee (for Remove-* calls)
    trustees: dict[str, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)  # trustees that no longer resolve (deleted)
    kind: str = SHARED  # RecipientTypeDetails: mailroom manages SharedMailbox only

    def refusal(self) -> str | None:
        """Why mailroom must not touch this mailbox (it belongs to a person, a room, ...), or None."""
        if self.kind == SHARED:
            return None
        name = f' "{printable(self.spec.display_name)}"' if self.spec.display_name else ""
        return (f"{self.spec.address} is a {printable(self.kind)}{name}, not a shared mailbox; mailroom manages "
                "shared mailboxes only and changes nothing on it")


def live_spec(mailbox: dict[str, Any], full_access: Sequence[dict[str, Any]], send_as: Sequence[dict[str, Any]],
              account_enabled: bool | None, directory: Directory, written: dict[str, str],
              domains: Sequence[str], automap: Mapping[str, bool] | None = None) -> LiveMailbox:
    """``automap``: the last known AutoMapping per member (address key), used when the row has none."""
    primary = str(mailbox.get("PrimarySmtpAddress") or "")
    trustees: dict[str, str] = {}
    unresolved: list[str] = []

    def canon(identity: str) -> str:
        address = directory.canonical(identity, written)
        if directory.lookup(identity) is None:
            unresolved.append(identity)
        trustees[smtp_key(address)] = identity
        return address

    members = []
    known = automap or {}
    for row in full_access:
        if is_managed_permission(row) and "fullaccess" in access_rights(row):
            # Exchange Online does not report AutoMapping in Get-MailboxPermission (it is the
            # msExchDelegateListLink attribute, which the admin API does not expose), so a grant's
            # AutoMapping is the one last set through mailroom; a row that does carry it wins.
            address = canon(str(row["User"]))
            value = row.get("AutoMapping", known.get(smtp_key(address), True))
            members.append(Grant(address, bool(value)))
    senders = [canon(str(row["Trustee"])) for row in send_as
               if is_managed_permission(row) and "sendas" in access_rights(row)]
    on_behalf = [canon(str(name)) for name in mailbox.get("GrantSendOnBehalfTo") or ()]
    aliases = [a for k, a in managed_addresses(mailbox.get("EmailAddresses") or (), domains).items()
               if k != smtp_key(primary)]
    spec = MailboxSpec(
        address=primary,
        display_name=str(mailbox.get("DisplayName") or ""),
        aliases=tuple(sorted(aliases, key=smtp_key)),
        members=tuple(sorted(members, key=lambda g: smtp_key(g.address))),
        send_as=tuple(sorted(senders, key=smtp_key)),
        send_on_behalf=tuple(sorted(on_behalf, key=smtp_key)),
        hidden_from_gal=bool(mailbox.get("HiddenFromAddressListsEnabled", False)),
        copy_send_as=bool(mailbox.get("MessageCopyForSentAsEnabled", False)),
        copy_send_on_behalf=bool(mailbox.get("MessageCopyForSendOnBehalfEnabled", False)),
        audit_enabled=bool(mailbox.get("AuditEnabled", True)),
        sign_in_blocked=account_enabled is False,
        domains=tuple(domains),
    )
    return LiveMailbox(spec, str(mailbox.get("Guid") or mailbox.get("ExchangeObjectId") or primary),
                       str(mailbox.get("ExternalDirectoryObjectId") or ""), trustees, unresolved,
                       str(mailbox.get("RecipientTypeDetails") or "unknown recipient type"))


async def read_mailbox(exchange: ExchangeClient, graph: Any, directory: Directory, address: str,
                       people: Sequence[str], domains: Sequence[str],
                       automap: Mapping[str, bool] | None = None) -> LiveMailbox | None:
    """Read one mailbox (one $batch for mailbox + both permission lists, one Graph GET)."""
    mbx, fa, sa = await exchange.batch([
        ("Get-Mailbox", {"Identity": address}),
        ("Get-MailboxPermission", {"Identity": address}),
        ("Get-RecipientPermission", {"Identity": address, "AccessRights": "SendAs"}),
    ])
    if isinstance(mbx, NotFound) or (isinstance(mbx, CmdletResult) and not mbx.value):
        return None
    for result in (mbx, fa, sa):
        if not isinstance(result, CmdletResult):
            raise result
    assert isinstance(mbx, CmdletResult) and isinstance(fa, CmdletResult) and isinstance(sa, CmdletResult)
    row = mbx.value[0]
    names = [str(r.get("User")) for r in fa.value] + [str(r.get("Trustee")) for r in sa.value]
    names += [str(n) for n in row.get("GrantSendOnBehalfTo") or ()]
    await directory.resolve(list(people) + names)
    user = await graph.get_user(str(row.get("ExternalDirectoryObjectId"))) if row.get("ExternalDirectoryObjectId") \
        else None
    enabled = None if user is None else bool(user.get("accountEnabled"))
    return live_spec(row, fa.value, sa.value, enabled, directory, directory.written_by_id(people), domains, automap)
