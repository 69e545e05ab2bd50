"""The YAML import writes and re-import edits: pure text in, text out, read back by the real loader."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from mailroom.core.model import DEFAULTS, POLICY, Defaults, Mailbox, Member, Policy, SentItems
from mailroom.file import emit
from mailroom.file.emit import Entry
from mailroom.file.load import load_desired
from mailroom.file.merge import merge
from mailroom.file.source import loads

SUPPORT = Mailbox(
    address="support@contoso.com", display_name="Support: first line",
    aliases=("help@contoso.com",),
    members=(Member("alice@contoso.com", True), Member("carol@contoso.com", False),
             Member("support-team@contoso.com", True, is_group=True)),
    send_as=("alice@contoso.com",), send_on_behalf=("carol@contoso.com",),
    hidden_from_gal=True, sent_items=SentItems(copy_send_as=False, copy_send_on_behalf=True))
INFO = Mailbox(address="info@contoso.com", display_name="Info", members=(Member("dave@contoso.com", True),))


def write(tmp: Path, entries: list[Entry], defaults: Defaults = DEFAULTS, policy: Policy = POLICY) -> Path:
    path = tmp / "mailboxes.yaml"
    path.write_text(emit.main_file("./schema/mailboxes.schema.json", ["imported"], ["contoso.com"], defaults,
                                   policy, {}, [], entries))
    return path


def model(mb: Mailbox) -> Mailbox:
    return replace(mb, origin=None, members=tuple(replace(m, automap_explicit=False) for m in mb.members))


@pytest.mark.parametrize("text", ["Support", "Info: general", "yes", "no", "true", "False", "null", "~", "123",
                                  "0x1F", "1e3", "- dash", "#hash", "a #b", "trailing ", "@at", "Ünïcödé",
                                  "it's", "quote\"d", "[x]", "{y}", "*star", "&amp", "!bang", "%pct", "'single'"])
def test_a_scalar_reads_back_as_the_same_text(text: str) -> None:
    doc = loads(f"key: {emit.scalar(text)}\n", "t.yaml")
    assert doc.data == {"key": text}


def test_what_import_writes_loads_back_as_the_same_mailboxes(tmp_path: Path) -> None:
    path = write(tmp_path, [Entry(INFO), Entry(SUPPORT)])
    result = load_desired(str(path))
    assert result.errors == [] and result.desired is not None
    by_key = {mb.key: model(mb) for mb in result.desired.mailboxes}
    assert by_key == {"info@contoso.com": INFO, "support@contoso.com": SUPPORT}


def test_settings_equal_to_the_defaults_are_left_out_and_groups_carry_no_automap(tmp_path: Path) -> None:
    text = write(tmp_path, [Entry(SUPPORT)]).read_text()
    assert "    hidden_from_gal: true\n" in text and "copy_send_on_behalf: true" not in text.split("mailboxes:")[1]
    assert "    sent_items: {copy_send_as: false}\n" in text
    assert "      - group: support-team@contoso.com\n" in text
    assert "      - user: carol@contoso.com\n        automap: false\n" in text
    assert "audit" not in text.split("mailboxes:")[1] and "sign_in_blocked" not in text.split("mailboxes:")[1]
    assert text.startswith("# yaml-language-server: $schema=./schema/mailboxes.schema.json\n")


def test_owner_null_is_written_when_policy_requires_owners_and_is_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, [Entry(INFO, owner_unknown=True)], policy=Policy(require_owner=True))
    result = load_desired(str(path))
    assert result.errors == []
    assert [f.code for f in result.warnings] == ["owner-unknown"]


def test_notes_are_comments_on_their_mailbox(tmp_path: Path) -> None:
    text = write(tmp_path, [Entry(INFO, ("not imported: Full Access for S-1-5-21-1-2-3-1002",))]).read_text()
    assert text.endswith("    # not imported: Full Access for S-1-5-21-1-2-3-1002\n")


HAND = """\
# yaml-language-server: $schema=./schema/mailboxes.schema.json
# Our shared mailboxes (comment kept)
version: 1
tenant:
  domains: [contoso.com]
mailboxes:
  # the front line
  - address: support@contoso.com
    display_name: "Support: first line"
    owner: alice@contoso.com   # accountable
    aliases: [help@contoso.com]
    members:
      - alice@contoso.com      # team lead
      - user: carol@contoso.com
        automap: false
      - group: support-team@contoso.com
    send_as: [alice@contoso.com]   # only alice
    send_on_behalf: [carol@contoso.com]
    hidden_from_gal: true
    sent_items: {copy_send_as: false}

  - address: info@contoso.com
    display_name: Info
    members: [dave@contoso.com]
"""


def merged(tmp: Path, tenant: dict[str, Entry], text: str = HAND) -> tuple[str, list[str]]:
    path = tmp / "mailboxes.yaml"
    path.write_text(text)
    result = load_desired(str(path))
    assert result.desired is not None, result.findings
    desired = result.desired
    docs = {p: d for p, d in result.documents.items()}
    existing = {(mb.origin.file, mb.origin.index): mb for mb in desired.mailboxes if mb.origin}
    out = merge(docs, {p: Path(p).read_text() for p in docs}, existing, desired.defaults, tenant,
                lambda key: True, set(), lambda entry: desired.files[0])
    return out.text.get(desired.files[0], text), out.changes


def diff(old: str, new: str) -> tuple[list[str], list[str]]:
    a, b = old.splitlines(), new.splitlines()
    return [x for x in a if x not in b], [x for x in b if x not in a]


def test_merge_of_an_unchanged_tenant_changes_nothing(tmp_path: Path) -> None:
    text, changes = merged(tmp_path, {"support@contoso.com": Entry(SUPPORT), "info@contoso.com": Entry(INFO)})
    assert text == HAND and changes == []


def test_merge_of_one_out_of_band_change_rewrites_exactly_that_line(tmp_path: Path) -> None:
    changed = replace(SUPPORT, send_as=("alice@contoso.com", "bob@contoso.com"))
    text, changes = merged(tmp_path, {"support@contoso.com": Entry(changed), "info@contoso.com": Entry(INFO)})
    assert diff(HAND, text) == (["    send_as: [alice@contoso.com]   # only alice"],
                                ["    send_as: [alice@contoso.com, bob@contoso.com]   # only alice"])
    assert changes == ["support@contoso.com: send_as changed"]


def test_merge_adds_and_removes_members_one_line_each_keeping_their_comments(tmp_path: Path) -> None:
    members = (Member("alice@contoso.com", True), Member("bob@contoso.com", True),
               Member("support-team@contoso.com", True, is_group=True))
    text, _ = merged(tmp_path, {"support@contoso.com": Entry(replace(SUPPORT, members=members)),
                                "info@contoso.com": Entry(INFO)})
    assert diff(HAND, text) == (["      - user: carol@contoso.com", "        automap: false"],
                                ["      - bob@contoso.com"])
    assert "      - alice@contoso.com      # team lead\n      - bob@contoso.com\n" in text


def test_merge_writes_a_setting_that_now_differs_and_drops_one_that_now_equals_the_default(tmp_path: Path) -> None:
    support = replace(SUPPORT, hidden_from_gal=False)
    info = replace(INFO, sign_in_blocked=False)
    text, changes = merged(tmp_path, {"support@contoso.com": Entry(support), "info@contoso.com": Entry(info)})
    assert diff(HAND, text) == (["    hidden_from_gal: true"], ["    sign_in_blocked: false"])
    assert text.endswith("    members: [dave@contoso.com]\n    sign_in_blocked: false\n")
    assert sorted(changes) == ["info@contoso.com: sign_in_blocked changed",
                               "support@contoso.com: hidden_from_gal changed"]


def test_merge_appends_a_new_mailbox_and_removes_one_that_is_gone(tmp_path: Path) -> None:
    sales = Mailbox(address="sales@contoso.com", display_name="Sales")
    text, changes = merged(tmp_path, {"support@contoso.com": Entry(SUPPORT), "sales@contoso.com": Entry(sales)})
    assert "info@contoso.com" not in text
    assert text.endswith("\n\n  - address: sales@contoso.com\n    display_name: Sales\n")
    assert "# the front line" in text and "# Our shared mailboxes (comment kept)" in text
    assert sorted(changes) == ["info@contoso.com: removed (no longer in the tenant)", "sales@contoso.com: added"]
    path = tmp_path / "mailboxes.yaml"
    path.write_text(text)
    assert load_desired(str(path)).errors == []
