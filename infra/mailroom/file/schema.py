"""JSON Schema checks of a loaded document, with errors turned into located findings.

The main file is checked against ``mailboxes.schema.json``, an included file against
``mailboxes-include.schema.json`` (which refers to the main schema for every field).
An address that fails the schema's SMTP pattern is reported with rules' address codes
(``address-syntax``, ``address-not-ascii``), so that the same mistake reads the same
whether an editor or mailroom finds it.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from mailroom.file.findings import Finding, Severity, quote
from mailroom.file.rules import address_problem
from mailroom.file.schema_fast import Check, compile_schema
from mailroom.file.source import Document

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "schema" / "mailboxes.schema.json"
# For included files; it names the main schema by its file name, as editors resolve it.
INCLUDE_SCHEMA_PATH = SCHEMA_PATH.with_name("mailboxes-include.schema.json")

# Invalid mailboxes explained in detail per file: jsonschema takes ~0.5 ms each, so a file of
# thousands of wrong entries would take seconds; past this, one finding sums up the rest.
MAX_EXPLAINED = 200
# Unknown fields named per mapping; a mapping with thousands of junk keys gets one more finding.
MAX_UNKNOWN_PER_OBJECT = 20


def _read(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(_read(SCHEMA_PATH))


@cache
def _include_validator() -> Draft202012Validator:
    main = _validator().schema
    resource = Resource.from_contents(main)
    registry: Registry = Registry().with_resources([(SCHEMA_PATH.name, resource), (main["$id"], resource)])
    return Draft202012Validator(_read(INCLUDE_SCHEMA_PATH), registry=registry)


@cache
def _fast() -> tuple[Check, Check, Check]:
    """Yes/no checks of a main file's top level, an included file's top level, and one mailbox."""
    root = _validator().schema
    return (compile_schema(root), compile_schema(_include_validator().schema, documents={SCHEMA_PATH.name: root}),
            compile_schema(root, root["$defs"]["mailbox"]))


def schema() -> dict[str, Any]:
    return dict(_validator().schema)


def include_schema() -> dict[str, Any]:
    return dict(_include_validator().schema)


def check(doc: Document, *, main_file: str | None = None) -> list[Finding]:
    """All schema errors of ``doc``; one finding per offending field. ``main_file``: ``doc`` is a file
    it includes, checked against the include schema."""
    findings: list[Finding] = []
    validator = _validator()
    data = doc.data
    if not isinstance(data, dict):
        return [doc.finding((), "wrong-type", "expected a mapping with `version` and `mailboxes` at the top"
                            if main_file is None else "expected a mapping with `mailboxes` at the top")]
    # Validate mailbox by mailbox: errors stay local and big files stay fast.
    top = {k: v for k, v in data.items() if k != "mailboxes"}
    mailboxes = data.get("mailboxes")
    if mailboxes is not None:
        top["mailboxes"] = [] if isinstance(mailboxes, list) else mailboxes
    fast_main, fast_include, fast_mailbox = _fast()
    fast_top, top_validator = (fast_main, validator) if main_file is None else (fast_include, _include_validator())
    if not fast_top(top):
        for error in top_validator.iter_errors(top):
            findings.extend(_convert(doc, error, (), main_file))
    if isinstance(mailboxes, list):
        sub = validator.evolve(schema=validator.schema["$defs"]["mailbox"])
        explained = 0
        for i, mailbox in enumerate(mailboxes):
            if fast_mailbox(mailbox):
                continue  # jsonschema only for the rare invalid mailbox, to explain it
            if explained == MAX_EXPLAINED:
                # Pointer /mailboxes: the loader then leaves all of this file's mailboxes out of the model.
                rest = sum(1 for m in mailboxes[i:] if not fast_mailbox(m))
                line, column = doc.locate(("mailboxes", i))
                findings.append(Finding(doc.path, line, column, "/mailboxes", Severity.ERROR, "too-many-errors",
                                        f"{rest} more invalid mailboxes from here on are not explained (more "
                                        f"than {MAX_EXPLAINED} in this file); fix the ones above first"))
                break
            explained += 1
            for error in sub.iter_errors(mailbox):
                findings.extend(_convert(doc, error, ("mailboxes", i), main_file))
    return list(dict.fromkeys(findings))  # an address too short and unlike one: one finding


def _path(prefix: tuple[str | int, ...], error: ValidationError) -> tuple[str | int, ...]:
    return prefix + tuple(error.absolute_path)


def _convert(doc: Document, error: ValidationError, prefix: tuple[str | int, ...],
             main_file: str | None = None) -> list[Finding]:
    path = _path(prefix, error)
    where = "/".join(str(p) for p in path)[:120] or "top level"
    kind = error.validator
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
        extras = sorted(k for k in set(error.instance) - set(allowed) if not any(p.search(str(k)) for p in patterns)) \
            if isinstance(error.instance, dict) else []
        out: list[Finding] = []
        if main_file is not None and not path:  # a main file's key in an included file: say so
            main_only = [e for e in extras if e in _validator().schema["properties"]]
            extras = [e for e in extras if e not in main_only]
            out.extend(doc.finding((key,), "include-redefines",
                                   f"`{key}` may only be set in the main file {main_file}; included files "
                                   "hold only `mailboxes` (and `allow_empty`)", key=True) for key in main_only)
        if len(extras) > MAX_UNKNOWN_PER_OBJECT:
            out.append(doc.finding(path, "unknown-field", f"{where} has {len(extras)} unknown fields; the first "
                                                          f"{MAX_UNKNOWN_PER_OBJECT} are listed"))
            extras = extras[:MAX_UNKNOWN_PER_OBJECT]
        for extra in extras:
            hint = difflib.get_close_matches(str(extra), allowed, n=1)
            suggestion = f"; did you mean `{hint[0]}`?" if hint else f"; allowed: {', '.join(allowed)}"
            if patterns and not hint:  # folders: a path to a folder a user made
                suggestion += " or a path that starts with one of them, such as inbox/NAME (names without / or \\)"
            out.append(doc.finding(path + (extra,), "unknown-field", f"unknown field {quote(extra)}{suggestion}",
                                   key=True))
        return out
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return [doc.finding(path, "missing-field", f"`{missing}` is required in {where}")]
    if kind == "oneOf" and path[:1] == ("include",):
        return [doc.finding(path, "wrong-type",
                            f"{where}: expected a glob pattern or {{pattern: GLOB, optional: true}}; "
                            f"got {_show(error.instance)}")]
    if kind == "oneOf":  # members: a bad address in the intended shape is an address finding
        branch = 2 if isinstance(error.instance, dict) and "group" in error.instance else (
            1 if isinstance(error.instance, dict) else 0)
        inside = [e for e in error.context or () if e.relative_schema_path[0] == branch]
        if inside and all(_is_address(e) for e in inside):
            return [f for e in inside for f in _convert(doc, e, prefix, main_file)]
        # else say what shapes are allowed rather than jsonschema's dump
        if "calendar" in path:
            return [doc.finding(path, "wrong-type", f"{where}: expected an address or {{user: ADDRESS, delegate: "
                                                     f"BOOL, private_items: BOOL}}; got {_show(error.instance)}")]
        return [doc.finding(path, "wrong-type",
                            f"{where}: expected an address, {{user: ADDRESS, automap: BOOL}} or "
                            f"{{group: ADDRESS}}; got {_show(error.instance)}")]
    if kind == "type":
        return [doc.finding(path, "wrong-type", f"{where}: expected {_types(error.validator_value)}, "
                                                 f"got {_show(error.instance)}")]
    if kind in ("enum", "const"):
        allowed_values = error.validator_value if kind == "enum" else [error.validator_value]
        return [doc.finding(path, "invalid-value", f"{where}: {_show(error.instance)} is not allowed; "
                                                    f"use {' or '.join(json.dumps(v) for v in allowed_values)}")]
    if kind == "if":  # the then-branch of if/then already reported its own error
        return []
    if _is_address(error):
        domain = error.schema.get("pattern") == _validator().schema["$defs"]["domain"]["pattern"]
        problem = address_problem(error.instance, domain=domain)
        return [doc.finding(path, *problem)] if problem else []  # None: the loader named an unsafe character
    return [doc.finding(path, "invalid-value", f"{where}: {quote(error.message, 200)}")]


def _is_address(error: ValidationError) -> bool:
    """A text that is no SMTP address or domain (its pattern or its length): one address finding."""
    defs = _validator().schema["$defs"]
    return (error.validator in ("pattern", "minLength", "maxLength") and isinstance(error.instance, str)
            and error.schema.get("pattern") in (defs["smtp"]["pattern"], defs["domain"]["pattern"]))


def _types(value: Any) -> str:
    names = {"string": "text", "boolean": "true or false", "integer": "a whole number", "array": "a list",
             "object": "a mapping"}
    vals = value if isinstance(value, list) else [value]
    return " or ".join(names.get(str(v), str(v)) for v in vals)


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return quote(value)
    return json.dumps(value)
