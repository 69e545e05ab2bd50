"""A fast yes/no check compiled from the JSON Schema itself.

jsonschema is the source of truth for error messages but costs ~0.5 ms per
mailbox; 10,000 mailboxes would take seconds. This compiles the keywords our
schema uses into closures that only answer "valid?". It must never call an
invalid instance valid: unknown keywords refuse to compile, and anything it
rejects is re-checked by jsonschema, which then explains what is wrong.

``pattern`` is compiled once with Python's ``re`` and applied with ``search``,
exactly as jsonschema applies it, so the two agree on every string (the
patterns are written in the common subset of Python and ECMA-262 regexes that
editors use). A ``$ref`` to another document (``other.json#/pointer``) is
resolved in ``documents``, which maps that name to the loaded schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_ANNOTATIONS = {"$schema", "$id", "title", "description", "$comment", "examples", "default", "$defs"}
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def _same(a: Any, b: Any) -> bool:
    # JSON equality: True is not 1 (Python says it is).
    return type(a) is type(b) and a == b


_STRING_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern"})


def _string(schema: dict[str, Any]) -> Check:
    """``type: string`` with length bounds and a pattern, in one closure (lengths in code points, as
    JSON Schema counts them; ``search``, as jsonschema applies a pattern)."""
    low = schema.get("minLength", 0)
    high = schema.get("maxLength", float("inf"))
    search = re.compile(schema["pattern"]).search if "pattern" in schema else None
    if search is None:
        return lambda v: isinstance(v, str) and low <= len(v) <= high
    return lambda v: isinstance(v, str) and low <= len(v) <= high and search(v) is not None


def compile_schema(root: dict[str, Any], node: dict[str, Any] | None = None,
                   documents: Mapping[str, dict[str, Any]] | None = None) -> Check:
    """The yes/no check of ``node`` (default: all of ``root``); ``documents``: other schemas by the
    name ``$ref`` uses for them."""
    cache: dict[tuple[str, str], Check] = {}
    compiling: set[tuple[str, str]] = set()
    docs = dict(documents or {})

    def ref(target: str, doc: str) -> tuple[Check, str]:
        name, _, fragment = target.partition("#")
        name = name or doc
        key = (name, fragment)
        if key not in cache:
            if name and name not in docs:
                raise NotImplementedError(f"$ref to an unknown document {target}")
            if fragment and not fragment.startswith("/"):
                raise NotImplementedError(f"$ref {target}")
            sub: Any = docs[name] if name else root
            for part in fragment[1:].split("/") if fragment else ():
                sub = sub[part.replace("~1", "/").replace("~0", "~")]
            cache[key] = lambda v: True  # placeholder while compiling recursive refs
            compiling.add(key)
            cache[key] = build(sub, name)
            compiling.discard(key)
        if key in compiling:  # a recursive ref: look the check up when called, once it is compiled
            return (lambda v: cache[key](v)), name
        return cache[key], name

    def build(schema: Any, doc: str = "") -> Check:
        if schema is True:
            return lambda v: True
        if schema is False:
            return lambda v: False
        keys = {k for k in schema if k not in _ANNOTATIONS and k != "then"}
        if schema.get("type") == "string" and keys <= _STRING_KEYWORDS:
            return _string(schema)  # an address: one closure instead of four
        checks = [keyword(key, schema[key], schema, doc) for key in schema if key in keys]
        if len(checks) == 1:
            return checks[0]
        if len(checks) == 2:  # the common case of a type and one constraint
            first, second = checks
            return lambda v: first(v) and second(v)

        def every(v: Any) -> bool:  # a loop: all() over a generator costs a generator per call
            for c in checks:
                if not c(v):
                    return False
            return True
        return every

    def keyword(key: str, value: Any, schema: dict[str, Any], doc: str) -> Check:
        if key == "type":
            names = value if isinstance(value, list) else [value]
            tests = [_TYPES[n] for n in names]
            if len(tests) == 1:
                return tests[0]
            return lambda v: any(t(v) for t in tests)
        if key == "const":
            return lambda v: _same(v, value)
        if key == "enum":
            return lambda v: any(_same(v, e) for e in value)
        if key == "$ref":
            return ref(value, doc)[0]
        if key == "properties":
            props = {k: build(s, doc) for k, s in value.items()}

            def properties(v: Any) -> bool:
                if isinstance(v, dict):
                    for k, x in v.items():
                        check = props.get(k)
                        if check is not None and not check(x):
                            return False
                return True
            return properties
        if key == "patternProperties":
            pats = [(re.compile(p).search, build(s, doc)) for p, s in value.items()]

            def pattern_properties(v: Any) -> bool:
                if isinstance(v, dict):
                    for k, x in v.items():
                        for search, check in pats:
                            if search(k) is not None and not check(x):
                                return False
                return True
            return pattern_properties
        if key == "additionalProperties":
            if value is not False:
                raise NotImplementedError("additionalProperties other than false")
            allowed = frozenset(schema.get("properties", {}))
            searches = [re.compile(p).search for p in schema.get("patternProperties", {})]
            if searches:  # a key no property names must match a pattern
                return lambda v: not isinstance(v, dict) or all(
                    k in allowed or any(s(k) is not None for s in searches) for k in v)
            return lambda v: not isinstance(v, dict) or allowed.issuperset(v)
        if key == "required":
            req = frozenset(value)
            return lambda v: not isinstance(v, dict) or req <= v.keys()
        if key == "items":
            item = build(value, doc)

            def items(v: Any) -> bool:
                if isinstance(v, list):
                    for x in v:
                        if not item(x):
                            return False
                return True
            return items
        if key == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= value
        if key == "minLength":
            return lambda v: not isinstance(v, str) or len(v) >= value
        if key == "maxLength":
            return lambda v: not isinstance(v, str) or len(v) <= value
        if key == "pattern":
            search = re.compile(value).search  # compiled once; `search`, as jsonschema does
            return lambda v: not isinstance(v, str) or search(v) is not None
        if key == "minimum":
            return lambda v: not _TYPES["number"](v) or v >= value
        if key == "oneOf":
            subs = [build(s, doc) for s in value]
            return lambda v: sum(1 for s in subs if s(v)) == 1
        if key == "not":
            sub = build(value, doc)
            return lambda v: not sub(v)
        if key == "if":
            cond = build(value, doc)
            then = build(schema.get("then", True), doc)
            return lambda v: then(v) if cond(v) else True
        raise NotImplementedError(f"schema keyword {key!r}")

    return build(root if node is None else node)
