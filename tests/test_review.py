"""`mailroom review` end to end on the local tenant: simulated delegate activity, recorded (or not) by each
mailbox's audit settings, read back through the unified audit log; verdicts, unmanaged senders, decommission
candidates, and --propose as a patch that removes only the unused grant."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from reconcile_helpers import Project

FILE = """version: 1
tenant:
  domains: [contoso.com]
policy:
  require_owner: true
mailboxes:
  # the team's shared inbox
  - address: review@contoso.com
    display_name: Review
    owner: alice@contoso.com
    members:
      - erin@contoso.com          # reads only
      - group: support-team@contoso.com   # dave, a member, tidies up
    send_as:
      - bob@contoso.com           # sends every day
      - carol@contoso.com         # never did
  - address: quiet@contoso.com
    display_name: Quiet
    owner: dave@contoso.com
  - address: mailed@contoso.com
    display_name: Mailed
    owner: dave@contoso.com
"""


@pytest.fixture
def project(tmp_path: Path, local_tenant: Any, monkeypatch: pytest.MonkeyPatch) -> Project:
    p = Project(tmp_path, local_tenant, monkeypatch)
    p.file.write_text(FILE)
    assert p.run("apply", "--yes")[0] == 0
    return p


def act(tenant: Any, mailbox: str, user: str, operation: str, when: datetime) -> bool:
    resp = tenant.http.post("/_emulator/activity", json={"mailbox": mailbox, "user": user, "operation": operation,
                                                        "time": when.isoformat()})
    assert resp.status_code == 200, resp.text
    return bool(resp.json()["recorded"])


def test_review_tells_active_unused_and_unknown_apart_and_proposes_removing_only_the_unused(
        project: Project, tmp_path: Path) -> None:
    t, now = project.tenant, datetime.now(timezone.utc)
    assert all([act(t, "review@contoso.com", "bob@contoso.com", "SendAs", now - timedelta(days=d, hours=3))
                for d in range(90)])
    # erin reads: no default audit setting records a delegate's reads (FolderBind is not on, MailItemsAccessed
    # needs Audit Premium), so the tenant keeps nothing of it.
    assert not act(t, "review@contoso.com", "erin@contoso.com", "FolderBind", now - timedelta(days=2))
    assert not act(t, "review@contoso.com", "erin@contoso.com", "MailItemsAccessed", now - timedelta(days=1))
    assert act(t, "review@contoso.com", "mallory@contoso.com", "SendOnBehalf", now - timedelta(days=5))
    assert act(t, "review@contoso.com", "dave@contoso.com", "MoveToDeletedItems", now - timedelta(days=3))
    mail = t.http.post("/_emulator/mail", json={"to": "mailed@contoso.com", "time": (now - timedelta(days=20))
                                                .isoformat()})
    assert mail.status_code == 200

    out, patch = tmp_path / "review.json", tmp_path / "unused.patch"
    code, _ = project.run("review", "--since", "90d", "--json", str(out), "--propose", str(patch),
                          "--markdown", str(tmp_path / "review.md"), "--html", str(tmp_path / "review.html"))
    assert code == 2  # unused access found
    doc = json.loads(out.read_text())
    assert doc["format_version"] == 1 and doc["command"] == "review"
    verdicts = {(r["mailbox"], r["right"], r["person"]): r for r in doc["access"]}
    bob = verdicts[("review@contoso.com", "send_as", "bob@contoso.com")]
    carol = verdicts[("review@contoso.com", "send_as", "carol@contoso.com")]
    erin = verdicts[("review@contoso.com", "member", "erin@contoso.com")]
    assert (bob["verdict"], carol["verdict"], erin["verdict"]) == ("active", "unused", "unknown")
    assert bob["evidence"].startswith("SendAs (90 ") and bob["last_activity"] >= (now - timedelta(days=1)).isoformat()
    assert "FolderBind" in erin["fix"]  # which audit setting would tell
    # the group's access: records name dave, who is in support-team (the seed's membership, read through Graph)
    team = verdicts[("review@contoso.com", "member", "support-team@contoso.com")]
    assert (team["verdict"], team["member"], team["is_group"]) == ("active", "dave@contoso.com", True)
    assert team["evidence"].startswith("MoveToDeletedItems by dave@contoso.com")
    assert carol["reviewer"] == "alice@contoso.com"
    assert [(s["mailbox"], s["person"], s["operations"]) for s in doc["unmanaged_senders"]] == \
        [("review@contoso.com", "mallory@contoso.com", ["SendOnBehalf"])]  # dave acted through his group
    assert [c["mailbox"] for c in doc["decommission_candidates"]] == ["quiet@contoso.com"]
    assert doc["scan"]["audit"]["records"] >= 92 and doc["scan"]["trace_queries"] == 9
    assert doc["scan"]["groups"] == 1 and doc["scan"]["groups_unread"] == {}

    text = patch.read_text()
    assert "Reviewers (the mailboxes' owners): alice@contoso.com" in text
    applied = subprocess.run(["git", "apply", str(patch)], cwd=project.dir, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr
    after = project.file.read_text()
    assert after == FILE.replace("      - carol@contoso.com         # never did\n", "")  # comments and order kept
    html = (tmp_path / "review.html").read_text()
    assert "UNUSED" in html and "<script" not in html
