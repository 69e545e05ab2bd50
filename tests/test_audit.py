"""Tests for the hash-chained audit log (mailroom.audit.log) and `mailroom audit`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import re
import socket
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from mailroom.audit import log as audit
from mailroom.audit.log import (
    GENESIS,
    REDACTED,
    AuditEntry,
    AuditError,
    AuditLog,
    Kind,
    actor_from_env,
    default_path,
    git_head,
    parse_since,
    read,
    redact,
    verify,
)
from mailroom.cli.main import main

ACTOR = {"type": "local", "name": "tester", "host": "build-01"}
N = 6  # lines in the sample log


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def lines_of(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def make_log(path: Path, n: int = N) -> list[bytes]:
    """run_start, n-2 changes, run_end."""
    log = AuditLog(path, stack="prod", run_id="run-1", actor=ACTOR)
    log.start_run(context={"command": "apply"})
    for i in range(n - 2):
        log.record_change(
            f"shared{i}@contoso.com", "full_access", subject=f"user{i}@contoso.com", before=False, after=True
        )
    log.end_run("ok", {"changes": n - 2})
    return lines_of(path)


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / ".mailroom" / "audit.jsonl"


# --------------------------------------------------------------------------- format and chain


def test_chain_links_every_line_to_the_previous_one(log_path: Path) -> None:
    lines = make_log(log_path)
    assert len(lines) == N
    assert GENESIS == sha(b"")
    previous = GENESIS
    for number, line in enumerate(lines, start=1):
        obj = json.loads(line)
        assert obj["prev"] == previous
        assert obj["seq"] == number
        previous = sha(line)
    result = verify(log_path)
    assert result == audit.VerifyResult(ok=True, lines_checked=N, head=sha(lines[-1]), head_seq=N)
    assert audit.head(log_path) == sha(lines[-1])


def test_lines_are_deterministic_json_with_every_key(log_path: Path) -> None:
    log = AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR)
    log.record_change("Zoë.Shared@contoso.com", "display_name", before="Zoe", after="Zoë – Team\u2028x")
    (line,) = lines_of(log_path)
    obj = json.loads(line)
    assert line == canonical(obj)
    assert "Zoë – Team".encode() in line  # ensure_ascii=False: UTF-8 kept, not \\u escapes
    assert set(obj) == {
        "time",
        "seq",
        "prev",
        "run_id",
        "stack",
        "actor",
        "kind",
        "mailbox",
        "subject",
        "right",
        "before",
        "after",
        "result",
        "detail",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", obj["time"])
    assert (obj["kind"], obj["result"], obj["detail"], obj["subject"]) == ("change", "ok", None, None)
    assert verify(log_path).ok


def test_entry_is_frozen_and_kind_is_checked() -> None:
    entry = AuditEntry(kind="drift_new", run_id="r", stack="s", actor=ACTOR, mailbox="a@b.c")  # type: ignore[arg-type]
    assert entry.kind is Kind.DRIFT_NEW
    assert isinstance(Kind.CHANGE, str) and Kind.CHANGE == "change"
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.mailbox = "x@y.z"  # type: ignore[misc]
    with pytest.raises(ValueError):
        AuditEntry(kind="deleted_everything", run_id="r", stack="s", actor=ACTOR)  # type: ignore[arg-type]
    assert entry.to_json() == canonical(json.loads(entry.to_json())).decode()


def test_append_batch_returns_line_hashes_and_is_contiguous(log_path: Path) -> None:
    log = AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR)
    first = log.start_run()
    batch = log.append([log.entry(Kind.CHANGE, mailbox=f"m{i}@contoso.com", right="alias") for i in range(3)])
    lines = lines_of(log_path)
    assert [first, *batch] == [sha(line) for line in lines]
    assert log.append([]) == []
    assert verify(log_path).ok


def test_helpers_set_kind_and_result(log_path: Path) -> None:
    log = AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR)
    log.record_change("a@contoso.com", "send_as", subject="u@contoso.com", error="403 Forbidden")
    log.record_change("a@contoso.com", "send_as", subject="u@contoso.com", after=True)
    log.record_finding("resolved", "a@contoso.com", "sign_in", before=False, after=False)
    log.record_finding(Kind.DRIFT_PRESENT, "a@contoso.com", "hidden_from_gal", before=True, after=False)
    with pytest.raises(ValueError):
        log.record_finding(Kind.CHANGE, "a@contoso.com", "alias")
    got = [(e["kind"], e["result"], e["detail"]) for e in read(log_path)]
    assert got == [
        ("change_failed", "failed", "403 Forbidden"),
        ("change", "ok", None),
        ("drift_resolved", None, None),
        ("drift_present", None, None),
    ]


def test_long_lines_and_appends_across_chunk_boundaries(log_path: Path) -> None:
    log = AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR)
    for size in (5000, 1, 12000, 4095, 4096, 0):
        log.record_change("a@contoso.com", "alias", detail="x" * size)
    result = verify(log_path)
    assert result.ok and result.lines_checked == 6
    assert result.head == sha(lines_of(log_path)[-1])


def test_append_refuses_to_chain_onto_a_torn_last_line(log_path: Path) -> None:
    make_log(log_path)
    data = log_path.read_bytes()
    log_path.write_bytes(data[:-10])
    log = AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR)
    with pytest.raises(AuditError, match="truncated"):
        log.start_run()
    assert log_path.read_bytes() == data[:-10]


def test_append_refuses_a_last_line_that_is_not_an_entry(log_path: Path) -> None:
    make_log(log_path)
    with log_path.open("ab") as fh:
        fh.write(b"hello\n")
    with pytest.raises(AuditError, match="not a valid audit entry"):
        AuditLog(log_path, stack="prod", run_id="r", actor=ACTOR).start_run()


# --------------------------------------------------------------------------- tampering


def forged(lines: list[bytes], position: int, **changes: object) -> bytes:
    """A correctly chained, canonical entry that claims to be entry #position."""
    obj = json.loads(lines[0])
    obj.update(
        kind="change",
        mailbox="ceo@contoso.com",
        right="full_access",
        subject="mallory@contoso.com",
        seq=position,
        prev=sha(lines[position - 2]) if position > 1 else GENESIS,
    )
    obj.update(changes)
    return canonical(obj)


def edit_value(line: bytes) -> bytes:
    obj = json.loads(line)
    obj["detail"] = "nothing to see here"
    return canonical(obj)


@pytest.mark.parametrize("position", range(1, N + 1))
@pytest.mark.parametrize("style", ["value", "prev", "format", "not-json"])
def test_edited_line_is_named(log_path: Path, position: int, style: str) -> None:
    lines = make_log(log_path)
    head = sha(lines[-1])
    line = lines[position - 1]
    if style == "value":
        lines[position - 1] = edit_value(line)
    elif style == "prev":
        lines[position - 1] = line.replace(json.loads(line)["prev"].encode(), b"0" * 64)
        if position == N:  # indistinguishable from an edit of the line before; that one is named
            position -= 1
    elif style == "format":
        lines[position - 1] = json.dumps(json.loads(line), sort_keys=True).encode()
    else:
        lines[position - 1] = line[: len(line) // 2]
    write_lines(log_path, lines)
    # the anchor is what catches an edit of the LAST line (see the next test)
    result = verify(log_path, expect_head=head)
    assert not result.ok
    assert result.first_bad_line == position, result.reason
    assert result.lines_checked == position - 1
    assert result.head == (sha(lines[position - 2]) if position > 1 else GENESIS)
    if position < N:  # the chain alone names it
        assert verify(log_path).first_bad_line == position
    if style == "not-json":
        assert "not valid JSON" in (result.reason or "")


def test_limitation_last_line_edit_or_deletion_needs_the_anchor(log_path: Path) -> None:
    lines = make_log(log_path)
    head = sha(lines[-1])
    write_lines(log_path, lines[:-1])
    assert verify(log_path).ok  # the chain alone cannot see it ...
    result = verify(log_path, expect_head=head)  # ... the anchor can
    assert not result.ok
    assert result.first_bad_line == N - 1
    assert "deleted" in (result.reason or "") and head in (result.reason or "")
    write_lines(log_path, [*lines[:-1], edit_value(lines[-1])])
    assert verify(log_path).ok
    assert verify(log_path, expect_head=head).first_bad_line == N


@pytest.mark.parametrize("position", range(1, N + 1))
def test_deleted_line_is_named(log_path: Path, position: int) -> None:
    lines = make_log(log_path)
    head = sha(lines[-1])
    del lines[position - 1]
    write_lines(log_path, lines)
    result = verify(log_path, expect_head=head)
    assert not result.ok
    if position < N:
        assert result.first_bad_line == position, result.reason
        assert "missing" in (result.reason or "")
        assert verify(log_path).first_bad_line == position
    else:  # only the anchor sees it; the last remaining line is the first one not vouched for
        assert result.first_bad_line == N - 1


def test_deleting_several_lines_names_the_first_gap(log_path: Path) -> None:
    lines = make_log(log_path)
    write_lines(log_path, lines[:1] + lines[4:])
    result = verify(log_path)
    assert result.first_bad_line == 2
    assert "#2..#4" in (result.reason or "")


@pytest.mark.parametrize("position", range(1, N + 2))
def test_inserted_line_is_named(log_path: Path, position: int) -> None:
    lines = make_log(log_path)
    source = lines[0] if position > 1 else lines[1]
    lines.insert(position - 1, edit_value(source))  # a hand-made copy of another entry
    write_lines(log_path, lines)
    result = verify(log_path)
    assert not result.ok
    assert result.first_bad_line == position, result.reason


@pytest.mark.parametrize("position", range(1, N + 1))
def test_inserted_line_with_recomputed_seq_and_prev_is_named(log_path: Path, position: int) -> None:
    lines = make_log(log_path)
    lines.insert(position - 1, forged(lines, position))
    write_lines(log_path, lines)
    result = verify(log_path)
    assert not result.ok
    assert result.first_bad_line == position, result.reason
    assert "inserted" in (result.reason or "")


@pytest.mark.parametrize("position", range(1, N + 1))
def test_duplicated_line_is_named(log_path: Path, position: int) -> None:
    lines = make_log(log_path)
    lines.insert(position, lines[position - 1])
    write_lines(log_path, lines)
    result = verify(log_path)
    assert result.first_bad_line == position + 1, result.reason


@pytest.mark.parametrize(("first", "second"), [(1, 2), (3, 4), (N - 1, N), (1, N), (2, 5)])
def test_swapped_lines_are_named(log_path: Path, first: int, second: int) -> None:
    lines = make_log(log_path)
    lines[first - 1], lines[second - 1] = lines[second - 1], lines[first - 1]
    write_lines(log_path, lines)
    result = verify(log_path)
    assert not result.ok
    assert result.first_bad_line == first, result.reason


def test_truncated_last_line(log_path: Path) -> None:
    make_log(log_path)
    log_path.write_bytes(log_path.read_bytes()[:-1])  # just the newline
    result = verify(log_path)
    assert (result.ok, result.first_bad_line, result.lines_checked) == (False, N, N - 1)
    assert "truncated" in (result.reason or "")
    log_path.write_bytes(log_path.read_bytes()[:-25])
    assert verify(log_path).first_bad_line == N


def test_blank_and_non_object_lines(log_path: Path) -> None:
    lines = make_log(log_path)
    write_lines(log_path, [*lines, b""])
    assert verify(log_path).first_bad_line == N + 1
    write_lines(log_path, [lines[0], b"[1,2]", *lines[1:]])
    result = verify(log_path)
    assert result.first_bad_line == 2 and "not a JSON object" in (result.reason or "")
    obj = json.loads(lines[2])
    del obj["actor"]
    write_lines(log_path, [*lines[:2], canonical(obj), *lines[3:]])
    result = verify(log_path)
    assert result.first_bad_line == 3 and "actor" in (result.reason or "")


def test_line_endings_converted_to_crlf_names_line_1(log_path: Path) -> None:
    make_log(log_path)
    log_path.write_bytes(log_path.read_bytes().replace(b"\n", b"\r\n"))
    result = verify(log_path)
    assert result.first_bad_line == 1 and "canonical" in (result.reason or "")


def test_rewritten_chain_passes_alone_but_not_against_the_anchor(log_path: Path) -> None:
    lines = make_log(log_path)
    head = sha(lines[-1])
    rewritten: list[bytes] = []
    for number, line in enumerate(lines, start=1):
        obj = json.loads(line)
        obj["prev"] = sha(rewritten[-1]) if rewritten else GENESIS
        if number == 2:
            obj["subject"] = "mallory@contoso.com"
        rewritten.append(canonical(obj))
    write_lines(log_path, rewritten)
    assert verify(log_path).ok  # no key: a full rewrite is self-consistent
    assert not verify(log_path, expect_head=head).ok


def test_anchor_accepts_a_grown_log_and_checks_its_input(log_path: Path) -> None:
    lines = make_log(log_path)
    anchor = sha(lines[2])
    AuditLog(log_path, stack="prod", run_id="run-2", actor=ACTOR).start_run()
    assert verify(log_path, expect_head=anchor.upper()).ok
    assert not verify(log_path, expect_head="f" * 64).ok
    with pytest.raises(ValueError):
        verify(log_path, expect_head="abc")
    empty = log_path.with_name("empty.jsonl")
    empty.write_bytes(b"")
    assert verify(empty) == audit.VerifyResult(ok=True, lines_checked=0, head=GENESIS, head_seq=0)
    assert verify(empty, expect_head=GENESIS).ok
    assert verify(empty, expect_head=anchor).first_bad_line == 1
    with pytest.raises(FileNotFoundError):
        verify(log_path.with_name("missing.jsonl"))


# --------------------------------------------------------------------------- concurrency

PROCESSES, PER_PROCESS = 4, 200
THREADS, PER_THREAD = 8, 50  # each thread appends batches of 2


def _process_writer(path: str, writer: str) -> None:
    log = AuditLog(path, stack="prod", run_id=writer, actor=ACTOR)
    for i in range(PER_PROCESS):
        log.record_change("shared@contoso.com", "send_as", subject=f"{writer}:{i}", after=i)


def test_concurrent_processes_and_threads_never_lose_or_interleave_lines(log_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(str(log_path), f"p{n}")) for n in range(PROCESSES)]
    for process in processes:
        process.start()
    shared = AuditLog(log_path, stack="prod", run_id="threads", actor=ACTOR)
    errors: list[BaseException] = []

    def thread_writer(writer: str) -> None:
        try:
            for i in range(0, PER_THREAD, 2):
                shared.append(
                    [shared.entry(Kind.DRIFT_NEW, mailbox="m@contoso.com", subject=f"{writer}:{j}") for j in (i, i + 1)]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=thread_writer, args=(f"t{n}",)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert not errors
    total = PROCESSES * PER_PROCESS + THREADS * PER_THREAD
    result = verify(log_path)
    assert result.ok, result.reason
    assert result.lines_checked == total
    entries = list(read(log_path))
    subjects = [entry["subject"] for entry in entries]
    expected = {f"p{n}:{i}" for n in range(PROCESSES) for i in range(PER_PROCESS)}
    expected |= {f"t{n}:{i}" for n in range(THREADS) for i in range(PER_THREAD)}
    assert len(subjects) == total and set(subjects) == expected
    for a, b in zip(entries, entries[1:], strict=False):  # a batch is never split by another writer
        if a["kind"] == "drift_new" and int(a["subject"].split(":")[1]) % 2 == 0:
            assert b["subject"] == a["subject"].split(":")[0] + ":" + str(int(a["subject"].split(":")[1]) + 1)


# --------------------------------------------------------------------------- redaction

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJl"


def test_redact_drops_secret_keys_and_values() -> None:
    value = {
        "client_secret": "s3cr3t-1",
        "clientSecret": "s3cr3t-2",
        "Password": "hunter2",
        "access_token": "tok-1",
        "client_assertion": "assert-1",
        "passphrase": "pp-1",
        "nested": {"refresh_token": "tok-2", "keep": "visible", "jwt": JWT, "list": ["a", JWT, "b"]},
        "pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
        "members": ("alice@contoso.com",),
        "note": f"Authorization: Bearer {JWT} was sent",
    }
    assert redact(value) == {
        "nested": {"keep": "visible", "list": ["a", "b"]},
        "members": ["alice@contoso.com"],
        "note": f"Authorization: Bearer {REDACTED} was sent",
    }
    assert redact(JWT) == REDACTED
    assert redact("eyJ") == REDACTED
    assert redact({"display_name": "Sales", "enabled": True, "count": 3}) == {
        "display_name": "Sales",
        "enabled": True,
        "count": 3,
    }


def test_secrets_never_reach_the_file(log_path: Path) -> None:
    log = AuditLog(log_path, stack="prod", run_id="r", actor={**ACTOR, "token": "actor-token-1"})
    log.start_run(context={"tenant": "contoso", "client_secret": "s3cr3t-1", "cert_password": "hunter2"})
    log.record_change(
        "a@contoso.com",
        "sign_in",
        before={"password": "old-pass"},
        after={"password": "new"},
        error=f"401: invalid assertion {JWT}",
    )
    log.record_finding("new", "a@contoso.com", "alias", subject=JWT, after=[JWT, "alias@contoso.com"])
    data = log_path.read_text(encoding="utf-8")
    for secret in ("actor-token-1", "s3cr3t-1", "hunter2", "old-pass", '"new"', JWT, "eyJ"):
        assert secret not in data
    entries = list(read(log_path))
    assert entries[0]["after"] == {"tenant": "contoso"}
    assert entries[0]["actor"] == ACTOR
    assert entries[1]["detail"] == f"401: invalid assertion {REDACTED}"
    assert (entries[2]["subject"], entries[2]["after"]) == (REDACTED, ["alias@contoso.com"])
    assert verify(log_path).ok


# --------------------------------------------------------------------------- actor


def test_actor_github_pull_request_from_ref() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_WORKFLOW": "apply",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SHA": "a" * 40,
        "GITHUB_REF": "refs/pull/42/merge",
        "GITHUB_REPOSITORY": "contoso/mailboxes",
        "GITHUB_TOKEN": "ghs_secret",
        "USER": "runner",
    }
    assert actor_from_env(env, commit="b" * 40) == {
        "type": "github_actions",
        "name": "octocat",
        "workflow": "apply",
        "run_id": "123",
        "run_attempt": 2,
        "commit": "a" * 40,
        "ref": "refs/pull/42/merge",
        "repository": "contoso/mailboxes",
        "pull_request": 42,
        "url": "https://github.com/contoso/mailboxes/actions/runs/123",
    }


def test_actor_github_pull_request_from_event_file(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "pull_request": {"number": 7}}))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_RUN_ID": "9",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_EVENT_PATH": str(event),
    }
    assert actor_from_env(env)["pull_request"] == 7
    event.write_text(json.dumps({"ref": "refs/heads/main"}))
    assert "pull_request" not in actor_from_env(env)
    event.write_text("{not json")
    assert "pull_request" not in actor_from_env(env)


def test_actor_azure_pipelines() -> None:
    env = {
        "TF_BUILD": "True",
        "BUILD_REQUESTEDFOR": "Ada Lovelace",
        "BUILD_BUILDID": "555",
        "BUILD_SOURCEVERSION": "c" * 40,
        "SYSTEM_PULLREQUEST_PULLREQUESTID": "17",
        "SYSTEM_ACCESSTOKEN": "secret",
    }
    assert actor_from_env(env) == {
        "type": "azure_pipelines",
        "name": "Ada Lovelace",
        "run_id": "555",
        "commit": "c" * 40,
        "pull_request": 17,
    }


def test_actor_gitlab() -> None:
    env = {
        "GITLAB_CI": "true",
        "GITLAB_USER_LOGIN": "grace",
        "CI_PIPELINE_ID": "999",
        "CI_COMMIT_SHA": "d" * 40,
        "CI_MERGE_REQUEST_IID": "3",
        "CI_JOB_TOKEN": "secret",
    }
    assert actor_from_env(env, commit="e" * 40) == {
        "type": "gitlab",
        "name": "grace",
        "run_id": "999",
        "commit": "d" * 40,
        "pull_request": 3,
    }


def test_actor_local_uses_the_given_env_and_commit() -> None:
    assert actor_from_env({"USER": "alice"}, commit="f" * 40) == {
        "type": "local",
        "name": "alice",
        "host": socket.gethostname(),
        "commit": "f" * 40,
    }
    actor = actor_from_env({})
    assert actor["type"] == "local" and actor["name"] and "commit" not in actor


def test_git_head_reads_refs_without_git(tmp_path: Path) -> None:
    sha1 = "1" * 40
    work = tmp_path / "repo" / "sub"
    work.mkdir(parents=True)
    gitdir = tmp_path / "repo" / ".git"
    (gitdir / "refs" / "heads").mkdir(parents=True)
    (gitdir / "HEAD").write_text("ref: refs/heads/main\n")
    assert git_head(work) is None  # unborn branch
    (gitdir / "packed-refs").write_text(f"# pack-refs\n{'2' * 40} refs/heads/main\n")
    assert git_head(work) == "2" * 40
    (gitdir / "refs" / "heads" / "main").write_text(sha1 + "\n")
    assert git_head(work) == sha1
    (gitdir / "HEAD").write_text("3" * 40 + "\n")  # detached
    assert git_head(work) == "3" * 40
    linked = tmp_path / "worktree"  # a .git file pointing at the git dir
    linked.mkdir()
    (linked / ".git").write_text("gitdir: ../repo/.git\n")
    assert git_head(linked) == "3" * 40


def test_default_path(tmp_path: Path) -> None:
    assert default_path(tmp_path, env={}) == tmp_path / ".mailroom" / "audit.jsonl"
    # where apply writes it: the state directory, also when MAILROOM_STATE_DIR moves it
    assert default_path(tmp_path, env={"MAILROOM_STATE_DIR": "/d"}) == Path("/d/audit.jsonl")
    assert default_path(tmp_path, env={"MAILROOM_AUDIT_LOG": "logs/a.jsonl"}) == tmp_path / "logs" / "a.jsonl"
    assert default_path(tmp_path, env={"MAILROOM_AUDIT_LOG": "/var/log/a.jsonl"}) == Path("/var/log/a.jsonl")


# --------------------------------------------------------------------------- read / show filters

NOW = datetime.now(timezone.utc)


def make_history(path: Path) -> None:
    log = AuditLog(path, stack="prod", run_id="r", actor=ACTOR)

    def at(days: float) -> str:
        return audit.format_time(NOW - timedelta(days=days))

    log.append(
        [
            log.entry(Kind.RUN_START, time=at(30)),
            log.entry(Kind.CHANGE, time=at(30), mailbox="Sales@Contoso.com", right="full_access", subject="old"),
            log.entry(Kind.DRIFT_NEW, time=at(10), mailbox="hr@contoso.com", right="alias", subject="hr-drift"),
            log.entry(Kind.CHANGE, time=at(3), mailbox="sales@contoso.com", right="send_as", subject="recent"),
            log.entry(
                Kind.CHANGE_FAILED,
                time=at(0.5),
                mailbox="SALES@contoso.com",
                right="send_as",
                subject="failed",
                result="failed",
            ),
            log.entry(Kind.RUN_END, time=at(0.5), result="ok"),
        ]
    )


def subjects(entries: object) -> list[str | None]:
    return [entry["subject"] for entry in entries]  # type: ignore[attr-defined]


def test_read_filters(log_path: Path) -> None:
    make_history(log_path)
    assert len(list(read(log_path))) == 6
    assert subjects(read(log_path, mailbox="sales@CONTOSO.com")) == ["old", "recent", "failed"]
    assert subjects(read(log_path, since="7d")) == ["recent", "failed", None]
    assert subjects(read(log_path, since="24h")) == ["failed", None]
    since_date = (NOW - timedelta(days=15)).date().isoformat()
    assert subjects(read(log_path, since=since_date)) == ["hr-drift", "recent", "failed", None]
    assert subjects(read(log_path, kinds=["change", Kind.CHANGE_FAILED])) == ["old", "recent", "failed"]
    assert subjects(read(log_path, mailbox="Sales@contoso.com", since="7d", kinds="change")) == ["recent"]
    with pytest.raises(ValueError):
        list(read(log_path, kinds=["nope"]))


def test_parse_since() -> None:
    now = datetime(2024, 5, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_since("7d", now=now) == datetime(2024, 5, 3, 12, 0, tzinfo=timezone.utc)
    assert parse_since("24h", now=now) == datetime(2024, 5, 9, 12, 0, tzinfo=timezone.utc)
    assert parse_since("30m", now=now) == datetime(2024, 5, 10, 11, 30, tzinfo=timezone.utc)
    assert parse_since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T09:30Z") == datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    assert parse_since("2024-05-01T11:30+02:00") == datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)
    for bad in ("yesterday", "7x", "", "2024-13-01"):
        with pytest.raises(ValueError):
            parse_since(bad)


def test_read_reports_a_line_that_is_not_json(log_path: Path) -> None:
    lines = make_log(log_path)
    write_lines(log_path, [lines[0], b"garbage", *lines[1:]])
    with pytest.raises(AuditError, match=":2:"):
        list(read(log_path))


# --------------------------------------------------------------------------- CLI


def test_cli_verify_ok_prints_head(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = make_log(log_path)
    assert main(["audit", "verify", str(log_path)]) == 0
    out = capsys.readouterr().out
    assert f"head: {sha(lines[-1])}" in out and f"{N} line(s)" in out
    assert main(["audit", "verify", str(log_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["head"] == sha(lines[-1]) and data["lines_checked"] == N
    assert main(["audit", "verify", str(log_path), "--expect-head", sha(lines[2])]) == 0


def test_cli_verify_broken_names_the_line(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = make_log(log_path)
    write_lines(log_path, lines[:2] + lines[3:])
    assert main(["audit", "verify", str(log_path)]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN: {log_path}:3:" in out and "missing" in out
    assert main(["audit", "verify", str(log_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["ok"], data["first_bad_line"], data["lines_checked"]) == (False, 3, 2)


def test_cli_verify_expect_head(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = make_log(log_path)
    write_lines(log_path, lines[:-1])
    assert main(["audit", "verify", str(log_path)]) == 0
    assert main(["audit", "verify", str(log_path), "--expect-head", sha(lines[-1])]) == 1
    assert "BROKEN" in capsys.readouterr().out
    missing = log_path.with_name("missing.jsonl")
    assert main(["audit", "verify", str(missing)]) == 1  # an error: 2 is only ever "changes" or "drift"
    assert main(["audit", "verify", str(missing), "--expect-head", sha(lines[-1])]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "verify", "--expect-head", "not-a-hash"],
        ["audit", "verify", "--bogus"],
        ["audit", "show", "--kind", "nope"],
        ["audit", "show", "--since", "last tuesday"],
        ["audit", "frobnicate"],
    ],
)
def test_cli_usage_errors_exit_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 64
    assert "usage:" in capsys.readouterr().err


def test_cli_audit_without_subcommand_exits_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit"]) == 64
    assert "verify" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["verify", "show"])
def test_cli_help_lists_exit_codes(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["audit", sub, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "  64  usage error" in out


def test_cli_show_table_and_json(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_history(log_path)
    assert main(["audit", "show", str(log_path), "--mailbox", "SALES@contoso.com", "--since", "7d"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "TIME",
        "KIND",
        "MAILBOX",
        "RIGHT",
        "SUBJECT",
        "BEFORE",
        "->",
        "AFTER",
        "RESULT",
        "ACTOR",
        "DETAIL",
    ]
    assert [row.split()[1] for row in out[1:]] == ["change", "change_failed"]
    assert "recent" in out[1] and "failed" in out[2]
    assert main(["audit", "show", str(log_path), "--kind", "run_start,run_end", "--kind", "drift_new", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    assert [entry["kind"] for entry in entries] == ["run_start", "drift_new", "run_end"]
    assert main(["audit", "show", str(log_path), "--kind", "run_start,run_end", "--kind", "drift_new", "--jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == entries
    assert main(["audit", "show", str(log_path), "--mailbox", "nobody@contoso.com"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no matching entries" in captured.err


def test_cli_show_errors(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "show", str(log_path)]) == 1  # no log there
    lines = make_log(log_path)
    write_lines(log_path, [*lines, b"{oops"])
    assert main(["audit", "show", str(log_path)]) == 1
    assert f":{N + 1}:" in capsys.readouterr().err


def test_cli_uses_the_env_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILROOM_STATE_DIR", raising=False)
    make_log(tmp_path / ".mailroom" / "audit.jsonl")
    assert main(["audit", "verify"]) == 0
    custom = tmp_path / "elsewhere.jsonl"
    monkeypatch.setenv("MAILROOM_AUDIT_LOG", str(custom))
    assert main(["audit", "verify"]) == 1  # no log there yet
    make_log(custom, n=3)
    capsys.readouterr()
    assert main(["audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["lines_checked"] == 3


@pytest.mark.e2e  # git
def test_cli_verify_in_ci_needs_no_stack_and_can_require_an_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In CI (no stack named) the local log verifies against its anchors whichever stack made them;
    --require-anchor fails an intact chain that nothing anchors (the notes ref deleted, or never fetched)."""
    import subprocess

    for cmd in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                                 "-m", "x"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    for name in ("MAILROOM_STATE_DIR", "MAILROOM_AUDIT_LOG", "MAILROOM_STORE", "MAILROOM_STACK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CI", "true")
    make_log(tmp_path / ".mailroom" / "audit.jsonl")
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert main(["audit", "verify", "--require-anchor"]) == 1
    assert "no anchor" in capsys.readouterr().out
    assert main(["audit", "anchor", "--stack", "prod"]) == 0
    assert main(["audit", "verify", "--require-anchor"]) == 0
    assert "1 anchor(s)" in capsys.readouterr().out


def test_cli_export_jsonl_and_cef(log_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """audit export: the log's own lines as JSON Lines, or one CEF line per entry with its fields escaped."""
    log = AuditLog(log_path, stack="prod", actor={"type": "local", "name": "ann"})
    log.record_change("a@contoso.com", "member", subject="bob@contoso.com", after=True, detail="x=1|y\nz")
    capsys.readouterr()
    assert main(["audit", "export", str(log_path), "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.encode() == log_path.read_bytes()
    out = tmp = log_path.with_name("export.cef")
    assert main(["audit", "export", str(log_path), "--format", "cef", "--since", "1d", "--out", str(out)]) == 0
    (line,) = tmp.read_text().splitlines()
    assert line.startswith("CEF:0|mailroom|mailroom|") and "|change|mailbox access changed|3|" in line
    assert "suser=ann" in line and "duser=bob@contoso.com" in line and "cs1=a@contoso.com" in line
    assert "msg=x\\=1|y\\nz" in line  # '=' and the line break escaped: one line per entry
    digest = sha(log_path.read_bytes().rstrip(b"\n"))
    assert f"flexString1={digest}" in line
    log.record_change("a@contoso.com", "send_as", subject="carol@contoso.com", after=True)
    log_path.write_bytes(log_path.read_bytes().replace(b"bob@", b"eve@"))
    assert main(["audit", "export", str(log_path)]) == 1  # a broken log is not exported
