"""Plan rendering from engine steps (the same comparison the provider's diff uses)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from mailroom.plan import Plan, step_plan
from mailroom.spec import Grant, MailboxSpec

OLD = MailboxSpec(address="support@contoso.com", display_name="Help", members=(Grant("bob@contoso.com"),))
NEW = MailboxSpec(address="support@contoso.com", display_name="Support", send_as=("alice@contoso.com",))


def state(inputs: dict[str, object] | None = None, outputs: dict[str, object] | None = None) -> SimpleNamespace:
    return SimpleNamespace(inputs=inputs, outputs=outputs)


def test_update_step_lists_grant_level_lines_in_text_markdown_and_json() -> None:
    step = step_plan("update", state(outputs=OLD.to_props()), state(inputs=NEW.to_props()))
    assert step is not None
    plan = Plan([step])
    text = plan.render_text()
    assert 'support@contoso.com  ~ display name "Help" → "Support"' in text
    assert "support@contoso.com  + Send As  alice@contoso.com" in text
    assert "support@contoso.com  - member  bob@contoso.com" in text
    assert "1 to add, 1 to change, 1 to remove" in text
    md = plan.render_markdown()
    assert "#### `support@contoso.com`" in md and "```diff" in md and "- member  bob@contoso.com" in md
    assert "**1 removal(s)**" in md
    data = json.loads(plan.to_json())
    assert data["has_changes"] and data["removals"] == 1
    assert {c["right"] for c in data["mailboxes"][0]["changes"]} == {"display_name", "send_as", "member"}


def test_delete_step_is_a_release_and_same_is_nothing() -> None:
    released = step_plan("delete", state(outputs=OLD.to_props()), None)
    same = step_plan("same", state(outputs=NEW.to_props()), state(inputs=NEW.to_props()))
    plan = Plan([p for p in (released, same) if p])
    assert plan.released == ["support@contoso.com"] and plan.removals == []
    assert "release from management (mailbox and access are kept)" in plan.render_text()
    assert Plan([same] if same else []).render_text().startswith("No changes")
    assert step_plan("create", None, state(inputs={"not": "ours"})) is None
