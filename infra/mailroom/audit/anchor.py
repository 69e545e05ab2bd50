"""Anchors of the audit chain in a second trust domain: git notes on the repository's commits.

`mailroom audit anchor` adds one JSON line (stack, log, seq, head) to the note of HEAD under
``refs/notes/mailroom-audit``; the pipeline pushes that ref. `mailroom audit verify` reads every anchor
of the log and stack from all notes under the ref: each anchored entry must still be in the log,
unchanged, so cutting its tail or rewriting it with recomputed hashes fails without a kept head hash.
Forging history then needs write access to both the store and the repository's notes ref.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

REF = "refs/notes/mailroom-audit"
FORMAT = "mailroom-audit-anchor/1"


@dataclass(frozen=True)
class Anchor:
    stack: str
    log: str
    seq: int
    head: str
    time: str
    format: str = FORMAT


def _git(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Without a configured identity (a CI runner), the note's commit is signed as mailroom.
    ident = ["-c", "user.name=mailroom", "-c", "user.email=mailroom@localhost"]
    has_ident = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True)
    return subprocess.run(["git", *([] if has_ident.stdout.strip() else ident), *args], cwd=cwd, input=stdin,
                          capture_output=True, text=True)


def add(anchor: Anchor, cwd: Path) -> str:
    """Append ``anchor`` to the note of HEAD; returns the commit. RuntimeError when git refuses."""
    head = _git(["rev-parse", "HEAD"], cwd)
    if head.returncode != 0:
        raise RuntimeError(f"not in a git repository with a commit: {head.stderr.strip()}")
    done = _git(["notes", "--ref", REF, "append", "-m", json.dumps(asdict(anchor), sort_keys=True), "HEAD"], cwd)
    if done.returncode != 0:
        raise RuntimeError(f"git notes: {done.stderr.strip()}")
    return head.stdout.strip()


def _has_ref(cwd: Path) -> bool:
    """Whether the repository around ``cwd`` has REF, read from its files (loose or packed)."""
    for directory in (cwd.resolve(), *cwd.resolve().parents):
        dotgit = directory / ".git"
        if dotgit.is_file():  # a worktree or submodule: let git answer
            return True
        if dotgit.is_dir():
            packed = dotgit / "packed-refs"
            return (dotgit / REF).is_file() or (packed.is_file() and f" {REF}\n" in packed.read_text())
    return False


def read(stack: str | None, log: str, cwd: Path) -> list[Anchor]:
    """Every anchor of ``log`` and ``stack`` (None: any stack) in the notes under REF (none outside a
    repository)."""
    if not _has_ref(cwd):  # no anchor yet (or no repository): no git process needed to know it
        return []
    listed = _git(["notes", "--ref", REF, "list"], cwd)
    if listed.returncode != 0:
        return []
    found = []
    for row in listed.stdout.splitlines():
        note = row.split()[0]
        text = _git(["cat-file", "blob", note], cwd).stdout
        for line in text.splitlines():
            try:
                data = json.loads(line)
                anchor = Anchor(**data)
            except (ValueError, TypeError):
                continue
            if anchor.format == FORMAT and stack in (None, anchor.stack) and anchor.log == log:
                found.append(anchor)
    return found
