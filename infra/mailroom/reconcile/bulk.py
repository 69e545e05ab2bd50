"""The bulk read of live state: one per run, for plan, apply and drift alike.

``scan`` reads every shared mailbox in pages, every Send As grant tenant-wide in one paged call, Full
Access per mailbox through ``$batch`` (10 a request) under the run's one pacer, all recipients, every
mailbox's protocols (Get-CASMailbox) and all users' sign-in state in pages: about one request per
mailbox, at the service's rate limit. A mailbox whose file names a folder (``calendar``) costs two more ``$batch``
items: its folder statistics (the folder by type), then that folder's permissions. ``read``
picks the cheaper way for a handful of mailboxes (one ``$batch`` and one Graph call each). With
``others`` the same scan reads the tenant's other shared mailboxes too, not only the file's (import).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.core.spec import MailboxSpec
from mailroom.errors import ExchangeError
from mailroom.m365.exchange import CmdletResult
from mailroom.m365.tenant import Tenant
from mailroom.reconcile.live import (
    LiveMailbox,
    folder_addresses,
    folder_perms_call,
    folder_stats_call,
    live_spec,
    read_mailbox,
    resolve_folder_people,
    rules_call,
    user_folders,
)

Progress = Callable[[int, int], None]
Automap = Mapping[str, Mapping[str, bool]]  # mailbox key → member key → AutoMapping
# The hints may still be on their way: a plan reads the tenant while the engine exports the stack's state.
Hints = Automap | Awaitable[Automap] | None
# Below this many mailboxes, reading each one (a $batch and a Graph call) costs fewer requests than the
# tenant-wide listings of a scan (recipients, users, Send As: a page per 1,000 each).
SMALL = 20


@dataclass
class ScanResult:
    live: dict[str, LiveMailbox] = field(default_factory=dict)  # managed mailbox key → live
    unmanaged: list[dict[str, Any]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)  # object ids of accounts with sign-in disabled
    # address key → (RecipientTypeDetails, display name) of what holds a file's address that is not a
    # shared mailbox
    holders: dict[str, tuple[str, str]] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # key → Get-Mailbox row, every shared mailbox
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # object id → Graph user (department ...)
    # Why inbox rules were asked for but not read ("" when read or not asked): the identity may not run
    # Get-InboxRule (it is in no View-Only role), which leaves the rules unchecked, not the mailbox unread.
    rules_unread: str = ""


async def scan(tenant: Tenant, desired: Desired, progress: Progress | None = None,
               only: Iterable[str] | None = None, automap: Hints = None,
               others: Callable[[str], bool] | None = None, rules: bool = False,
               all_folders: bool = False) -> ScanResult:
    """Read the file's mailboxes (``only``: just these address keys); see the module docstring.

    ``automap``: per mailbox key, the AutoMapping mailroom last set for each member. Exchange Online does
    not report AutoMapping, so it is taken from there, else as the file says it (else Exchange's default).
    ``others``: also read each shared mailbox the file does not manage whose address key it accepts (import:
    every one); each is then in ``live`` (people by primary SMTP address) as well as in ``unmanaged``. The
    listing comes first then, since it says which mailboxes there are: one page per 1,000, a second or two
    before the per-mailbox reads.
    ``rules``: also read each managed mailbox's inbox rules (drift: one more ``$batch`` item per mailbox).
    ``all_folders``: read the permissions of every folder mailroom manages (rights.FOLDERS, and every folder a user
    made under them or at the top) of every mailbox read (import: one statistics item and one item per folder
    each); else only those the file names, of its mailboxes.
    """
    result = ScanResult()
    managed = {mb.key: mb for mb in desired.mailboxes}
    if only is not None:
        wanted = {smtp_key(k) for k in only}
        managed = {k: mb for k, mb in managed.items() if k in wanted}
    ex = tenant.exchange
    listing = asyncio.ensure_future(ex.list_shared_mailboxes())
    targets = {k: mb.address for k, mb in managed.items()}  # key → the identity its permissions are read by
    if others is not None:
        for shared_row in await listing:
            primary = str(shared_row.get("PrimarySmtpAddress") or "")
            if primary and others(smtp_key(primary)):
                targets.setdefault(smtp_key(primary), primary)
    keys = sorted(targets)
    done = 0
    # The folders whose permissions are read: those the file names for a mailbox, or (import) every mailbox's.
    wanted_folders = {k: MailboxSpec.from_model(mb, desired.domains).folders() for k, mb in managed.items()}
    if all_folders:
        wanted_folders = {k: tuple(rights.FOLDERS) for k in keys}
    folder_rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    folder_ids: dict[str, dict[str, str]] = {}
    folder_errors: dict[str, ExchangeError] = {}

    async def read_folders(chunk: list[str]) -> None:
        """Two $batch phases for ``chunk``'s folders: their statistics (FolderType → FolderId), then their
        permissions. Exchange has no call that lists folder permissions for many mailboxes at once."""
        need = [k for k in chunk if wanted_folders.get(k)]
        stats = await ex.batch([folder_stats_call(targets[k], wanted_folders[k]) for k in need]) if need else []
        addressed: list[tuple[str, str, str]] = []
        for k, answer in zip(need, stats, strict=True):
            if not isinstance(answer, CmdletResult):
                folder_errors[k] = answer
                continue
            # Import also reads each folder a user made (rights.PATH_ROOTS): one more item per such folder.
            named = wanted_folders[k] + (tuple(user_folders(answer.value)) if all_folders else ())
            folder_ids[k] = folder_addresses(targets[k], answer.value, named)
            addressed += [(k, folder, ident) for folder, ident in folder_ids[k].items()]
        answers = await ex.batch([folder_perms_call(ident) for _, _, ident in addressed]) if addressed else []
        for (k, folder, _), answer in zip(addressed, answers, strict=True):
            if not isinstance(answer, CmdletResult):
                folder_errors[k] = answer
                continue
            folder_rows.setdefault(k, {})[folder] = answer.value

    async def full_access(chunk: list[str]) -> list[CmdletResult | ExchangeError]:
        """Full Access of each mailbox of ``chunk``, then (``rules``) the inbox rules of its managed ones."""
        nonlocal done
        calls = [("Get-MailboxPermission", {"Identity": targets[k]}) for k in chunk]
        calls += [rules_call(targets[k]) for k in chunk if rules and k in managed]
        answers, _ = await asyncio.gather(ex.batch(calls), read_folders(chunk))
        done += len(chunk)
        if progress:
            progress(done, len(keys))
        for k, answer in zip([k for k in chunk if rules and k in managed], answers[len(chunk):], strict=True):
            inbox[k] = answer
        return answers[:len(chunk)]

    inbox: dict[str, CmdletResult | ExchangeError] = {}

    # Importing msgraph-sdk takes seconds of CPU; in a thread it does not stall the requests.
    graph_ready = asyncio.create_task(asyncio.to_thread(lambda: tenant.graph))

    async def all_users() -> list[dict[str, Any]]:
        graph = await graph_ready
        return list(await graph.list_users())

    # Everything at once: the pacer keeps the whole scan at the service's rate limit, so the
    # paged listings cost no extra time next to the Full Access batches.
    chunks = [keys[i:i + 100] for i in range(0, len(keys), 100)]
    listed = asyncio.gather(listing, ex.recipient_permissions(), tenant.directory.preload(),
                            all_users(), ex.list_cas_mailboxes())
    per_mailbox = asyncio.gather(*(full_access(c) for c in chunks))
    (mailboxes, send_as, _, users, cas_rows), answered = await asyncio.gather(listed, per_mailbox)
    await resolve_folder_people(tenant.directory, [rows for by in folder_rows.values() for rows in by.values()])
    cas = {smtp_key(str(r.get("PrimarySmtpAddress") or "")): r for r in cas_rows}
    hints = await _ready(automap)
    answers = [a for chunk in answered for a in chunk]

    result.disabled = {str(u["id"]) for u in users if u.get("accountEnabled") is False}
    enabled = {str(u["id"]): bool(u.get("accountEnabled")) for u in users}
    result.users = {str(u["id"]): u for u in users}
    rows_by_key: dict[str, dict[str, Any]] = {}
    for listed_row in mailboxes:
        key = smtp_key(str(listed_row.get("PrimarySmtpAddress") or ""))
        result.rows[key] = listed_row
        if key in managed:
            rows_by_key[key] = listed_row
        elif only is None:
            result.unmanaged.append(listed_row)
            if key in targets:
                rows_by_key[key] = listed_row
    send_as_by_mailbox: dict[str, list[dict[str, Any]]] = {}
    for row in send_as:
        recipient = tenant.directory.lookup(str(row.get("Identity") or ""))
        owner = smtp_key(recipient.primary_smtp) if recipient else smtp_key(str(row.get("Identity") or ""))
        send_as_by_mailbox.setdefault(owner, []).append(row)
    for key, answer in zip(keys, answers, strict=True):
        if key not in managed:  # others: a mailbox the file does not hold, as the tenant names it
            other = rows_by_key[key]
            if not isinstance(answer, CmdletResult) or key in folder_errors:
                result.errors[targets[key]] = str(answer if not isinstance(answer, CmdletResult) else
                                                  folder_errors[key])
                continue
            result.live[key] = live_spec(other, answer.value, send_as_by_mailbox.get(key, []),
                                         enabled.get(str(other.get("ExternalDirectoryObjectId"))), tenant.directory,
                                         {}, desired.domains, hints.get(key), cas.get(key), None,
                                         folder_rows.get(key, {}), folder_ids.get(key))
            continue
        mb = managed[key]
        row = rows_by_key.get(key)
        if row is None:
            # Not a shared mailbox. If anything else holds the address (a person's mailbox, a room, a
            # group), the recipients listed above say what: plan refuses it rather than "create".
            holder = tenant.directory.lookup(mb.address)
            if holder is not None:
                result.holders[key] = (holder.kind or "recipient", holder.name)
            continue  # findings() reports it missing
        rule_rows = inbox.get(key)
        if isinstance(rule_rows, ExchangeError) and rule_rows.status == 403:
            result.rules_unread = f"Get-InboxRule is not permitted for this identity ({rule_rows.error_type})"
            rule_rows = None
        if not isinstance(answer, CmdletResult) or (rule_rows is not None and not isinstance(rule_rows, CmdletResult)):
            result.errors[mb.address] = str(answer if not isinstance(answer, CmdletResult) else rule_rows)
            continue
        if key in folder_errors:
            result.errors[mb.address] = str(folder_errors[key])
            continue
        spec = MailboxSpec.from_model(mb, desired.domains)
        # AutoMapping is not readable from Exchange Online (see live_spec): taken as the file says.
        result.live[key] = live_spec(row, answer.value, send_as_by_mailbox.get(key, []),
                                     enabled.get(str(row.get("ExternalDirectoryObjectId"))),
                                     tenant.directory, tenant.directory.written_by_id(spec.people()), desired.domains,
                                     hints.get(key, spec.automap_by_key()), cas.get(key),
                                     rule_rows.value if rule_rows is not None else None,
                                     folder_rows.get(key, {}) if wanted_folders.get(key) else None,
                                     folder_ids.get(key))
    return result


async def read(tenant: Tenant, desired: Desired, keys: Iterable[str], progress: Progress | None = None,
               automap: Hints = None, rules: bool = False) -> ScanResult:
    """The live state of the file's mailboxes ``keys``: read one by one when they are few, else scanned
    (``automap``, ``rules``: as for ``scan``)."""
    wanted = sorted({smtp_key(k) for k in keys})
    if len(wanted) > SMALL:
        return await scan(tenant, desired, progress, only=wanted, automap=automap, rules=rules)
    result = ScanResult()
    by_key = {mb.key: MailboxSpec.from_model(mb, desired.domains) for mb in desired.mailboxes}
    hints = await _ready(automap)

    async def one(key: str) -> None:
        spec = by_key[key]
        try:
            live = await read_mailbox(tenant.exchange, tenant.graph, tenant.directory, spec.address, spec.people(),
                                      spec.domains, hints.get(key, spec.automap_by_key()), rules, spec.folders())
        except ExchangeError as exc:
            result.errors[spec.address] = str(exc)
            return
        if live is None:
            holder = await tenant.exchange.get_recipient(spec.address)
            if holder is not None:
                result.holders[key] = (str(holder.get("RecipientTypeDetails") or "recipient"),
                                       str(holder.get("DisplayName") or ""))
        elif live.refusal():
            result.holders[key] = (live.kind, live.spec.display_name)
        else:
            result.live[key] = live

    await asyncio.gather(*(one(k) for k in wanted if k in by_key))
    return result


async def _ready(automap: Hints) -> Automap:
    """The AutoMapping hints, once they are known."""
    if automap is None:
        return {}
    return await automap if inspect.isawaitable(automap) else automap
