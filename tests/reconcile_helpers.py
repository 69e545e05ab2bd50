"""Helpers for end-to-end tests: run mailroom commands against a test's own local tenant and
read the tenant back through the emulator's own HTTP API (never through mailroom's client)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


class Project:
    """A copy of the shipped mailboxes file in a temp dir, wired to one local tenant."""

    def __init__(self, tmp: Path, tenant: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dir = tmp / "project"
        self.dir.mkdir()
        shutil.copy(ROOT / "mailboxes.yaml", self.dir / "mailboxes.yaml")
        shutil.copytree(ROOT / "mailboxes.d", self.dir / "mailboxes.d")
        self.file = self.dir / "mailboxes.yaml"
        self.tenant = tenant
        self.state = tmp / "state"
        monkeypatch.setenv("MAILROOM_LOCAL_TENANT_URL", tenant.base_url)
        monkeypatch.setenv("MAILROOM_STATE_DIR", str(self.state))
        monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
        monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)

    def run(self, *args: str, capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str]:
        """``mailroom *args`` on this project's file, on the local stack unless ``args`` names one
        (CI sets ``CI``, where mailroom never assumes the local stack)."""
        if capsys is not None:
            capsys.readouterr()
        stack = [] if "--stack" in args else ["--stack", "local"]
        code = main([*args, "--file", str(self.file), *stack])
        out = capsys.readouterr().out if capsys is not None else ""
        return code, out

    def edit(self, old: str, new: str, *, name: str = "mailboxes.yaml") -> None:
        path = self.dir / name
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))

    @property
    def audit(self) -> Path:
        return self.state / "audit.jsonl"


def names(tenant: Any) -> dict[str, str]:
    """Recipient Name/UPN/alias (as Exchange reports trustees) → primary SMTP, lower case."""
    out: dict[str, str] = {}
    for row in tenant.exchange("Get-Recipient", ResultSize="Unlimited").json()["value"]:
        primary = str(row["PrimarySmtpAddress"]).lower()
        for key in (row.get("Name"), row.get("Alias"), row.get("PrimarySmtpAddress"), row.get("Identity"),
                    row.get("UserPrincipalName"), row.get("WindowsLiveID")):
            if key:
                out[str(key).lower()] = primary
    return out


def view(tenant: Any, address: str) -> dict[str, Any] | None:
    """One mailbox as the emulator's APIs report it, normalised for comparison with the file."""
    resp = tenant.exchange("Get-Mailbox", Identity=address)
    if resp.status_code == 404:
        return None
    row = resp.json()["value"][0]
    who = names(tenant)
    fa = tenant.exchange("Get-MailboxPermission", Identity=address).json()["value"]
    sa = tenant.exchange("Get-RecipientPermission", Identity=address).json()["value"]
    user = tenant.graph("GET", f"/users/{row['ExternalDirectoryObjectId']}?$select=accountEnabled").json()
    primary = str(row["PrimarySmtpAddress"]).lower()
    return {
        "display_name": row["DisplayName"],
        "aliases": sorted(str(a)[5:].lower() for a in row["EmailAddresses"]
                          if str(a).startswith("smtp:") and str(a).lower().endswith("@contoso.com")
                          and str(a)[5:].lower() != primary),
        "members": sorted(who.get(str(r["User"]).lower(), str(r["User"]).lower()) for r in fa
                          if not str(r["User"]).startswith("NT AUTHORITY") and not r.get("IsInherited")),
        "send_as": sorted(who.get(str(r["Trustee"]).lower(), str(r["Trustee"]).lower()) for r in sa
                          if not str(r["Trustee"]).startswith("NT AUTHORITY")),
        "send_on_behalf": sorted(who.get(str(n).lower(), str(n).lower()) for n in row["GrantSendOnBehalfTo"]),
        "hidden_from_gal": row["HiddenFromAddressListsEnabled"],
        "copy_send_as": row["MessageCopyForSentAsEnabled"],
        "copy_send_on_behalf": row["MessageCopyForSendOnBehalfEnabled"],
        "audit_enabled": row["AuditEnabled"],
        "sign_in_blocked": user["accountEnabled"] is False,
    }


def writes(metrics: dict[str, Any]) -> dict[str, int]:
    """Write cmdlets the tenant received (batch items counted one by one)."""
    return {k: v for k, v in metrics["cmdlets"].items() if not k.startswith(("Get-", "Search-"))}
