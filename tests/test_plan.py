"""Plan rendering: text, Markdown and JSON of the grant-level changes (core.compare, as the provider diffs)."""

from __future__ import annotations

import json

from mailroom.core.compare import changes
from mailroom.core.spec import Grant, MailboxSpec
from mailroom.engine.plan import MailboxPlan, Plan

OLD = MailboxSpec(address="support@contoso.com", display_name="Help", members=(Grant("bob@contoso.com"),))
NEW = MailboxSpec(address="support@contoso.com", display_name="Support", send_as=("alice@contoso.com",))


def update(old: MailboxSpec, new: MailboxSpec) -> MailboxPlan:
    return MailboxPlan(new.address, "update", changes(new, old))


def test_update_step_lists_grant_level_lines_in_text_markdown_and_json() -> None:
    plan = Plan([update(OLD, NEW)])
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


def test_a_release_is_guarded_and_same_is_nothing() -> None:
    released = MailboxPlan(OLD.address, "release")
    same = update(NEW, NEW)
    plan = Plan([released, same])
    assert plan.released == ["support@contoso.com"] and plan.removals == [] and plan.guarded == 1
    assert "release from management (mailbox and access are kept)" in plan.render_text()
    assert Plan([same]).render_text().startswith("No changes")


HOSTILE = [
    "x\n```\n<!-- everything below is hidden",
    "````",
    "<script>alert(1)</script>",
    "\x1b[2J\x1b[31mall clear",
    "\u202egnp.exe",
    "a\u2028b\u0085c\u200bd",
]


def test_tenant_values_cannot_break_out_of_the_plan() -> None:
    # Display names as the tenant holds them (set by hand, so never validated) reach the plan as `before`.
    steps = []
    for i, name in enumerate(HOSTILE):
        old = MailboxSpec(address=f"m{i}@contoso.com", display_name=name, members=(Grant("bob@contoso.com"),))
        new = MailboxSpec(address=f"m{i}@contoso.com", display_name="Plain")
        steps.append(update(old, new))
    plan = Plan(steps)
    md = plan.render_markdown()
    # Walk the Markdown as GitHub does: each block opens with a fence and closes with the same fence;
    # nothing between the blocks is a fence, and no HTML comment stands outside a block.
    fence, blocks = "", 0
    for line in md.splitlines():
        if not fence:
            assert "<!--" not in line and "<script" not in line, line
            if line.startswith("```"):
                fence, blocks = line.removesuffix("diff"), blocks + 1
        elif line == fence:
            fence = ""
    assert not fence and blocks == len(HOSTILE)
    for i in range(len(HOSTILE)):
        block = md.split(f"#### `m{i}@contoso.com`", 1)[1].split("```diff", 1)[1].split("\n```", 1)[0]
        assert "- member  bob@contoso.com" in block  # the removal below the hostile line is still shown
    text = plan.render_text()
    for out in (md, text, plan.to_json()):
        assert "\x1b" not in out and "\u202e" not in out and "\u2028" not in out and "\u0085" not in out
    assert "\\u001b[2J" in text and "\\u202egnp.exe" in text  # shown, escaped, not dropped
    assert md.count("**6 removal(s)**") == 1
