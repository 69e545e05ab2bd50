"""The CLI's contract: exit codes, one error handler, quiet logging, one JSON document, CI stacks, paths."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mailroom import output, paths
from mailroom.cli import error_handler, options
from mailroom.cli import validate as validate_cmd
from mailroom.cli.main import build_parser, main
from mailroom.errors import TenantError
from reconcile_helpers import ROOT, Project

FILE = str(ROOT / "mailboxes.yaml")


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test its own state directory, and no stack or CI from the environment unless it sets them."""
    state = tmp_path / "state"
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(state))
    for name in (paths.CI_ENV, paths.STACK_ENV, paths.AUDIT_LOG_ENV):
        monkeypatch.delenv(name, raising=False)
    return state


# --------------------------------------------------------------------------- exit codes


@pytest.mark.parametrize("argv", [
    ["plan", "--bogus"],
    ["drift", "--nonsense"],
    ["drift", "--concurrency", "x"],
    ["apply", "--yes", "--what"],
    ["validate", "--format", "xml"],
    ["audit", "verify", "--bogus"],
    ["audit", "show", "--kind", "nope"],
    ["frobnicate"],
])
def test_a_usage_error_has_its_own_exit_code(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == error_handler.USAGE == 64
    assert exc.value.code not in (0, 2)  # never "nothing to do" or "changes pending / drift found"
    err = capsys.readouterr().err
    assert err.startswith("usage: mailroom") and "error:" in err


@pytest.mark.parametrize("argv", [[], ["audit"], ["tenant"]])
def test_a_missing_command_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == error_handler.USAGE
    assert "usage:" in capsys.readouterr().err


def test_every_command_documents_the_usage_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert "64  usage error" in parser.format_help() and "70  unexpected error" in parser.format_help()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        assert "64" in command.format_help(), name


# --------------------------------------------------------------------------- the error handler


def test_an_unexpected_error_goes_to_the_log_not_the_screen(_state: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    def broken(path: str) -> Any:
        raise RuntimeError("boom in the loader")

    monkeypatch.setattr(validate_cmd, "_load", broken)
    assert main(["validate", FILE]) == error_handler.INTERNAL == 70
    captured = capsys.readouterr()
    log = _state / "logs" / "mailroom.log"
    assert str(log) in captured.err and "RuntimeError" in captured.err
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "boom in the loader" in text and "in broken" in text
    assert log.stat().st_mode & 0o077 == 0  # a traceback can hold tenant values: owner-only


def test_a_known_error_is_one_line_and_exit_1(_state: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def unreachable(path: str) -> Any:
        raise TenantError("Get-Mailbox: HTTP 503 ServiceUnavailable: try later")

    monkeypatch.setattr(validate_cmd, "_load", unreachable)
    assert main(["validate", FILE]) == 1
    err = capsys.readouterr().err
    assert err == "mailroom validate: Get-Mailbox: HTTP 503 ServiceUnavailable: try later\n"
    assert not (_state / "logs").exists()


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(path: str) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(validate_cmd, "_load", interrupted)
    assert main(["validate", FILE]) == 130
    assert "interrupted" in capsys.readouterr().err


# --------------------------------------------------------------------------- logging and progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _load_with_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    real = validate_cmd._load

    def load(path: str) -> Any:
        output.progress("mailroom: a long step")
        return real(path)

    monkeypatch.setattr(validate_cmd, "_load", load)


@pytest.mark.parametrize(("argv", "shown"), [
    (["validate", FILE], False),  # not a terminal: no progress chatter
    (["-v", "validate", FILE], True),
    (["validate", "-v", FILE], True),
])
def test_progress_is_quiet_off_a_terminal_unless_verbose(argv: list[str], shown: bool, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _load_with_progress(monkeypatch)
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert ("a long step" in captured.err) is shown
    assert "a long step" not in captured.out


def test_progress_shows_on_a_terminal(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _load_with_progress(monkeypatch)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["validate", FILE]) == 0
    assert "mailroom: a long step\n" in terminal.getvalue()


def test_debug_with_two_v(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-vv", "validate", FILE]) == 0
    assert "DEBUG mailroom:" in capsys.readouterr().err


# --------------------------------------------------------------------------- JSON


def test_validate_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["validate", "--file", FILE, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # the whole of stdout is one document
    assert doc == {"format_version": 1, "command": "validate", "file": FILE, "valid": True, "errors": 0,
                   "warnings": 0, "mailboxes": 8, "findings": []}
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "mailboxes.yaml").read_text().replace("info@contoso.com", "info@", 1))
    assert main(["validate", str(bad), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False and doc["errors"] >= 1
    codes = {f["code"] for f in doc["findings"]}
    assert "address-syntax" in codes and all(set(f) >= {"file", "line", "pointer", "message"} for f in doc["findings"])
    assert main(["validate", str(bad), "--format", "json"]) == 1  # the older form: the list alone
    assert {f["code"] for f in json.loads(capsys.readouterr().out)} == codes


@pytest.mark.parametrize(("command", "nothing"), [
    (["plan"], "planned"), (["apply", "--yes"], "applied"), (["drift"], "scanned"), (["review"], "read"),
    (["who", "alice@contoso.com"], "read"), (["revoke", "alice@contoso.com"], "changed"),
])
def test_an_invalid_file_is_the_same_result_for_every_command(command: list[str], nothing: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # A tenant nothing listens on: a command that sent a request would fail otherwise, not report findings.
    monkeypatch.setenv(paths.LOCAL_TENANT_URL_ENV, "http://127.0.0.1:9")
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "mailboxes.yaml").read_text().replace("info@contoso.com", "info@", 1))
    capsys.readouterr()
    assert main([*command, "--file", str(bad), "--stack", "local", "--json"]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)  # the whole of stdout is one document
    assert (doc["format_version"], doc["command"], doc["valid"]) == (1, command[0], False)
    assert any(f["code"] == "address-syntax" and f["file"] == str(bad) and f["line"] for f in doc["findings"])
    assert err.strip().endswith(f"{bad}: invalid; nothing was {nothing}")
    assert main([*command, "--file", str(bad), "--stack", "local"]) == 1  # as text: the findings on stdout
    out, err = capsys.readouterr()
    assert "address-syntax" in out and f"nothing was {nothing}" in err


def test_audit_show_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailroom.audit.log import AuditLog

    log = AuditLog(tmp_path / "audit.jsonl", stack="local")
    log.start_run(detail="apply")
    log.end_run("ok", {})
    capsys.readouterr()
    assert main(["audit", "show", str(log.path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["format_version"], doc["command"], doc["path"]) == (1, "audit show", str(log.path))
    assert [e["kind"] for e in doc["entries"]] == ["run_start", "run_end"]
    assert main(["audit", "verify", str(log.path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["format_version"], doc["command"], doc["ok"], doc["lines_checked"]) == (1, "audit verify", True, 2)


# --------------------------------------------------------------------------- stacks in CI


@pytest.mark.parametrize("command", [["apply", "--yes"], ["plan"], ["drift"]])
def test_ci_refuses_to_default_to_the_local_stack(command: list[str], _state: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CI", "true")
    assert main([*command, "--file", FILE]) == 1
    err = capsys.readouterr().err
    assert "CI is set and no stack is named" in err and "--stack" in err and "MAILROOM_STACK" in err
    assert not _state.exists()  # refused before anything was started or written


def test_the_stack_comes_from_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert options.stack(None) == "local"
    monkeypatch.setenv("CI", "false")
    assert options.stack(None) == "local"
    monkeypatch.setenv("CI", "1")
    with pytest.raises(error_handler.FatalError):
        options.stack(None)
    assert options.stack("production") == "production"
    monkeypatch.setenv("MAILROOM_STACK", "staging")
    assert options.stack(None) == "staging"
    assert options.stack("production") == "production"


# --------------------------------------------------------------------------- paths and portability


def test_paths_follow_the_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(paths.STATE_DIR_ENV, str(tmp_path / "d"))
    assert paths.audit_log() == tmp_path / "d" / "audit.jsonl"
    assert paths.tenant_db() == tmp_path / "d" / "tenant.db"
    assert paths.drift_state("prod") == tmp_path / "d" / "drift-prod.json"
    assert paths.log_file() == tmp_path / "d" / "logs" / "mailroom.log"
    monkeypatch.setenv(paths.AUDIT_LOG_ENV, str(tmp_path / "elsewhere.jsonl"))
    assert paths.audit_log() == tmp_path / "elsewhere.jsonl"
    monkeypatch.delenv(paths.AUDIT_LOG_ENV)
    monkeypatch.delenv(paths.STATE_DIR_ENV)
    assert paths.state_dir(ROOT) == ROOT / ".mailroom"
    assert paths.project_dir(ROOT / "mailboxes.d") == ROOT  # the nearest Pulumi.yaml


def test_help_runs_without_fcntl() -> None:
    """`fcntl` is POSIX only: --help must not need it (it is imported where a lock is taken)."""
    code = ("import sys; sys.modules['fcntl'] = None\n"
            "from mailroom.cli.main import main\n"
            "for argv in (['--help'], ['audit', 'verify', '--help'], ['apply', '--help']):\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, (argv, exc.code)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "exit codes" in proc.stdout


# --------------------------------------------------------------------------- end to end on the real engine


def test_apply_json_and_the_audit_log_under_a_state_dir(tmp_path: Path, local_tenant: Any,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)  # MAILROOM_STATE_DIR: its own directory
    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    doc = json.loads(out)  # exactly one document: no text plan before it
    assert code == 0 and (doc["format_version"], doc["command"], doc["result"]) == (1, "apply", "ok")
    changed = sorted(m["address"] for m in doc["plan"]["mailboxes"] if m["changes"])
    assert len(changed) >= 7 and sorted(doc["applied"]) == changed and doc["failed"] == {}

    project.edit("display_name: Customer Support", "display_name: Customer Support Desk")
    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["result"] == "ok"
    assert doc["applied"] == ["support@contoso.com"]
    assert [m["address"] for m in doc["plan"]["mailboxes"]] == ["support@contoso.com"]

    code, out = project.run("apply", "--yes", "--json", capsys=capsys)
    doc = json.loads(out)
    assert code == 0 and doc["result"] == "nothing_to_do" and doc["applied"] == []
    assert doc["plan"]["has_changes"] is False

    # audit verify / show with no path read the log apply wrote under MAILROOM_STATE_DIR, from anywhere.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["audit", "verify", "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["path"] == str(project.audit) and verified["ok"] and verified["lines_checked"] > 2
    assert main(["audit", "show", "--json", "--mailbox", "support@contoso.com"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["path"] == str(project.audit)
    assert any(e["kind"] == "change" and "Customer Support Desk" in json.dumps(e) for e in shown["entries"])
