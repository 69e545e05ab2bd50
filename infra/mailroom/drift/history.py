"""Who made a drifted change, and when: the tenant's own audit history, matched to findings.

Exchange changes come from the unified audit log (ExchangeAdmin records, through the Graph audit log query
API: Search-AdminAuditLog is retired), sign-in changes from Graph directory audits. A finding is attributed
to the newest record that touched the same mailbox with a cmdlet or property that can cause it and, where the
finding names a person, names the same person.

Records reach the log minutes to hours after the change. So a record is only taken when it leaves the tenant
as the finding sees it: a grant found extra is explained by its Add, never by a newer Remove (the Add that
came after it is not in the log yet), a setting by a record that set the value found. When no record
explains a finding, it says ``not yet in the audit log`` (NOT_YET) instead of naming anyone.
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
# finding kind → which of a right's cmdlets (0: the first, add or create; 1: the second, remove or delete)
# leaves the tenant as found
_LEAVES = {"extra_grant": 0, "unmanaged_mailbox": 0, "missing_grant": 1, "mailbox_missing": 1,
           "mailbox_not_deleted": 0}
NOT_YET = "not yet in the audit log"


_RULE_RIGHTS = {r.key for r in rights.RULES}


def _names_rule(params: dict[str, str], subject: str) -> bool:
    """The cmdlet (New-/Set-/Enable-InboxRule) names the rule of ``subject`` (``<RuleIdentity>: "name" ...``):
    by its name, or by its RuleIdentity in ``Identity``."""
    rule_id = rights.rule_id(subject)
    name = subject.partition('"')[2].partition('"')[0]
    named = {params.get("Name", "").casefold(), params.get("Identity", "").rpartition("\\")[2].casefold()}
    return bool({name.casefold(), rule_id.casefold()} & named - {""})


def _data(record: dict[str, Any]) -> dict[str, Any]:
    data = record.get("auditData")
    return data if isinstance(data, dict) else {}


def _params(record: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in _data(record).get("Parameters") or []:
        if isinstance(p, dict):
            out[str(p.get("Name"))] = str(p.get("Value"))
    return out


def _cmdlet(record: dict[str, Any]) -> str:
    return str(record.get("operation") or _data(record).get("Operation") or "")


def _succeeded(record: dict[str, Any]) -> bool:
    # ExchangeAdmin records say "True"/"False" (failed cmdlets are recorded too and changed nothing).
    return str(_data(record).get("ResultStatus", "True")).casefold() not in ("false", "failed")


def _listed(value: str, person: set[str]) -> bool | None:
    """Whether a list parameter as the record writes it leaves ``person`` in the list: a hashtable
    (``Add=a;b; Remove=c``) says so only if it names them (None otherwise); a whole list always says."""
    def named(items: str) -> bool:
        return any(smtp_key(i) in person for i in items.split(";") if i.strip())

    if "Add=" in value or "Remove=" in value:
        for part in value.split("; "):
            key, _, items = part.partition("=")
            if key.strip().casefold() in ("add", "remove") and named(items):
                return key.strip().casefold() == "add"
        return None
    return named(value)


def _consistent(f: DriftFinding, cmdlets: tuple[str, ...], cmdlet: str, params: dict[str, str],
                person_param: str | None, person: set[str]) -> bool:
    """The record leaves the tenant as the finding sees it (not an older change the tenant has moved on from)."""
    side = _LEAVES.get(f.kind)
    if side is not None and len(cmdlets) == 2 and cmdlets[0] != cmdlets[1]:
        return cmdlet.casefold() == cmdlets[side].casefold()
    present = {"extra_grant": True, "missing_grant": False}.get(f.kind)
    if present is None and f.kind == "changed_setting" and f.subject and True in (f.actual, f.expected):
        present = f.actual is True  # an alias: in the tenant (actual True) or only in the file (expected True)
    if present is not None and f.subject and person_param and person_param in params:
        listed = _listed(params[person_param], person)
        if listed is not None:
            return listed == present
    if f.kind == "changed_setting" and isinstance(f.actual, bool) and person_param and person_param in params:
        write = rights.BY_KEY[f.right].write if f.right in rights.BY_KEY else None
        wire = write.wire(f.actual) if isinstance(write, rights.MailboxSetting) else f.actual  # inverted ones
        return params[person_param].casefold() in (str(wire).casefold(), f"${str(wire).casefold()}")
    return True


def _names(directory: Any, value: str) -> set[str]:
    """Every spelling of whoever ``value`` names (it may be an address, a UPN, a name, an id)."""
    keys = {smtp_key(value)}
    recipient = directory.lookup(value) if directory is not None else None
    if recipient is not None:
        keys |= set(recipient.keys)
    return keys


def attribute(found: Sequence[DriftFinding], exchange_records: Sequence[dict[str, Any]],
              graph_rows: Sequence[dict[str, Any]], directory: Any,
              object_ids: dict[str, str], not_before: dict[str, str] | None = None) -> None:
    """Fill ``changed_by``/``changed_at`` in place; a finding no record explains gets NOT_YET in its detail.
    ``exchange_records``: ExchangeAdmin auditLogRecords; ``object_ids``: mailbox or person key → Entra id.
    ``not_before``: finding key → when an earlier drift run saw the tenant without it, so the change came
    later and no older record can be its cause (however well it matches: a newer one is not in the log yet)."""
    rows = sorted(exchange_records, key=lambda r: str(r.get("createdDateTime") or ""), reverse=True)
    audits = sorted(graph_rows, key=lambda r: str(r.get("activityDateTime") or ""), reverse=True)
    for f in found:
        if f.kind == "scan_error":
            continue
        if f.right == "sign_in_blocked" or (f.kind == "stale_access" and "disabled" in f.detail):
            target = object_ids.get(smtp_key(f.mailbox if f.right == "sign_in_blocked" else f.subject or ""))
            for a in audits:
                if target and a.get("result", "success") == "success" and _changes_account_enabled(a, target):
                    f.changed_by, f.changed_at = _initiator(a), str(a.get("activityDateTime"))
                    break
        else:
            _explain_exchange(f, rows, directory)
        earliest = (not_before or {}).get(f.key)
        if f.changed_at and earliest and f.changed_at < earliest:
            f.changed_by = f.changed_at = None
        if f.changed_by is None:
            f.detail = f"{f.detail}; {NOT_YET}" if f.detail else NOT_YET


def _explain_exchange(f: DriftFinding, rows: Sequence[dict[str, Any]], directory: Any) -> None:
    """The newest ExchangeAdmin record that touched what ``f`` is about, if it explains ``f``."""
    cmdlets, person_param = CAUSES.get(f.right or "", ((), None))
    if not cmdlets:
        return
    box = _names(directory, f.mailbox)
    person = _names(directory, f.subject) if f.subject else set()
    for r in rows:
        cmdlet = _cmdlet(r)
        if cmdlet not in cmdlets or not _succeeded(r):
            continue
        params = _params(r)
        touched = {smtp_key(str(_data(r).get("ObjectId") or "")), smtp_key(params.get("Identity", "")),
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
        if _consistent(f, cmdlets, cmdlet, params, person_param, person):
            f.changed_by = str(r.get("userPrincipalName") or _data(r).get("UserId") or "unknown")
            f.changed_at = str(r.get("createdDateTime") or "")
        break  # the newest record that touched it: if it does not explain the finding, an older one cannot


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
