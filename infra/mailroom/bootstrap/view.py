"""How bootstrap's results are shown: text for a person, one JSON body for ``--json``. Pure functions;
every value read from the tenant passes through ``textsafe.printable``."""

from __future__ import annotations

from typing import Any

from mailroom.bootstrap import exchange as bx
from mailroom.bootstrap.identities import ci_variables, federated_credentials, stack_yaml
from mailroom.bootstrap.run import PENDING, Planned, Shown
from mailroom.core.textsafe import printable


def _row(who: str, what: str, subject: str, detail: str) -> str:
    return f"  {printable(who):<16} {what:<24} {printable(subject)}  {printable(detail)}".rstrip()


def plan_text(p: Planned) -> list[str]:
    where = "the embedded local tenant" if p.target.local else f"tenant {p.tenant_id}"
    lines = [f"mailroom bootstrap: stack {p.target.stack} ({where})"]
    if p.entra_pending is None:
        lines.append("Entra, declared (the local tenant has no Entra: applied only on a real tenant):")
    else:
        summary = ", ".join(f"{op} {n}" for op, n in sorted(p.entra_pending.items())) or "nothing"
        lines.append(f"Entra, Pulumi stack {p.target.entra_stack} ({summary}):")
    lines += [_row(d.identity, d.kind, d.subject, d.detail) for d in p.entra]
    lines.append("Exchange:")
    lines += [_row(c.identity, f"{c.op} {c.kind}", c.subject, c.detail) for c in p.exchange] or [
        "  no changes: the role assignments and scope are as declared"]
    lines.append("Changes pending." if p.has_changes else "No changes.")
    return lines


def plan_json(p: Planned) -> dict[str, Any]:
    return {"stack": p.target.stack, "has_changes": p.has_changes,
            "entra": {"applied": p.entra_pending is not None, "pending": p.entra_pending,
                      "declared": [d.to_json() for d in p.entra]},
            "exchange": {"changes": [c.to_json() for c in p.exchange]}}


def _client_ids(p: Planned) -> dict[str, str]:
    return {pr.identity.key: pr.app_id for pr in p.principals}


def next_steps(p: Planned, done: list[bx.Change]) -> list[str]:
    ids = _client_ids(p)
    lines = [f"mailroom bootstrap: {len(done)} Exchange change(s) made on stack {p.target.stack}."]
    if p.target.local:
        # The local stack is the embedded tenant: no Pulumi.local.yaml, no workload identity.
        lines.append("On the local tenant the identities are the client ids "
                     f"{ids['plan']} (plan) and {ids['apply']} (apply).")
    else:
        lines += [f"Pulumi.{p.target.stack}.yaml (mailroom's stack; the apply identity, CI switches plan jobs):", ""]
        lines += ["  " + ln for ln in stack_yaml(p.tenant_id, ids["apply"]).splitlines()]
    lines += ["", "CI variables (ci/templates):"]
    lines += [f"  {k}={printable(v)}" for k, v in ci_variables(ids, p.tenant_id).items()]
    return lines


def applied_json(p: Planned, done: list[bx.Change]) -> dict[str, Any]:
    ids = _client_ids(p)
    return {"stack": p.target.stack, "result": "ok", "applied": [c.to_json() for c in done],
            "client_ids": ids, "stack_yaml": None if p.target.local else stack_yaml(p.tenant_id, ids["apply"]),
            "ci_variables": ci_variables(ids, p.tenant_id)}


def _held(s: Shown) -> tuple[set[tuple[str, str, str]], list[tuple[str, bx.Assignment]]]:
    declared = {a.key for p in s.principals for _, _, a in bx.wanted([p]).assignments}
    live = list(s.live.assignments) if s.live else []
    return {a.key for _, a in live}, [(n, a) for n, a in live if a.key not in declared]


def show_json(s: Shown) -> dict[str, Any]:
    held, extra = _held(s)
    creds = federated_credentials(s.target.ci) if s.target.ci else []
    out = []
    for p in s.principals:
        i = p.identity
        roles = [{"role": a.role, "write_scope": a.scope, "why": r.why,
                  "in_place": None if s.live is None else a.key in held}
                 for r, (_, _, a) in zip(i.exchange_roles, bx.wanted([p]).assignments, strict=True)]
        out.append({"name": i.display_name, "purpose": i.purpose,
                    "client_id": None if p.app_id == PENDING else p.app_id,
                    "registered_in_exchange": None if s.live is None else p.app_id.lower() in s.live.principals,
                    "app_roles": [{"api": r.api, "name": r.name, "why": r.why} for r in i.app_roles],
                    "exchange_roles": roles,
                    "federated_credentials": [{"issuer": c.issuer, "subject": c.subject, "matches": c.matches}
                                              for c in creds if c.identity == i.key]})
    return {"stack": s.target.stack, "identities": out,
            "undeclared_assignments": [{"name": n, "app_id": a.app_id, "role": a.role, "write_scope": a.scope}
                                       for n, a in extra]}


def show_text(s: Shown) -> list[str]:
    doc = show_json(s)
    lines = [f"mailroom bootstrap: who can do what on stack {s.target.stack}"]
    for ident in doc["identities"]:
        lines += ["", f"{ident['name']}: {ident['purpose']}",
                  f"  client id: {printable(ident['client_id'] or PENDING)}"]
        lines += [f"  {r['api']} {r['name']}: {r['why']}" for r in ident["app_roles"]]
        for r in ident["exchange_roles"]:
            state = {None: "", True: "  [in place]", False: "  [missing: run bootstrap apply]"}[r["in_place"]]
            scope = f"write scope {r['write_scope']}" if r["write_scope"] else "organisation-wide, read only"
            lines.append(f"  Exchange role {r['role']} ({scope}): {r['why']}{state}")
        lines += [f"  federated credential: {'matching ' if c['matches'] else ''}{c['subject']}"
                  for c in ident["federated_credentials"]]
    for extra in doc["undeclared_assignments"]:
        lines.append(f"! undeclared role assignment {printable(extra['name'])} ({printable(extra['role'])}) on "
                     f"{printable(extra['app_id'])}: bootstrap apply removes it")
    return lines

