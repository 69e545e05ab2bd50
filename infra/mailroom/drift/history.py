"""Who made a drifted change, and when: the tenant's own audit history, matched to findings.

Exchange changes come from the admin audit log (Search-AdminAuditLog), sign-in
changes from Graph directory audits. A finding is attributed to the newest
entry that touched the same mailbox with a cmdlet or property that can cause
it and, where the finding names a person, names the same person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.drift.scan import DriftFinding

# right → the audited Exchange cmdlets that change it, and the parameter that names the person (or the
# setting), from the rights table. Sign-in is a Graph user property: Graph directory audits, below.
CAUSES: dict[str, tuple[tuple[str, ...], str | None]] = {r.key: r.causes for r in rights.TABLE if r.causes[0]}


_RULE_RIGHTS = {r.key for r in rights.RULES}


def _names_rule(params: dict[str, str], subject: str) -> bool:
    """The cmdlet (New-/Set-/Enable-InboxRule) names the rule of ``subject`` (``<RuleIdentity>: "name" ...``):
    by its name, or by its RuleIdentity in ``Identity``."""
    rule_id = rights.rule_id(subject)
    name = subject.partition('"')[2].partition('"')[0]
    named = {params.get("Name", "").casefold(), params.get("Identity", "").rpartition("\\")[2].casefold()}
    return bool({name.casefold(), rule_id.casefold()} & named - {""})


def _params(row: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in row.get("CmdletParameters") or []:
        if isinstance(p, dict):
            out[str(p.get("Name"))] = str(p.get("Value"))
    return out


def _names(directory: Any, value: str) -> set[str]:
    """Every spelling of whoever ``value`` names (it may be an address, a UPN, a name, an id)."""
    keys = {smtp_key(value)}
    recipient = directory.lookup(value) if directory is not None else None
    if recipient is not None:
        keys |= set(recipient.keys)
    return keys


def attribute(found: Sequence[DriftFinding], exchange_rows: Sequence[dict[str, Any]],
              graph_rows: Sequence[dict[str, Any]], directory: Any,
              object_ids: dict[str, str]) -> None:
    """Fill ``changed_by``/``changed_at`` in place. ``object_ids``: mailbox or person key → Entra id."""
    rows = sorted(exchange_rows, key=lambda r: str(r.get("RunDate") or ""), reverse=True)
    audits = sorted(graph_rows, key=lambda r: str(r.get("activityDateTime") or ""), reverse=True)
    for f in found:
        if f.right == "sign_in_blocked" or (f.kind == "stale_access" and "disabled" in f.detail):
            target = object_ids.get(smtp_key(f.mailbox if f.right == "sign_in_blocked" else f.subject or ""))
            for a in audits:
                if target and a.get("result", "success") == "success" and _changes_account_enabled(a, target):
                    f.changed_by, f.changed_at = _initiator(a), str(a.get("activityDateTime"))
                    break
            continue
        cmdlets, person_param = CAUSES.get(f.right or "", ((), None))
        box = _names(directory, f.mailbox)
        person = _names(directory, f.subject) if f.subject else set()
        for r in rows:
            # The admin audit log records failed cmdlets too: an attempt that failed changed nothing.
            if r.get("CmdletName") not in cmdlets or r.get("Succeeded") is False:
                continue
            params = _params(r)
            touched = {smtp_key(str(r.get("ObjectModified") or "")), smtp_key(params.get("Identity", "")),
                       smtp_key(params.get("Mailbox", ""))}
            if f.kind == "unmanaged_mailbox":
                touched |= {smtp_key(params.get("PrimarySmtpAddress", "")), smtp_key(params.get("Name", ""))}
            if not touched & box:
                continue
            if f.right in _RULE_RIGHTS and not _names_rule(params, f.subject or ""):
                continue  # another rule of the same mailbox
            if person_param and (f.subject or f.kind == "changed_setting"):
                value = params.get(person_param, "")
                if f.subject and not any(k in value.casefold() for k in person if k):
                    continue
                if not f.subject and person_param not in params:
                    continue
            f.changed_by, f.changed_at = str(r.get("Caller") or "unknown"), str(r.get("RunDate") or "")
            break


def _changes_account_enabled(audit: dict[str, Any], target: str) -> bool:
    """The directory audit changed ``target``'s sign-in (AccountEnabled), not some other property of it
    (Exchange copies a mailbox's display name to its account, which is audited on the same account)."""
    for res in audit.get("targetResources") or []:
        if res.get("id") == target and any(str(p.get("displayName") or "").casefold() == "accountenabled"
                                           for p in res.get("modifiedProperties") or []):
            return True
    return False


def _initiator(audit: dict[str, Any]) -> str:
    by = audit.get("initiatedBy") or {}
    user = by.get("user") or {}
    app = by.get("app") or {}
    return str(user.get("userPrincipalName") or app.get("displayName") or app.get("appId") or "unknown")
