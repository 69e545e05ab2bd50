"""mailboxes.yaml (and its includes) → the desired model, with every finding located."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from typing import Any

from mailroom import rules, schema
from mailroom.findings import Finding, Severity
from mailroom.model import Defaults, Desired, Mailbox, Member, Origin, Policy, SentItems, State
from mailroom.source import Document, SourceError, gc_paused, load

ROOT_ONLY_KEYS = ("tenant", "defaults", "policy", "include", "version")


@dataclass
class LoadResult:
    desired: Desired | None
    findings: list[Finding] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def ok(self, *, strict: bool = False) -> bool:
        return self.desired is not None and not self.errors and not (strict and self.warnings)


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def load_desired(path: str) -> LoadResult:
    """Load, schema-check and rule-check ``path`` and its includes; never raises for bad input."""
    with gc_paused():
        return _load_desired(path)


def _load_desired(path: str) -> LoadResult:
    result = LoadResult(None)
    try:
        main = load(path, display_path=_display(path))
    except SourceError as exc:
        result.findings.append(exc.finding)
        return result
    docs = [main]
    result.findings.extend(main.duplicate_keys)
    result.findings.extend(schema.check(main))
    if isinstance(main.data, dict):
        if main.data.get("version") is None:
            result.findings.append(main.finding((), "missing-field", "`version: 1` is required at the top"))
        if main.data.get("tenant") is None:
            result.findings.append(main.finding((), "missing-field",
                                                "`tenant` (with its accepted `domains`) is required at the top"))
        docs.extend(_includes(main, path, result))
    result.documents = {d.path: d for d in docs}
    if not isinstance(main.data, dict):
        return result
    # Parts whose shape is wrong are left out of the model, so that the rules can
    # still report every other mistake in the same run.
    broken = {(f.file, _prefix(f.pointer)) for f in result.errors}
    desired, partial = _build(docs, broken)
    result.findings.extend(rules.check(desired, result.documents, partial))
    result.findings.sort(key=Finding.sort_key)
    if not result.errors:
        result.desired = desired
    return result


def _prefix(pointer: str) -> str:
    """The part of the file a broken field spoils: a top-level section or one mailbox."""
    parts = pointer.split("/")[1:]
    if parts and parts[0] == "mailboxes" and len(parts) > 1:
        return f"/mailboxes/{parts[1]}"
    return "/" + parts[0] if parts else "/"


def _includes(main: Document, path: str, result: LoadResult) -> list[Document]:
    patterns = main.data.get("include") or []
    if not isinstance(patterns, list):
        return []
    base = os.path.dirname(os.path.abspath(path))
    seen = {os.path.abspath(path)}
    docs: list[Document] = []
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue
        matches = sorted(glob.glob(os.path.join(base, pattern), recursive=True))
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            result.findings.append(main.finding(("include", i), "include-no-match",
                                                f"include pattern {pattern!r} matches no file",
                                                Severity.WARNING))
        for match in matches:
            absolute = os.path.abspath(match)
            if absolute in seen:
                continue
            seen.add(absolute)
            try:
                doc = load(match, display_path=_display(match))
            except SourceError as exc:
                result.findings.append(exc.finding)
                continue
            result.findings.extend(doc.duplicate_keys)
            result.findings.extend(schema.check(doc))
            if isinstance(doc.data, dict):
                for key in ROOT_ONLY_KEYS:
                    if key in doc.data and key != "version":
                        result.findings.append(doc.finding(
                            (key,), "include-redefines",
                            f"`{key}` may only be set in the main file {main.path}; included files "
                            "hold only `mailboxes`", key=True))
            docs.append(doc)
    return docs


def _build(docs: list[Document], broken: set[tuple[str, str]]) -> tuple[Desired, list[Mailbox]]:
    """The model from the well-formed parts, plus the addresses of broken mailboxes (so that a
    duplicate address is reported even while the mailbox that holds it has a schema error)."""
    main = docs[0]
    root: dict[str, Any] = {k: v for k, v in main.data.items() if (main.path, f"/{k}") not in broken}
    d = root.get("defaults") or {}
    sent = d.get("sent_items") or {}
    defaults = Defaults(
        sign_in_blocked=d.get("sign_in_blocked", True),
        automap=d.get("automap", True),
        sent_items=SentItems(sent.get("copy_send_as", True), sent.get("copy_send_on_behalf", True)),
        audit_enabled=(d.get("audit") or {}).get("enabled", True),
        hidden_from_gal=d.get("hidden_from_gal", False),
    )
    p = root.get("policy") or {}
    policy = Policy(
        require_owner=p.get("require_owner", False),
        max_members=p.get("max_members"),
        send_as_requires_member=p.get("send_as_requires_member", False),
        allow_external_members=p.get("allow_external_members", False),
        max_removals_per_apply=p.get("max_removals_per_apply", 10),
    )
    mailboxes: list[Mailbox] = []
    partial: list[Mailbox] = []
    for doc in docs:
        if not isinstance(doc.data, dict) or (doc.path, "/mailboxes") in broken:
            continue
        for i, raw in enumerate(doc.data.get("mailboxes") or []):
            origin = Origin(doc.path, i, doc.locate(("mailboxes", i))[0])
            if (doc.path, f"/mailboxes/{i}") not in broken:
                mailboxes.append(_mailbox(raw, defaults, origin))
            elif isinstance(raw, dict) and isinstance(raw.get("address"), str):
                aliases: list[Any] = raw["aliases"] if isinstance(raw.get("aliases"), list) else []
                partial.append(Mailbox(address=raw["address"].strip(), display_name="", origin=origin,
                                       aliases=tuple(a.strip() for a in aliases if isinstance(a, str))))
    domains = tuple((root.get("tenant") or {}).get("domains") or ())
    return Desired(domains, defaults, policy, tuple(mailboxes), tuple(doc.path for doc in docs)), partial


def _mailbox(raw: dict[str, Any], defaults: Defaults, origin: Origin) -> Mailbox:
    sent = raw.get("sent_items") or {}
    members = []
    for entry in raw.get("members") or ():
        if isinstance(entry, str):
            members.append(Member(entry.strip(), defaults.automap))
        else:
            is_group = "group" in entry
            members.append(Member(
                str(entry["group"] if is_group else entry["user"]).strip(),
                entry.get("automap", defaults.automap), is_group, "automap" in entry))
    return Mailbox(
        address=raw["address"].strip(),
        display_name=str(raw.get("display_name") or raw["address"]),
        owner=raw.get("owner"),
        aliases=tuple(a.strip() for a in raw.get("aliases") or ()),
        members=tuple(members),
        send_as=tuple(a.strip() for a in raw.get("send_as") or ()),
        send_on_behalf=tuple(a.strip() for a in raw.get("send_on_behalf") or ()),
        hidden_from_gal=raw.get("hidden_from_gal", defaults.hidden_from_gal),
        sent_items=SentItems(sent.get("copy_send_as", defaults.sent_items.copy_send_as),
                             sent.get("copy_send_on_behalf", defaults.sent_items.copy_send_on_behalf)),
        audit_enabled=(raw.get("audit") or {}).get("enabled", defaults.audit_enabled),
        sign_in_blocked=raw.get("sign_in_blocked", defaults.sign_in_blocked),
        state=State(raw.get("state", "present")),
        origin=origin,
    )
