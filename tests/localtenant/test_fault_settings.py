"""Every fault profile setting is validated, wherever it comes from: the ``--profile`` file
at startup (refused with exit status 2, the flag and the setting named, before the state is
touched) and ``PUT /_emulator/profile`` at run time (400 with the emulator's envelope,
naming the setting; the current profile is kept). The emulator reads no environment
variables for faults, so there is nothing to validate there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import LocalTenant

# (setting named in the error, bad profile). JSON text, so NaN/Infinity can be written.
BAD = [
    ("throttle_rate", '{"throttle_rate": -0.1}'),
    ("error_rate", '{"error_rate": 1.5}'),
    ("drop_rate", '{"drop_rate": "0.5"}'),
    ("throttle_rate", '{"throttle_rate": true}'),
    ("latency_ms.mean", '{"latency_ms": {"mean": -5}}'),
    ("latency_ms.mean", '{"latency_ms": -5}'),
    ("latency_ms.jitter", '{"latency_ms": {"mean": 5, "jitter": -1}}'),
    ("latency_ms.mean", '{"latency_ms": {"mean": 1e12}}'),
    ("latency_ms", '{"latency_ms": "slow"}'),
    ("latency_ms", '{"latency_ms": {"average": 5}}'),
    ("seed", '{"seed": 1.5}'),
    ("seed", '{"seed": "7"}'),
    ("seed", '{"seed": true}'),
    ("rate_limit.per_second", '{"rate_limit": {"per_second": 0}}'),
    ("rate_limit.per_second", '{"rate_limit": {"per_second": -2}}'),
    ("rate_limit.per_second", '{"rate_limit": {"burst": 5}}'),
    ("rate_limit.burst", '{"rate_limit": {"per_second": 5, "burst": 0.5}}'),
    ("rate_limit", '{"rate_limit": [5]}'),
    ("max_concurrency_per_app", '{"max_concurrency_per_app": 0}'),
    ("max_concurrency_per_app", '{"max_concurrency_per_app": -1}'),
    ("retry_after_seconds", '{"retry_after_seconds": 0}'),
    ("retry_after_seconds", '{"retry_after_seconds": 2.5}'),
    ("error_statuses", '{"error_statuses": [404]}'),
    ("error_statuses", '{"error_statuses": []}'),
    ("error_statuses", '{"error_statuses": 500}'),
    ("profile", '{"throtle_rate": 0.1}'),
    ("profile", '[0.1]'),
]
# Not JSON at all (Python's json would read them): refused as an unreadable profile.
NOT_JSON = ['{"latency_ms": NaN}', '{"error_rate": NaN}', '{"latency_ms": Infinity}', '{"seed": -Infinity}']
# YAML spells them .nan / .inf, and those are valid YAML: the setting check refuses them.
BAD_YAML = [("latency_ms.mean", "latency_ms: {mean: .nan}\n"), ("error_rate", "error_rate: .nan\n"),
            ("latency_ms.jitter", "latency_ms: {mean: 1, jitter: .inf}\n"), ("seed", "seed: .inf\n")]


def put(tenant: LocalTenant, text: str) -> httpx.Response:
    return httpx.put(f"{tenant.base_url}/_emulator/profile", content=text.encode(),
                     headers={"Content-Type": "application/json"})


def test_admin_endpoint_refuses_each_bad_setting_and_keeps_the_profile(local_tenant: LocalTenant) -> None:
    good = local_tenant.set_profile({"seed": 3, "latency_ms": {"mean": 1, "jitter": 0.5}})
    for setting, text in BAD:
        resp = put(local_tenant, text)
        assert resp.status_code == 400, text
        error = resp.json()["error"]
        assert error["code"] == "BadRequest" and error["setting"] == setting, (text, error)
        assert error["message"].startswith(f"{setting}:")
    for text in NOT_JSON:
        resp = put(local_tenant, text)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "BadRequest", text
    assert httpx.get(f"{local_tenant.base_url}/_emulator/profile").json() == good
    assert "500" not in local_tenant.metrics()["statuses"]


def test_admin_endpoint_accepts_the_edges(local_tenant: LocalTenant) -> None:
    edges: dict[str, Any] = {"seed": -4, "latency_ms": 0, "throttle_rate": 0, "error_rate": 1, "drop_rate": 0.0,
                             "rate_limit": {"per_second": 0.5}, "max_concurrency_per_app": 1,
                             "retry_after_seconds": 1, "error_statuses": [599]}
    current = local_tenant.set_profile(edges)
    # A bucket is at least one call deep, or a slow rate would never admit anything.
    assert current["rate_limit"] == {"per_second": 0.5, "burst": 1.0}
    assert current["error_rate"] == 1.0 and current["seed"] == -4


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "localtenant", "serve", "--state", str(tmp_path / "t.db"),
                           "--port", "0", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("setting", "text", "suffix"), [
    ("latency_ms.mean", '{"latency_ms": {"mean": -5}}', ".json"),
    ("throttle_rate", '{"throttle_rate": 1.01}', ".json"),
    ("seed", '{"seed": 2.5}', ".json"),
    ("rate_limit.per_second", "rate_limit: {per_second: -1}\n", ".yaml"),
    *[(setting, text, ".yaml") for setting, text in BAD_YAML],
])
def test_cli_refuses_a_bad_profile_with_exit_2(tmp_path: Path, setting: str, text: str, suffix: str) -> None:
    profile = tmp_path / f"profile{suffix}"
    profile.write_text(text)
    result = serve(tmp_path, "--profile", str(profile))
    assert result.returncode == 2, result.stderr
    assert "argument --profile" in result.stderr and f"{setting}:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "t.db").exists()


@pytest.mark.parametrize(("args", "flag"), [
    (("--skiptoken-ttl", "nan"), "--skiptoken-ttl"),
    (("--skiptoken-ttl", "-1"), "--skiptoken-ttl"),
    (("--skiptoken-ttl", "inf"), "--skiptoken-ttl"),
    (("--port", "70000"), "--port"),
    (("--profile", "/nonexistent/profile.yaml"), "--profile"),
    (("--profile", "NOT_JSON"), "--profile"),
])
def test_cli_refuses_other_bad_settings_with_exit_2(tmp_path: Path, args: tuple[str, str], flag: str) -> None:
    if args[1] == "NOT_JSON":
        bad = tmp_path / "p.json"
        bad.write_text(json.dumps({"x": 1})[:-1] + ', "latency_ms": NaN}')
        args = (args[0], str(bad))
    result = serve(tmp_path, *args)
    assert result.returncode == 2 and f"argument {flag}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "t.db").exists()
