"""SQLite state for the emulator: one file, WAL, one connection behind a lock.

Why one connection: handlers run on the event loop and each model call is a short
synchronous transaction, so a single connection is the fastest option and gives
serialisable writes for free. The lock only matters when a second thread (the
seed command, a test helper) shares the store. WAL lets a separate process (for
example ``python -m localtenant seed`` against a live server's file) read and
write without blocking readers; ``synchronous=NORMAL`` survives a process crash,
which is the durability the emulator needs ("state survives a restart").
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = "1"
# The state holds the token-signing secret: owner-only, whatever the umask.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SIDE_FILES = ("-wal", "-shm", "-journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- One row per directory object. Entra side (kind, upn, account_enabled, user_deleted)
-- and Exchange recipient side (rtd, name, alias, guid, soft_deleted) share the row,
-- as they share one identity in a real tenant (ExternalDirectoryObjectId == Graph id).
CREATE TABLE IF NOT EXISTS objects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,                      -- 'user' | 'group'
    upn TEXT, upn_l TEXT UNIQUE,
    display_name TEXT NOT NULL,
    mail TEXT,
    account_enabled INTEGER NOT NULL DEFAULT 1,
    user_deleted INTEGER NOT NULL DEFAULT 0,
    rtd TEXT,                                -- RecipientTypeDetails; NULL = not a recipient
    name TEXT, name_l TEXT,
    alias TEXT, alias_l TEXT,
    guid TEXT UNIQUE,
    exchange_guid TEXT,
    soft_deleted INTEGER NOT NULL DEFAULT 0,
    when_soft_deleted TEXT,
    created TEXT NOT NULL,
    changed TEXT NOT NULL,
    props TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS objects_name ON objects(name_l);
CREATE INDEX IF NOT EXISTS objects_alias ON objects(alias_l);
CREATE INDEX IF NOT EXISTS objects_rtd ON objects(rtd, soft_deleted, seq);

-- SMTP proxy addresses, unique across ALL recipients (soft-deleted ones included).
CREATE TABLE IF NOT EXISTS addresses (
    address_l TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    object_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    is_primary INTEGER NOT NULL,
    pos INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS addresses_object ON addresses(object_seq, pos);

CREATE TABLE IF NOT EXISTS mailbox_perms (
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    trustee_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    access_right TEXT NOT NULL,
    inheritance TEXT NOT NULL,
    automapping INTEGER NOT NULL,
    PRIMARY KEY (mailbox_seq, trustee_seq, access_right)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mailbox_perms_trustee ON mailbox_perms(trustee_seq);

CREATE TABLE IF NOT EXISTS recipient_perms (
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    trustee_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    access_right TEXT NOT NULL,
    PRIMARY KEY (mailbox_seq, trustee_seq, access_right)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS recipient_perms_trustee ON recipient_perms(trustee_seq);

CREATE TABLE IF NOT EXISTS send_on_behalf (
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    trustee_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    pos INTEGER NOT NULL,
    PRIMARY KEY (mailbox_seq, trustee_seq)
) WITHOUT ROWID;

-- Inbox rules of a mailbox (New-/Get-/Enable-/Disable-/Remove-InboxRule). Forwarding actions hold what was
-- given, as Exchange resolves it: a recipient's display form or an outside SMTP address. ``hidden``: a rule
-- only a MAPI client sees (Get-InboxRule shows it with -IncludeHidden).
CREATE TABLE IF NOT EXISTS inbox_rules (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    rule_id TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    hidden INTEGER NOT NULL DEFAULT 0,
    actions TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS inbox_rules_mailbox ON inbox_rules(mailbox_seq, seq);

-- Mailbox folder permissions (Get-/Add-/Set-/Remove-MailboxFolderPermission) on a mailbox's well-known folders,
-- by FolderType. ``trustee_seq`` 0 is the Default entry, -1 Anonymous (both exist on every folder; a folder
-- without their row has Exchange's defaults); ``rights``: the AccessRights as a comma-joined set.
CREATE TABLE IF NOT EXISTS folder_perms (
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    trustee_seq INTEGER NOT NULL,
    rights TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mailbox_seq, folder, trustee_seq)
) WITHOUT ROWID;

-- Folders users made in a mailbox (exchange/folders.py): under the well-known folder of FolderType ``top`` (''
-- for the top of the information store); ``names`` the folder's names below it, joined by a backslash.
CREATE TABLE IF NOT EXISTS mailbox_folders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox_seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,
    folder_id TEXT NOT NULL UNIQUE,
    top TEXT NOT NULL,
    names TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mailbox_folders_mailbox ON mailbox_folders(mailbox_seq, seq);

CREATE TABLE IF NOT EXISTS directory_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_dt TEXT NOT NULL,
    target_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS directory_audit_date ON directory_audit(activity_dt);
CREATE INDEX IF NOT EXISTS directory_audit_target ON directory_audit(target_id);

-- The unified audit log (graph/auditlog.py): ExchangeAdmin records of cmdlets and mailbox records of delegate
-- activity. ``visible``: when searches find it (the ingestion delay). Audit log queries, and message traces
-- (graph/tracing.py).
CREATE TABLE IF NOT EXISTS unified_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL, visible TEXT NOT NULL, record_type TEXT NOT NULL, operation TEXT NOT NULL,
    user_l TEXT NOT NULL, object_l TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS unified_audit_created ON unified_audit(created);
CREATE TABLE IF NOT EXISTS audit_queries (
    id TEXT PRIMARY KEY, app_id TEXT NOT NULL, submitted TEXT NOT NULL, body TEXT NOT NULL, version TEXT NOT NULL,
    matched INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS message_trace (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received TEXT NOT NULL, sender_l TEXT NOT NULL, recipient_l TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS message_trace_received ON message_trace(received);

-- App roles consented to an app (identity/grants.py): JSON {audience: [role, ...]}. Apps without a row get
-- identity.models.APP_ROLES.
CREATE TABLE IF NOT EXISTS app_grants (app_id_l TEXT PRIMARY KEY, roles TEXT NOT NULL) WITHOUT ROWID;

-- Exchange RBAC for applications (exchange/rbac.py): service principals registered in Exchange, recipient
-- management scopes, and the role assignments that bind a role (and a write scope) to an app.
CREATE TABLE IF NOT EXISTS service_principals (
    app_id_l TEXT PRIMARY KEY, app_id TEXT NOT NULL, object_id TEXT NOT NULL, service_id TEXT NOT NULL,
    display_name TEXT NOT NULL, created TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS management_scopes (
    name_l TEXT PRIMARY KEY, name TEXT NOT NULL, filter TEXT NOT NULL, guid TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_assignments (
    name_l TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
    app_id_l TEXT NOT NULL REFERENCES service_principals(app_id_l) ON DELETE CASCADE,
    write_scope_l TEXT REFERENCES management_scopes(name_l), guid TEXT NOT NULL
) WITHOUT ROWID;
"""


class Store:
    """The emulator's SQLite database. Use :meth:`tx` for writes, :meth:`read` for reads."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            make_private_dirs(Path(self.path).parent)
            _make_private_file(Path(self.path))
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a transaction is exactly
        # one model call, never an implicit transaction left open across requests.
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.executescript(SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
            )
        if self.path != ":memory:":
            # SQLite gives new -wal/-shm files the database's mode; ones left by an older run
            # with looser modes are tightened here.
            for suffix in SIDE_FILES:
                side = Path(self.path + suffix)
                if side.exists():
                    os.chmod(side, PRIVATE_FILE)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. BEGIN IMMEDIATE takes the write lock up front, so two
        processes sharing the file cannot deadlock on a read-then-write upgrade."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (a deferred transaction sees one snapshot across its queries)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            finally:
                self._conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def make_private_dirs(path: Path) -> None:
    """``mkdir -p`` with every directory it creates owner-only. (``Path.mkdir(parents=True)``
    gives intermediate directories the umask's default mode; existing ones are left alone.)"""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # created by someone else meanwhile: not ours to change
        os.chmod(directory, PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def _make_private_file(path: Path) -> None:
    """Create the database file owner-only before SQLite opens it, or tighten an existing one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
