"""Every validation rule with a failing and a passing example, on real files."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from mailroom.cli.main import main
from mailroom.core.textsafe import UNSAFE
from mailroom.file.findings import Severity
from mailroom.file.load import load_desired

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
    assert exc.value.code == 64  # EX_USAGE (the CLI contract, ccbd8b5)
    assert main(["validate", str(tmp_path / "missing.yaml")]) == 1
    assert "file-not-found" in capsys.readouterr().out


def test_schema_fast_path_agrees_with_jsonschema() -> None:
    """The compiled yes/no check and jsonschema must agree on valid and invalid mailboxes."""
    from jsonschema import Draft202012Validator
    from mailroom.file import schema as schema_mod
    from mailroom.file.schema_fast import compile_schema

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
        # addresses: the SMTP pattern in every address-valued field
        {"address": "a b@b.co", "display_name": "A"}, {"address": " a@b.co", "display_name": "A"},
        {"address": "a@b", "display_name": "A"}, {"address": "s\u0430les@b.co", "display_name": "A"},
        {"address": "a@b.co", "display_name": "A", "owner": "boss"},
        {"address": "a@b.co", "display_name": "A", "aliases": ["x@b.co", "x@@b.co"]},
        {"address": "a@b.co", "display_name": "A", "members": ["x@b.co", "x"]},
        {"address": "a@b.co", "display_name": "A", "members": [{"user": "y@b..co"}]},
        {"address": "a@b.co", "display_name": "A", "members": [{"group": "g@b.c"}]},
        {"address": "a@b.co", "display_name": "A", "send_as": ["x@b.co\n"]},
        {"address": "a@b.co", "display_name": "A", "send_on_behalf": ["<x@b.co>"]},
        {"address": "a.b+c@sub.b.co", "display_name": "A", "owner": "o@b.co", "send_as": ["x@b.co"]},
    ]
    for sample in samples:
        assert fast(sample) == slow.is_valid(sample), sample
    include = schema_mod.include_schema()
    fast_include = compile_schema(include, documents={schema_mod.SCHEMA_PATH.name: root})
    slow_include = schema_mod._include_validator()
    for top in [{"mailboxes": []}, {"allow_empty": True, "version": 1}, {"tenant": {"domains": ["b.co"]}},
                {"mailboxes": [], "allow_empty": "yes"}, {"mailboxes": {}}, {"include": ["x"]}, {"version": 2}]:
        assert fast_include(top) == slow_include.is_valid(top), top
    fast_root = compile_schema(root)
    slow_root = Draft202012Validator(root)
    for top in [{"tenant": {"domains": ["contoso.com"]}}, {"tenant": {"domains": ["contoso"]}},
                {"tenant": {"domains": ["c\u043entoso.com"]}}, {"tenant": {"domains": ["-x.com"]}}]:
        assert fast_root(top) == slow_root.is_valid(top), top


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


# --- hostile input (issue 9): each test pins one refusal to its file, line, column and code.

MINI = "version: 1\ntenant: {domains: [contoso.com]}\n"
ONE = "mailboxes: [{address: a@contoso.com, display_name: A}]\n"


def found(path: Path) -> list[tuple[str, int, int]]:
    return [(f.code, f.line, f.column) for f in load_desired(str(path)).findings]


def test_include_patterns_cannot_leave_the_main_files_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "passwd.yaml").symlink_to("/etc/passwd")
    (tmp_path / "etc").symlink_to("/etc")
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include:\n  - ../../../../etc/*\n  - /etc/*\n  - d/*.yaml\n  - etc/*\n"
                         "  - '**/passwd*'\n")
    result = load_desired(str(main_file))
    assert sorted((f.code, f.line, f.column) for f in result.findings) == [
        ("include-absolute", 6, 5), ("include-outside", 5, 5), ("include-outside", 7, 5),
        ("include-outside", 8, 5), ("include-outside", 9, 5), ("include-outside", 9, 5)]
    assert all(f.file.endswith("m.yaml") and f.pointer.startswith("/include/") for f in result.findings)
    assert not any("root:" in f.message for f in result.findings)  # nothing outside is read or quoted
    assert result.desired is None


def test_include_refuses_non_regular_files_without_opening_them(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")  # opening it for reading would block until a writer comes
    (tmp_path / "adir.yaml").mkdir()
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include: ['*.yaml']\n")
    findings = load_desired(str(main_file)).findings
    assert [(f.code, f.line, f.column) for f in findings] == [("include-not-a-file", 4, 11)] * 2
    assert {"a named pipe (FIFO)" in f.message or "a directory" in f.message for f in findings} == {True}


def test_include_walk_is_capped_in_matches_and_depth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailroom.file import load as load_mod

    monkeypatch.setattr(load_mod, "MAX_INCLUDE_MATCHES", 3)
    monkeypatch.setattr(load_mod, "MAX_INCLUDE_DEPTH", 2)
    (tmp_path / "d").mkdir()
    for i in range(4):
        (tmp_path / "d" / f"{i}.yaml").write_text(f"mailboxes: [{{address: m{i}@contoso.com, display_name: M}}]\n")
    (tmp_path / "x" / "y" / "z").mkdir(parents=True)
    (tmp_path / "x" / "y" / "z" / "deep.yaml").write_text("mailboxes: [{address: z@contoso.com, display_name: Z}]\n")
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include: ['d/*.yaml', 'x/**/*.yaml']\n")
    result = load_desired(str(main_file))
    assert [(f.code, f.column) for f in result.findings] == [("include-too-many", 11), ("include-too-deep", 23)]
    (tmp_path / "d" / "3.yaml").unlink()
    monkeypatch.setattr(load_mod, "MAX_INCLUDE_DEPTH", 3)
    result = load_desired(str(main_file))
    assert result.findings == [] and result.desired is not None and len(result.desired.mailboxes) == 5


def test_globstar_walk_looks_at_a_bounded_number_of_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailroom.file import load as load_mod

    monkeypatch.setattr(load_mod, "MAX_INCLUDE_SCAN", 50)
    for i in range(60):
        (tmp_path / f"junk{i}").mkdir()
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include: ['**/*.yaml']\n")
    assert found(main_file) == [("include-too-many", 4, 11)]


@pytest.mark.parametrize("body,code,line,column", [
    ("mailboxes:\n", "no-mailboxes", 3, 1),
    ("mailboxes: []\n", "no-mailboxes", 3, 1),
    ("", "no-mailboxes", 1, 1),
    ("allow_empty: true\nmailboxes: []\n", None, 0, 0),
])
def test_a_file_without_mailboxes_is_an_error_unless_it_says_so(
        tmp_path: Path, body: str, code: str | None, line: int, column: int) -> None:
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + body)
    result = load_desired(str(main_file))
    assert found(main_file) == ([(code, line, column)] if code else [])
    assert result.ok(strict=True) is (code is None)


def test_an_included_file_without_mailboxes_is_an_error_unless_it_says_so(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sales.yaml").write_text("# sales\nmailboxes:\n")
    (tmp_path / "d" / "hr.yaml").write_text("mailboxes: [{address: hr@contoso.com, display_name: HR}]\n")
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + "include: ['d/*.yaml']\nmailboxes: []\n")  # main empty, includes are not: fine
    result = load_desired(str(main_file))
    assert [(f.code, f.file.endswith("sales.yaml"), f.line) for f in result.findings] == [("no-mailboxes", True, 2)]
    (tmp_path / "d" / "sales.yaml").write_text("allow_empty: true\nmailboxes: []\n")
    assert load_desired(str(main_file)).findings == []
    (tmp_path / "d" / "sales.yaml").write_text("")
    assert [f.code for f in load_desired(str(main_file)).findings] == ["empty-file"]


def test_include_entry_object_form_is_schema_checked(tmp_path: Path) -> None:
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include: [{pattern: 'x/*.yaml', optinal: true}, {optional: true}]\n")
    codes_found = sorted(f.code for f in load_desired(str(main_file)).findings)
    assert codes_found == ["wrong-type", "wrong-type"]


def test_mixed_type_keys_are_text_not_a_crash(tmp_path: Path) -> None:
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "1: one\nb: two\nnull: three\n2.5: four\ntrue: five\n")
    assert [(c, ln) for c, ln, _ in found(main_file)] == [
        ("unknown-field", 4), ("unknown-field", 5), ("unknown-field", 6), ("unknown-field", 7), ("unknown-field", 8)]


@pytest.mark.parametrize("text,code,line,column", [
    ("x: &a [1, [2, *a]]\n", "yaml-recursive-alias", 1, 4),
    ("x: &a {y: *a}\n", "yaml-recursive-alias", 1, 4),
    # the file's own mapping is the first level, so the 32nd bracket is one too many
    ("x: " + "[" * 1000 + "]" * 1000 + "\n", "yaml-too-deep", 1, 35),
    ("x: " + "{a: " * 40 + "b" + "}" * 40 + "\n", "yaml-too-deep", 1, 128),
    ("x:\n" + "- " * 40 + "v\n", "yaml-too-deep", 2, 63),
    ("x: !!python/object/apply:os.system [id]\n", "yaml-tag", 1, 4),
    ("x: !custom text\n", "yaml-tag", 1, 4),
    ("<<: 5\n", "yaml-merge", 1, 5),
])
def test_hostile_yaml_is_a_located_error(tmp_path: Path, text: str, code: str, line: int, column: int) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    assert found(path) == [(code, line, column)]


def test_file_size_is_capped_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailroom.file import source

    monkeypatch.setattr(source, "MAX_FILE_BYTES", 100)
    path = tmp_path / "m.yaml"
    path.write_text(MINI + ONE + "#" * 100 + "\n")
    assert found(path) == [("file-too-large", 1, 1)]
    path.write_text(MINI[:90])
    assert "file-too-large" not in [c for c, _, _ in found(path)]


@pytest.mark.parametrize("raw,code,line,column", [
    (b"\xff\xfeversion: 1\n", "not-utf8", 1, 1),
    ("version: 1\n".encode("utf-16-le"), "not-utf8", 1, 1),
    (b"version: 1\nname: caf\xe9\n", "not-utf8", 2, 10),
    (b"version: 1\nname: a\x00b\n", "unsafe-character", 2, 8),
])
def test_encodings_are_located_errors(tmp_path: Path, raw: bytes, code: str, line: int, column: int) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(raw)
    assert found(path) == [(code, line, column)]


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + (MINI + ONE).encode())
    assert found(path) == []


UNSAFE_FIELDS = [
    ("display_name", 'display_name: "Sup\\u202eport"', "/mailboxes/0/display_name"),
    ("address", 'address: "s\\u200b@contoso.com"', "/mailboxes/0/address"),
    ("alias", 'aliases: ["help@contoso.com\\n"]', "/mailboxes/0/aliases/0"),
    ("owner", 'owner: "\\e[31mo@contoso.com"', "/mailboxes/0/owner"),
    ("member", 'members: ["m@contoso.com\\t"]', "/mailboxes/0/members/0"),
    ("user", 'members: [{user: "\\u2066m@contoso.com"}]', "/mailboxes/0/members/0/user"),
    ("group", 'members: [{group: "g\\x9b@contoso.com"}]', "/mailboxes/0/members/0/group"),
    ("send_as", 'send_as: ["s\\u061c@contoso.com"]', "/mailboxes/0/send_as/0"),
    ("send_on_behalf", 'send_on_behalf: ["s\\ufeff@contoso.com"]', "/mailboxes/0/send_on_behalf/0"),
]


@pytest.mark.parametrize("name,line,pointer_", UNSAFE_FIELDS, ids=[u[0] for u in UNSAFE_FIELDS])
def test_unsafe_characters_are_refused_in_every_free_text_field(
        tmp_path: Path, name: str, line: str, pointer_: str) -> None:
    path = tmp_path / "m.yaml"
    fields = {"address": "address: s@contoso.com", "display_name": "display_name: S"}
    key = line.split(":")[0]
    fields[key] = line
    body = "".join(f"    {v}\n" for v in fields.values()).replace("    ", "  - ", 1)
    path.write_text(MINI + "mailboxes:\n" + body)
    unsafe = [f for f in load_desired(str(path)).findings if f.code == "unsafe-character"]
    assert [(f.pointer, f.line) for f in unsafe] == [(pointer_, {"address": 4, "display_name": 5}.get(key, 6))]
    assert "U+" in unsafe[0].message and UNSAFE.search(unsafe[0].message) is None


def test_unsafe_characters_in_domains_include_patterns_keys_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text('version: 1\ntenant: {domains: ["contoso.com\\u200b"]}\ninclude: ["d/\\n*.yaml"]\n'
                    '"ke\\u202ey": 1\n' + ONE + "# safe comment \u202e hidden\n")
    assert sorted((f.pointer, f.line, f.column) for f in load_desired(str(path)).findings
                  if f.code == "unsafe-character") == [
        ("", 6, 16), ("/include/0", 3, 11), ("/ke\\u202ey", 4, 1), ("/tenant/domains/0", 2, 20)]


def test_addresses_must_be_ascii_and_the_lookalike_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MINI + "mailboxes:\n  - address: s\u0430les@contoso.com\n    display_name: S\n"
                    "    owner: b\u043eb@contoso.com\n")
    findings = load_desired(str(path)).findings
    assert [(f.code, f.line, f.pointer) for f in findings] == [
        ("address-not-ascii", 4, "/mailboxes/0/address"), ("address-not-ascii", 6, "/mailboxes/0/owner")]
    assert "U+0430 (CYRILLIC SMALL LETTER A) at position 2" in findings[0].message


def test_messages_and_annotations_cannot_be_broken_out_of(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from mailroom.cli.validate import render_github, render_text
    from mailroom.file.findings import Finding

    path = tmp_path / "m.yaml"
    path.write_text(MINI + 'mailboxes:\n  - address: "x\\n::error file=m.yaml,line=1::forged"\n'
                    '    display_name: "\\e]0;title\\a"\n    hidden: 1\n')
    assert main(["validate", str(path), "--format", "github"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all(line.startswith("::error file=") for line in out)
    forged = Finding("a\nb", 1, 1, "/x\ny", Severity.ERROR, "c", "line\n::error::forged\x1b[2J")
    assert "\n" not in forged.message and "\x1b" not in forged.message and "\n" not in forged.file
    assert render_text([forged]).count("\n") == 1 and render_github([forged]).count("\n") == 1


def test_owner_outside_the_tenant_is_external(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MINI + "policy: {allow_external_members: false}\nmailboxes:\n  - address: s@contoso.com\n"
                    "    display_name: S\n    owner: boss@fabrikam.com\n")
    assert found(path) == [("external-member", 7, 12)]
    assert [f.pointer for f in load_desired(str(path)).findings] == ["/mailboxes/0/owner"]
    path.write_text(path.read_text().replace("false", "true"))
    assert found(path) == []


def test_a_mailbox_address_used_as_a_person_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MINI + "mailboxes:\n  - address: alice@contoso.com\n    display_name: Alice?\n"
                    "  - address: s@contoso.com\n    display_name: S\n    owner: ALICE@contoso.com\n"
                    "    aliases: [bob@contoso.com]\n    members: [bob@contoso.com]\n")
    result = load_desired(str(path))
    assert [(f.code, f.severity, f.line, f.pointer) for f in result.findings] == [
        ("address-is-person", Severity.WARNING, 4, "/mailboxes/0/address"),
        ("address-is-person", Severity.WARNING, 9, "/mailboxes/1/aliases/0")]
    assert "the owner of s@contoso.com" in result.findings[0].message
    assert "refuse to adopt a user's mailbox" in result.findings[0].message
    assert result.ok() and not result.ok(strict=True)


def test_main_file_must_be_a_regular_file_in_its_own_directory(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").symlink_to("/etc/passwd")
    assert found(tmp_path / "m.yaml") == [("file-outside", 1, 1)]
    os.mkfifo(tmp_path / "f.yaml")
    assert found(tmp_path / "f.yaml") == [("not-a-regular-file", 1, 1)]
    (tmp_path / "real.yaml").write_text(MINI + ONE)
    (tmp_path / "link.yaml").symlink_to("real.yaml")
    assert found(tmp_path / "link.yaml") == []


# --- issue 10: the file format, tightened


def test_the_schemas_smtp_pattern_is_mailrooms_own() -> None:
    """Editors check addresses with the schema's pattern, validate with identity's: they are one."""
    from mailroom.core import identity
    from mailroom.file import schema as schema_mod

    defs = schema_mod.schema()["$defs"]
    assert defs["smtp"]["pattern"] == identity._SMTP.pattern
    assert identity._SMTP.pattern.endswith("@" + defs["domain"]["pattern"].lstrip("^"))
    assert all(c.isascii() for c in defs["smtp"]["pattern"] + defs["domain"]["pattern"])


ADDRESS_FIELDS = [
    ("address", '    address: "support@contoso"\n    display_name: S\n', 9, "/mailboxes/0/address"),
    ("alias", '    address: s@contoso.com\n    display_name: S\n    aliases: ["help contoso.com"]\n', 11,
     "/mailboxes/0/aliases/0"),
    ("owner", '    address: s@contoso.com\n    display_name: S\n    owner: alice\n', 11, "/mailboxes/0/owner"),
    ("member", '    address: s@contoso.com\n    display_name: S\n    members: ["a@contoso.com", "b@"]\n', 11,
     "/mailboxes/0/members/1"),
    ("user", '    address: s@contoso.com\n    display_name: S\n    members: [{user: "u@@contoso.com"}]\n', 11,
     "/mailboxes/0/members/0/user"),
    ("group", '    address: s@contoso.com\n    display_name: S\n    members: [{group: "g@contoso..com"}]\n', 11,
     "/mailboxes/0/members/0/group"),
    ("send_as", '    address: s@contoso.com\n    display_name: S\n    send_as: [" a@contoso.com"]\n', 11,
     "/mailboxes/0/send_as/0"),
    ("send_on_behalf", '    address: s@contoso.com\n    display_name: S\n    send_on_behalf: ["<a@contoso.com>"]\n',
     11, "/mailboxes/0/send_on_behalf/0"),
]


@pytest.mark.parametrize("name,body,line,pointer_", ADDRESS_FIELDS, ids=[a[0] for a in ADDRESS_FIELDS])
def test_every_address_field_is_checked_once_at_its_line(tmp_path: Path, name: str, body: str, line: int,
                                                         pointer_: str) -> None:
    path = write(tmp_path, "  -" + body[3:])
    result = load_desired(str(path))
    assert [(f.code, f.line, f.pointer) for f in result.findings] == [("address-syntax", line, pointer_)]
    assert "is not a valid SMTP address" in result.findings[0].message and result.desired is None


def test_a_bad_accepted_domain_is_located_and_the_others_still_count(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\ntenant:\n  domains: [contoso.com, 'fabr\u0456kam.com', localhost]\n"
                    "mailboxes: [{address: a@example.com, display_name: A}]\n")
    found_ = [(f.code, f.line, f.pointer) for f in load_desired(str(path)).findings]
    assert found_ == [("address-not-ascii", 3, "/tenant/domains/1"), ("address-syntax", 3, "/tenant/domains/2"),
                      ("domain-not-accepted", 4, "/mailboxes/0/address")]


def test_yaml_1_2_booleans_yes_is_text_not_true(tmp_path: Path) -> None:
    """PyYAML reads YAML 1.1 (yes/no/on/off are booleans); the schema and editors read YAML 1.2."""
    body = "  - address: s@contoso.com\n    display_name: S\n    sign_in_blocked: {}\n"
    path = write(tmp_path, body.format("yes"))
    result = load_desired(str(path))
    assert [(f.code, f.line, f.column, f.pointer) for f in result.findings] == [
        ("wrong-type", 11, 20, "/mailboxes/0/sign_in_blocked")]
    assert 'got "yes"' in result.findings[0].message
    for spelling, value in (("true", True), ("True", True), ("TRUE", True), ("false", False), ("FALSE", False)):
        result = load_desired(str(write(tmp_path, body.format(spelling))))
        assert result.findings == [] and result.desired is not None
        assert result.desired.mailboxes[0].sign_in_blocked is value


def test_yaml_1_2_core_scalars() -> None:
    from mailroom.file.source import loads

    data = loads("a: [yes, No, on, OFF, y, n, true, False, null, ~, 0o17, 0x1F, 017, 1:20, 1_000, 1e3, -.inf, "
                 "2026-01-01, +12, '12', !!int 12]\n", "t.yaml").data
    assert data["a"] == ["yes", "No", "on", "OFF", "y", "n", True, False, None, None, 15, 31, 17, "1:20", "1_000",
                         1000.0, float("-inf"), "2026-01-01", 12, "12", 12]
    assert type(data["a"][6]) is bool and type(data["a"][10]) is int


def test_a_bad_policy_value_is_located_and_the_other_policies_still_apply(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\ntenant: {domains: [contoso.com]}\npolicy:\n  require_owner: true\n"
                    "  max_members: lots\n  allow_external_members: false\n"
                    "mailboxes:\n  - address: s@contoso.com\n    display_name: S\n"
                    "    members: [x@fabrikam.com]\n")
    found_ = [(f.code, f.line, f.pointer) for f in load_desired(str(path)).findings]
    assert found_ == [("wrong-type", 5, "/policy/max_members"), ("owner-required", 8, "/mailboxes/0"),
                      ("external-member", 10, "/mailboxes/0/members/0")]


def test_a_bad_default_falls_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("version: 1\ntenant: {domains: [contoso.com]}\n"
                    "defaults: {automap: maybe, sign_in_blocked: false, sent_items: {copy_send_as: 1, "
                    "copy_send_on_behalf: false}}\nmailboxes: [{address: s@contoso.com, display_name: S}]\n")
    result = load_desired(str(path))
    assert [(f.code, f.pointer) for f in result.findings] == [
        ("wrong-type", "/defaults/automap"), ("wrong-type", "/defaults/sent_items/copy_send_as")]
    from mailroom.file.load import _build

    docs = list(result.documents.values())
    desired, _ = _build(docs, set(), {f.pointer for f in result.findings})
    assert desired.defaults.sign_in_blocked is False and desired.defaults.automap is True
    assert desired.defaults.sent_items.copy_send_as is True and desired.defaults.sent_items.copy_send_on_behalf is False


def test_defaults_are_the_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load builds from the model's dataclass defaults: change one there and the file follows."""
    from mailroom.core.model import Defaults, Policy, Protocols, SentItems

    monkeypatch.setattr(Policy.__init__, "__defaults__", (True, 7, True, True, 4, False, (), None))
    monkeypatch.setattr(SentItems.__init__, "__defaults__", (False, False))
    monkeypatch.setattr(Protocols.__init__, "__defaults__", (True, True, True, True, None, False, False))
    monkeypatch.setattr(Defaults.__init__, "__defaults__", (False, False, SentItems(True, True), False, True,
                                                            Protocols(True, True, True, True, None, False, False)))
    path = tmp_path / "m.yaml"
    path.write_text(MINI + "policy: {max_members: 9, require_owner: false}\n" + ONE)
    desired = load_desired(str(path)).desired
    assert desired is not None
    assert desired.policy == Policy(False, 9, True, True, 4, False, (), None)
    assert desired.defaults == Defaults(False, False, SentItems(False, False), False, True,
                                        Protocols(True, True, True, True, None, False, False))
    mb = desired.mailboxes[0]
    assert (mb.sign_in_blocked, mb.audit_enabled, mb.hidden_from_gal) == (False, False, True)
    assert mb.protocols == Protocols(True, True, True, True, None, False, False)


def test_included_files_have_their_own_schema(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator
    from mailroom.file import schema as schema_mod

    include = schema_mod.include_schema()
    assert set(include["properties"]) == {"mailboxes", "allow_empty", "version"}
    Draft202012Validator.check_schema(include)
    for shipped in sorted((ROOT / "mailboxes.d").glob("*.yaml")):
        assert shipped.read_text().splitlines()[0] == \
            "# yaml-language-server: $schema=../schema/mailboxes-include.schema.json"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.yaml").write_text("allow_empty: true\nmailboxs: []\ndefaults: {automap: false}\n")
    main_file = tmp_path / "m.yaml"
    main_file.write_text(MINI + ONE + "include: ['d/*.yaml']\n")
    findings = load_desired(str(main_file)).findings
    assert [(f.code, f.line, f.pointer) for f in findings] == [
        ("unknown-field", 2, "/mailboxs"), ("include-redefines", 3, "/defaults")]
    assert "did you mean `mailboxes`?" in findings[0].message


def test_protocols_merge_key_by_key_and_each_mistake_is_at_its_line(tmp_path: Path) -> None:
    from mailroom.core.model import Protocols

    head = "version: 1\ntenant: {domains: [contoso.com]}\ndefaults:\n  protocols: {imap: true, smtp_auth: null}\n"
    body = "mailboxes:\n  - address: a@contoso.com\n    display_name: A\n    protocols: {pop: true}\n" \
           "  - address: b@contoso.com\n    display_name: B\n"
    path = tmp_path / "m.yaml"
    path.write_text(head + body)
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    a, b = result.desired.mailboxes
    # The profile: mailroom's secure one, but for what defaults.protocols says; a mailbox's own keys on top.
    assert b.protocols == Protocols(imap=True, smtp_auth=None)
    assert a.protocols == Protocols(pop=True, imap=True, smtp_auth=None)
    policy = "policy: {protocols_at_profile: true}\n"
    path.write_text(head + policy + body.replace("{pop: true}", "{pop: true, ews: false}")
                    + "    protocols: {imap: yes, fax: false}\n")
    assert codes(path) == [("protocols-off-profile", 9, "error"), ("wrong-type", 12, "error"),
                           ("unknown-field", 12, "error")]
    message = next(f.message for f in load_desired(str(path)).findings if f.code == "protocols-off-profile")
    assert message == "a@contoso.com sets POP on, but defaults.protocols says off; policy.protocols_at_profile is on"


def test_forwarding_out_of_the_organisation_fails_at_its_line_unless_the_domain_is_allowed(tmp_path: Path) -> None:
    from mailroom.core.model import Forwarding

    head = "version: 1\ntenant: {domains: [contoso.com]}\n"
    body = "mailboxes:\n  - address: a@contoso.com\n    display_name: A\n    forwarding:\n" \
           "      to: someone@gmail.com\n  - address: b@contoso.com\n    display_name: B\n" \
           "    forwarding: {to: alice@contoso.com, keep_copy: false}\n" \
           "  - address: c@contoso.com\n    display_name: C\n    aliases: [c2@contoso.com]\n" \
           "    forwarding: {to: C2@contoso.com}\n"
    path = tmp_path / "m.yaml"
    path.write_text(head + body)
    found = load_desired(str(path)).findings
    assert [(f.code, f.line, f.pointer) for f in found] == [
        ("forward-external", 7, "/mailboxes/0/forwarding/to"), ("forward-to-self", 14, "/mailboxes/2/forwarding/to")]
    assert "CIS 6.2.1" in found[0].message and "'gmail.com'" in found[0].message
    path.write_text(head + "policy: {allowed_forward_domains: [gmail.com]}\n" + body.replace("C2@", "alice@"))
    result = load_desired(str(path))
    assert result.findings == [] and result.desired is not None
    a, b, _ = result.desired.mailboxes
    assert (a.forwarding, b.forwarding) == (Forwarding("someone@gmail.com"), Forwarding("alice@contoso.com", False))
    # How each is written: inside the organisation a recipient (ForwardingAddress), outside an SMTP address.
    from mailroom.core.spec import MailboxSpec

    specs = [MailboxSpec.from_model(m, result.desired.domains) for m in (a, b)]
    assert [(s.forwarding_address, s.forwarding_smtp, s.forward_keep_copy) for s in specs] == [
        ("", "someone@gmail.com", True), ("alice@contoso.com", "", False)]
