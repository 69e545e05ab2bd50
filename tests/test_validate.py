"""Every validation rule with a failing and a passing example, on real files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from mailroom.cli import main
from mailroom.findings import Severity
from mailroom.load import load_desired

ROOT = Path(__file__).resolve().parents[1]

HEAD = """\
version: 1
tenant:
  domains: [contoso.com]
policy:
  require_owner: {require_owner}
  max_members: 3
  send_as_requires_member: true
mailboxes:
"""


def write(tmp: Path, body: str, name: str = "mailboxes.yaml", require_owner: bool = False) -> Path:
    path = tmp / name
    path.write_text(HEAD.format(require_owner=str(require_owner).lower()) + textwrap.dedent(body))
    return path


def codes(path: Path) -> list[tuple[str, int, str]]:
    return [(f.code, f.line, f.severity.value) for f in load_desired(str(path)).findings]


GOOD = """\
  - address: support@contoso.com
    display_name: Support
    owner: alice@contoso.com
    aliases: [help@contoso.com]
    members: [alice@contoso.com, {user: bob@contoso.com, automap: false}]
    send_as: [alice@contoso.com]
    send_on_behalf: [bob@contoso.com]
"""


def test_shipped_file_is_valid() -> None:
    result = load_desired(str(ROOT / "mailboxes.yaml"))
    assert result.errors == [] and result.warnings == []
    assert result.desired is not None and len(result.desired.mailboxes) >= 6
    assert len(result.desired.files) == 3  # main file plus two included department files


def test_good_example_is_valid(tmp_path: Path) -> None:
    result = load_desired(str(write(tmp_path, GOOD, require_owner=True)))
    assert result.findings == []
    mb = result.desired.mailboxes[0]  # type: ignore[union-attr]
    assert [m.automap for m in mb.members] == [True, False]
    assert mb.sign_in_blocked is True and mb.sent_items.copy_send_as is True and mb.audit_enabled is True


# (rule code, failing body, line of the finding, passing body)
CASES = [
    ("address-syntax", """\
  - address: "support at contoso.com"
    display_name: S
""", 9, """\
  - address: support@contoso.com
    display_name: S
"""),
    ("domain-not-accepted", """\
  - address: support@fabrikam.com
    display_name: S
""", 9, """\
  - address: support@CONTOSO.com
    display_name: S
"""),
    ("duplicate-address", """\
  - address: support@contoso.com
    display_name: S
  - address: info@contoso.com
    display_name: I
    aliases: [SUPPORT@Contoso.com]
""", 13, """\
  - address: support@contoso.com
    display_name: S
  - address: info@contoso.com
    display_name: I
    aliases: [support2@contoso.com]
"""),
    ("duplicate-entry", """\
  - address: support@contoso.com
    display_name: S
    members: [alice@contoso.com, ALICE@contoso.com]
""", 11, """\
  - address: support@contoso.com
    display_name: S
    members: [alice@contoso.com, bob@contoso.com]
"""),
    ("too-many-members", """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com, b@contoso.com, c@contoso.com, d@contoso.com]
""", 11, """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com, b@contoso.com, c@contoso.com]
"""),
    ("send-requires-member", """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com]
    send_on_behalf: [b@contoso.com]
""", 12, """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com, b@contoso.com]
    send_on_behalf: [B@contoso.com]
"""),
    ("external-member", """\
  - address: support@contoso.com
    display_name: S
    members: [a@fabrikam.com]
""", 11, """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com]
"""),
    ("automap-on-group", """\
  - address: support@contoso.com
    display_name: S
    members:
      - {group: team@contoso.com, automap: false}
""", 12, """\
  - address: support@contoso.com
    display_name: S
    members:
      - {group: team@contoso.com}
"""),
    ("send-rights-hidden", """\
  - address: support@contoso.com
    display_name: S
    hidden_from_gal: true
    members: [a@contoso.com]
    send_as: [a@contoso.com]
""", 13, """\
  - address: support@contoso.com
    display_name: S
    hidden_from_gal: true
    members: [a@contoso.com]
"""),
    ("unknown-field", """\
  - address: support@contoso.com
    display_name: S
    membrs: [a@contoso.com]
""", 11, """\
  - address: support@contoso.com
    display_name: S
    members: [a@contoso.com]
"""),
    ("wrong-type", """\
  - address: support@contoso.com
    display_name: S
    hidden_from_gal: sometimes
""", 11, """\
  - address: support@contoso.com
    display_name: S
    hidden_from_gal: false
"""),
    ("invalid-value", """\
  - address: support@contoso.com
    display_name: S
    state: gone
""", 11, """\
  - address: support@contoso.com
    state: absent
"""),
    ("missing-field", """\
  - address: support@contoso.com
""", 9, """\
  - address: support@contoso.com
    display_name: Support
"""),
]


@pytest.mark.parametrize("code,bad,line,good", CASES, ids=[c[0] for c in CASES])
def test_rule_fails_and_passes(tmp_path: Path, code: str, bad: str, line: int, good: str) -> None:
    found = codes(write(tmp_path, bad))
    assert [(c, ln) for c, ln, _ in found if c == code] == [(code, line)], found
    assert not [c for c, _, _ in codes(write(tmp_path, good, name="good.yaml")) if c == code]


def test_owner_required(tmp_path: Path) -> None:
    bad = "  - address: s@contoso.com\n    display_name: S\n"
    assert ("owner-required", 9, "error") in codes(write(tmp_path, bad, require_owner=True))
    assert codes(write(tmp_path, bad, require_owner=False)) == []
    good = bad + "    owner: alice@contoso.com\n"
    assert codes(write(tmp_path, good, name="g.yaml", require_owner=True)) == []


def test_alias_collision_across_domains(tmp_path: Path) -> None:
    body = """\
  - address: support@contoso.com
    display_name: S
  - address: support@contoso.co.uk
    display_name: S2
"""
    path = tmp_path / "m.yaml"
    path.write_text(HEAD.replace("[contoso.com]", "[contoso.com, contoso.co.uk]").format(require_owner="false")
                    + body)
    found = load_desired(str(path)).findings
    assert [(f.code, f.line) for f in found] == [("alias-collision", 11)]
    assert "m.yaml:9" in found[0].message
    path.write_text(path.read_text().replace("support@contoso.co.uk", "helpdesk@contoso.co.uk"))
    assert load_desired(str(path)).findings == []


def test_five_mistakes_in_one_run(tmp_path: Path) -> None:
    body = """\
  - address: support@contoso.com
    display_name: Support
    membrs: [a@contoso.com]
  - address: sales@fabrikam.com
    display_name: Sales
  - address: info@contoso.com
    display_name: Info
    members: [a@contoso.com, A@contoso.com]
  - address: hr@contoso.com
    display_name: HR
    hidden_from_gal: maybe
  - address: it@contoso.com
    display_name: IT
    members: [x@contoso.com]
    send_as: [y@contoso.com]
"""
    found = codes(write(tmp_path, body))
    assert [(c, ln) for c, ln, _ in found] == [
        ("unknown-field", 11), ("domain-not-accepted", 12), ("duplicate-entry", 16),
        ("wrong-type", 19), ("send-requires-member", 23)]


def test_duplicate_across_included_files_names_both(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.yaml").write_text(
        "mailboxes:\n  - address: shared@contoso.com\n    display_name: A\n")
    (tmp_path / "d" / "b.yaml").write_text(
        "# comment\nmailboxes:\n  - address: x@contoso.com\n    display_name: B\n"
        "    aliases: [Shared@Contoso.com]\n")
    main_file = tmp_path / "m.yaml"
    main_file.write_text("version: 1\ntenant: {domains: [contoso.com]}\ninclude: ['d/*.yaml']\nmailboxes: []\n")
    found = load_desired(str(main_file)).findings
    assert len(found) == 1 and found[0].code == "duplicate-address"
    assert found[0].file.endswith("b.yaml") and found[0].line == 5
    assert "a.yaml:2" in found[0].message


def test_include_no_match_is_an_error_unless_optional_and_redefinition_fails(tmp_path: Path) -> None:
    main_file = tmp_path / "m.yaml"
    mailbox = "mailboxes: [{address: a@contoso.com, display_name: A}]\n"
    main_file.write_text("version: 1\ntenant: {domains: [contoso.com]}\ninclude: ['nothing/*.yaml']\n" + mailbox)
    result = load_desired(str(main_file))
    assert [(f.code, f.severity, f.line, f.column) for f in result.findings] == [
        ("include-no-match", Severity.ERROR, 3, 11)]
    assert not result.ok()
    main_file.write_text("version: 1\ntenant: {domains: [contoso.com]}\n"
                         "include: [{pattern: 'nothing/*.yaml', optional: true}]\n" + mailbox)
    assert load_desired(str(main_file)).findings == []
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "x.yaml").write_text(
        "policy: {require_owner: true}\nmailboxes: [{address: b@contoso.com, display_name: B}]\n")
    assert [(f.code, f.line) for f in load_desired(str(main_file)).findings] == [("include-redefines", 1)]


@pytest.mark.parametrize("text,code,line", [
    ("", "empty-file", 1),
    ("version: 1\nmailboxes: [\n", "yaml-syntax", 3),
    ("version: 1\nversion: 1\ntenant: {domains: [contoso.com]}\nmailboxes: []\n", "yaml-duplicate-key", 2),
    ("a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
     "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "yaml-alias-expansion", None),
    ("- just\n- a list\n", "wrong-type", 1),
])
def test_unusable_yaml_is_a_clear_error(tmp_path: Path, text: str, code: str, line: int | None) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    found = load_desired(str(path)).findings
    assert found and found[0].code == code, found
    if line is not None:
        assert found[0].line == line


def test_small_anchors_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(HEAD.format(require_owner="false") + textwrap.dedent("""\
      - address: a@contoso.com
        display_name: A
        members: &team [x@contoso.com, y@contoso.com]
      - address: b@contoso.com
        display_name: B
        members: *team
    """))
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    assert [m.address for m in result.desired.mailboxes[1].members] == ["x@contoso.com", "y@contoso.com"]


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "mailboxes.yaml")]) == 0
    bad = write(tmp_path, "  - address: nope\n    display_name: N\n")
    capsys.readouterr()
    assert main(["validate", str(bad), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data and set(data[0]) == {"file", "line", "column", "pointer", "severity", "code", "message"}
    assert data[0]["pointer"] == "/mailboxes/0/address" and data[0]["line"] == 9
    assert main(["validate", str(bad), "--format", "github"]) == 1
    assert capsys.readouterr().out.startswith("::error file=")
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--format", "xml"])
    assert exc.value.code == 2
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    assert "file-not-found" in capsys.readouterr().out


def test_schema_fast_path_agrees_with_jsonschema() -> None:
    """The compiled yes/no check and jsonschema must agree on valid and invalid mailboxes."""
    from jsonschema import Draft202012Validator
    from mailroom import schema as schema_mod
    from mailroom.schema_fast import compile_schema

    root = schema_mod.schema()
    fast = compile_schema(root, root["$defs"]["mailbox"])
    slow = Draft202012Validator(root).evolve(schema=root["$defs"]["mailbox"])
    samples = [
        {"address": "a@b.co", "display_name": "A"}, {"address": "a@b.co"}, {"address": "a@b.co", "state": "absent"},
        {"address": "a@b.co", "display_name": "A", "members": ["x@b.co", {"user": "y@b.co", "automap": True}]},
        {"address": "a@b.co", "display_name": "A", "members": [{"user": "y@b.co", "group": "z@b.co"}]},
        {"address": "a@b.co", "display_name": "A", "members": [{"automap": True}]},
        {"address": "a@b.co", "display_name": "A", "hidden_from_gal": 1},
        {"address": "a@b.co", "display_name": "", "sent_items": {"copy_send_as": False}},
        {"address": 5, "display_name": "A"}, {"address": "a@b.co", "display_name": "A", "extra": 1},
        {"address": "a@b.co", "display_name": "A", "audit": {"enabled": "yes"}},
    ]
    for sample in samples:
        assert fast(sample) == slow.is_valid(sample), sample


def test_duplicate_address_is_reported_even_in_a_mailbox_with_a_schema_error(tmp_path: Path) -> None:
    body = """\
  - address: support@contoso.com
    display_name: Support
    membrs: [a@contoso.com]
  - address: info@contoso.com
    display_name: Info
    aliases: [SUPPORT@contoso.com]
"""
    found = codes(write(tmp_path, body))
    assert [(c, ln) for c, ln, _ in found] == [("unknown-field", 11), ("duplicate-address", 14)]
