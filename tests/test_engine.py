"""The real Pulumi engine, through mailroom's wrapper, on a tiny inline program with one dynamic resource.

preview shows a create; up creates; a second preview shows no change; an
out-of-band change is reported by refresh-preview; destroy removes it. The
program runs inline: no language host is installed or started.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from mailroom.cli import engine as engine_command
from mailroom.engine.runner import prepare
from mailroom.engine.workspace import Engine, EngineSettings, pulumi_bin_dir
from reconcile_helpers import Project

ROOT = Path(__file__).resolve().parents[1]
MAILBOX = "urn:pulumi:local::mailroom::mailroom:index:SharedMailbox::"
# The URNs the inline program registers for the shipped file: the same project, stack and resource names as
# every stack applied before; the type is the plugin's (a stack made by the dynamic provider moves to it
# through the resource's alias, tests/test_plugin.py).
OLD_URNS = {"urn:pulumi:local::mailroom::pulumi:pulumi:Stack::mailroom-local",
            "urn:pulumi:local::mailroom::pulumi:providers:mailroom::default",
            *(MAILBOX + name for name in ("payroll@contoso.com", "noreply@contoso.com", "info@contoso.com",
                                          "support@contoso.com", "old-projects@contoso.com",
                                          "legal-hold@contoso.com", "careers@contoso.com", "invoices@contoso.com"))}

PROVIDER = '''
from pathlib import Path
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult


class FileProvider(ResourceProvider):
    def create(self, props):
        Path(props["path"]).write_text(props["content"])
        return CreateResult(props["path"], dict(props))

    def read(self, id_, props):
        path = Path(id_)
        if not path.exists():
            return ReadResult(None, {})
        return ReadResult(id_, {**props, "content": path.read_text()})

    def diff(self, id_, olds, news):
        return DiffResult(changes=olds.get("content") != news.get("content"))

    def update(self, id_, olds, news):
        Path(id_).write_text(news["content"])
        return UpdateResult(dict(news))

    def delete(self, id_, props):
        Path(id_).unlink(missing_ok=True)


class File(Resource, module="smoke", name="File"):
    def __init__(self, name, path, content):
        super().__init__(FileProvider(), name, {"path": path, "content": content})
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "Pulumi.yaml").write_text("name: smoke\nruntime: python\n")  # no main, no program on disk
    (proj / "fileprov.py").write_text(PROVIDER)
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("PULUMI_BACKEND_URL", (tmp_path / "state").as_uri())
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "smoke-test")
    monkeypatch.syspath_prepend(str(proj))  # the program (here) and the provider process import fileprov
    return proj


def _version(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    assert match, text
    return tuple(int(part) for part in match.groups())


def _pinned_sdk() -> tuple[int, ...]:
    match = re.search(r'"pulumi==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert match
    return _version(match.group(1))


def _ops(summary: dict[str, int] | None) -> dict[str, int]:
    return {k: v for k, v in (summary or {}).items() if k != "same"}


def test_engine_is_at_least_the_pinned_sdk(capsys: pytest.CaptureFixture[str]) -> None:
    """`mailroom engine` prints the engine's version; an engine older than the SDK is not a supported pairing."""
    assert engine_command.run(argparse.Namespace()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(pulumi_bin_dir())
    assert lines[1].startswith("pulumi v")  # an empty version would make the Automation API refuse it
    assert _version(lines[1].removeprefix("pulumi ")) >= _pinned_sdk()


def test_engine_lifecycle(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    events: list[object] = []
    fileprov = importlib.import_module("fileprov")
    settings = EngineSettings("smoke", project_dir=project, env={"PYTHONPATH": str(project)})
    engine = Engine(settings, program=lambda: fileprov.File("greeting", str(target), "hello"))
    assert not (pulumi_bin_dir() / "pulumi-language-python").exists()  # the inline program needs no host

    preview = engine.preview(events.append)
    assert _ops(preview.change_summary) == {"create": 2}  # the stack and the file
    assert any(getattr(e, "resource_pre_event", None) for e in events)  # events reach the callback
    assert not target.exists()

    up = engine.up()
    assert up.summary.result == "succeeded"
    assert target.read_text() == "hello"

    assert _ops(engine.preview().change_summary) == {}

    target.write_text("changed by hand")  # out of band
    drift = engine.refresh_preview()
    assert drift.change_summary.get("update") == 1
    assert target.read_text() == "changed by hand"  # a refresh preview changes nothing

    engine.up(refresh=True)
    assert target.read_text() == "hello"

    engine.destroy()
    assert not target.exists()


def test_inline_program_keeps_the_urns_of_existing_state(local_tenant: object, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """mailroom's own program, inline, on the validated model: the same project, stack and resource names."""
    project = Project(tmp_path, local_tenant, monkeypatch)
    events: list[Any] = []
    prepare(str(project.file), "local").engine().preview(events.append)
    urns = {e.resource_pre_event.metadata.urn for e in events if getattr(e, "resource_pre_event", None)}
    assert urns == OLD_URNS


def test_provider_env_round_trips_and_is_the_one_contract() -> None:
    """What runner.py writes is what provider.py and supervise.py read; unset stays unset."""
    from mailroom import providerenv
    from mailroom.audit import log as audit
    from mailroom.engine import plan
    from mailroom.m365 import tenant
    from mailroom.providerenv import ProviderEnv

    env = ProviderEnv(tenant='{"tenant_id": "t"}', stack="prod", run_id="abc", audit_log="/var/audit.jsonl",
                      pulumi="/opt/pulumi")
    assert env.to_env() == {"MAILROOM_TENANT": '{"tenant_id": "t"}', "MAILROOM_STACK": "prod",
                            "MAILROOM_RUN_ID": "abc", "MAILROOM_AUDIT_LOG": "/var/audit.jsonl",
                            "MAILROOM_PULUMI": "/opt/pulumi"}
    assert ProviderEnv.from_env({**env.to_env(), "MAILROOM_PLAN": ""}) == env
    # The modules that still read one variable themselves name the same one.
    assert (tenant.ENV_VAR, plan.PLAN_ENV, audit.ENV_VAR) == (providerenv.TENANT, providerenv.PLAN,
                                                              providerenv.AUDIT_LOG)
