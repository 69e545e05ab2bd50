"""What the CLI tells the engine's processes: one contract, written and read here.

The CLI runs the Pulumi engine, which starts mailroom's provider in a process of its own; the only way
to tell that process which tenant, stack, run, audit log, approved plan and live snapshot it works for
is the environment (the plan and the snapshot are files it names). ``ProviderEnv.to_env()`` writes it
(``engine/runner.py``, ``engine/workspace.py``) and ``ProviderEnv.from_env()`` reads it (the provider,
``engine/supervise.py``). No credential is in it: the tenant is a ``TenantConfig`` as JSON, and
secrets stay in the variables azure-identity reads.

Standard library only, and no mailroom import: ``supervise.py`` must start in milliseconds, and every
layer may import this module. ``tenant.ENV_VAR`` and ``plan.PLAN_ENV`` name the same variables as
``TENANT`` and ``PLAN`` (a test checks they agree).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TENANT = "MAILROOM_TENANT"  # TenantConfig.to_json(): which tenant, how to authenticate (no secret)
STACK = "MAILROOM_STACK"
RUN_ID = "MAILROOM_RUN_ID"
AUDIT_LOG = "MAILROOM_AUDIT_LOG"
PLAN = "MAILROOM_PLAN"  # path of the approved plan the provider keeps to (`mailroom apply` only)
PULUMI = "MAILROOM_PULUMI"  # the real CLI that `mailroom-engine` (supervise.py) runs
# path of the live state this run read in bulk, per mailbox it applies (`mailroom apply` only): the
# provider diffs and converges against it instead of reading each mailbox again
SNAPSHOT = "MAILROOM_SNAPSHOT"

VARIABLES = {"tenant": TENANT, "stack": STACK, "run_id": RUN_ID, "audit_log": AUDIT_LOG, "plan": PLAN,
             "pulumi": PULUMI, "snapshot": SNAPSHOT}  # field → variable


@dataclass(frozen=True)
class ProviderEnv:
    """The variables of one run; ``None`` (or empty) means "not set"."""

    tenant: str | None = None
    stack: str | None = None
    run_id: str | None = None
    audit_log: str | None = None
    plan: str | None = None
    pulumi: str | None = None
    snapshot: str | None = None

    def to_env(self) -> dict[str, str]:
        """Only the variables that have a value: an unset one must stay unset, not become ``""``."""
        values = {var: getattr(self, name) for name, var in VARIABLES.items()}
        return {var: value for var, value in values.items() if value}

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ProviderEnv:
        return cls(**{name: env.get(var) or None for name, var in VARIABLES.items()})
