"""Recording adoptions in state: what the entries hang on, and what is never recorded twice."""

from __future__ import annotations

from typing import Any

from mailroom.core.spec import MailboxSpec
from mailroom.engine.record import Adoption, provider_ref, with_adopted
from mailroom.reconcile.live import LiveMailbox

STACK = {"urn": "urn:pulumi:prod::mailroom::pulumi:pulumi:Stack::mailroom-prod", "custom": False,
         "type": "pulumi:pulumi:Stack"}
PROVIDER = {"urn": "urn:pulumi:prod::mailroom::pulumi:providers:mailroom::default", "custom": True,
            "id": "0b9c", "type": "pulumi:providers:mailroom"}


def adoption(address: str) -> Adoption:
    spec = MailboxSpec(address=address, display_name="Info", domains=("contoso.com",))
    live = LiveMailbox(spec=spec, identity="ex-" + address, object_id="oid-" + address)
    return Adoption(f"urn:pulumi:prod::mailroom::mailroom:index:SharedMailbox::{address}", spec, live)


def test_an_adoption_hangs_on_the_stack_and_its_default_mailroom_provider() -> None:
    out = with_adopted({"resources": [STACK, PROVIDER]}, [adoption("info@contoso.com")])
    assert out is not None
    entry: dict[str, Any] = out["resources"][-1]
    assert entry["provider"] == provider_ref(out) == f"{PROVIDER['urn']}::0b9c" and entry["parent"] == STACK["urn"]
    assert entry["id"] == "info@contoso.com" and entry["outputs"]["object_id"] == "oid-info@contoso.com"
    assert {k: v for k, v in entry["outputs"].items() if k not in ("object_id", "exchange_id")} == entry["inputs"]


def test_no_provider_yet_means_nothing_is_recorded_and_the_engine_must_adopt() -> None:
    assert with_adopted({"resources": [STACK]}, [adoption("info@contoso.com")]) is None
    deleted = {**PROVIDER, "delete": True}
    assert with_adopted({"resources": [STACK, deleted]}, [adoption("info@contoso.com")]) is None


def test_a_mailbox_the_state_holds_is_never_recorded_again_and_the_input_is_not_changed() -> None:
    held = {"urn": adoption("info@contoso.com").urn, "type": "mailroom:index:SharedMailbox", "id": "info@contoso.com"}
    deployment = {"resources": [STACK, PROVIDER, held]}
    out = with_adopted(deployment, [adoption("info@contoso.com"), adoption("help@contoso.com"),
                                    adoption("help@contoso.com")])
    assert out is not None and [r.get("id") for r in out["resources"][2:]] == ["info@contoso.com", "help@contoso.com"]
    assert len(deployment["resources"]) == 3
