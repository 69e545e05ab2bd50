"""The HTML drift report, opened in headless Chromium (Debian's chromium, installed by make setup)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import Project
from test_drift import out_of_band

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: run `make setup` (ci/install-chromium.sh)"
    return path


def test_html_report_opens_in_chromium_and_shows_matrix(tmp_path: Path, local_tenant: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project = Project(tmp_path, local_tenant, monkeypatch)
    assert project.run("apply", "--yes")[0] == 0
    out_of_band(local_tenant)
    html = tmp_path / "report.html"
    assert project.run("drift", "--html", str(html))[0] == 2
    profile = tmp_path / "chrome-profile"
    common = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run([*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert "mailroom drift report" in dom
    assert 'id="matrix"' in dom and 'id="findings"' in dom
    assert "mallory@contoso.com" in dom and "marketing@contoso.com" in dom
    assert dom.count("class=\"finding\"") == 7
    assert 'class="extra"' in dom  # Mallory's Full Access is highlighted as drift in the matrix
    assert "trent@contoso.com" in dom  # who made the change
    shot = tmp_path / "report.png"
    subprocess.run([*common, "--window-size=1400,1000", f"--screenshot={shot}", html.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
