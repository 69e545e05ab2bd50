"""The CI templates in ci/templates/: linted with the real linters, their structure checked, and the shell
scripts they run run here, against a local tenant, in a git clone with an origin (as a runner has).

The linters are installed by ci/install-linters.sh (a session fixture): a machine where they cannot be
installed fails these tests rather than skipping them, so `make test` never passes unlinted templates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from reconcile_helpers import ROOT

pytestmark = pytest.mark.e2e  # every test here runs a linter, a script or the CLI as a process

TEMPLATES = ROOT / "ci" / "templates"
SCRIPTS = TEMPLATES / "scripts"
GITHUB = TEMPLATES / "github-actions.yml"
AZURE = TEMPLATES / "azure-pipelines.yml"
GITLAB = TEMPLATES / "gitlab-ci.yml"
MAILROOM = ROOT / ".venv" / "bin" / "mailroom"
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


@pytest.fixture(scope="session")
def linters() -> dict[str, str]:
    """actionlint and zizmor, installed if missing (fails, never skips, when they cannot be)."""
    done = subprocess.run(["bash", str(ROOT / "ci" / "install-linters.sh")], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"ci/install-linters.sh failed:\n{done.stderr}"
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


# ------------------------------------------------------------------ GitHub Actions

def test_actionlint_passes_on_the_github_template(linters: dict[str, str]) -> None:
    done = subprocess.run([linters["actionlint"], "-no-color", str(GITHUB)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def zizmor(linters: dict[str, str], path: Path) -> list[dict[str, Any]]:
    done = subprocess.run([linters["zizmor"], "--offline", "--format", "json", str(path)], capture_output=True,
                          text=True)
    assert done.returncode in (0, 10, 11, 12, 13, 14), done.stderr  # 1x: findings of some severity
    findings: list[dict[str, Any]] = json.loads(done.stdout)
    return findings


def test_zizmor_finds_nothing_high_in_the_github_template(linters: dict[str, str], tmp_path: Path) -> None:
    findings = zizmor(linters, GITHUB)
    assert [f["ident"] for f in findings if f["determinations"]["severity"] == "High"] == []
    assert findings == [], [(f["ident"], f["determinations"]["severity"]) for f in findings]
    # The audit does look: the same workflow with one action unpinned is a high-severity finding.
    unpinned = tmp_path / "unpinned.yml"
    unpinned.write_text(re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v7", GITHUB.read_text(), count=1))
    assert "unpinned-uses" in {f["ident"] for f in zizmor(linters, unpinned)
                               if f["determinations"]["severity"] == "High"}


def test_github_template_fails_safe() -> None:
    wf = load(GITHUB)
    text = GITHUB.read_text()
    assert wf["permissions"] == {} and wf["defaults"]["run"]["shell"] == "bash"
    jobs = wf["jobs"]
    assert set(jobs) == {"plan", "apply", "drift"}
    groups = {name: job["concurrency"]["group"] for name, job in jobs.items()}
    assert len(set(groups.values())) == 3, groups  # a PR plan can never cancel an apply
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False
    assert jobs["drift"]["concurrency"]["cancel-in-progress"] is False
    assert "pull_request" in jobs["plan"]["concurrency"]["cancel-in-progress"]  # only PR plans replace each other
    # Writing is for the apply job only, in the protected environment, with its own identity.
    assert jobs["apply"]["environment"] == "production"
    assert jobs["apply"]["permissions"] == {"contents": "write", "id-token": "write"}
    assert jobs["plan"]["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    assert jobs["drift"]["permissions"] == {"contents": "read", "id-token": "write"}
    clients = {name: job["env"]["AZURE_CLIENT_ID"] for name, job in jobs.items()}
    # The two identities of `mailroom bootstrap`: drift only reads the tenant, so it signs in as the plan app.
    assert len(set(clients.values())) == 2 and "PLAN" in clients["plan"] and "APPLY" in clients["apply"]
    assert clients["drift"] == clients["plan"]
    # The apply job applies the plan job's artifact, the one the reviewer saw summarised.
    assert jobs["apply"]["needs"] == "plan" and "needs.plan.outputs.changes == 'true'" in jobs["apply"]["if"]
    steps = jobs["apply"]["steps"]
    download = next(s for s in steps if s.get("uses", "").startswith("actions/download-artifact@"))
    upload = next(s for s in jobs["plan"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert download["with"]["name"] == upload["with"]["name"]
    assert any("apply.sh mailroom-out/plan.json" in s.get("run", "") for s in steps)
    # Every action pinned to a commit, its version in a comment; no checkout leaves a token on disk.
    uses = [(s["uses"], job) for job in jobs.values() for s in job["steps"] if "uses" in s]
    assert uses and all(PINNED.match(u) for u, _ in uses), uses
    assert all(re.search(re.escape(u) + r" # v\d", text) for u, _ in uses)
    assert all(s["with"]["persist-credentials"] is False for job in jobs.values() for s in job["steps"]
               if s.get("uses", "").startswith("actions/checkout@"))
    # Every run step is bash (-eo pipefail from defaults) or sets -u itself, or runs a script that does.
    for job in jobs.values():
        for s in job["steps"]:
            if "run" in s:
                assert s["run"].startswith(("bash ci/templates/scripts/", "make setup", "set -u")), s["run"]


def test_every_script_is_strict() -> None:
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert scripts
    for script in scripts:
        head = script.read_text()
        assert "set -euo pipefail" in head or 'source "$(dirname' in head, script.name
    assert "set -euo pipefail" in (SCRIPTS / "lib.sh").read_text()


# ------------------------------------------------------------------ Azure DevOps and GitLab (no offline linter)

def test_azure_pipelines_template_structure() -> None:
    p = load(AZURE)
    stages = {s["stage"]: s for s in p["stages"]}
    assert set(stages) == {"plan", "apply", "drift"}
    [deploy] = stages["apply"]["jobs"]
    assert deploy["deployment"] == "apply" and deploy["environment"] == "production"  # approvals apply
    assert stages["apply"]["lockBehavior"] == "sequential" and stages["apply"]["dependsOn"] == "plan"
    assert "PullRequest" in stages["apply"]["condition"] and "Schedule" in stages["drift"]["condition"]
    assert p["schedules"] and p["pr"]["branches"]["include"] == ["main"]

    def steps(stage: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for job in stage["jobs"]:
            out += job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]
        return out

    connections = {}
    for name, stage in stages.items():
        for step in steps(stage):
            if "task" in step or "bash" in step:
                # a value from the file printed in the log cannot run a ##vso command
                assert step["target"]["commands"] == "restricted", (name, step)
                script = step.get("bash") or step["inputs"]["inlineScript"]
                assert "set -euo pipefail" in script, (name, step)
            if step.get("task") == "AzureCLI@2":
                connections[name] = step["inputs"]["azureSubscription"]
    assert connections == {"plan": "mailroom-plan", "apply": "mailroom-apply", "drift": "mailroom-plan"}


def test_gitlab_template_structure() -> None:
    g = load(GITLAB)
    assert g["stages"] == ["plan", "apply", "drift"]
    plan, apply, drift = g["plan"], g["apply"], g["drift"]
    for job in (plan, apply, drift):
        assert job["id_tokens"]["AZURE_ID_TOKEN"]["aud"] == "api://AzureADTokenExchange"
    assert apply["resource_group"] == "mailroom-production" and apply["environment"]["name"] == "production"
    assert apply["interruptible"] is False and apply["needs"] == ["plan"]
    assert plan["artifacts"]["reports"]["codequality"] == "mailroom-out/gl-code-quality-report.json"
    assert "validate.sh gitlab" in plan["script"][0]
    assert g["default"]["before_script"][0] == "set -euo pipefail"
    assert len({plan["variables"]["AZURE_CLIENT_ID"], apply["variables"]["AZURE_CLIENT_ID"]}) == 2
    assert drift["variables"]["AZURE_CLIENT_ID"] == plan["variables"]["AZURE_CLIENT_ID"]


# ------------------------------------------------------------------ the scripts

def test_comment_body_fits_the_limit_and_links_the_whole_plan(tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    rows = "".join(f"m{i:05}@contoso.com  + member  someone{i}@contoso.com\n" for i in range(5000))
    plan.write_text(f"## mailroom plan\n\n```diff\n{rows}```\n")
    assert plan.stat().st_size > 65536 * 3
    link = "https://github.com/o/r/actions/runs/1/artifacts/2"
    body = subprocess.run(["bash", str(SCRIPTS / "comment-body.sh"), str(plan), link], capture_output=True,
                          check=True).stdout
    assert len(body) <= 65536
    text = body.decode()
    assert text.startswith("## mailroom plan\n\n```diff\nm00000@contoso.com")
    assert f"[plan.md]({link})" in text and f"The plan is {plan.stat().st_size} bytes" in text
    assert text.count("```") % 2 == 0  # the cut code block is closed before the note
    kept = [line for line in text.splitlines() if line.startswith("m")]
    assert rows.startswith("\n".join(kept) + "\n")  # cut at a line, never inside one

    short = tmp_path / "short.md"
    short.write_text("No changes.\n")
    out = subprocess.run(["bash", str(SCRIPTS / "comment-body.sh"), str(short), link], capture_output=True,
                         check=True).stdout
    assert out == b"No changes.\n"


@pytest.fixture
def runner(tmp_path: Path, local_tenant: Any) -> Iterator[dict[str, Any]]:
    """A fresh clone of a repository holding the shipped file, with an origin, as a CI runner has; the
    environment a pipeline step gets (CI set, the stack named)."""
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    work.mkdir()
    for name in ("mailboxes.yaml", "Pulumi.yaml", "Pulumi.local.yaml"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "mailboxes.d", work / "mailboxes.d")
    shutil.copytree(ROOT / "ci" / "templates", work / "ci" / "templates")
    git = ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com"]
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "mailboxes"],
                 ["remote", "add", "origin", str(origin)], ["push", "-q", "origin", "main"]):
        subprocess.run([*git, *args], cwd=work, check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILROOM_", "PULUMI_", "GITHUB_", "AZURE_"))}
    env.update(CI="true", MAILROOM=str(MAILROOM), MAILROOM_STACK="local", MAILROOM_STATE_DIR=str(tmp_path / "state"),
               MAILROOM_LOCAL_TENANT_URL=local_tenant.base_url, GIT_AUTHOR_NAME="ci", GIT_AUTHOR_EMAIL="ci@example.com",
               GIT_COMMITTER_NAME="ci", GIT_COMMITTER_EMAIL="ci@example.com")
    # The team's tenant is managed already; pull requests change it from there.
    first = subprocess.run([str(MAILROOM), "apply", "--yes"], cwd=work, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    yield {"dir": work, "env": env, "origin": origin, "tenant": local_tenant}


def run(runner: dict[str, Any], script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(runner["dir"] / "ci" / "templates" / "scripts" / script), *args],
                          cwd=runner["dir"], env=runner["env"], capture_output=True, text=True, timeout=600)


def test_validate_script_writes_the_gitlab_report(runner: dict[str, Any]) -> None:
    done = run(runner, "validate.sh", "gitlab")
    assert done.returncode == 0, done.stderr
    assert json.loads((runner["dir"] / "mailroom-out" / "gl-code-quality-report.json").read_text()) == []
    finance = runner["dir"] / "mailboxes.d" / "finance.yaml"
    finance.write_text(finance.read_text().replace("display_name: Payroll", "display_nme: Payroll"))
    done = run(runner, "validate.sh", "azure-devops")
    assert done.returncode == 1
    assert "##vso[task.logissue type=error;sourcepath=mailboxes.d/finance.yaml;" in done.stdout


def test_plan_then_apply_the_saved_plan_then_drift(runner: dict[str, Any]) -> None:
    out = runner["dir"] / "mailroom-out"
    assert run(runner, "plan.sh").returncode == 0
    assert (out / "changes").read_text() == "false\n"
    main_file = runner["dir"] / "mailboxes.yaml"
    main_file.write_text(main_file.read_text().replace("aliases: [contact@contoso.com]",
                                                       "aliases: [contact@contoso.com, hello@contoso.com]"))
    done = run(runner, "plan.sh")
    assert done.returncode == 0, done.stderr  # changes pending is a made plan, not a failure
    assert (out / "changes").read_text() == "true\n"
    assert json.loads((out / "plan.json").read_text())["kind"] == "mailroom-plan"
    assert "hello@contoso.com" in (out / "plan.md").read_text()

    done = run(runner, "apply.sh")
    assert done.returncode == 0, done.stderr
    [info] = runner["tenant"].exchange("Get-Mailbox", Identity="info@contoso.com").json()["value"]
    assert "smtp:hello@contoso.com" in [a.lower() for a in info["EmailAddresses"]]
    notes = subprocess.run(["git", "ls-remote", str(runner["origin"]), "refs/notes/mailroom-audit"],
                           capture_output=True, text=True, check=True).stdout
    assert notes.strip(), "the audit anchor was not pushed to origin"

    # A reviewed plan the tenant moved away from is stale: refused with apply's own code.
    assert run(runner, "plan.sh").returncode == 0
    main_file.write_text(main_file.read_text().replace("hello@contoso.com]", "hello@contoso.com, hi@contoso.com]"))
    done = run(runner, "apply.sh")
    assert done.returncode == 4, done.stderr
    assert "plan again" in done.stderr

    main_file.write_text(main_file.read_text().replace(", hi@contoso.com]", "]"))  # the PR is dropped
    done = run(runner, "drift.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    grant = runner["tenant"].exchange("Add-MailboxPermission", client_id="admin-portal", Identity="info@contoso.com",
                                      User="mallory@contoso.com", AccessRights=["FullAccess"], AutoMapping=False)
    assert grant.status_code == 200
    done = run(runner, "drift.sh")
    assert done.returncode == 2, done.stderr  # drift fails the job
    assert "mallory@contoso.com" in (out / "drift.md").read_text()


def test_plan_script_fails_on_an_error_and_says_no_changes(runner: dict[str, Any]) -> None:
    (runner["dir"] / "mailboxes.yaml").write_text("version: 1\nmailboxes: [\n")
    done = run(runner, "plan.sh")
    assert done.returncode == 1 and "plan failed (exit 1)" in done.stderr
    assert not (runner["dir"] / "mailroom-out" / "changes").exists()


def test_set_identity_points_the_stack_at_the_jobs_app(runner: dict[str, Any], tmp_path: Path) -> None:
    stack = runner["dir"] / "Pulumi.production.yaml"
    stack.write_text("config:\n  mailroom:tenantId: t\n  mailroom:clientId: apply-app\n"
                     "  mailroom:authMode: workload-identity\n")
    env_file = tmp_path / "github_env"
    runner["env"].update(MAILROOM_STACK="production", AZURE_CLIENT_ID="plan-app", MAILROOM_OIDC_TOKEN="jwt",
                         RUNNER_TEMP=str(tmp_path), GITHUB_ENV=str(env_file))
    done = run(runner, "set-identity.sh")
    assert done.returncode == 0, done.stderr
    assert "  mailroom:clientId: plan-app\n" in stack.read_text() and "apply-app" not in stack.read_text()
    token = tmp_path / "mailroom-oidc-token"
    assert token.read_text() == "jwt" and oct(token.stat().st_mode & 0o777) == "0o600"
    assert env_file.read_text() == f"AZURE_FEDERATED_TOKEN_FILE={token}\n"
