"""The command lines: `python -m localtenant seed|serve` and `mailroom tenant ...`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

ROOT = Path(__file__).resolve().parents[2]
DIRECTORY = ROOT / "infra" / "localtenant" / "data" / "directory.yaml"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)


def test_mailroom_tenant_help() -> None:
    top = run("-m", "mailroom", "tenant", "--help")
    assert top.returncode == 0 and "serve" in top.stdout and "seed" in top.stdout
    serve = run("-m", "mailroom", "tenant", "serve", "--help")
    assert serve.returncode == 0
    for flag in ("--state", "--host", "--port", "--port-file", "--profile", "--seed-directory"):
        assert flag in serve.stdout
    assert run("-m", "mailroom", "tenant", "seed", "--help").returncode == 0


def test_seed_command_is_idempotent_and_reports_bad_input(tmp_path: Path) -> None:
    state = tmp_path / "tenant.db"
    first = run("-m", "mailroom", "tenant", "seed", "--state", str(state), str(DIRECTORY))
    assert first.returncode == 0, first.stderr
    assert "seeded 31 users, 4 groups, 0 shared mailboxes, 2 resource mailboxes" in first.stderr
    again = run("-m", "localtenant", "seed", "--state", str(state), str(DIRECTORY))
    assert again.returncode == 0 and "(37 already present)" in again.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenant: {id: 6e2f4d3a-9c1b-4f7e-8a5d-2b0c9e1f4a73, initial_domain: contoso.onmicrosoft.com}\n"
                   "users:\n  - display_name: No Upn\n")
    failed = run("-m", "localtenant", "seed", "--state", str(tmp_path / "other.db"), str(bad))
    assert failed.returncode == 1 and f"{bad}: users[0].upn: required" in failed.stderr


def test_seeded_shared_mailboxes_with_grants(tmp_path: Path,
                                             local_tenant_factory: Callable[..., LocalTenant]) -> None:
    extra = tmp_path / "mailboxes.yaml"
    extra.write_text(
        "tenant: {id: 6e2f4d3a-9c1b-4f7e-8a5d-2b0c9e1f4a73, initial_domain: contoso.onmicrosoft.com}\n"
        "shared_mailboxes:\n"
        "  - name: sales\n    display_name: Sales\n    primary_smtp_address: sales@contoso.com\n"
        "    aliases: [orders@contoso.com]\n    full_access: [alice@contoso.com, finance-team]\n"
        "    send_as: [bob@contoso.com]\n    send_on_behalf: [carol@contoso.com]\n")
    tenant = local_tenant_factory("--seed-directory", str(extra))  # merged into the shipped directory
    mbx = tenant.exchange("Get-Mailbox", Identity="orders@contoso.com").json()["value"][0]
    assert mbx["Name"] == "sales" and mbx["GrantSendOnBehalfTo"] == ["carol"]
    users = {r["User"] for r in tenant.exchange("Get-MailboxPermission", Identity="sales").json()["value"]}
    assert {"alice@contoso.com", "finance-team"} <= users
    trustees = {r["Trustee"] for r in tenant.exchange("Get-RecipientPermission", Identity="sales").json()["value"]}
    assert "bob@contoso.com" in trustees
    # Seeded state is the tenant as it was: no audit entries.
    assert tenant.admin_audit() == []


def test_serve_rejects_a_bad_profile(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text('{"throttle_rate": 3}')
    result = run("-m", "localtenant", "serve", "--state", str(tmp_path / "t.db"), "--port", "0",
                 "--profile", str(profile))
    # argparse's convention for a bad argument: usage, the flag named, exit status 2.
    assert result.returncode == 2 and "argument --profile" in result.stderr
    assert "invalid fault profile" in result.stderr and "throttle_rate" in result.stderr
    assert not (tmp_path / "t.db").exists()  # refused before touching the state


def test_health_names_the_tenant(local_tenant: LocalTenant) -> None:
    health = httpx.get(f"{local_tenant.base_url}/_emulator/health").json()
    assert health["status"] == "ok" and health["tenant_id"] == "6e2f4d3a-9c1b-4f7e-8a5d-2b0c9e1f4a73"
