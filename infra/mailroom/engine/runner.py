"""What plan, apply and drift share: validate first, then the tenant, then the engine.

The order matters: an invalid file stops the run before the local tenant is
started or any tenant request is made.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mailroom import paths
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.engine.planner import Planned
from mailroom.engine.record import provider_ref, with_adopted
from mailroom.engine.stacks import tenant_config
from mailroom.engine.workspace import Engine, EngineSettings, Program, private_dir, state_dir
from mailroom.errors import TenantError
from mailroom.file.findings import render_text
from mailroom.file.load import LoadResult, load_desired
from mailroom.m365.tenant import TenantConfig
from mailroom.providerenv import ProviderEnv


class Invalid(Exception):
    def __init__(self, result: LoadResult) -> None:
        super().__init__(render_text(result.findings))
        self.result = result


@dataclass
class Run:
    file: Path
    stack: str
    desired: Desired
    tenant: TenantConfig
    run_id: str
    audit_path: str | None
    project_dir: Path
    _engine: Engine | None = field(default=None, init=False, repr=False, compare=False)

    def engine(self) -> Engine:
        """The engine of this run, one per run (each opening runs the engine to select the stack).

        Its program is this run's validated ``desired``, declared inline: the file is not read again.
        An update may give a program and provider settings of its own (``program``, ``provider_env``).
        """
        if self._engine is None:
            self._engine = Engine(EngineSettings(self.stack, self.project_dir, self.provider_env()),
                                  program=self.program())
        return self._engine

    def program(self, only: Collection[str] | None = None) -> Program:
        """The program declaring this run's mailboxes; ``only``: just these mailbox keys, for an update
        targeted at them (every other resource in the stack is left as it is, so declaring it would only
        cost time)."""
        from mailroom.engine.program import declare  # imports pulumi; only commands that run the engine need it

        desired = self.desired if only is None else replace(
            self.desired, mailboxes=tuple(mb for mb in self.desired.mailboxes if mb.key in only))
        return lambda: declare(desired)

    def provider_env(self, plan: Path | None = None, snapshot: Path | None = None) -> dict[str, str]:
        """What the engine's provider gets from this run: the tenant, stack, run and audit log, and for an
        apply ``plan``, the approved plan it must keep to, and ``snapshot``, the live state this run read,
        which it converges against."""
        return ProviderEnv(tenant=self.tenant.to_json(), stack=self.stack, run_id=self.run_id,
                           audit_log=self.audit_path, plan=str(plan) if plan is not None else None,
                           snapshot=str(snapshot) if snapshot is not None else None).to_env()

    def update(self, planned: Planned, on_event: Callable[[Any], None], approval: Path, snapshot: Path) -> list[str]:
        """Apply ``planned``: the engine's update of the mailboxes it changes, releases or resyncs, then the
        mailboxes it adopts as they are recorded in state without an engine step (``engine/record.py``).
        ``approval`` and ``snapshot``: the approved plan and live state the provider keeps to. Returns the
        addresses recorded that way.
        """
        engine = self.engine()
        adoptions = planned.adoptions(self.desired)
        recorded = {smtp_key(a.spec.address) for a in adoptions}
        targets = planned.targets(recorded)
        # engine.state() is the plan's export here, as nothing changed the state since.
        if adoptions and not targets and provider_ref(engine.state()) is None:
            # The stack's first mailbox: the engine adopts it, and so makes the stack's provider.
            recorded.discard(smtp_key(adoptions[0].spec.address))
            adoptions = adoptions[1:]
            targets = planned.targets(recorded)
        if targets:
            engine.up(on_event, targets=targets, program=self.program(planned.declared(recorded)),
                      env=self.provider_env(approval, snapshot))
        if not adoptions:
            return []
        state = with_adopted(engine.state(), adoptions)
        if state is None:
            raise TenantError(f"stack {self.stack} has no mailroom provider to adopt mailboxes with")
        engine.import_state(state)
        return [a.spec.address for a in adoptions]

    def backend_url(self) -> str:
        return EngineSettings(self.stack, self.project_dir).backend_url()

    def plan_path(self, what: str = "approved") -> Path:
        """Where this run keeps the plan it shows (``approved``) and the live state it read (``live``), for
        the engine's provider (owner-only: live state names people)."""
        return private_dir(state_dir(self.project_dir) / "plans") / f"{self.stack}-{self.run_id}-{what}.json"

    def audit_log(self) -> Any:
        from mailroom.audit.log import AuditLog

        return AuditLog(self.audit_path, stack=self.stack, run_id=self.run_id)


def prepare(file: str, stack: str, *, audit_path: str | None = None) -> Run:
    """Validate ``file`` (raises Invalid, having touched nothing), then resolve the stack's tenant."""
    result = load_desired(file)
    if result.desired is None or result.errors:
        raise Invalid(result)
    path = Path(file).resolve()
    project_dir = _project_dir(path)
    audit = audit_path or str(paths.audit_log(project_dir))
    return Run(path, stack, result.desired, tenant_config(project_dir, stack), uuid.uuid4().hex[:12], audit,
               project_dir)


def _project_dir(file: Path) -> Path:
    """The directory holding Pulumi.yaml: the file's own, or mailroom's project."""
    return paths.find_project(file.parent) or paths.PROJECT_DIR
