"""`validate --format github|azure-devops|gitlab`: each CI system reads back exactly the findings, and no
value from the file can end an annotation, start another one or set one of its properties."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mailroom.cli.main import main
from mailroom.file.findings import Finding, Severity
from mailroom.views import annotations

MINI = "version: 1\ntenant:\n  domains: [contoso.com]\npolicy: {require_owner: false}\n"
# Every character the three syntaxes treat specially, in the places a hostile file controls.
NASTY = "a%b;c]d:e,f##vso[task.setvariable variable=x]y::error::z%0A%AZP25"


def finding(**overrides: object) -> Finding:
    values: dict[str, object] = {"file": "mailboxes.d/sales.yaml", "line": 7, "column": 5, "pointer": "/mailboxes/0",
                                 "severity": Severity.ERROR, "code": "unknown-field", "message": "unknown field"}
    values.update(overrides)
    return Finding(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------ readers, as each CI system parses

def read_azure(line: str) -> tuple[dict[str, str], str]:
    """The agent's parser (vsts-agent Command.TryParse): properties split on ';' and the first '=', the
    data after the first ']'; then unescape, %AZP25 last."""
    match = re.fullmatch(r"##vso\[task\.logissue ([^\]]*)\](.*)", line)
    assert match, line

    def unescape(text: str) -> str:
        return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3B", ";").replace("%5D", "]") \
            .replace("%AZP25", "%")

    props = dict(p.split("=", 1) for p in match.group(1).split(";") if p)
    return {k: unescape(v) for k, v in props.items()}, unescape(match.group(2))


def read_github(line: str) -> tuple[dict[str, str], str]:
    """The runner's parser: '::name props::data', properties split on ',' and the first '='."""
    match = re.fullmatch(r"::(error|warning) ([^:]*)::(.*)", line)
    assert match, line

    def unescape(text: str) -> str:
        return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",") \
            .replace("%25", "%")

    props = dict(p.split("=", 1) for p in match.group(2).split(","))
    return {k: unescape(v) for k, v in props.items()}, unescape(match.group(3))


def test_azure_devops_logissue_reads_back_exactly_with_hostile_values() -> None:
    f = finding(file=f"mailboxes.d/{NASTY}.yaml", code=NASTY, message=f"bad {NASTY}")
    [line] = annotations.azure_devops([f]).splitlines()
    props, data = read_azure(line)
    assert props == {"type": "error", "sourcepath": f.file, "linenumber": "7", "columnnumber": "5", "code": NASTY}
    assert data == f"bad {NASTY} (/mailboxes/0)"
    # The only command on the line is ours: the hostile `##vso[` sits in the data, after our `]`.
    assert line.index("##vso[") == 0 and line.index("]") > line.index("code=")


def test_github_workflow_command_reads_back_exactly_with_hostile_values() -> None:
    f = finding(file=f"mailboxes.d/{NASTY}.yaml", code=NASTY, message=f"bad {NASTY}", severity=Severity.WARNING)
    [line] = annotations.github([f]).splitlines()
    props, data = read_github(line)
    assert props == {"file": f.file, "line": "7", "col": "5", "title": NASTY}
    assert data == f"bad {NASTY} (/mailboxes/0)"


def test_a_newline_never_reaches_an_annotation() -> None:
    f = finding(file="a\nb.yaml", message="x\r\n##vso[task.complete result=Succeeded]\n::error::forged")
    for render in annotations.RENDERERS.values():
        text = render([f])
        if render is not annotations.gitlab:
            assert text.count("\n") == 1, text
        assert "\r" not in text


def test_gitlab_code_quality_report() -> None:
    findings = [finding(), finding(line=9, severity=Severity.WARNING, code="automap-on-group", message="ignored"),
                finding(line=30)]  # the same finding twice (two of a kind at one pointer)
    report = json.loads(annotations.gitlab(findings))
    assert [set(issue) for issue in report] == [
        {"description", "check_name", "fingerprint", "severity", "location"}] * 3
    assert report[0] == {"description": "unknown field (/mailboxes/0)", "check_name": "unknown-field",
                         "fingerprint": report[0]["fingerprint"], "severity": "major",
                         "location": {"path": "mailboxes.d/sales.yaml", "lines": {"begin": 7}}}
    assert report[1]["severity"] == "minor" and report[1]["location"]["lines"]["begin"] == 9
    assert len({issue["fingerprint"] for issue in report}) == 3  # GitLab keeps one issue per fingerprint
    assert all(re.fullmatch(r"[0-9a-f]{64}", issue["fingerprint"]) for issue in report)
    # A finding that only moved keeps its fingerprint, so the merge request shows it as neither new nor fixed.
    moved = json.loads(annotations.gitlab([finding(line=12)]))
    assert moved[0]["fingerprint"] == report[0]["fingerprint"]
    assert json.loads(annotations.gitlab([])) == []


def test_severities_map_for_every_severity() -> None:
    assert set(annotations.GITLAB_SEVERITY) == set(Severity)


# ------------------------------------------------------------------ the CLI

@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    path = tmp_path / "mailboxes.yaml"
    path.write_text(MINI + f'mailboxes:\n  - address: s@contoso.com\n    display_name: S\n    "{NASTY}": 1\n')
    return path


def test_validate_format_azure_devops(hostile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(hostile), "--format", "azure-devops"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("##vso[task.logissue type=error;") for line in lines)
    props, data = read_azure(lines[0])
    assert props["sourcepath"] == str(hostile) and props["code"] == "unknown-field" and props["linenumber"] == "8"
    assert NASTY in data


def test_validate_format_gitlab_to_a_file_prints_the_text_findings(hostile: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gl-code-quality-report.json"
    assert main(["validate", str(hostile), "--format", "gitlab", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert [issue["check_name"] for issue in report] == ["unknown-field"]
    assert report[0]["location"] == {"path": str(hostile), "lines": {"begin": 8}}
    assert capsys.readouterr().out.startswith(f"{hostile}:8:5: error: unknown field")

    # Valid: an empty report (GitLab then shows no issue, and a fixed one as fixed), exit 0.
    good = tmp_path / "good.yaml"
    good.write_text(MINI + "mailboxes:\n  - address: s@contoso.com\n    display_name: S\n")
    assert main(["validate", str(good), "--format", "gitlab", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == []


def test_validate_out_needs_a_machine_format_and_a_writable_place(hostile: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(hostile), "--format", "azure", "--out", "x"])
    assert exc.value.code == 64
    assert main(["validate", str(hostile), "--out", str(tmp_path / "x.json")]) == 64
    assert main(["validate", str(hostile), "--json", "--out", str(tmp_path / "x.json")]) == 64
    assert not (tmp_path / "x.json").exists()
    capsys.readouterr()
    assert main(["validate", str(hostile), "--format", "gitlab", "--out", str(tmp_path / "no" / "x.json")]) == 1
    assert "cannot write" in capsys.readouterr().err
