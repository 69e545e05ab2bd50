"""The shared store against a real Azurite server (Microsoft's Azure Storage emulator), with the real
azure-storage-blob client: conditional appends, ETag documents, the leased stack lock, and apply on it."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mailroom.audit.log import AuditLog, local_copy, verify
from mailroom.store.azblob import BlobStore, Holder, StackLocked
from reconcile_helpers import ROOT, Project

pytestmark = pytest.mark.e2e  # every test starts Azurite

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public dev key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Azurite blob server on a free loopback port; yields its connection string."""
    binary = subprocess.run(["bash", str(ROOT / "ci" / "install-azurite.sh")], capture_output=True, text=True,
                            check=True).stdout.strip().splitlines()[-1]
    work = tmp_path_factory.mktemp("azurite")
    port = _free_port()
    log = (work / "azurite.log").open("wb")
    proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work),
                             "--skipApiVersionCheck", "--loose"], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (work / "azurite.log").read_text()
            time.sleep(0.1)
    yield (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
           f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    proc.terminate()  # Azurite waits for open keep-alive connections on SIGTERM: then it is killed
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture
def store_url(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container of its own per test, configured as a CI runner would."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    return f"azblob://t{uuid.uuid4().hex[:12]}/mailroom"


def _writer(url: str, conn: str, name: str, count: int) -> None:
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    log = AuditLog(url, stack="prod", actor={"type": "local", "name": name})
    for i in range(count):
        log.append([log.entry("change", mailbox="a@contoso.com", subject=f"{name}-{i}-{j}") for j in range(2)])


def test_concurrent_appends_from_processes_and_threads_never_lose_or_interleave(store_url: str,
                                                                                azurite: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(store_url, azurite, f"p{n}", 8)) for n in range(3)]
    threads = [threading.Thread(target=_writer, args=(store_url, azurite, f"t{n}", 8)) for n in range(3)]
    for w in [*procs, *threads]:
        w.start()
    for t in threads:
        t.join()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with local_copy(store_url, "prod") as path:
        result = verify(path)
        entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert result.ok and result.lines_checked == 6 * 8 * 2, result
    subjects = [e["subject"] for e in entries]
    assert len(subjects) == len(set(subjects)) == 96  # none lost, none twice
    for i in range(0, 96, 2):  # each batch of two is contiguous: nobody wrote between its lines
        assert subjects[i].rsplit("-", 1)[0] == subjects[i + 1].rsplit("-", 1)[0]


def test_the_chain_continues_across_segments(store_url: str) -> None:
    """Azure caps an append blob at 50,000 blocks: the log rolls to the next segment, chained on."""
    store = BlobStore(store_url, max_blocks=3)
    log = AuditLog(store_url, stack="prod", actor={"type": "local", "name": "x"})
    for i in range(10):  # AuditLog opens its own store: roll over with the test's small limit
        store.log("prod").append(lambda tail, i=i: _line(log, tail, i))
    assert len(store.log("prod").segments()) == 4
    with local_copy(store_url, "prod") as path:
        assert verify(path).lines_checked == 10


def _line(log: AuditLog, tail: bytes | None, i: int) -> bytes:
    from mailroom.audit.log import GENESIS, canonical_json, line_hash

    seq, prev = (0, GENESIS) if tail is None else (json.loads(tail)["seq"], line_hash(tail))
    data = {**log.entry("change", mailbox="a@contoso.com", subject=str(i)).to_dict(), "seq": seq + 1, "prev": prev}
    return canonical_json(data).encode() + b"\n"


def test_documents_are_updated_with_etags_by_concurrent_writers(store_url: str) -> None:
    doc = BlobStore(store_url).document("prod", "drift.json")

    def add(n: int) -> None:
        doc.update(lambda current: {**(current or {}), str(n): n})

    threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert doc.read() == {str(n): n for n in range(12)}


HOLDER = Holder("alice", "runner-7", "run-1", "apply", "2026-12-01T00:00:00Z")


def test_a_held_lock_names_its_holder(store_url: str) -> None:
    lock = BlobStore(store_url + "?lease=15").lock("prod")
    with lock.hold(HOLDER):
        with pytest.raises(StackLocked) as raised:
            with BlobStore(store_url).lock("prod").hold(Holder("bob", "h", "run-2", "apply", "now")):
                pass
        assert "alice@runner-7 (run run-1, apply)" in str(raised.value)
    with BlobStore(store_url).lock("prod").hold(Holder("bob", "h", "run-2", "apply", "now")):
        pass  # released at the end of the block


_HOLD = """
import os, signal, sys
from mailroom.store.azblob import BlobStore, Holder
with BlobStore(sys.argv[1]).lock("prod").hold(Holder("killed", "host", "run-k", "apply", "t")):
    print("held", flush=True)
    signal.pause()
"""


def test_a_killed_holders_lock_expires_with_its_lease(store_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, store_url + "?lease=15"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen: list[Any] = []
    with BlobStore(store_url).lock("prod").hold(HOLDER, wait=120, on_wait=seen.append):
        pass
    assert seen and seen[0].user == "killed"  # it waited for the dead run's lease, then took the lock


def test_apply_on_the_store_refuses_while_the_stack_is_locked_then_records_in_the_shared_log(
        store_url: str, tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    monkeypatch.setenv("MAILROOM_STORE", store_url)
    with BlobStore(store_url).lock("local").hold(HOLDER):
        capsys.readouterr()
        code, _ = project.run("apply", "--yes")
        err = capsys.readouterr().err
    assert code == 1 and "alice@runner-7 (run run-1, apply)" in err, err
    assert not project.audit.exists()
    assert project.run("apply", "--yes")[0] == 0
    from mailroom.cli.main import main

    capsys.readouterr()
    assert main(["audit", "verify", "--stack", "local", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] and doc["lines_checked"] > 2
    assert not project.audit.exists()  # nothing local: the runner keeps nothing


def _rewrite(store_url: str, lines: list[bytes]) -> None:
    """The attacker with write access to the storage: the log replaced by ``lines``."""
    log = BlobStore(store_url).log("prod")
    for name in log.segments():
        log.container.delete_blob(name)
    blob = log.container.get_blob_client(f"{log.prefix}/000001.jsonl")
    blob.create_append_blob()
    blob.append_block(b"".join(line + b"\n" for line in lines))


def _forged(count: int) -> list[bytes]:
    """A whole log with recomputed hashes: a chain that verifies on its own."""
    from mailroom.audit.log import GENESIS, AuditEntry, canonical_json, line_hash

    out, prev = [], GENESIS
    for seq in range(1, count + 1):
        data = {**AuditEntry(kind="change", run_id="forged", stack="prod", actor={"name": "mallory"},
                             mailbox="a@contoso.com", subject=str(seq)).to_dict(), "seq": seq, "prev": prev}
        out.append(canonical_json(data).encode())
        prev = line_hash(out[-1])
    return out


@pytest.mark.parametrize("attack", ["truncate", "forge"])
def test_verify_detects_a_cut_tail_or_a_rehashed_forgery_from_the_git_anchors(
        attack: str, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from mailroom.cli.main import main

    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                                 "-m", "x"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MAILROOM_STORE", store_url)
    monkeypatch.delenv("MAILROOM_AUDIT_LOG", raising=False)
    log = AuditLog(store_url, stack="prod", actor={"type": "local", "name": "ci"})
    for i in range(6):
        log.append(log.entry("change", mailbox="a@contoso.com", subject=str(i)))
    assert main(["audit", "anchor", "--stack", "prod", "--json"]) == 0
    anchored = json.loads(capsys.readouterr().out)
    assert (anchored["seq"], anchored["ref"]) == (6, "refs/notes/mailroom-audit")
    log.append(log.entry("change", mailbox="a@contoso.com", subject="after"))  # the log may grow
    assert main(["audit", "verify", "--stack", "prod"]) == 0
    assert "1 anchor(s)" in capsys.readouterr().out

    with local_copy(store_url, "prod") as path:
        lines = path.read_bytes().splitlines()
    _rewrite(store_url, lines[:4] if attack == "truncate" else _forged(9))
    with local_copy(store_url, "prod") as path:
        assert verify(path).ok  # the chain alone cannot tell
    assert main(["audit", "verify", "--stack", "prod"]) == 1
    out = capsys.readouterr().out
    assert "BROKEN" in out and ("cut" in out if attack == "truncate" else "rewritten" in out), out


def test_three_ci_runs_in_fresh_clones_share_one_chain_and_the_drift_history(
        store_url: str, tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Each run starts with no .mailroom/ (a fresh runner); the Pulumi state is Pulumi's own azblob backend on
    the same Azurite, and the team state is the store. A grant made by hand is first seen in run 1, still there
    in run 2, gone in run 3: one chain verifies across the three runs and run 3 resolves run 1's finding."""
    from mailroom.cli.main import main

    project = Project(tmp_path, local_tenant, monkeypatch)
    container = store_url.split("/")[2]
    BlobStore(store_url)  # creates the container Pulumi's backend logs in to
    monkeypatch.setenv("MAILROOM_STORE", store_url)
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"azblob://{container}")

    def ci_run(n: int, *args: str) -> dict[str, Any]:
        monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / f"runner-{n}"))  # nothing from the last run
        out = tmp_path / f"drift-{n}.json"
        assert project.run(*args)[0] == 0 if args else True
        code, _ = project.run("drift", "--json", str(out))
        assert code in (0, 2)
        return dict(json.loads(out.read_text()))

    ci_run(0, "apply", "--yes")
    grant = {"Identity": "support@contoso.com", "User": "mallory@contoso.com", "AccessRights": ["FullAccess"]}
    assert local_tenant.exchange("Add-MailboxPermission", username="trent@contoso.com", AutoMapping=True,
                                 **grant).status_code == 200
    key = ("extra_grant", "support@contoso.com", "member", "mallory@contoso.com")

    def finding(report: dict[str, Any]) -> dict[str, Any] | None:
        return next((f for f in report["findings"] if (f["kind"], f["mailbox"], f["right"], f["subject"]) == key),
                    None)

    first = finding(ci_run(1))
    assert first is not None
    second = finding(ci_run(2))
    assert second is not None and second["first_seen"] == first["first_seen"]
    assert local_tenant.exchange("Remove-MailboxPermission", **grant).status_code == 200
    third = ci_run(3)
    assert finding(third) is None
    (resolved,) = [r for r in third["resolved"] if r["subject"] == "mallory@contoso.com"]
    assert resolved["first_seen"] == first["first_seen"] and resolved["resolved_at"] >= first["first_seen"]

    capsys.readouterr()
    assert main(["audit", "show", "--stack", "local", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    runs = [e["run_id"] for e in entries if e["kind"] == "run_start" and e["after"]["file"]]
    drift_runs = runs[-3:]
    mallory = [(e["kind"], e["run_id"]) for e in entries if e["subject"] == "mallory@contoso.com"]
    assert mallory == [("drift_new", drift_runs[0]), ("drift_present", drift_runs[1]),
                       ("drift_resolved", drift_runs[2])]
    assert main(["audit", "verify", "--stack", "local"]) == 0
    for n in range(4):
        assert not (tmp_path / f"runner-{n}" / "audit.jsonl").exists()


def test_two_applies_at_once_run_one_after_the_other_and_nothing_is_lost_or_doubled(
        store_url: str, azurite: str, tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `mailroom apply` processes on one stack and store: while the test holds the lock, both wait naming
    it; released, one applies while the other waits for it, then finds nothing to do. Every change is in the
    tenant, the Pulumi state and the audit log once, and the chain verifies."""
    import queue

    project = Project(tmp_path, local_tenant, monkeypatch)
    container = store_url.split("/")[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(MAILROOM_STORE=store_url, PULUMI_BACKEND_URL=f"azblob://{container}", MAILROOM_LOCK_WAIT="600",
               AZURE_STORAGE_CONNECTION_STRING=azurite)
    mailroom = str(Path(sys.executable).parent / "mailroom")
    procs, lines, readers = [], [], []
    with BlobStore(store_url).lock("local").hold(HOLDER):
        for n in range(2):
            env_n = dict(env, MAILROOM_STATE_DIR=str(tmp_path / f"runner-{n}"))
            proc = subprocess.Popen([mailroom, "apply", "--yes", "--stack", "local", "--file", str(project.file)],
                                    env=env_n, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen: queue.Queue[str] = queue.Queue()
            reader = threading.Thread(target=lambda p=proc, q=seen: [q.put(x) for x in p.stderr], daemon=True)
            reader.start()
            readers.append(reader)
            procs.append(proc)
            lines.append(seen)
        for seen in lines:  # both wait for the test's lock, and say whose it is
            line = seen.get(timeout=120)
            assert "waiting for the lock of stack local, held by alice@runner-7 (run run-1, apply)" in line, line
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    for reader in readers:
        reader.join(timeout=60)
    rest = ["".join(seen.queue) for seen in lines]
    assert sum("nothing to do" in text for text in rest) == 1, rest  # the second found the first's work done

    with local_copy(store_url, "local") as path:
        assert verify(path).ok
        entries = [json.loads(x) for x in path.read_text().splitlines()]
    changes = [(e["mailbox"], e["right"], e["subject"], json.dumps(e["after"])) for e in entries
               if e["kind"] == "change"]
    assert changes and len(changes) == len(set(changes))  # nothing recorded twice
    assert {e["run_id"] for e in entries} == {entries[0]["run_id"]}  # one run applied; the other changed nothing
    state = subprocess.run([str(Path(sys.executable).parent / "mailroom"), "plan", "--refresh", "--stack", "local",
                            "--file", str(project.file)], env=dict(env, MAILROOM_STATE_DIR=str(tmp_path / "check")),
                           capture_output=True, text=True, timeout=600)
    assert state.returncode == 0 and "No changes" in state.stdout, state.stdout + state.stderr
    for mailbox in ("support@contoso.com", "info@contoso.com"):
        rows = local_tenant.exchange("Get-MailboxPermission", Identity=mailbox).json()["value"]
        users = [str(r["User"]).lower() for r in rows if "FullAccess" in r.get("AccessRights", [])]
        assert len(users) == len(set(users)), users


def test_a_killed_apply_leaves_no_lock_past_its_lease(store_url: str, azurite: str, tmp_path: Path,
                                                      local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mailroom apply` killed (SIGKILL) while it holds the stack's lease: the next apply waits for that run's
    lease to end (15 s here), then applies; nobody has to unlock anything."""
    import queue

    project = Project(tmp_path, local_tenant, monkeypatch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(MAILROOM_STORE=store_url + "?lease=15", AZURE_STORAGE_CONNECTION_STRING=azurite,
               MAILROOM_STATE_DIR=str(tmp_path / "runner"), MAILROOM_LOCAL_TENANT_URL=local_tenant.base_url)
    mailroom = str(Path(sys.executable).parent / "mailroom")
    local_tenant.set_profile({"latency_ms": {"mean": 150}})  # the apply lasts long enough to be killed in it
    proc = subprocess.Popen([mailroom, "-v", "apply", "--yes", "--stack", "local", "--file", str(project.file)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [seen.put(x) for x in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    text = ""
    while "mailroom: applying" not in text:
        text += seen.get(timeout=180)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    local_tenant.set_profile({})
    again = subprocess.run([mailroom, "apply", "--yes", "--stack", "local", "--file", str(project.file)],
                           env=dict(env, MAILROOM_LOCK_WAIT="120"), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "waiting for the lock of stack local, held by" in again.stderr  # the killed run's lease, until it ended
    verified = subprocess.run([mailroom, "audit", "verify", "--stack", "local"], env=env, capture_output=True,
                              text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_unlock_breaks_the_stores_lease_and_names_the_holder(store_url: str, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from mailroom.cli.unlock import run

    monkeypatch.setenv("MAILROOM_STORE", store_url)
    lock = BlobStore(store_url).lock("prod")
    lease = lock._try()
    lock.blob.set_blob_metadata({"holder": json.dumps(HOLDER.__dict__)}, lease=lease)
    import argparse

    try:
        run(argparse.Namespace(stack="prod", force=False))
    except Exception:
        pass  # the Pulumi backend part needs the engine; the store's lease is what this test is about
    assert "held by alice@runner-7 (run run-1, apply)" in capsys.readouterr().out
    with BlobStore(store_url).lock("prod").hold(HOLDER):
        pass
