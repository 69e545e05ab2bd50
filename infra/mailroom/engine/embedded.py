"""The embedded local tenant: started on demand as a separate server process.

mailroom never imports the emulator (``localtenant``); it starts it with
``python -m localtenant serve`` on a free loopback port, keeps its state in
``.mailroom/tenant.db`` and its address in ``.mailroom/tenant.json``, and reuses
a running one. ``MAILROOM_LOCAL_TENANT_URL`` points at a server started by
someone else (tests start their own) instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mailroom import paths
from mailroom.engine.workspace import private_dir
from mailroom.engine.workspace import state_dir as mailroom_state_dir
from mailroom.errors import ConfigError

URL_ENV = "MAILROOM_LOCAL_TENANT_URL"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class LocalTenantInfo:
    url: str
    tenant_id: str
    pid: int | None = None


def directory_file() -> Path:
    """The shipped demo directory (contoso users and groups) the local tenant is seeded from."""
    return Path(__file__).resolve().parents[2] / "localtenant" / "data" / "directory.yaml"


def _health(url: str) -> dict[str, object] | None:
    try:
        resp = httpx.get(f"{url.rstrip('/')}/_emulator/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    try:
        data = resp.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else {}


def _info(url: str, health: dict[str, object], pid: int | None = None) -> LocalTenantInfo:
    tenant = str(health.get("tenant_id") or health.get("tenant") or "")
    if not tenant:
        raise ConfigError(f"local tenant at {url} did not say its tenant id")
    return LocalTenantInfo(url.rstrip("/"), tenant, pid)


def ensure_running(project_dir: Path) -> LocalTenantInfo:
    external = os.environ.get(URL_ENV)
    if external:
        health = _health(external)
        if health is None:
            raise ConfigError(f"{URL_ENV}={external} does not answer")
        return _info(external, health)
    state_dir = mailroom_state_dir(project_dir)
    private_dir(state_dir)
    import fcntl  # POSIX only: imported where it is used, so `mailroom --help` runs anywhere

    with open(state_dir / "tenant.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once must not start two servers
        info_file = state_dir / "tenant.json"
        if info_file.exists():
            saved = json.loads(info_file.read_text())
            health = _health(saved["url"])
            if health is not None:
                return _info(saved["url"], health, saved.get("pid"))
        info = _start(state_dir)
        info_file.write_text(json.dumps({"url": info.url, "tenant_id": info.tenant_id, "pid": info.pid}))
        return info


def _start(state_dir: Path) -> LocalTenantInfo:
    db = state_dir / paths.TENANT_DB_NAME
    port_file = state_dir / "tenant.port"
    port_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "localtenant", "serve", "--state", str(db), "--port", "0",
           "--port-file", str(port_file)]
    if not db.exists():
        cmd += ["--seed-directory", str(directory_file())]
    print(f"mailroom: starting the local tenant (state {db})", file=sys.stderr)
    with open(state_dir / "tenant.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"the local tenant exited with code {proc.returncode}; see {state_dir / 'tenant.log'}")
        if port_file.exists() and port_file.read_text().strip():
            url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
            health = _health(url)
            if health is not None:
                return _info(url, health, proc.pid)
        time.sleep(0.1)
    proc.terminate()
    raise ConfigError(f"the local tenant did not start within {START_TIMEOUT:.0f}s; see {state_dir / 'tenant.log'}")


def stop(project_dir: Path) -> bool:
    info_file = mailroom_state_dir(project_dir) / "tenant.json"
    if not info_file.exists():
        return False
    pid = json.loads(info_file.read_text()).get("pid")
    info_file.unlink()
    if pid:
        try:
            os.kill(int(pid), 15)
            return True
        except ProcessLookupError:
            return False
    return False
