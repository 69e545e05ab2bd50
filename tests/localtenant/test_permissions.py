"""The state file holds the token-signing secret, so the database (and its -wal/-shm files)
and every directory the local tenant creates are owner-only (0600 / 0700) whatever the
umask; an existing database with looser modes is tightened when the tenant starts."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "infra" / "localtenant" / "data" / "directory.yaml"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)  # inherited by the subprocesses started inside
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def serving(state: Path, port_file: Path) -> Iterator[str]:
    """``python -m localtenant serve`` on a free port; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "localtenant", "serve", "--state", str(state), "--port", "0",
                             "--port-file", str(port_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the local tenant did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port_file.read_text().strip()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_something(base: str) -> None:
    """A write, so SQLite has its -wal and -shm files open."""
    form = {"grant_type": "client_credentials", "client_id": "perm", "client_secret": "x", "scope": GRAPH_SCOPE}
    token = httpx.post(f"{base}/contoso.onmicrosoft.com/oauth2/v2.0/token", data=form).json()["access_token"]
    resp = httpx.patch(f"{base}/v1.0/users/bob@contoso.com", json={"jobTitle": "Auditor"},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 204


def test_new_state_and_directories_are_owner_only_under_umask_022(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested" / "tenant.db"
    port_file = tmp_path / "run" / "sub" / "port"
    parent_mode = mode(tmp_path)
    with umask(0o022), serving(state, port_file) as base:
        write_something(base)
        files = [state, Path(f"{state}-wal"), Path(f"{state}-shm")]
        assert all(f.exists() for f in files)
        assert {str(f.name): mode(f) for f in files} == {f.name: 0o600 for f in files}
    for directory in (tmp_path / "state", state.parent, tmp_path / "run", port_file.parent):
        assert mode(directory) == 0o700, directory
    assert mode(tmp_path) == parent_mode  # not created by the tenant: left as it was


def test_seed_command_creates_the_state_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "made" / "tenant.db"
    with umask(0o002):
        result = subprocess.run([sys.executable, "-m", "localtenant", "seed", "--state", str(state),
                                 str(DIRECTORY)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert mode(state) == 0o600 and mode(state.parent) == 0o700


def test_existing_loose_state_is_tightened_on_start(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    state = shared / "tenant.db"
    subprocess.run([sys.executable, "-m", "localtenant", "seed", "--state", str(state), str(DIRECTORY)],
                   check=True, capture_output=True, timeout=60)
    os.chmod(state, 0o644)
    for suffix in ("-wal", "-shm"):  # left behind by an older run
        Path(f"{state}{suffix}").touch()
        os.chmod(f"{state}{suffix}", 0o666)
    with umask(0o022), serving(state, tmp_path / "port") as base:
        write_something(base)
        assert mode(state) == 0o600
        assert mode(Path(f"{state}-wal")) == 0o600 and mode(Path(f"{state}-shm")) == 0o600
    assert mode(shared) == 0o755  # a directory the tenant did not create is left alone
