"""A fast yes/no check compiled from the JSON Schema itself.

jsonschema is the source of truth for error messages but costs ~0.5 ms per
mailbox; 10,000 mailboxes would take seconds. This compiles the keywords our
schema uses into closures that only answer "valid?". It must never call an
invalid instance valid: unknown keywords refuse to compile, and anything it
rejects is re-checked by jsonschema, which then explains what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
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


def compile_schema(root: dict[str, Any], node: dict[str, Any] | None = None) -> Check:
    cache: dict[str, Check] = {}

    def ref(target: str) -> Check:
        if target not in cache:
            if not target.startswith("#/"):
                raise NotImplementedError(f"remote $ref {target}")
            sub: Any = root
            for part in target[2:].split("/"):
                sub = sub[part]
            cache[target] = lambda v: True  # placeholder while compiling recursive refs
            compiled = build(sub)
            cache[target] = compiled
        return lambda v: cache[target](v)

    def build(schema: Any) -> Check:
        if schema is True:
            return lambda v: True
        if schema is False:
            return lambda v: False
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key == "then":
                continue
            checks.append(keyword(key, value, schema))
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(c(v) for c in checks)

    def keyword(key: str, value: Any, schema: dict[str, Any]) -> Check:
        if key == "type":
            names = value if isinstance(value, list) else [value]
            tests = [_TYPES[n] for n in names]
            return lambda v: any(t(v) for t in tests)
        if key == "const":
            return lambda v: _same(v, value)
        if key == "enum":
            return lambda v: any(_same(v, e) for e in value)
        if key == "$ref":
            return ref(value)
        if key == "properties":
            props = {k: build(s) for k, s in value.items()}
            return lambda v: not isinstance(v, dict) or all(
                props[k](x) for k, x in v.items() if k in props)
        if key == "additionalProperties":
            if value is not False:
                raise NotImplementedError("additionalProperties other than false")
            allowed = frozenset(schema.get("properties", {}))
            return lambda v: not isinstance(v, dict) or all(k in allowed for k in v)
        if key == "required":
            req = tuple(value)
            return lambda v: not isinstance(v, dict) or all(k in v for k in req)
        if key == "items":
            item = build(value)
            return lambda v: not isinstance(v, list) or all(item(x) for x in v)
        if key == "minItems":
            return lambda v: not isinstance(v, list) or len(v) >= value
        if key == "minLength":
            return lambda v: not isinstance(v, str) or len(v) >= value
        if key == "maxLength":
            return lambda v: not isinstance(v, str) or len(v) <= value
        if key == "minimum":
            return lambda v: not _TYPES["number"](v) or v >= value
        if key == "oneOf":
            subs = [build(s) for s in value]
            return lambda v: sum(1 for s in subs if s(v)) == 1
        if key == "not":
            sub = build(value)
            return lambda v: not sub(v)
        if key == "if":
            cond = build(value)
            then = build(schema.get("then", True))
            return lambda v: then(v) if cond(v) else True
        raise NotImplementedError(f"schema keyword {key!r}")

    return build(root if node is None else node)
