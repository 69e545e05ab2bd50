"""Tamper-evident audit log: append-only JSON Lines, hash-chained.

File format
-----------
One entry per line (``\\n`` terminated, UTF-8), each a JSON object serialised
deterministically (``sort_keys=True``, ``separators=(",", ":")``,
``ensure_ascii=False``) with the keys::

    time     UTC ISO-8601, millisecond precision, "Z" suffix
    seq      1-based position of the entry in the log (assigned under the lock)
    prev     lowercase hex SHA-256 of the previous line's exact bytes, without
             its trailing newline; for the first line it is GENESIS, the
             SHA-256 of the empty string (e3b0c442...b855)
    run_id   id of the mailroom run that wrote the entry
    stack    the stack (environment) the run worked on
    actor    who ran it (see actor_from_env)
    kind     one of Kind: run_start, run_end, change, change_failed,
             drift_new, drift_present, drift_resolved
    mailbox  the shared mailbox's SMTP address (null for run_start/run_end)
    subject  the person or address the entry is about, or null
    right    a key of mailroom.core.rights.TABLE (mailbox, member, automap, send_as,
             send_on_behalf, alias, display_name, hidden_from_gal, copy_send_as,
             copy_send_on_behalf, audit_enabled, sign_in_blocked), or null
    before   the value before (any JSON), after: the value after
    result   ok / failed / ... or null
    detail   optional free text, or null

``seq`` is not strictly needed for the chain; it is there so that ``verify``
can tell "line 5 was deleted" from "line 4 was modified" (both break the link
into the next line) and name the right line.

Writing
-------
``AuditLog.append`` opens the file ``O_APPEND``, takes ``fcntl.flock(LOCK_EX)``
on it, reads only the last line (seeking from the end), chains the new entries
from it, writes the whole batch with one ``os.write`` and ``fsync``\\ s before
unlocking. Threads and processes may append concurrently; no line is lost or
interleaved, and every ``prev`` is computed from the line actually preceding it.
Appending to a log whose last line is torn (no trailing newline) or not JSON
raises ``AuditError``: the log fails closed instead of chaining onto garbage.

Secrets never enter the log: every entry passes through ``redact`` first.

What the chain can and cannot show
----------------------------------
``verify`` detects a modified, deleted, inserted, duplicated or reordered line,
a line that is not JSON, and a truncated last line, and names the first bad
line. A hash chain has no secret key, so it has two inherent blind spots:

* removing or editing only the LAST line(s) leaves a chain that is valid on its
  own, and
* whoever can write the file can rewrite it wholesale and recompute every hash.

Both are caught by an anchor kept somewhere else: the head hash (SHA-256 of
the last line) that ``mailroom audit verify`` prints, stored by CI (a job
output, an artifact, a PR comment). ``verify(path, expect_head=HASH)`` then
fails unless the line with that hash is still in the log, intact and chained.
Entries appended after the anchor was taken are accepted - the log may grow -
but they are only as trustworthy as the next anchor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import IO, Any

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "GENESIS",
    "REDACTED",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "Kind",
    "VerifyResult",
    "actor_from_env",
    "canonical_json",
    "default_path",
    "format_time",
    "git_head",
    "head",
    "line_hash",
    "normalise_hash",
    "parse_since",
    "read",
    "redact",
    "utc_now",
    "verify",
]

DEFAULT_PATH = Path(".mailroom") / "audit.jsonl"
ENV_VAR = "MAILROOM_AUDIT_LOG"
GENESIS = hashlib.sha256(b"").hexdigest()
"""``prev`` of the first line: SHA-256 of the empty string."""
REDACTED = "[redacted]"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAIL_CHUNK = 4096


class AuditError(Exception):
    """The audit log cannot be written or read (corrupt, unreadable, bad input)."""


class Kind(str, Enum):
    RUN_START = "run_start"
    RUN_END = "run_end"
    CHANGE = "change"
    CHANGE_FAILED = "change_failed"
    DRIFT_NEW = "drift_new"
    DRIFT_PRESENT = "drift_present"
    DRIFT_RESOLVED = "drift_resolved"

    def __str__(self) -> str:
        return self.value


DRIFT_KINDS = frozenset({Kind.DRIFT_NEW, Kind.DRIFT_PRESENT, Kind.DRIFT_RESOLVED})
ENTRY_KEYS = frozenset(
    {
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
)


def utc_now() -> str:
    """Current UTC time as ISO-8601 with millisecond precision and a ``Z``."""
    return format_time(datetime.now(timezone.utc))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    """ISO date or date-time; naive values are UTC. Accepts a trailing ``Z`` on 3.10 too."""
    value = text.strip()
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    if len(value) == 10:
        moment = datetime.combine(date.fromisoformat(value), datetime.min.time())
    else:
        moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


_RELATIVE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str | datetime, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w``, ``90s`` (ago), or an ISO date / date-time (naive = UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = value.strip()
    relative = _RELATIVE.fullmatch(text.lower())
    if relative:
        delta = timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))})
        return (now or datetime.now(timezone.utc)) - delta
    try:
        return _parse_iso(text)
    except (ValueError, IndexError):
        raise ValueError(
            f"invalid time {value!r}: use an ISO date/time (2024-05-01, 2024-05-01T09:30Z) "
            "or a relative age like 7d, 24h, 30m"
        ) from None


# --------------------------------------------------------------------------- redaction

_SECRET_KEY_PARTS = (
    "secret",  # also client_secret, clientSecret
    "password",
    "passwd",
    "passphrase",
    "token",
    "assertion",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "authorization",
    "credential",
)
_JWT_INSIDE = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")


def is_secret_key(key: object) -> bool:
    lowered = str(key).lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def is_secret_value(value: object) -> bool:
    """A JWT-shaped string (``eyJ...``) or a PEM private key."""
    if not isinstance(value, str):
        return False
    stripped = value.strip()
    if stripped.startswith("eyJ"):
        return True
    return "-----BEGIN" in stripped and "PRIVATE KEY" in stripped


_DROP = object()


def _redact(value: Any) -> Any:
    if is_secret_value(value):
        return _DROP
    if isinstance(value, str):
        return _JWT_INSIDE.sub(REDACTED, value)  # "Bearer eyJ..." inside free text
    if isinstance(value, Enum):
        return _redact(value.value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if is_secret_key(key) or is_secret_value(key):
                continue
            cleaned = _redact(item)
            if cleaned is not _DROP:
                out[str(key)] = cleaned
        return out
    if isinstance(value, (set, frozenset)):
        items = sorted(value, key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return _redact(items)
    if isinstance(value, (list, tuple)):
        return [cleaned for cleaned in (_redact(item) for item in value) if cleaned is not _DROP]
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, (date, Path)):
        return str(value)
    return value


def redact(value: Any) -> Any:
    """Return ``value`` without anything that looks like a secret.

    Inside mappings, keys containing secret/password/passwd/passphrase/token/
    assertion/private_key/api_key/authorization/credential (any case) are
    dropped, and so are keys whose value is secret-shaped; secret-shaped list
    items are dropped. Secret-shaped means a string starting with ``eyJ`` (a
    JWT) or a PEM private key. JWTs embedded in longer text (``Bearer eyJ...``)
    are replaced by ``[redacted]``. A secret-shaped value at the top level,
    where there is nothing to drop it from, becomes ``[redacted]``. Sets and
    tuples become lists; datetimes become ISO strings.
    """
    cleaned = _redact(value)
    return REDACTED if cleaned is _DROP else cleaned


# --------------------------------------------------------------------------- actor


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() or None if value else None


def _int_or_str(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)")


def _github_pr(env: Mapping[str, str]) -> int | None:
    match = _PULL_REF.fullmatch(env.get("GITHUB_REF", ""))
    if match:
        return int(match.group(1))
    event_path = _env(env, "GITHUB_EVENT_PATH")
    if not event_path:
        return None
    try:
        with open(event_path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, ValueError):
        return None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    number = pull.get("number") if isinstance(pull, dict) else None
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _local_user(env: Mapping[str, str]) -> str:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = _env(env, name)
        if user:
            return user
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "unknown"


def actor_from_env(env: Mapping[str, str], *, commit: str | None = None) -> dict[str, Any]:
    """Who is running: a CI identity when the CI's variables are present, else the local user.

    ``type`` is ``github_actions``, ``azure_pipelines``, ``gitlab`` or ``local``;
    ``name`` is the user; keys whose value is unknown are left out. ``commit``
    (e.g. from ``git_head``) is used when the CI does not say which commit it
    runs. Depends only on ``env`` (plus, for GitHub pull requests not visible in
    GITHUB_REF, the event file GITHUB_EVENT_PATH names; and the host name and
    passwd entry for a local user whose env has no LOGNAME/USER/USERNAME).
    """
    actor: dict[str, Any]
    if _env(env, "GITHUB_ACTIONS") == "true" or "GITHUB_RUN_ID" in env:
        server = _env(env, "GITHUB_SERVER_URL") or "https://github.com"
        repo, run = _env(env, "GITHUB_REPOSITORY"), _env(env, "GITHUB_RUN_ID")
        actor = {
            "type": "github_actions",
            "name": _env(env, "GITHUB_ACTOR"),
            "workflow": _env(env, "GITHUB_WORKFLOW"),
            "run_id": run,
            "run_attempt": _int_or_str(_env(env, "GITHUB_RUN_ATTEMPT")),
            "commit": _env(env, "GITHUB_SHA") or commit,
            "ref": _env(env, "GITHUB_REF"),
            "repository": repo,
            "pull_request": _github_pr(env),
            "url": f"{server}/{repo}/actions/runs/{run}" if repo and run else None,
        }
    elif (_env(env, "TF_BUILD") or "").lower() == "true" or "BUILD_BUILDID" in env:
        actor = {
            "type": "azure_pipelines",
            "name": _env(env, "BUILD_REQUESTEDFOR"),
            "email": _env(env, "BUILD_REQUESTEDFOREMAIL"),
            "workflow": _env(env, "BUILD_DEFINITIONNAME"),
            "run_id": _env(env, "BUILD_BUILDID"),
            "commit": _env(env, "BUILD_SOURCEVERSION") or commit,
            "ref": _env(env, "BUILD_SOURCEBRANCH"),
            "repository": _env(env, "BUILD_REPOSITORY_NAME"),
            "pull_request": _int_or_str(_env(env, "SYSTEM_PULLREQUEST_PULLREQUESTID")),
        }
    elif _env(env, "GITLAB_CI") == "true" or "CI_PIPELINE_ID" in env:
        actor = {
            "type": "gitlab",
            "name": _env(env, "GITLAB_USER_LOGIN"),
            "workflow": _env(env, "CI_JOB_NAME"),
            "run_id": _env(env, "CI_PIPELINE_ID"),
            "commit": _env(env, "CI_COMMIT_SHA") or commit,
            "ref": _env(env, "CI_COMMIT_REF_NAME"),
            "repository": _env(env, "CI_PROJECT_PATH"),
            "pull_request": _int_or_str(_env(env, "CI_MERGE_REQUEST_IID")),
            "url": _env(env, "CI_PIPELINE_URL"),
        }
    else:
        actor = {
            "type": "local",
            "name": _local_user(env),
            "host": socket.gethostname(),
            "commit": commit,
        }
    return {key: value for key, value in actor.items() if value is not None}


def git_head(start: str | os.PathLike[str] | None = None) -> str | None:
    """The commit checked out in the git work tree containing ``start`` (default: cwd), or None.

    Reads ``.git/HEAD`` and the ref files directly - no subprocess - so it is
    cheap enough to call once per run. Never raises.
    """
    try:
        here = Path(start or Path.cwd()).resolve()
        for directory in (here, *here.parents):
            dotgit = directory / ".git"
            if dotgit.is_dir():
                gitdir = dotgit
            elif dotgit.is_file():
                text = dotgit.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                gitdir = (directory / text[len("gitdir:") :].strip()).resolve()
            else:
                continue
            head_text = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
            if not head_text.startswith("ref:"):
                return head_text if re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", head_text) else None
            ref = head_text[len("ref:") :].strip()
            common = gitdir
            if (gitdir / "commondir").is_file():
                common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
            for base in (gitdir, common):
                ref_file = base / ref
                if ref_file.is_file():
                    return ref_file.read_text(encoding="utf-8").strip() or None
            packed = common / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
            return None  # unborn branch
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- entries


def default_path(project_dir: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> Path | str:
    """``$MAILROOM_AUDIT_LOG`` if set (relative: to ``project_dir``, default the current directory),
    else ``audit.jsonl`` in the state directory (``paths.state_dir``: ``$MAILROOM_STATE_DIR``, else
    the project's ``.mailroom``), which is where apply writes it."""
    from mailroom import paths

    environ = os.environ if env is None else env
    configured = _env(environ, ENV_VAR)
    if configured and paths.is_store_url(configured):
        return configured
    if configured:
        path = Path(configured).expanduser()
        base = Path(project_dir) if project_dir is not None else Path.cwd()
        return path if path.is_absolute() else base / path
    return paths.audit_log(Path(project_dir) if project_dir is not None else None, environ)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def line_hash(line: bytes) -> str:
    """SHA-256 (lowercase hex) of one line's exact bytes, without the trailing newline."""
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    """One audit log line. ``seq`` and ``prev`` are filled in by ``AuditLog.append``."""

    kind: Kind
    run_id: str
    stack: str
    actor: Mapping[str, Any]
    mailbox: str | None = None
    subject: str | None = None
    right: str | None = None
    before: Any = None
    after: Any = None
    result: str | None = None
    detail: str | None = None
    time: str = field(default_factory=utc_now)
    seq: int | None = None
    prev: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))  # ValueError for an unknown kind

    def to_dict(self) -> dict[str, Any]:
        """The entry as written: every key present, secrets redacted."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["kind"] = self.kind.value
        for key in ENTRY_KEYS - {"time", "seq", "prev", "kind"}:
            data[key] = redact(data[key])
        return data

    def to_json(self) -> str:
        """Deterministic one-line JSON (sort_keys, compact separators, UTF-8 kept)."""
        return canonical_json(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})


# --------------------------------------------------------------------------- writing


def _last_entry(fd: int, path: Path) -> tuple[int, str]:
    """(seq, hash) of the last line, (0, GENESIS) for an empty log."""
    size = os.fstat(fd).st_size
    if size == 0:
        return 0, GENESIS
    if os.pread(fd, 1, size - 1) != b"\n":
        raise AuditError(
            f"{path}: the last line is truncated (no trailing newline); refusing to append. "
            f"Run `mailroom audit verify {path}`."
        )
    tail = _read_tail_line(fd, size)
    try:
        last = json.loads(tail)
        seq = last["seq"]
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise TypeError("seq")
    except (ValueError, KeyError, TypeError):
        raise AuditError(
            f"{path}: the last line is not a valid audit entry; refusing to append. Run `mailroom audit verify {path}`."
        ) from None
    return seq, line_hash(tail)


def _read_tail_line(fd: int, size: int) -> bytes:
    """Bytes of the last line of a newline-terminated file of ``size`` bytes, without the newline."""
    end = size - 1  # offset of the final newline
    pos = end
    chunks: list[bytes] = []
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        cut = chunk.rfind(b"\n")
        if cut != -1:
            chunks.append(chunk[cut + 1 :])
            break
        chunks.append(chunk)
    return b"".join(reversed(chunks))


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


class AuditLog:
    """Appends hash-chained entries for one run to the log at ``path``.

    ``path`` None means ``default_path()``. ``run_id`` defaults to a new
    ``YYYYmmddTHHMMSSZ-xxxxxxxx``; ``actor`` defaults to
    ``actor_from_env(os.environ, commit=git_head(<log's directory>))``,
    computed once here, not per append. Safe to share between threads; any
    number of processes may append to the same file.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        stack: str,
        run_id: str | None = None,
        actor: Mapping[str, Any] | None = None,
    ) -> None:
        # A shared store (``azblob://...``, $MAILROOM_STORE) holds one log per stack; else a local file.
        location = path if path is not None else default_path()
        self.store_url = location if isinstance(location, str) and location.startswith("azblob://") else None
        self.path = Path(location) if self.store_url is None else Path(".")
        self.stack = stack
        self.run_id = run_id or _new_run_id()
        if actor is None:
            actor = actor_from_env(os.environ, commit=git_head(self.path.parent if self.store_url is None else None))
        self.actor: dict[str, Any] = redact(dict(actor))

    def entry(self, kind: Kind | str, **fields: Any) -> AuditEntry:
        """An entry of this run (run_id, stack and actor filled in)."""
        return AuditEntry(kind=Kind(kind), run_id=self.run_id, stack=self.stack, actor=self.actor, **fields)

    def append(self, entry_or_entries: AuditEntry | Iterable[AuditEntry]) -> list[str]:
        """Chain and append entries atomically; return the hash of each new line.

        The batch is written with a single ``os.write`` under an exclusive
        ``flock``, after reading the current last line under that lock, then
        fsynced. Entries' own ``seq``/``prev`` are ignored (always recomputed).
        """
        entries = [entry_or_entries] if isinstance(entry_or_entries, AuditEntry) else list(entry_or_entries)
        if not entries:
            return []
        dicts = [entry.to_dict() for entry in entries]  # serialisation errors before taking the lock
        if self.store_url is not None:
            return self._append_to_store(dicts)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        created = not self.path.exists()
        # Owner-only: the log names every person with access to every mailbox.
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        import fcntl  # POSIX only: imported where it is used, so `mailroom --help` runs anywhere

        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                seq, prev = _last_entry(fd, self.path)
                hashes: list[str] = []
                lines: list[bytes] = []
                for data in dicts:
                    seq += 1
                    data["seq"], data["prev"] = seq, prev
                    line = canonical_json(data).encode("utf-8")
                    prev = line_hash(line)
                    hashes.append(prev)
                    lines.append(line + b"\n")
                payload = memoryview(b"".join(lines))
                while payload:  # one write; loop only if the kernel writes short (disk full...)
                    written = os.write(fd, payload)
                    payload = payload[written:]
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)
        return hashes

    def _append_to_store(self, dicts: list[dict[str, Any]]) -> list[str]:
        """Chain onto the store's tail and append with one conditional append (retried on a race)."""
        from mailroom.store.azblob import BlobStore

        hashes: list[str] = []

        def make(tail: bytes | None) -> bytes:
            hashes.clear()
            if tail is None:
                seq, prev = 0, GENESIS
            else:
                try:
                    seq = json.loads(tail)["seq"]
                    if not isinstance(seq, int) or isinstance(seq, bool):
                        raise TypeError("seq")
                except (ValueError, KeyError, TypeError):
                    raise AuditError(f"{self.store_url}: the last line is not a valid audit entry; refusing to "
                                     "append. Run `mailroom audit verify`.") from None
                prev = line_hash(tail)
            lines = []
            for data in dicts:
                seq += 1
                line = canonical_json({**data, "seq": seq, "prev": prev}).encode("utf-8")
                prev = line_hash(line)
                hashes.append(prev)
                lines.append(line + b"\n")
            return b"".join(lines)

        assert self.store_url is not None
        BlobStore(self.store_url).log(self.stack).append(make)
        return list(hashes)

    def start_run(self, detail: str | None = None, *, context: Any = None) -> str:
        """Record ``run_start``; ``context`` (e.g. command, options) goes to ``after``."""
        return self.append(self.entry(Kind.RUN_START, after=context, detail=detail))[0]

    def end_run(self, result: str, summary: Any = None, *, detail: str | None = None) -> str:
        """Record ``run_end`` with ``result`` (ok/failed/...); ``summary`` (e.g. counts) goes to ``after``."""
        return self.append(self.entry(Kind.RUN_END, result=result, after=summary, detail=detail))[0]

    def record_change(
        self,
        mailbox: str,
        right: str | None,
        *,
        subject: str | None = None,
        before: Any = None,
        after: Any = None,
        error: str | None = None,
        result: str | None = None,
        detail: str | None = None,
    ) -> str:
        """Record an applied change (``change``, result ``ok``), or with ``error`` a failed one
        (``change_failed``, result ``failed``, detail = the error)."""
        if error is not None:
            entry = self.entry(
                Kind.CHANGE_FAILED,
                mailbox=mailbox,
                right=right,
                subject=subject,
                before=before,
                after=after,
                result=result or "failed",
                detail=error if detail is None else detail,
            )
        else:
            entry = self.entry(
                Kind.CHANGE,
                mailbox=mailbox,
                right=right,
                subject=subject,
                before=before,
                after=after,
                result=result or "ok",
                detail=detail,
            )
        return self.append(entry)[0]

    def record_finding(
        self,
        kind: Kind | str,
        mailbox: str,
        right: str | None,
        *,
        subject: str | None = None,
        before: Any = None,
        after: Any = None,
        detail: str | None = None,
    ) -> str:
        """Record a drift finding: ``kind`` is drift_new/drift_present/drift_resolved
        (or new/present/resolved); ``before`` = desired, ``after`` = actual, by convention."""
        value = kind.value if isinstance(kind, Kind) else str(kind)
        kind_ = Kind(value if value.startswith("drift_") else f"drift_{value}")
        if kind_ not in DRIFT_KINDS:
            raise ValueError(f"not a drift kind: {kind!r}")
        entry = self.entry(
            kind_, mailbox=mailbox, right=right, subject=subject, before=before, after=after, detail=detail
        )
        return self.append(entry)[0]


# --------------------------------------------------------------------------- reading


def _snapshot_size(fh: IO[bytes]) -> int:
    """Size of the file at a moment no writer holds the lock, i.e. at a batch boundary."""
    import fcntl  # POSIX only, see append

    fcntl.flock(fh.fileno(), fcntl.LOCK_SH)
    try:
        return os.fstat(fh.fileno()).st_size
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _iter_raw(fh: IO[bytes]) -> Iterator[tuple[int, bytes, bool]]:
    """(line number, bytes without newline, newline-terminated?) up to a consistent snapshot."""
    remaining = _snapshot_size(fh)
    lineno = 0
    while remaining > 0:
        raw = fh.readline(remaining)
        if not raw:
            break
        remaining -= len(raw)
        lineno += 1
        if raw.endswith(b"\n"):
            yield lineno, raw[:-1], True
        else:
            yield lineno, raw, False


@dataclass
class _Line:
    number: int
    raw: bytes
    hash: str
    obj: dict[str, Any] | None
    problem: str | None

    @property
    def seq(self) -> Any:
        return self.obj.get("seq") if self.obj else None

    @property
    def prev(self) -> Any:
        return self.obj.get("prev") if self.obj else None


def _check_line(number: int, raw: bytes, terminated: bool) -> _Line:
    digest = line_hash(raw)

    def bad(problem: str, obj: dict[str, Any] | None = None) -> _Line:
        return _Line(number, raw, digest, obj, problem)

    if not terminated:
        return bad("truncated last line (no trailing newline): an interrupted write or a cut file")
    if not raw.strip():
        return bad("empty line")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return bad("not valid UTF-8")
    except json.JSONDecodeError as exc:
        return bad(f"not valid JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(obj, dict):
        return bad("not a JSON object")
    missing = sorted(ENTRY_KEYS - obj.keys())
    if missing:
        return bad(f"missing key(s): {', '.join(missing)}", obj)
    seq, prev = obj["seq"], obj["prev"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return bad(f"invalid seq {seq!r}", obj)
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return bad(f"invalid prev {prev!r}", obj)
    if obj["kind"] not in Kind._value2member_map_:
        return bad(f"unknown kind {obj['kind']!r}", obj)
    try:
        canonical = canonical_json(obj).encode("utf-8")
    except ValueError:  # NaN / Infinity
        canonical = b""
    if canonical != raw:
        return bad("not in canonical form (the line was edited by hand)", obj)
    return _Line(number, raw, digest, obj, None)


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``verify``.

    ``lines_checked``: lines that verified before the first bad one (all of them when ok).
    ``first_bad_line``: 1-based, None when ok. ``head``: hash of the last good line
    (GENESIS for an empty log) - the anchor to keep for ``expect_head``.
    ``head_seq``: that line's number (0 for an empty log).
    """

    ok: bool
    lines_checked: int
    first_bad_line: int | None = None
    reason: str | None = None
    head: str = GENESIS
    head_seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _chains(line: _Line | None, seq: int, prev: str) -> bool:
    return line is not None and line.problem is None and line.seq == seq and line.prev == prev


def _diagnose(before: _Line | None, cur: _Line, nxt: _Line | None) -> tuple[int, str]:
    """Which line is to blame when line ``cur`` does not continue the chain from ``before``."""
    i = cur.number
    seq = cur.seq
    if seq != i:
        if seq > i:
            missing = f"entry #{i} is" if seq == i + 1 else f"entries #{i}..#{seq - 1} are"
            return i, (
                f"out of sequence: expected entry #{i}, found #{seq} - {missing} missing "
                "(deleted), or lines were reordered"
            )
        if before is not None and seq == before.seq and cur.prev == before.prev:
            if cur.raw == before.raw:
                return i, f"line {i} duplicates line {i - 1}"
            if _chains(nxt, seq + 1, cur.hash):
                return i - 1, (
                    f"lines {i - 1} and {i} both claim to be entry #{seq}, and line {i + 1} "
                    f"chains from line {i}: line {i - 1} was inserted"
                )
            if nxt is None:
                return i - 1, f"lines {i - 1} and {i} both claim to be entry #{seq}: one of them was inserted"
            return i, f"lines {i - 1} and {i} both claim to be entry #{seq}: line {i} was inserted"
        return i, (
            f"out of sequence: expected entry #{i}, found #{seq} - a line was inserted, duplicated or moved here"
        )
    # in sequence, but prev does not match the line before
    if before is None:
        return i, "prev is not the genesis hash: line 1 was modified"
    if nxt is None:
        return i - 1, (
            f"line {i - 1} does not hash to the prev recorded by line {i}: line {i - 1} "
            f"was modified (or line {i}'s prev was)"
        )
    if _chains(nxt, i + 1, cur.hash):
        return i - 1, f"line {i - 1} was modified: its hash no longer matches the prev recorded by line {i}"
    return i, (
        f"line {i} was modified: its prev does not match line {i - 1}, and line {i + 1}'s prev does not match it"
    )


def normalise_hash(value: str) -> str:
    """A SHA-256 hex digest, lower-cased; ValueError if ``value`` is not one."""
    digest = value.strip().lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"not a SHA-256 hex digest: {value!r}")
    return digest


def verify(path: str | os.PathLike[str], *, expect_head: str | None = None,
           anchors: Iterable[tuple[int, str]] = ()) -> VerifyResult:
    """Check the whole chain of the log at ``path``; stop at and name the first bad line.

    Detects a modified, deleted, inserted, duplicated or reordered line, a line
    that is not JSON (or not a canonical audit entry), and a truncated last
    line. Reads the file as a stream (constant memory).

    Limitation: a chain alone cannot detect deleting - or editing - only the
    LAST line(s), nor a wholesale rewrite with recomputed hashes, because no
    remaining line vouches for them. Pass ``expect_head``, the head hash of an
    earlier verify kept outside the log (e.g. by CI): the log must then still
    contain that exact line, chained; lines appended after it are accepted.
    When it is missing, the last line is named (it was modified, or lines
    after it were deleted - the chain cannot tell which).

    Raises FileNotFoundError if there is no log, ValueError for a malformed
    ``expect_head``.
    """
    anchor = normalise_hash(expect_head) if expect_head is not None else None
    anchor_seen = anchor == GENESIS
    # (seq, hash) kept in a second trust domain (`mailroom audit anchor`): each must still be in the log.
    anchored = {int(seq): normalise_hash(digest) for seq, digest in anchors}
    with open(path, "rb") as fh:
        raw_lines = _iter_raw(fh)
        before: _Line | None = None
        earlier: _Line | None = None  # the line before `before`

        def fail(bad: int, reason: str) -> VerifyResult:
            good = before if bad == (before.number + 1 if before else 1) else earlier
            return VerifyResult(
                ok=False,
                lines_checked=bad - 1,
                first_bad_line=bad,
                reason=f"line {bad}: {reason}",
                head=good.hash if good else GENESIS,
                head_seq=good.number if good else 0,
            )

        for number, raw, terminated in raw_lines:
            cur = _check_line(number, raw, terminated)
            if cur.problem is not None:
                return fail(number, cur.problem)
            expected_prev = before.hash if before else GENESIS
            if cur.seq != number or cur.prev != expected_prev:
                following = next(raw_lines, None)
                nxt = _check_line(*following) if following else None
                return fail(*_diagnose(before, cur, nxt))
            if anchor is not None and cur.hash == anchor:
                anchor_seen = True
            if number in anchored and anchored[number] != cur.hash:
                return fail(number, f"entry #{number} is not the one anchored ({anchored[number]}): the log was "
                                    "rewritten from here on")
            earlier, before = before, cur
    count = before.number if before else 0
    head_hash = before.hash if before else GENESIS
    beyond = sorted(seq for seq in anchored if seq > count)
    if beyond:
        return VerifyResult(ok=False, lines_checked=count, first_bad_line=count + 1,
                            reason=f"line {count + 1}: the log ends at entry #{count}, but entry #{beyond[-1]} was "
                                   "anchored: lines were cut from its end",
                            head=head_hash if before else GENESIS, head_seq=count)
    if anchor is not None and not anchor_seen:
        bad = max(count, 1)
        reason = (
            f"line {bad}: the anchored entry {anchor} is not in the log - line {count} was modified, "
            f"or lines after line {count} were deleted, or the log was rewritten"
            if count
            else f"line 1: the log is empty but the anchored entry {anchor} was expected (lines deleted)"
        )
        good_count = max(count - 1, 0)
        return VerifyResult(
            ok=False,
            lines_checked=good_count,
            first_bad_line=bad,
            reason=reason,
            head=earlier.hash if earlier else GENESIS,
            head_seq=good_count,
        )
    return VerifyResult(ok=True, lines_checked=count, head=head_hash, head_seq=count)


@contextlib.contextmanager
def local_copy(location: str | os.PathLike[str], stack: str) -> Iterator[Path]:
    """A local file holding the log at ``location``: the file itself, or for a shared store the
    stack's log downloaded (owner-only, removed afterwards) so that verify and read stream it."""
    if not (isinstance(location, str) and location.startswith("azblob://")):
        yield Path(location)
        return
    from mailroom.store.azblob import BlobStore

    with tempfile.TemporaryDirectory(prefix="mailroom-audit-") as tmp:
        copy = Path(tmp) / "audit.jsonl"
        with open(copy, "wb") as out:
            BlobStore(location).log(stack).download(out)
        yield copy


def head(path: str | os.PathLike[str]) -> str:
    """Hash of the log's last line (GENESIS if the log is empty or missing); no verification."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return GENESIS
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return GENESIS
        if os.pread(fd, 1, size - 1) != b"\n":
            raise AuditError(f"{path}: the last line is truncated")
        return line_hash(_read_tail_line(fd, size))
    finally:
        os.close(fd)


def _kind_values(kinds: Iterable[Kind | str] | Kind | str) -> set[str]:
    items = [kinds] if isinstance(kinds, (str, Kind)) else list(kinds)
    return {Kind(k).value for k in items}


def read(
    path: str | os.PathLike[str],
    mailbox: str | None = None,
    since: str | datetime | None = None,
    kinds: Iterable[Kind | str] | Kind | str | None = None,
) -> Iterator[dict[str, Any]]:
    """Entries of the log, oldest first, filtered.

    ``mailbox``: SMTP address, compared case-insensitively (entries without a
    mailbox, e.g. run_start, never match). ``since``: entries at or after an
    ISO date/time (naive = UTC) or a relative age (``7d``, ``24h``, ``30m``).
    ``kinds``: Kind values to keep. Does not verify the chain (use ``verify``);
    raises AuditError on a line that is not JSON and ValueError on a bad filter.
    """
    wanted_mailbox = mailbox.strip().lower() if mailbox else None
    cutoff = parse_since(since) if since is not None else None
    wanted_kinds = _kind_values(kinds) if kinds is not None else None
    with open(path, "rb") as fh:
        for number, raw, _terminated in _iter_raw(fh):
            try:
                obj = json.loads(raw.decode("utf-8"))
            except ValueError:
                raise AuditError(f"{path}:{number}: not valid JSON") from None
            if not isinstance(obj, dict):
                raise AuditError(f"{path}:{number}: not a JSON object")
            if wanted_kinds is not None and obj.get("kind") not in wanted_kinds:
                continue
            if wanted_mailbox is not None:
                entry_mailbox = obj.get("mailbox")
                if not isinstance(entry_mailbox, str) or entry_mailbox.strip().lower() != wanted_mailbox:
                    continue
            if cutoff is not None:
                try:
                    moment = _parse_iso(str(obj.get("time")))
                except (ValueError, IndexError):
                    raise AuditError(f"{path}:{number}: invalid time {obj.get('time')!r}") from None
                if moment < cutoff:
                    continue
            yield obj
