"""The CI templates sign in as exactly the two identities `mailroom bootstrap` makes, in the jobs whose OIDC
subjects bootstrap's federated credentials trust: a template and the declaration cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from mailroom.bootstrap.identities import CiTarget, ci_variables, federated_credentials

TEMPLATES = Path(__file__).resolve().parents[1] / "ci" / "templates"
VARIABLES = ci_variables({"plan": "p", "apply": "a"}, "t")
PLAN_VAR, APPLY_VAR = "MAILROOM_PLAN_CLIENT_ID", "MAILROOM_APPLY_CLIENT_ID"


def load(name: str) -> Any:
    return yaml.load((TEMPLATES / name).read_text(), Loader=yaml.BaseLoader)  # `on:` stays a key


def subjects(ci: CiTarget, identity: str) -> set[str]:
    return {c.subject for c in federated_credentials(ci) if c.identity == identity}


def test_github_jobs_match_the_subjects_each_identity_trusts() -> None:
    assert {PLAN_VAR, APPLY_VAR} <= set(VARIABLES)
    ci = CiTarget("github", "o/r")
    jobs = load("github-actions.yml")["jobs"]
    client = {name: job["env"]["AZURE_CLIENT_ID"] for name, job in jobs.items()}
    var = "${{{{ vars.{} }}}}".format
    assert client == {"plan": var(PLAN_VAR), "drift": var(PLAN_VAR), "apply": var(APPLY_VAR)}
    # A job's subject is its environment when it has one, else the event (pull_request) or the ref (push).
    assert f"repo:o/r:environment:{jobs['apply']['environment']}" in subjects(ci, "apply")
    assert subjects(ci, "apply") == {f"repo:o/r:environment:{ci.environment}"}
    assert f"repo:o/r:environment:{jobs['drift']['environment']}" in subjects(ci, "plan")
    assert "environment" not in jobs["plan"]
    assert {"repo:o/r:pull_request", f"repo:o/r:ref:refs/heads/{ci.branch}"} <= subjects(ci, "plan")


def test_azure_devops_uses_one_service_connection_per_identity() -> None:
    ci = CiTarget("azure-devops", "org/project", issuer="https://vstoken.dev.azure.com/x")
    used: dict[str, str] = {}
    for stage in load("azure-pipelines.yml")["stages"]:
        for job in stage["jobs"]:
            for step in job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]:
                if step.get("task") == "AzureCLI@2":
                    used[stage["stage"]] = step["inputs"]["azureSubscription"]
    assert used == {"plan": ci.connections["plan"], "drift": ci.connections["plan"], "apply": ci.connections["apply"]}
    assert subjects(ci, "apply") == {f"sc://org/project/{ci.connections['apply']}"}


def test_gitlab_apply_runs_only_on_the_branch_the_apply_identity_trusts() -> None:
    ci = CiTarget("gitlab", "g/p")
    g = load("gitlab-ci.yml")
    assert g["apply"]["variables"]["AZURE_CLIENT_ID"] == f"${APPLY_VAR}"
    assert g["plan"]["variables"]["AZURE_CLIENT_ID"] == g["drift"]["variables"]["AZURE_CLIENT_ID"] == f"${PLAN_VAR}"
    assert [r["if"] for r in g["apply"]["rules"]] == [
        '$CI_PIPELINE_SOURCE == "push" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH']
    assert subjects(ci, "apply") == {f"project_path:g/p:ref_type:branch:ref:{ci.branch}"}
