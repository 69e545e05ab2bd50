"""Exchange Online admin REST (``InvokeCommand``) over httpx: a small typed API.

Wire shapes follow ../shared/reference/exchange-and-graph-wire.md §A: the
``CmdletInput`` envelope, ``value`` + ``@adminapi.warnings`` answers, paging by
POSTing the same body to ``@odata.nextLink``, ``$batch`` of up to 10 commands,
and errors whose ``details[0].message`` is ``id|exception type|text``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from mailroom.errors import ExchangeError, NotFound, ProxyAddressExists, RetriesExhausted
from mailroom.m365.auth import EXCHANGE_SCOPE, TokenSource
from mailroom.m365.transport import RETRY_STATUSES, Transport, parse_retry_after

BATCH_SIZE = 10
PAGE_SIZE = 1000
Params = dict[str, Any]


@dataclass
class CmdletResult:
    value: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def hashtable(add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, Any]:
    """A multi-valued add/remove update (``@{Add=...; Remove=...}`` in PowerShell)."""
    out: dict[str, Any] = {"@odata.type": "#Exchange.GenericHashTable"}
    if add:
        out["Add"] = list(add)
    if remove:
        out["Remove"] = list(remove)
    return out


def _error(cmdlet: str, identity: str | None, resp_status: int, body: Any) -> ExchangeError:
    err = body.get("error", {}) if isinstance(body, dict) else {}
    details = err.get("details") or [{}]
    text = str(details[0].get("message") or "")
    if not text:
        text = str(((err.get("innererror") or {}).get("internalexception") or {}).get("message") or "")
    parts = text.split("|", 2)
    error_type, message = (parts[1], parts[2]) if len(parts) == 3 else (str(err.get("code", "")), text
                                                                        or str(err.get("message", "")))
    short = error_type.rsplit(".", 1)[-1]
    if resp_status == 403 and not error_type:
        short, message = "Forbidden", "cmdlet unknown or not permitted for this app"
    cls: type[ExchangeError] = ExchangeError
    if short == "ManagementObjectNotFoundException" or resp_status == 404:
        cls = NotFound
    elif short == "ProxyAddressExistsException":
        cls = ProxyAddressExists
    return cls(cmdlet, identity, resp_status, short, message)


def _body(resp: httpx.Response) -> Any:
    if not resp.content:
        return {}
    try:
        return resp.json()
    except json.JSONDecodeError:
        return {}


class ExchangeClient:
    def __init__(self, base_url: str, tenant: str, tokens: TokenSource, transport: Transport,
                 *, page_size: int = PAGE_SIZE) -> None:
        self.root = f"{base_url.rstrip('/')}/adminapi/beta/{tenant}"
        self.tokens = tokens
        self.transport = transport
        self.page_size = page_size

    async def _headers(self) -> dict[str, str]:
        token = await self.tokens.token(EXCHANGE_SCOPE)
        return {"Authorization": f"Bearer {token}", "Accept": "application/json",
                "Prefer": f"odata.maxpagesize={self.page_size}", "X-ResponseFormat": "json"}

    async def invoke(self, cmdlet: str, params: Params | None = None) -> CmdletResult:
        """Run one cmdlet; follows paging to the end. Raises ExchangeError subclasses."""
        body = {"CmdletInput": {"CmdletName": cmdlet, "Parameters": params or {}}}
        identity = str((params or {}).get("Identity") or "") or None
        url = f"{self.root}/InvokeCommand"
        result = CmdletResult()
        while url:
            async def make(url: str = url) -> httpx.Request:
                headers = await self._headers()
                headers["X-CmdletName"] = cmdlet
                return self.transport.client.build_request("POST", url, json=body, headers=headers)

            resp = await self.transport.send(make, cmdlet)
            data = _body(resp)
            if resp.status_code != 200:
                raise _error(cmdlet, identity, resp.status_code, data)
            result.value.extend(data.get("value") or [])
            result.warnings.extend(w for w in data.get("@adminapi.warnings") or [] if w)
            url = data.get("@odata.nextLink") or ""
        return result

    async def batch(self, calls: Sequence[tuple[str, Params]]) -> list[CmdletResult | ExchangeError]:
        """Run many cmdlets through ``$batch`` (10 per request); items that are throttled or
        fail transiently are sent again. Answers in the order of ``calls``. Single-page results
        only: a call whose answer is paged is finished with ``invoke``."""
        results: list[CmdletResult | ExchangeError | None] = [None] * len(calls)
        pending = list(range(len(calls)))
        attempt = 0
        while pending:
            attempt += 1
            chunks = [pending[i:i + BATCH_SIZE] for i in range(0, len(pending), BATCH_SIZE)]
            outcomes = await asyncio.gather(*(self._batch_once(calls, chunk) for chunk in chunks))
            retry: list[int] = []
            wait = 0.0
            for outcome in outcomes:
                for index, item in outcome.items():
                    if isinstance(item, float):
                        retry.append(index)
                        wait = max(wait, item)
                    else:
                        results[index] = item
            if retry and attempt >= self.transport.retry.max_attempts:
                raise RetriesExhausted(f"$batch: {len(retry)} command(s) still throttled after {attempt} attempts")
            pending = sorted(retry)
            if pending:
                self.transport.stats.retries += len(pending)
                await asyncio.sleep(wait)
        for i, done in enumerate(results):
            if isinstance(done, CmdletResult) and done.value and done.value[-1] is _MORE:
                done.value.pop()
                results[i] = await self.invoke(*calls[i])
        return [r for r in results if r is not None]

    async def _batch_once(self, calls: Sequence[tuple[str, Params]],
                          chunk: list[int]) -> dict[int, CmdletResult | ExchangeError | float]:
        url = f"{self.root}/InvokeCommand"
        requests = [{"id": str(i), "method": "POST", "url": url,
                     "headers": {"Content-Type": "application/json", "X-CmdletName": calls[i][0]},
                     "body": {"CmdletInput": {"CmdletName": calls[i][0], "Parameters": calls[i][1]}}}
                    for i in chunk]

        async def make() -> httpx.Request:
            headers = await self._headers()
            headers["Prefer"] = f"odata.continue-on-error, odata.maxpagesize={self.page_size}"
            return self.transport.client.build_request("POST", f"{self.root}/$batch", json={"requests": requests},
                                                       headers=headers)

        resp = await self.transport.send(make, "$batch", cost=len(chunk), settle=False)
        data = _body(resp)
        if resp.status_code != 200:
            raise _error("$batch", None, resp.status_code, data)
        out: dict[int, CmdletResult | ExchangeError | float] = {}
        for item in data.get("responses") or []:
            index = int(item["id"])
            status = int(item.get("status", 500))
            body = item.get("body") or {}
            if status in RETRY_STATUSES:
                headers = {k.lower(): v for k, v in (item.get("headers") or {}).items()}
                self.transport.stats.throttled += status == 429
                if status == 429:
                    self.transport.pacer.throttled()
                # A garbage or missing per-item Retry-After falls back to the policy's first backoff step.
                out[index] = parse_retry_after(headers.get("retry-after")) or self.transport.retry.base_delay
            elif status != 200:
                self.transport.pacer.accepted()  # metered and answered, though not a success
                cmdlet, params = calls[index]
                out[index] = _error(cmdlet, str(params.get("Identity") or "") or None, status, body)
            else:
                self.transport.pacer.accepted()
                value = list(body.get("value") or [])
                if body.get("@odata.nextLink"):
                    value.append(_MORE)  # finished with a plain paged invoke afterwards
                out[index] = CmdletResult(value, [w for w in body.get("@adminapi.warnings") or [] if w])
        for index in chunk:  # an item the batch did not answer is retried
            out.setdefault(index, 1.0)
        return out

    # -- the typed API mailroom uses -------------------------------------------------------------

    async def _get_one(self, cmdlet: str, identity: str) -> dict[str, Any] | None:
        try:
            rows = (await self.invoke(cmdlet, {"Identity": identity})).value
        except NotFound:
            return None
        return rows[0] if rows else None

    async def get_mailbox(self, identity: str) -> dict[str, Any] | None:
        return await self._get_one("Get-Mailbox", identity)

    async def get_recipient(self, identity: str) -> dict[str, Any] | None:
        """Any recipient with this identity: a mailbox, a group, a mail user or a contact."""
        return await self._get_one("Get-Recipient", identity)

    async def list_shared_mailboxes(self) -> list[dict[str, Any]]:
        return (await self.invoke("Get-Mailbox", {"RecipientTypeDetails": "SharedMailbox",
                                                  "ResultSize": "Unlimited"})).value

    async def list_cas_mailboxes(self) -> list[dict[str, Any]]:
        """Every mailbox's protocol settings (Get-CASMailbox lists all mailbox types, 1,000 a page)."""
        return (await self.invoke("Get-CASMailbox", {"ResultSize": "Unlimited"})).value

    async def list_recipients(self) -> list[dict[str, Any]]:
        return (await self.invoke("Get-Recipient", {"ResultSize": "Unlimited"})).value

    async def new_shared_mailbox(self, name: str, display_name: str, address: str) -> dict[str, Any]:
        rows = (await self.invoke("New-Mailbox", {"Shared": True, "Name": name, "Alias": name,
                                                  "DisplayName": display_name,
                                                  "PrimarySmtpAddress": address})).value
        return rows[0] if rows else {}

    async def set_mailbox(self, identity: str, params: Params) -> CmdletResult:
        return await self.invoke("Set-Mailbox", {"Identity": identity, **params})

    async def remove_mailbox(self, identity: str) -> CmdletResult:
        return await self.invoke("Remove-Mailbox", {"Identity": identity, "Confirm": False})

    async def accepted_domains(self) -> list[str]:
        """The tenant's accepted domains (Get-AcceptedDomain), as written there."""
        rows = (await self.invoke("Get-AcceptedDomain")).value
        return [str(r.get("DomainName") or r.get("Name") or "") for r in rows]

    async def recipient_permissions(self, identity: str | None = None) -> list[dict[str, Any]]:
        params: Params = {"AccessRights": "SendAs", "ResultSize": "Unlimited"}
        if identity:
            params["Identity"] = identity
        return (await self.invoke("Get-RecipientPermission", params)).value


_MORE: dict[str, Any] = {"__more__": True}
