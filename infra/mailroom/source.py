"""Loading YAML safely while keeping where every value came from.

PyYAML's C composer builds the node graph (fast, linear even for alias bombs
because aliases are shared references); this module then turns nodes into
plain Python values itself so that it can (1) reject duplicate keys, (2) bound
how much alias expansion a document may smuggle in (billion laughs), and
(3) map any JSON pointer back to a line and column for error messages.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from mailroom.findings import Finding, Severity, pointer

_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C composer when libyaml is there

# An alias may re-use a subtree; re-used nodes beyond this many are refused.
# Real files use anchors for small shared lists; bombs need millions.
MAX_ALIAS_EXPANSION = 100_000
MAX_FILE_BYTES = 64 * 1024 * 1024

_BOOL = {
    "true": True, "True": True, "TRUE": True, "yes": True, "Yes": True, "YES": True, "on": True,
    "On": True, "ON": True, "false": False, "False": False, "FALSE": False, "no": False, "No": False,
    "NO": False, "off": False, "Off": False, "OFF": False,
}
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"


_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$")
_FLOAT = re.compile(
    r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_DEFAULT_TAGS: dict[type, str] = {yaml.SequenceNode: "tag:yaml.org,2002:seq", yaml.MappingNode: "tag:yaml.org,2002:map"}


class _Loader(_BASE):
    """PyYAML's safe loader with a lean implicit resolver.

    The stock resolver runs a list of regexes per scalar in Python and costs
    as much as parsing. Plain scalars here resolve to the YAML 1.1 core types
    this file format uses; timestamps and the like stay text.
    """

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return _DEFAULT_TAGS[kind]
        if not implicit or not implicit[0]:  # quoted, or explicitly tagged: text
            return _STR_TAG
        first = value[:1]
        if first.isalpha() and first not in "tTfFyYnNoO":
            return _STR_TAG  # the common case: names and addresses
        if value in _NULLS:
            return _NULL_TAG
        if value in _BOOL:
            return _BOOL_TAG
        if value == "<<":
            return _MERGE_TAG
        if _INT.match(value):
            return _INT_TAG
        if _FLOAT.match(value):
            return _FLOAT_TAG
        return _STR_TAG


class SourceError(Exception):
    """The file cannot be read as a YAML document; carries the finding to show."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class Document:
    """A loaded YAML file: its plain data plus the node graph for positions."""

    path: str
    data: Any
    root: yaml.Node
    duplicate_keys: list[Finding] = field(default_factory=list)

    def locate(self, parts: tuple[str | int, ...], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``parts`` (or of its key when ``key``).

        Walks as deep as the path exists and answers the deepest position found, so
        a missing field points at the object that should have held it.
        """
        node: yaml.Node = self.root
        key_node: yaml.Node | None = None
        for part in parts:
            if isinstance(node, yaml.MappingNode):
                found = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        found = (k, v)
                if found is None:
                    break
                key_node, node = found
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                key_node, node = None, node.value[part]
            else:
                break
        target = key_node if key and key_node is not None else node
        return target.start_mark.line + 1, target.start_mark.column + 1

    def finding(
        self, parts: tuple[str | int, ...], code: str, message: str,
        severity: Severity = Severity.ERROR, *, key: bool = False,
    ) -> Finding:
        line, column = self.locate(parts, key=key)
        return Finding(self.path, line, column, pointer(parts), severity, code, message)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large node graph is built.

    Loading allocates hundreds of thousands of small objects and frees none, so
    every automatic collection rescans the growing graph for nothing: with
    10,000 mailboxes that was 70% of the load time. Nothing here makes cycles
    that need collecting; the previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _error(path: str, line: int, column: int, code: str, message: str) -> SourceError:
    return SourceError(Finding(path, line, column, "", Severity.ERROR, code, message))


def load(path: str, *, display_path: str | None = None) -> Document:
    """Read and convert one YAML file; raises SourceError for anything unusable."""
    shown = display_path or path
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise _error(shown, 1, 1, "file-too-large", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise _error(shown, 1, 1, "file-not-found", "file not found") from None
    except IsADirectoryError:
        raise _error(shown, 1, 1, "file-not-found", "is a directory, not a file") from None
    except OSError as exc:
        raise _error(shown, 1, 1, "file-unreadable", f"cannot read file: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _error(shown, line, 1, "not-utf8", "file is not UTF-8 text") from None
    return loads(text, shown)


def loads(text: str, path: str) -> Document:
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise _error(path, line, column, "yaml-syntax", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise _error(path, 1, 1, "yaml-syntax", f"not valid YAML: {exc}") from None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        raise _error(path, 1, 1, "empty-file", "file is empty: expected a mapping with `version` and `mailboxes`")
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        raise _error(path, mark.line + 1, mark.column + 1, "multiple-documents",
                     "file holds more than one YAML document; put everything in one")
    builder = _Builder(path)
    data = builder.build(nodes[0])
    return Document(path, data, nodes[0], builder.duplicates)


class _Builder:
    """Node graph → plain values; records duplicate keys, bounds alias expansion."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.duplicates: list[Finding] = []
        self._seen: dict[int, int] = {}  # id(collection node) -> subtree size
        self._expanded = 0

    def build(self, node: yaml.Node) -> Any:
        return self._value(node)[0]

    def _value(self, node: yaml.Node) -> tuple[Any, int]:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node), 1
        size_before = self._seen.get(id(node))
        if size_before is not None:  # second visit of a node: an alias being expanded
            self._expanded += size_before
            if self._expanded > MAX_ALIAS_EXPANSION:
                m = node.start_mark
                raise _error(self.path, m.line + 1, m.column + 1, "yaml-alias-expansion",
                             f"anchors and aliases expand to more than {MAX_ALIAS_EXPANSION} values "
                             "(a 'billion laughs' document?); write the values out instead")
        self._seen[id(node)] = 0  # mark as in progress; recursive aliases expand as nothing new
        if isinstance(node, yaml.SequenceNode):
            items, size = [], 1
            for child in node.value:
                value, n = self._value(child)
                items.append(value)
                size += n
            result: Any = items
        else:
            assert isinstance(node, yaml.MappingNode)
            result, size = self._mapping(node)
        self._seen[id(node)] = size
        return result, size

    def _mapping(self, node: yaml.MappingNode) -> tuple[dict[Any, Any], int]:
        out: dict[Any, Any] = {}
        first_seen: dict[Any, yaml.Node] = {}
        size = 1
        merged: list[dict[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                value, n = self._value(value_node)
                size += n
                merged.extend(value if isinstance(value, list) else [value])
                continue
            key, _ = self._value(key_node)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                m = key_node.start_mark
                raise _error(self.path, m.line + 1, m.column + 1, "yaml-complex-key",
                             "mapping keys must be plain scalars")
            if key in first_seen:
                prev = first_seen[key].start_mark
                m = key_node.start_mark
                self.duplicates.append(Finding(
                    self.path, m.line + 1, m.column + 1, "", Severity.ERROR, "yaml-duplicate-key",
                    f"key {key!r} appears twice in one mapping (first at line {prev.line + 1}); "
                    "YAML would silently keep only the last one"))
            first_seen[key] = key_node
            value, n = self._value(value_node)
            size += n
            out[key] = value
        for extra in reversed(merged):  # explicit keys win over merged ones, as YAML says
            if isinstance(extra, dict):
                for k, v in extra.items():
                    out.setdefault(k, v)
        return out, size

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag == _STR_TAG:
            return value
        if tag == _BOOL_TAG:
            return _BOOL.get(value, value)
        if tag == _NULL_TAG:
            return None
        if tag == _INT_TAG:
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                return value
        if tag == _FLOAT_TAG:
            try:
                return float(value.replace("_", ""))
            except ValueError:
                return value
        return value  # timestamps and custom tags stay text; the schema says what is allowed
