"""The Pulumi program under Pulumi mocks, and the provider as the engine sees it (no tenant needed)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dill
import pulumi
import pytest
from mailroom.core.model import Desired
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.engine.provider import MailboxProvider
from mailroom.file.load import load_desired

ROOT = Path(__file__).resolve().parents[1]


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        self.resources.append(args)
        return args.name, dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


@pytest.fixture
def mocks() -> Iterator[Mocks]:
    # Pulumi's mock runtime uses the thread's current event loop; an earlier asyncio.run() unsets it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    m = Mocks()
    pulumi.runtime.set_mocks(m, project="mailroom", stack="test", preview=False)
    yield m
    asyncio.set_event_loop(None)
    loop.close()


def _desired() -> Desired:
    result = load_desired(str(ROOT / "mailboxes.yaml"))
    assert result.desired is not None and not result.errors
    return result.desired


def test_program_declares_one_resource_per_mailbox(mocks: Mocks) -> None:
    from mailroom.engine.program import declare

    urns = asyncio.get_event_loop().run_until_complete(declare(_desired()))

    shared = [r for r in mocks.resources if r.typ == "mailroom:index:SharedMailbox"]
    assert len(shared) == len(urns) == 8
    by_name = {r.name: r.inputs for r in shared}
    support = by_name["support@contoso.com"]
    assert support["display_name"] == "Customer Support" and support["sign_in_blocked"] is True
    assert {"address": "carol@contoso.com", "automap": False} in support["members"]
    assert by_name["old-projects@contoso.com"]["state"] == "absent"
    assert sorted(u.rsplit("::", 1)[-1] for u in urns) == sorted(by_name)


def test_program_registers_as_the_sdk_would_with_the_dynamic_type_as_alias() -> None:
    """The request the engine gets: a custom resource of mailroom's type under the stack, with the Python
    dynamic provider's type as an alias (a stack it made moves over in place), inputs as the provider reads
    them, and no provider reference (the engine's default provider: mailroom's plugin)."""
    from google.protobuf.json_format import MessageToDict
    from mailroom.engine.program import request

    spec = MailboxSpec(address="a@contoso.com", display_name="A", members=(Grant("x@contoso.com", False),),
                       send_as=("x@contoso.com",))
    req = request("a@contoso.com", spec, "urn:pulumi:s::mailroom::pulumi:pulumi:Stack::mailroom-s")
    assert (req.type, req.name, req.custom, req.provider) == ("mailroom:index:SharedMailbox", "a@contoso.com",
                                                              True, "")
    assert req.parent.endswith("pulumi:pulumi:Stack::mailroom-s")
    assert [a.spec.type for a in req.aliases] == ["pulumi-python:dynamic/mailroom:SharedMailbox"]
    assert MailboxSpec.from_props(MessageToDict(req.object)) == spec
    assert req.acceptSecrets and req.supportsResultReporting


def test_program_declares_the_model_it_is_given_and_reads_no_file(mocks: Mocks, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The program plans exactly the validated model: it never loads a file of its own."""
    from mailroom.engine.program import declare

    desired = _desired()
    kept = tuple(mb for mb in desired.mailboxes if mb.address.casefold() == "support@contoso.com")
    monkeypatch.chdir(tmp_path)  # no mailboxes.yaml here, and MAILROOM_FILE means nothing any more
    monkeypatch.setenv("MAILROOM_FILE", str(tmp_path / "missing.yaml"))
    urns = asyncio.get_event_loop().run_until_complete(declare(dataclasses.replace(desired, mailboxes=kept)))
    assert len(urns) == 1
    assert [r.name for r in mocks.resources] == ["support@contoso.com"]


def test_provider_serialises_by_reference_and_round_trips() -> None:
    """What the engine does: pickle the provider into state, unpickle it in the provider process."""
    from pulumi.dynamic.dynamic import serialize_provider

    provider = MailboxProvider()
    blob = serialize_provider(provider)
    assert len(blob) < 400  # by reference, not bytecode: code changes never show as diffs
    restored = dill.loads(base64.b64decode(blob))
    assert type(restored).__module__ == "mailroom.engine.provider"
    spec = MailboxSpec(address="a@contoso.com", display_name="A", members=(Grant("x@contoso.com"),))
    assert restored.diff("a@contoso.com", spec.to_props(), spec.to_props()).changes is False


def test_provider_diff_and_check() -> None:
    provider = MailboxProvider()
    old = MailboxSpec(address="a@contoso.com", display_name="A", send_as=("x@contoso.com",)).to_props()
    new = MailboxSpec(address="A@Contoso.com", display_name="A", send_as=("X@contoso.com",)).to_props()
    assert provider.diff("a", old, new).changes is False
    newer = {**new, "send_as": []}
    assert provider.diff("a", old, newer).changes is True
    moved = {**new, "address": "b@contoso.com"}
    assert provider.diff("a", old, moved).replaces == ["address"]
    assert provider.check({}, {"address": "nope"}).failures[0].property == "address"
    assert provider.check({}, new).failures == []
