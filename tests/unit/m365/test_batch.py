"""``ExchangeClient.batch`` (m365/exchange.py): many cmdlets through ``$batch``, against the emulator in
this process. Batches of ten, one answer per call in the order asked, a throttled item sent again after
its own Retry-After, and each failed item mapped to the typed error of ``mailroom.errors``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from mailroom.errors import ExchangeError, NotFound, ProxyAddressExists, RetriesExhausted
from mailroom.m365.auth import EXCHANGE_SCOPE
from mailroom.m365.exchange import CmdletResult
from mailroom.m365.transport import RetryPolicy, Transport

from ..conftest import TenantApp

BATCH_ENVELOPE = "POST /adminapi/beta/{tenant}/$batch"
# Seeded people who each have a mailbox (infra/localtenant/data/directory.yaml).
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj",
          "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "wendy", "chuck", "craig", "eve"]
Calls = Sequence[tuple[str, dict[str, Any]]]


async def _batch(tenant_app: TenantApp, calls: Calls, profile: dict[str, Any] | None = None, *,
                 policy: RetryPolicy | None = None,
                 page_size: int | None = None) -> tuple[list[CmdletResult | ExchangeError], Transport, float]:
    async with tenant_app.tenant(retry=policy) as t:
        await t.tokens.token(EXCHANGE_SCOPE)  # before the faults: the token endpoint is faulted too
        if profile:
            tenant_app.set_profile(profile)
        if page_size:
            t.exchange.page_size = page_size
        started = time.monotonic()
        results = await t.exchange.batch(calls)
        return results, t.transport, time.monotonic() - started


def _get_mailbox(names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    return [("Get-Mailbox", {"Identity": f"{name}@contoso.com"}) for name in names]


def test_the_seeded_people_have_mailboxes(tenant_app: TenantApp) -> None:
    results, _, _ = asyncio.run(_batch(tenant_app, _get_mailbox(PEOPLE)))
    assert all(isinstance(r, CmdletResult) and len(r.value) == 1 for r in results)


@pytest.mark.parametrize(("calls", "envelopes"), [(1, 1), (10, 1), (11, 2), (20, 2), (23, 3)])
def test_calls_go_ten_to_a_batch_and_come_back_in_order(tenant_app: TenantApp, calls: int, envelopes: int) -> None:
    names = PEOPLE[:calls]
    results, transport, _ = asyncio.run(_batch(tenant_app, _get_mailbox(names)))
    metrics = tenant_app.metrics()
    assert metrics["endpoints"][BATCH_ENVELOPE] == envelopes == transport.stats.by_label["$batch"]
    assert metrics["batch_items"] == calls  # each call sent once
    assert [r.value[0]["PrimarySmtpAddress"] for r in results if isinstance(r, CmdletResult)] == \
        [f"{name}@contoso.com" for name in names]


def test_no_calls_send_nothing(tenant_app: TenantApp) -> None:
    results, transport, _ = asyncio.run(_batch(tenant_app, []))
    assert results == [] and transport.stats.requests == 0


def test_each_item_has_its_own_answer_and_failures_their_typed_error(tenant_app: TenantApp) -> None:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("Get-Mailbox", {"Identity": "alice@contoso.com"}),
        ("Get-Mailbox", {"Identity": "nobody@contoso.com"}),
        ("New-Mailbox", {"Shared": True, "Name": "bobs", "PrimarySmtpAddress": "bob@contoso.com"}),
        ("Set-Mailbox", {"Identity": "carol@contoso.com", "HiddenFromAddressListsEnabled": "maybe"}),
        ("Get-Nothing", {"Identity": "dave@contoso.com"}),
        ("Get-Recipient", {"Identity": "finance-team"})]
    results, transport, _ = asyncio.run(_batch(tenant_app, calls))
    ok, missing, taken, invalid, unknown, group = results
    assert isinstance(ok, CmdletResult) and ok.value[0]["DisplayName"] == "Alice Anderson"
    assert isinstance(missing, NotFound)
    assert (missing.cmdlet, missing.identity, missing.status) == ("Get-Mailbox", "nobody@contoso.com", 404)
    assert isinstance(taken, ProxyAddressExists) and taken.status == 400 and "bob@contoso.com" in str(taken)
    assert type(invalid) is ExchangeError and invalid.error_type == "ParameterBindingException"
    assert invalid.identity == "carol@contoso.com" and "HiddenFromAddressListsEnabled" in invalid.service_message
    assert type(unknown) is ExchangeError and (unknown.status, unknown.error_type) == (403, "Forbidden")
    assert isinstance(group, CmdletResult) and group.value[0]["RecipientTypeDetails"] == "MailUniversalSecurityGroup"
    assert transport.stats.requests == 1 and transport.stats.retries == 0  # failures are answers: not retried


def test_a_throttled_item_is_sent_again_after_its_retry_after(tenant_app: TenantApp) -> None:
    """A burst of eight calls allowed, then two a second; ten asked in one batch: the last two items
    come back 429 with ``Retry-After: 1`` inside a 200 envelope. Only those two are sent again, once,
    after that second."""
    names = PEOPLE[:10]
    results, transport, elapsed = asyncio.run(_batch(
        tenant_app, _get_mailbox(names), {"rate_limit": {"per_second": 2, "burst": 8}},
        policy=RetryPolicy(base_delay=0.01, max_delay=0.02)))
    assert [r.value[0]["PrimarySmtpAddress"] for r in results if isinstance(r, CmdletResult)] == \
        [f"{name}@contoso.com" for name in names]
    assert transport.stats.throttled == 2 and transport.stats.retries == 2
    metrics = tenant_app.metrics()
    assert metrics["batch_items"] == 12 and metrics["injected"]["throttled"] == 2
    assert metrics["endpoints"][BATCH_ENVELOPE] == 2  # the 10, then the 2 again
    assert elapsed >= 0.9  # the item's Retry-After, not the policy's 10 ms backoff
    assert not transport.pacer.slow_start  # item throttles teach the pacer too


def test_items_failing_transiently_are_retried_until_answered(tenant_app: TenantApp) -> None:
    names = PEOPLE[:20]
    results, transport, _ = asyncio.run(_batch(
        tenant_app, _get_mailbox(names), {"seed": 3, "error_rate": 0.4, "error_statuses": [500, 503]},
        policy=RetryPolicy(base_delay=0.01, max_delay=0.02)))
    assert [r.value[0]["PrimarySmtpAddress"] for r in results if isinstance(r, CmdletResult)] == \
        [f"{name}@contoso.com" for name in names]
    injected = tenant_app.metrics()["injected"]["errors"]
    assert injected > 0 and transport.stats.retries == injected  # each failed item once more, nothing else


def test_an_item_still_throttled_after_the_last_attempt_is_an_error_not_a_gap(tenant_app: TenantApp) -> None:
    with pytest.raises(RetriesExhausted, match=r"2 command\(s\) still throttled after 2 attempts"):
        asyncio.run(_batch(tenant_app, _get_mailbox(PEOPLE[:2]), {"throttle_rate": 1.0, "retry_after_seconds": 1},
                           policy=RetryPolicy(max_attempts=2, base_delay=0.01)))


def test_an_item_whose_answer_is_paged_is_finished_with_invoke(tenant_app: TenantApp) -> None:
    """A batch item answers one page; the rest of that listing is fetched with a paged InvokeCommand."""
    calls = [("Get-Recipient", {"ResultSize": "Unlimited"}), ("Get-Mailbox", {"Identity": "alice@contoso.com"})]
    (listing, alice), _, _ = asyncio.run(_batch(tenant_app, calls, page_size=5))
    assert isinstance(listing, CmdletResult) and isinstance(alice, CmdletResult)
    everyone, _, _ = asyncio.run(_batch(tenant_app, calls[:1]))  # one page of up to 1000
    assert isinstance(everyone[0], CmdletResult) and len(everyone[0].value) > 10
    assert [r["Guid"] for r in listing.value] == [r["Guid"] for r in everyone[0].value]
    assert alice.value[0]["PrimarySmtpAddress"] == "alice@contoso.com"
