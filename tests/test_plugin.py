"""mailroom's own resource provider plugin, `pulumi-resource-mailroom`, with the real engine and the local tenant.

- it serves many calls at once (the dynamic provider host serves 4) on ONE tenant client for the run;
- a stack made by the Python dynamic provider moves over in place: nothing created, deleted or replaced,
  nothing written to the tenant, and no pickled ``__provider`` left in state; through `mailroom apply`,
  whose update targets and declares only the plan's mailboxes, those move and the rest stay as they were;
- the state is written once, at the end, also when the run fails, and the next run converges;
- it speaks the engine's provider protocol (info, schema, configure, check, diff) without a tenant;
- it dies with its engine: on the engine's SIGINT, and on its own when the engine is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pulumi
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from mailroom.cli.main import main
from mailroom.core.identity import smtp_key
from mailroom.core.spec import MailboxSpec
from mailroom.engine.plugin import STATS_ENV
from mailroom.engine.provider import MailboxProvider
from mailroom.engine.runner import Run, prepare
from mailroom.engine.tokens import DYNAMIC_RESOURCE_TYPE, PLUGIN, RESOURCE_TYPE
from mailroom.engine.workspace import Engine, EngineSettings, provider_plugin
from mailroom.providerenv import ProviderEnv
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc
from reconcile_helpers import view, writes

PLUGIN_PATH = str(Path(sys.executable).parent / PLUGIN)
MAILBOX_URN = f"urn:pulumi:local::mailroom::{RESOURCE_TYPE}::"


class DynamicSharedMailbox(pulumi.dynamic.Resource, module="mailroom", name="SharedMailbox"):
    """The resource as mailroom declared it before it had a plugin: a Python dynamic resource."""

    object_id: pulumi.Output[str]
    exchange_id: pulumi.Output[str]

    def __init__(self, name: str, spec: MailboxSpec) -> None:
        super().__init__(MailboxProvider(), name, {**spec.to_props(), "object_id": None, "exchange_id": None})


def _prepare(tmp_path: Path, tenant: Any, monkeypatch: pytest.MonkeyPatch, count: int, *,
             ghost: str | None = None) -> Run:
    """``count`` shared mailboxes in a file of their own, on a local stack of this test's own; ``ghost``: the
    mailbox that also names a member the tenant does not have (its create fails)."""
    mailboxes = [{"address": f"bulk{i:02d}@contoso.com", "display_name": f"Bulk {i}",
                  "members": ["alice@contoso.com"], "send_as": ["alice@contoso.com"]} for i in range(count)]
    for mb in mailboxes:
        if mb["address"] == ghost:
            mb["members"] = ["alice@contoso.com", "ghost@contoso.com"]
    file = tmp_path / "mailboxes.yaml"
    file.write_text(yaml.safe_dump({"version": 1, "tenant": {"domains": ["contoso.com"]}, "mailboxes": mailboxes}))
    monkeypatch.setenv("MAILROOM_LOCAL_TENANT_URL", tenant.base_url)
    monkeypatch.setenv("MAILROOM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv(STATS_ENV, str(tmp_path / "plugin-stats.json"))
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_SKIP_CHECKPOINTS"):
        monkeypatch.delenv(name, raising=False)
    return prepare(str(file), "local")


def _stats(tmp_path: Path) -> dict[str, int]:
    path = tmp_path / "plugin-stats.json"
    deadline = time.monotonic() + 10  # written as the plugin stops, which the engine does not wait for
    while not path.exists():
        assert time.monotonic() < deadline, "the plugin wrote no statistics"
        time.sleep(0.05)
    stats: dict[str, int] = json.loads(path.read_text())
    path.unlink()
    return stats


def _tokens(tenant: Any) -> int:
    return int(tenant.metrics()["endpoints"].get("POST /{tenant}/oauth2/v2.0/token", 0))


def _steps(events: list[Any]) -> dict[str, str]:
    """URN → op of every mailbox step (either type) in the engine's events."""
    out = {}
    for event in events:
        pre = getattr(event, "resource_pre_event", None)
        if pre is not None and pre.metadata.type in (RESOURCE_TYPE, DYNAMIC_RESOURCE_TYPE):
            out[pre.metadata.urn] = getattr(pre.metadata.op, "value", str(pre.metadata.op))
    return out


def test_many_calls_at_once_on_one_tenant_client(local_tenant: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """16 mailboxes created at 300 ms a call: more than the dynamic host's 4 calls in flight, one client, no
    pickled provider in state."""
    run = _prepare(tmp_path, local_tenant, monkeypatch, 16)
    local_tenant.set_profile({"latency_ms": {"mean": 300}})
    local_tenant.reset_metrics()
    engine = run.engine()
    assert provider_plugin().parent == Path(sys.executable).parent  # found on the engine's PATH, not downloaded
    result = engine.up()
    assert result.summary.result == "succeeded"
    stats = _stats(tmp_path)
    assert stats["tenants"] == 1, stats  # one tenant client served every mailbox of the run
    assert stats["peak"] > 4, stats  # the dynamic provider host never has more than 4 calls in flight
    assert stats["calls"] >= 16 * 2, stats  # a check and a create per mailbox at least
    assert _tokens(local_tenant) <= 2  # one token per service for the whole run (the dynamic host: one per call)
    assert view(local_tenant, "bulk15@contoso.com")["members"] == ["alice@contoso.com"]  # type: ignore[index]

    state = engine.export()
    mailboxes = [r for r in state["resources"] if r["type"] == RESOURCE_TYPE]
    assert len(mailboxes) == 16
    assert all(r["provider"].startswith("urn:pulumi:local::mailroom::pulumi:providers:mailroom::default::")
               for r in mailboxes)
    assert "__provider" not in json.dumps(state)
    assert mailboxes[0]["outputs"]["exchange_id"] and mailboxes[0]["outputs"]["object_id"]


def test_a_stack_made_by_the_dynamic_provider_moves_over_in_place(local_tenant: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run = _prepare(tmp_path, local_tenant, monkeypatch, 3)
    desired = run.desired
    env = ProviderEnv(tenant=run.tenant.to_json(), stack=run.stack, run_id=run.run_id, audit_log=run.audit_path)

    def dynamic_program() -> None:  # what program.declare registered before the plugin
        for mb in desired.mailboxes:
            DynamicSharedMailbox(smtp_key(mb.address), MailboxSpec.from_model(mb, desired.domains))
        pulumi.export("mailboxes", len(desired.mailboxes))

    old = Engine(EngineSettings(run.stack, run.project_dir, env.to_env()), program=dynamic_program)
    assert old.up().summary.result == "succeeded"
    before = old.export()
    assert {r["type"] for r in before["resources"] if "SharedMailbox" in r["type"]} == {DYNAMIC_RESOURCE_TYPE}
    assert "__provider" in json.dumps(before)
    made = {r["urn"].rsplit("::", 1)[-1]: r["outputs"]["exchange_id"] for r in before["resources"]
            if r["type"] == DYNAMIC_RESOURCE_TYPE}
    assert len(made) == 3

    # The plugin's program on that stack: every mailbox keeps its name and moves to the new type.
    local_tenant.reset_metrics()
    events: list[Any] = []
    engine = run.engine()
    engine.preview(events.append)
    steps = _steps(events)
    assert set(steps) == {MAILBOX_URN + name for name in made}
    assert set(steps.values()) <= {"same", "update"}, steps  # no create, delete or replace

    events.clear()
    assert engine.up(events.append).summary.result == "succeeded"
    assert set(_steps(events).values()) <= {"same", "update"}
    after = engine.export()
    assert "__provider" not in json.dumps(after)
    assert {r["type"] for r in after["resources"]} == {"pulumi:pulumi:Stack", "pulumi:providers:mailroom",
                                                         RESOURCE_TYPE}
    assert {r["urn"].rsplit("::", 1)[-1]: r["outputs"]["exchange_id"] for r in after["resources"]
            if r["type"] == RESOURCE_TYPE} == made  # the same mailboxes, not new ones
    assert writes(local_tenant.metrics()) == {}  # moving over wrote nothing to the tenant

    # Refreshed through the plugin, the tenant matches the moved state.
    events.clear()
    engine.preview(events.append, refresh=True)
    assert set(_steps(events).values()) == {"same"}


def test_mailroom_apply_on_a_stack_made_by_the_dynamic_provider(local_tenant: Any, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's apply on a stack that has not moved yet: the plan brings every mailbox the dynamic provider
    recorded up to date (with no tenant write), so the whole stack moves to the plugin in one targeted
    update; only the changed mailbox is written to."""
    run = _prepare(tmp_path, local_tenant, monkeypatch, 3)
    desired = run.desired
    env = ProviderEnv(tenant=run.tenant.to_json(), stack=run.stack, run_id=run.run_id, audit_log=run.audit_path)

    def dynamic_program() -> None:
        for mb in desired.mailboxes:
            DynamicSharedMailbox(smtp_key(mb.address), MailboxSpec.from_model(mb, desired.domains))

    old = Engine(EngineSettings(run.stack, run.project_dir, env.to_env()), program=dynamic_program)
    old.up()
    before = {r["urn"]: r for r in old.export()["resources"] if r["type"] == DYNAMIC_RESOURCE_TYPE}
    file = tmp_path / "mailboxes.yaml"
    file.write_text(file.read_text().replace("display_name: Bulk 1\n", "display_name: Bulk One\n"))
    local_tenant.reset_metrics()
    capsys.readouterr()
    code = main(["apply", "--yes", "--stack", "local", "--file", str(file)])
    out = capsys.readouterr().out
    assert code == 0 and "bulk01@contoso.com: applied" in out, out
    assert writes(local_tenant.metrics()) == {"Set-Mailbox": 1}
    assert view(local_tenant, "bulk01@contoso.com")["display_name"] == "Bulk One"  # type: ignore[index]
    after = {r["urn"].rsplit("::", 1)[-1]: r for r in run.engine().export()["resources"]
             if r["type"] in (RESOURCE_TYPE, DYNAMIC_RESOURCE_TYPE)}
    assert after["bulk01@contoso.com"]["type"] == RESOURCE_TYPE
    assert "__provider" not in json.dumps(after["bulk01@contoso.com"])
    for k in ("bulk00@contoso.com", "bulk02@contoso.com"):
        old_record = before[MAILBOX_URN.replace(RESOURCE_TYPE, DYNAMIC_RESOURCE_TYPE) + k]
        assert after[k]["type"] == RESOURCE_TYPE and "__provider" not in json.dumps(after[k])
        assert {n: v for n, v in after[k]["outputs"].items() if n != "__provider"} == \
            {n: v for n, v in old_record["outputs"].items() if n != "__provider"}
    assert main(["plan", "--refresh", "--stack", "local", "--file", str(file)]) == 0  # nothing left to do


def test_a_failed_apply_still_records_what_it_did_and_the_next_one_converges(
        local_tenant: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine writes the state once, at the end (no checkpoint per resource): also when the run fails. A
    mailbox made by a run that left no record (here: its create failed after New-Mailbox) is adopted."""
    from pulumi.automation.errors import CommandError

    run = _prepare(tmp_path, local_tenant, monkeypatch, 3, ghost="bulk01@contoso.com")
    engine = run.engine()
    assert engine.settings.environment()["PULUMI_SKIP_CHECKPOINTS"] == "true"
    with pytest.raises(CommandError):
        engine.up()
    names = {r["urn"].rsplit("::", 1)[-1] for r in engine.export()["resources"] if r["type"] == RESOURCE_TYPE}
    assert names == {"bulk00@contoso.com", "bulk02@contoso.com"}
    assert view(local_tenant, "bulk01@contoso.com") is not None  # in the tenant, not in state

    fixed = _prepare(tmp_path, local_tenant, monkeypatch, 3)
    local_tenant.reset_metrics()
    events: list[Any] = []
    assert fixed.engine().up(events.append).summary.result == "succeeded"
    assert _steps(events)[MAILBOX_URN + "bulk01@contoso.com"] == "create"  # adopted, not made twice
    assert "New-Mailbox" not in writes(local_tenant.metrics())
    assert view(local_tenant, "bulk01@contoso.com")["members"] == ["alice@contoso.com"]  # type: ignore[index]


# -- the plugin on its own: the provider protocol, and its lifetime ------------------------------------------


class Plugin:
    """``pulumi-resource-mailroom`` started as the engine starts it (its address as the argument, the port
    read from the first line of stdout), with a gRPC client."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([PLUGIN_PATH, "127.0.0.1:1"], stdout=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def stop(self) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(10)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def test_the_plugin_speaks_the_provider_protocol(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    plugin = Plugin({STATS_ENV: str(stats)})
    try:
        stub = plugin.stub
        assert stub.GetPluginInfo(empty_pb2.Empty()).version
        schema = json.loads(stub.GetSchema(provider_pb2.GetSchemaRequest()).schema)
        assert schema["name"] == "mailroom" and RESOURCE_TYPE in schema["resources"]
        configured = stub.Configure(provider_pb2.ConfigureRequest(args=_struct({})))
        assert not configured.supportsPreview and not configured.acceptSecrets  # previews never create
        assert stub.DiffConfig(provider_pb2.DiffRequest()).changes == provider_pb2.DiffResponse.DIFF_NONE

        urn = MAILBOX_URN + "a@contoso.com"
        spec = MailboxSpec(address="a@contoso.com", display_name="A", send_as=("x@contoso.com",)).to_props()
        checked = stub.Check(provider_pb2.CheckRequest(urn=urn, olds=_struct({}), news=_struct(spec)))
        assert not checked.failures and dict(checked.inputs)["address"] == "a@contoso.com"
        bad = stub.Check(provider_pb2.CheckRequest(urn=urn, olds=_struct({}), news=_struct({"address": "nope"})))
        assert [f.property for f in bad.failures] == ["address"]

        def diff(olds: dict[str, Any], news: dict[str, Any]) -> Any:
            return stub.Diff(provider_pb2.DiffRequest(id="a@contoso.com", urn=urn, olds=_struct(olds),
                                                      news=_struct(news)))

        assert diff(spec, spec).changes == provider_pb2.DiffResponse.DIFF_NONE
        assert diff(spec, {**spec, "send_as": []}).changes == provider_pb2.DiffResponse.DIFF_SOME
        assert list(diff(spec, {**spec, "address": "b@contoso.com"}).replaces) == ["address"]
        # A state the dynamic provider wrote is rewritten once, without its pickled provider.
        assert diff({**spec, "__provider": "gASV"}, spec).changes == provider_pb2.DiffResponse.DIFF_SOME
        with pytest.raises(grpc.RpcError) as failed:  # no tenant in this environment: the error reaches the engine
            stub.Read(provider_pb2.ReadRequest(id="a@contoso.com", urn=urn, properties=_struct(spec)))
        assert failed.value.code() == grpc.StatusCode.UNKNOWN and "no tenant" in str(failed.value.details())
    finally:
        assert plugin.stop() == 0
    assert json.loads(stats.read_text())["tenants"] == 0  # nothing asked for the tenant: none was opened


def test_the_plugin_dies_with_its_engine() -> None:
    """Its parent (the engine) killed outright, the plugin goes by itself (mailroom-engine also sweeps it)."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([{PLUGIN_PATH!r}, '127.0.0.1:1'], stdout=subprocess.PIPE)\n"
        "p.stdout.readline()\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert Path(f"/proc/{pid}").exists()
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 3
    while _alive(pid):
        assert time.monotonic() < deadline, "the plugin outlived its engine"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def test_the_plugin_stops_when_the_engine_closes_it() -> None:
    """The engine closes a plugin with SIGINT and kills it 5 s later: it must be gone well before."""
    plugin = Plugin()
    assert plugin.stub.GetPluginInfo(empty_pb2.Empty()).version
    start = time.monotonic()
    plugin.proc.send_signal(signal.SIGINT)
    assert plugin.proc.wait(10) == 0
    assert time.monotonic() - start < 4.0

