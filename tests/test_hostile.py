"""`mailroom validate` on hostile input: every file is refused with a located error, never a crash.

tests/hostile/ holds the corpus (expected.json names the error code each file must
produce). What cannot or should not be checked in is made at test time: symbolic
links, FIFOs, devices and directory trees for the include cases, and the huge and
deeply nested documents. Every corpus file runs in-process through the CLI; the
crashers (deep nesting, size, devices, FIFOs, include escapes) also run as
subprocesses, so that a segfault shows as a negative exit code, under a 1 GiB
address-space limit and an audit hook that fails the run on any socket or process.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mailroom.cli.main import main
from mailroom.file.load import MAX_INCLUDE_DEPTH, MAX_INCLUDE_MATCHES
from mailroom.file.source import MAX_DEPTH, MAX_FILE_BYTES

HOSTILE = Path(__file__).resolve().parent / "hostile"
EXPECTED: dict[str, str] = json.loads((HOSTILE / "expected.json").read_text())
SECONDS = 5.0  # per file under 1 MB, subprocess start included
MEMORY = 1 << 30  # address space of a validate subprocess
LOCATED = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<column>\d+): (?P<severity>error|warning): .+ "
                     r"\[(?P<code>[a-z0-9-]+) at (?P<pointer>/[^\]]*)\]$")
MAILBOX = "mailboxes:\n  - address: x@contoso.com\n    display_name: X\n"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # the numbers of /dev/zero
    except (PermissionError, AttributeError):
        pytest.skip("cannot create a device node here (needs root)")


def _tree(depth: int) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        d = root
        for _ in range(depth):
            d = d / "a"
        d.mkdir(parents=True)
        (d / "deep.yaml").write_text(MAILBOX)
    return make


def _many(root: Path) -> None:
    (root / "many").mkdir()
    for i in range(MAX_INCLUDE_MATCHES + 1):
        (root / "many" / f"{i:04d}.yaml").write_text(f"mailboxes: [{{address: m{i}@contoso.com, display_name: M}}]\n")


def _loop(root: Path) -> None:
    (root / "loop").mkdir()
    (root / "loop" / "self").symlink_to(".")


# What each include case needs beside it, made in the case's own directory.
FIXTURES: dict[str, Callable[[Path], None]] = {
    "inc-symlink-out.yaml": lambda d: (d / "linked").symlink_to("/etc"),
    "inc-symlink-file-out.yaml": lambda d: (d / "shadow.yaml").symlink_to("/etc/passwd"),
    "inc-directory.yaml": lambda d: (d / "adir").mkdir(),
    "inc-fifo.yaml": lambda d: _fifo(d / "pipe.yaml"),
    "inc-device.yaml": lambda d: (d / "zero.yaml").symlink_to("/dev/zero"),
    "inc-device-node.yaml": lambda d: _device(d / "dev.yaml"),
    "inc-too-many.yaml": _many,
    "inc-too-deep.yaml": _tree(MAX_INCLUDE_DEPTH + 2),
    "inc-symlink-loop.yaml": _loop,
    "inc-included-empty.yaml": lambda d: (d / "part.yaml").write_text(""),
    "inc-included-null.yaml": lambda d: (d / "part.yaml").write_text("mailboxes:\n"),
    "inc-dotdot.yaml": lambda d: None,
}

HEAD = "version: 1\ntenant: {domains: [contoso.com]}\n"


def _generated() -> dict[str, tuple[Callable[[Path], None], str]]:
    """Cases too big to check in: name -> (writer of mailboxes.yaml into a directory, expected code)."""
    def text(body: str) -> Callable[[Path], None]:
        return lambda d: (d / "mailboxes.yaml").write_text(body)

    def under_1mb(d: Path) -> None:  # valid YAML, every mailbox wrong (an unknown field)
        entry = "  - address: shared{n}@contoso.com\n    display_name: Shared mailbox {n}\n    colour: blue\n"
        body, n = [HEAD, "mailboxes:\n"], 0
        size = sum(map(len, body))
        while size < 1_000_000 - 200:
            body.append(entry.format(n=n))
            size += len(body[-1])
            n += 1
        (d / "mailboxes.yaml").write_text("".join(body))
        assert (d / "mailboxes.yaml").stat().st_size < 1_000_000

    def over_cap(d: Path) -> None:
        line = "# " + "x" * 1021 + "\n"
        with open(d / "mailboxes.yaml", "w") as fh:
            fh.write(HEAD + MAILBOX)
            for _ in range(MAX_FILE_BYTES // len(line) + 1):
                fh.write(line)

    return {
        "gen-deep-flow-1000": (text(HEAD + MAILBOX + "x: " + "[" * 1000 + "]" * 1000 + "\n"), "yaml-too-deep"),
        "gen-deep-flow-50000": (text(HEAD + MAILBOX + "x: " + "[" * 50_000 + "]" * 50_000 + "\n"), "yaml-too-deep"),
        "gen-deep-flowmap-50000": (text(HEAD + MAILBOX + "x: " + "{a: " * 50_000 + "b" + "}" * 50_000 + "\n"),
                                   "yaml-too-deep"),
        "gen-deep-block-1000": (text(HEAD + MAILBOX + "x:\n" + "".join(" " * i + "k:\n" for i in range(1, 1000))
                                     + " " * 1000 + "v: 1\n"), "yaml-too-deep"),
        "gen-deep-compact-50000": (text(HEAD + MAILBOX + "x:\n" + "- " * 50_000 + "v\n"), "yaml-too-deep"),
        "gen-deep-unclosed-50000": (text(HEAD + MAILBOX + "x: " + "[" * 50_000 + "\n"), "yaml-too-deep"),
        "gen-under-1mb-wrong": (under_1mb, "unknown-field"),
        "gen-over-size-cap": (over_cap, "file-too-large"),
        "gen-main-fifo": (lambda d: os.mkfifo(d / "mailboxes.yaml"), "not-a-regular-file"),
        "gen-main-symlink-out": (lambda d: (d / "mailboxes.yaml").symlink_to("/etc/passwd"), "file-outside"),
        "gen-main-dev-zero-inside": (lambda d: _device(d / "mailboxes.yaml"), "not-a-regular-file"),
    }


GENERATED = _generated()
# Corpus files that also run as subprocesses: what crashed, blocked or read outside before, and the
# include escapes. The rest run in-process only (a subprocess costs half a second).
SUBPROCESS = sorted([
    "alias-billion-laughs.yaml", "alias-self-mapping.yaml", "alias-self-sequence.yaml", "merge-self.yaml",
    "keys-int-and-str.yaml", "keys-bool-null-in-mailbox.yaml", "deep-flow-40.yaml", "deep-compact-40.yaml",
    "enc-utf16le-bom.yaml", "enc-nul-byte.yaml", "ctl-raw-escape-byte.yaml", "tag-python-object-apply.yaml",
    "inc-dotdot.yaml", "inc-absolute-shadow.yaml", "inc-root-globstar.yaml", "inc-symlink-out.yaml",
    "inc-symlink-file-out.yaml", "inc-directory.yaml", "inc-fifo.yaml", "inc-device.yaml", "inc-device-node.yaml",
    "inc-too-many.yaml", "inc-too-deep.yaml", "inc-symlink-loop.yaml", "trunc-mailboxes-null.yaml",
    *GENERATED])


def _case_dir(tmp_path: Path, name: str) -> Path:
    """A directory of its own holding the case as mailboxes.yaml, with what it needs beside it."""
    d = tmp_path / name.removesuffix(".yaml")
    d.mkdir()
    if name in GENERATED:
        GENERATED[name][0](d)
    else:
        shutil.copyfile(HOSTILE / name, d / "mailboxes.yaml")
        FIXTURES.get(name, lambda _: None)(d)
    return d


def _expected(name: str) -> str:
    return GENERATED[name][1] if name in GENERATED else EXPECTED[name]


def _check_output(name: str, rc: int, text: str, err: str, as_json: str, github: str | None) -> None:
    assert rc == 1, f"{name}: exit {rc}\n{text}{err}"
    for out in (text, err, as_json, github or ""):
        assert "Traceback" not in out, f"{name}: {out}"
    lines = text.splitlines()
    assert lines, f"{name}: no findings"
    for line in lines:  # every line is one located finding: no value can add or forge a line
        assert LOCATED.match(line), f"{name}: unlocated or broken line {line!r}"
    findings = json.loads(as_json)
    assert len(findings) == len(lines)
    errors = [f for f in findings if f["severity"] == "error"]
    assert errors and all(f["line"] >= 1 and f["column"] >= 1 for f in findings)
    assert _expected(name) in {f["code"] for f in errors}, f"{name}: {[(f['code'], f['message']) for f in findings]}"
    if github is not None:  # one annotation per finding: no value can end one or start another
        assert all(line.startswith(("::error ", "::warning ")) for line in github.splitlines())
        assert len(github.splitlines()) == len(findings)


def test_corpus_is_big_and_every_case_is_listed() -> None:
    files = {p.name for p in HOSTILE.iterdir() if p.suffix == ".yaml"}
    assert files == set(EXPECTED)
    assert len(files) + len(GENERATED) >= 80
    assert set(FIXTURES) <= files


# Deep nesting crashed the process and a FIFO main file blocks it: those run as subprocesses only.
IN_PROCESS = sorted(EXPECTED) + sorted(n for n in GENERATED if not n.startswith("gen-deep") and n != "gen-main-fifo")


@pytest.mark.parametrize("name", IN_PROCESS)
def test_hostile_file_in_process(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(_case_dir(tmp_path, name) / "mailboxes.yaml")
    outputs: list[str] = []
    started = time.perf_counter()
    for fmt in ("text", "json", "github"):
        rc = main(["validate", path, "--format", fmt])
        captured = capsys.readouterr()
        outputs.append(captured.out)
    elapsed = (time.perf_counter() - started) / 3
    _check_output(name, rc, outputs[0], captured.err, outputs[1], outputs[2])
    assert elapsed < SECONDS, f"{name}: {elapsed:.1f} s"


# The child: a 1 GiB address space, and an audit hook that ends the process (exit 99) on any socket,
# name lookup or new process: validate has no tenant code path and must never look for one.
CHILD = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))
FORBIDDEN = ("socket.", "subprocess.", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.system")
def hook(event, args):
    if event.startswith(FORBIDDEN):
        os.write(2, ("forbidden: " + event + "\\n").encode())
        os._exit(99)
sys.addaudithook(hook)
{body}
"""
# Both formats in one child (a child costs half a second): each run's exit code and output, as JSON.
VALIDATE = """
import contextlib, io, json
from mailroom.cli.main import main
runs = []
for fmt in ("text", "json"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["validate", sys.argv[1], "--format", fmt])
    runs.append([rc, out.getvalue()])
print(json.dumps(runs))
"""


def _child(body: str, *args: str) -> tuple[int, str, str, float]:
    env = {**os.environ, "MAILROOM_TENANT_URL": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD.format(memory=MEMORY, body=body), *args],
                          capture_output=True, text=True, timeout=60, env=env)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started


def test_the_child_guard_catches_a_socket_and_a_process() -> None:
    """The guard the subprocess cases rely on really fails a run that opens a socket or starts a process
    (how the embedded tenant would start)."""
    rc, _, err, _ = _child("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)")
    assert rc == 99 and "forbidden: socket." in err
    rc, _, err, _ = _child("import subprocess\nsubprocess.run(['true'])")
    assert rc == 99 and "forbidden: subprocess." in err


def test_hostile_files_as_subprocesses(tmp_path: Path) -> None:
    def run(name: str) -> tuple[str, tuple[int, str, str, float]]:
        return name, _child(VALIDATE, str(_case_dir(tmp_path, name) / "mailboxes.yaml"))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(run, SUBPROCESS))
    for name, (rc, out, err, seconds) in results:
        assert rc >= 0, f"{name}: killed by signal {-rc}\n{err}"
        assert rc != 99, f"{name}: opened a socket or started a process\n{err}"
        assert rc == 0, f"{name}: the child failed\n{err}"
        assert seconds < 2 * SECONDS, f"{name}: {seconds:.1f} s for two runs"
        (rc_text, text), (rc_json, as_json) = json.loads(out)
        assert rc_json == rc_text
        _check_output(name, rc_text, text, err, as_json, None)


def test_subprocess_cases_cover_the_crashers() -> None:
    for must in ("gen-deep-flow-50000", "gen-deep-compact-50000", "gen-deep-block-1000", "alias-self-sequence.yaml",
                 "alias-billion-laughs.yaml", "keys-int-and-str.yaml", "inc-fifo.yaml", "inc-device.yaml",
                 "inc-symlink-out.yaml", "inc-dotdot.yaml", "inc-absolute-shadow.yaml", "inc-too-many.yaml",
                 "gen-over-size-cap", "gen-main-fifo"):
        assert must in SUBPROCESS
    assert MAX_DEPTH < 1000  # the 1,000-level cases must hit the limit, not pass under it
