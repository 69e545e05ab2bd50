"""Loading YAML safely while keeping where every value came from.

The file is hostile until proven otherwise: it may come from any pull request.
Before PyYAML's C composer builds the node graph (fast, and linear even for
alias bombs because aliases are shared references), this module bounds what it
is given: the size of a file (``MAX_FILE_BYTES``, read without trusting stat),
its encoding, characters YAML refuses, and the nesting depth (``MAX_DEPTH``,
counted on libyaml's event stream, because the C composer recurses once per
level and overflows the C stack near 50,000). It then turns nodes into plain
Python values itself so that it can (1) reject duplicate keys, (2) bound how
much alias expansion a document may smuggle in (billion laughs) and refuse
self-referencing anchors, (3) refuse tags other than YAML's core ones, (4) find
control, bidi and zero-width characters in any value or key (``textsafe.UNSAFE``)
and (5) map any JSON pointer back to a line and column for error messages.
Every refusal is a ``SourceError`` carrying one located finding.
"""

from __future__ import annotations

import codecs
import gc
import os
import re
import stat
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from mailroom.core.textsafe import UNSAFE, printable, unsafe_chars
from mailroom.file.findings import Finding, Severity, pointer, quote

_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C composer when libyaml is there

# An alias may re-use a subtree; re-used nodes beyond this many are refused.
# Real files use anchors for small shared lists; bombs need millions.
MAX_ALIAS_EXPANSION = 100_000
# One file; 10,000 mailboxes take about 3 MB. Read with a cap, so /dev/zero or a growing file cannot exhaust memory.
MAX_FILE_BYTES = 10 * 1024 * 1024
# Nesting of mappings and sequences. The format needs 5 (file, mailboxes, mailbox, members, member).
MAX_DEPTH = 32
# Per document: after this many duplicate-key or unsafe-character findings the rest are summed up in one.
MAX_REPORTED = 100

# Plain scalars resolve as YAML 1.2's core schema says, as the JSON Schema and editors read them: only
# true/false (three spellings each) are booleans, so `yes`, `no`, `on`, `off`, `y` and `n` stay text
# (PyYAML's YAML 1.1 would make them booleans); integers are decimal, 0o octal or 0x hex, without `_`
# or sexagesimal `1:20`; `1e3` is a float.
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_STR_TAG = "tag:yaml.org,2002:str"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
_KEY_TAGS = frozenset({_STR_TAG, _INT_TAG, _BOOL_TAG, _NULL_TAG, _FLOAT_TAG})

_INT = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_SPECIAL_FLOATS = {".inf": "inf", ".nan": "nan"}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_DEFAULT_TAGS: dict[type, str] = {yaml.SequenceNode: _SEQ_TAG, yaml.MappingNode: _MAP_TAG}

# Refused before parsing, so that the error is located and names the character: what YAML itself refuses
# (C0 controls but tab and line breaks, DEL, C1 controls, non-characters), and NEL and the Unicode line and
# paragraph separators, which YAML takes as line breaks where an editor or a reviewer sees none.
_REFUSED_RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufffe\uffff]")
# textsafe.UNSAFE minus the tab and line breaks that YAML's own syntax uses: one of these in the raw text
# sits in a value, a key or a comment. Derived from UNSAFE so that the two never disagree.
# (A plain class: a lookahead before it would cost 25 ms a megabyte.)
assert UNSAFE.pattern.startswith("[\x00-\x1f")
_UNSAFE_RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f" + UNSAFE.pattern[len("[\x00-\x1f"):])


class _Loader(_BASE):
    """PyYAML's safe loader with a lean implicit resolver.

    The stock resolver runs a list of regexes per scalar in Python and costs
    as much as parsing, and it is YAML 1.1's. Plain scalars here resolve by
    YAML 1.2's core schema (see ``_BOOL``); timestamps and the like stay text.
    """

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return _DEFAULT_TAGS[kind]
        if not implicit or not implicit[0]:  # quoted, or explicitly tagged: text
            return _STR_TAG
        first = value[:1]
        if first.isalpha() and first not in "tTfFnN":
            return _STR_TAG  # the common case: names and addresses
        if value in _NULLS:
            return _NULL_TAG
        if value in _BOOL:
            return _BOOL_TAG
        if value == "<<":
            return _MERGE_TAG
        if _INT.fullmatch(value):
            return _INT_TAG
        if _FLOAT.fullmatch(value):
            return _FLOAT_TAG
        return _STR_TAG


class SourceError(Exception):
    """The file cannot be read as a YAML document; carries the finding to show."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class Document:
    """A loaded YAML file: its plain data, the node graph for positions, and what loading found."""

    path: str
    data: Any
    root: yaml.Node
    # Findings that do not stop loading: duplicate keys, unsafe characters in values, keys and comments.
    findings: list[Finding] = field(default_factory=list)

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


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character ``index`` in ``text``."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def describe_char(ch: str) -> str:
    """``U+202E (RIGHT-TO-LEFT OVERRIDE)``: a character named so that a reviewer can find it."""
    name = unicodedata.name(ch, "") or {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN",
                                        "\x1b": "ESCAPE", "\x00": "NUL"}.get(ch, "a control character")
    return f"U+{ord(ch):04X} ({name})"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def file_kind(mode: int) -> str | None:
    """None for a regular file, else what it is (for messages)."""
    return None if stat.S_ISREG(mode) else _kind(mode)


def read_bounded(path: str, shown: str, *, regular_only: bool = False) -> bytes:
    """The bytes of ``path``, at most ``MAX_FILE_BYTES`` of them, or a SourceError.

    ``regular_only``: anything but a regular file is refused from its stat, before
    it is opened, so a FIFO cannot block and a device is never read.
    The size is checked while reading too, since stat is not to be trusted (/proc,
    a file that grows, a device given as the main file).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _error(shown, 1, 1, "file-not-found", "file not found") from None
    except (OSError, ValueError) as exc:
        raise _error(shown, 1, 1, "file-unreadable",
                     f"cannot read file: {getattr(exc, 'strerror', None) or 'invalid path'}") from None
    if stat.S_ISDIR(st.st_mode):
        raise _error(shown, 1, 1, "file-not-found", "is a directory, not a file")
    if regular_only and not stat.S_ISREG(st.st_mode):
        raise _error(shown, 1, 1, "not-a-regular-file", f"is {_kind(st.st_mode)}, not a regular file; not read")
    if stat.S_ISREG(st.st_mode) and st.st_size > MAX_FILE_BYTES:
        raise _too_large(shown, st.st_size)
    flags = os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | (getattr(os, "O_NONBLOCK", 0) if regular_only else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _error(shown, 1, 1, "file-unreadable", f"cannot read file: {exc.strerror}") from None
    try:
        if regular_only and not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat above
            raise _error(shown, 1, 1, "not-a-regular-file", "is not a regular file; not read")
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise _error(shown, 1, 1, "file-unreadable", f"cannot read file: {exc.strerror}") from None
    finally:
        os.close(fd)
    if total > MAX_FILE_BYTES:
        raise _too_large(shown, None)
    return b"".join(chunks)


def _too_large(shown: str, size: int | None) -> SourceError:
    what = f"file is {size:,} bytes" if size is not None else "file is larger than the limit"
    return _error(shown, 1, 1, "file-too-large",
                  f"{what}; the limit is {MAX_FILE_BYTES:,} bytes (MAX_FILE_BYTES) per file: split it with `include`")


def decode(raw: bytes, shown: str) -> str:
    """UTF-8 text (a leading UTF-8 byte-order mark is dropped), or a located ``not-utf8`` error."""
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise _error(shown, 1, 1, "not-utf8", f"file is {name} (it starts with a {name} byte-order mark); "
                                                 "save it as UTF-8")
    head = raw[:4096]
    if head and head.count(0) * 4 >= len(head):  # ASCII text in UTF-16/32 is a quarter to a half NUL bytes
        raise _error(shown, 1, 1, "not-utf8", "file looks like UTF-16 or UTF-32 without a byte-order mark "
                                             "(many NUL bytes); save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", "replace")) + 1
        raise _error(shown, before.count(b"\n") + 1, column, "not-utf8",
                     f"byte 0x{raw[exc.start]:02X} is not UTF-8 (Latin-1 or Windows-1252?); save the file as UTF-8"
                     ) from None
    return text[1:] if text.startswith("\ufeff") else text


def load(path: str, *, display_path: str | None = None, regular_only: bool = False) -> Document:
    """Read and convert one YAML file; raises SourceError for anything unusable."""
    shown = printable(display_path or path)
    return loads(decode(read_bounded(path, shown, regular_only=regular_only), shown), shown)


def loads(text: str, path: str) -> Document:
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(path, None)
    refused = _REFUSED_RAW.search(text)
    if refused:
        line, column = _position(text, refused.start())
        raise _error(path, line, column, "unsafe-character",
                     f"{describe_char(refused.group())} is not allowed in the file: control characters and "
                     "invisible line breaks can hide, repaint or reorder text in reviews and logs")
    _prescan(text, path)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL_TAG and not root.value):
        raise _error(path, 1, 1, "empty-file", "file is empty: expected a mapping with `version` and `mailboxes`")
    builder = _Builder(path)
    data = builder.build(root)
    findings = builder.findings + builder.unsafe_findings(root, text)
    return Document(path, data, root, findings)


def _syntax_error(exc: yaml.YAMLError, text: str, path: str) -> SourceError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
    elif isinstance(exc, yaml.reader.ReaderError):
        line, column = _position(text, min(exc.position, len(text)))
        problem = f"character U+{exc.character if isinstance(exc.character, int) else 0:04X} is not allowed"
    else:
        line, column, problem = 1, 1, "invalid YAML"
    return _error(path, line, column, "yaml-syntax", f"not valid YAML: {quote(problem, 200)}")


def _prescan(text: str, path: str) -> None:
    """Depth and document count from libyaml's event stream, before anything is composed.

    The C composer recurses once per nesting level (a C stack overflow near 50,000
    levels) and the builder below once per level too; the parser underneath keeps
    its own heap stack, so reading events is safe at any depth. About a quarter of
    the cost of a full load.
    """
    depth = 0
    documents = 0
    collection_start = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
    collection_end = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
    try:
        for event in yaml.parse(text, Loader=_BASE):
            cls = event.__class__
            if cls is yaml.ScalarEvent:
                continue
            if cls in collection_start:
                depth += 1
                if depth > MAX_DEPTH:
                    line, column = _mark(event)
                    raise _error(path, line, column, "yaml-too-deep",
                                 f"mappings and lists nest more than {MAX_DEPTH} levels deep here (MAX_DEPTH); "
                                 "the file format needs 5")
            elif cls in collection_end:
                depth -= 1
            elif cls is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    line, column = _mark(event)
                    raise _error(path, line, column, "multiple-documents",
                                 "file holds more than one YAML document; put everything in one")
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text, path) from None


def _mark(event: yaml.Event) -> tuple[int, int]:
    m = event.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


class _Builder:
    """Node graph → plain values; records duplicate keys and unsafe text, bounds alias expansion.

    Keys become the text they are written as (``1``, ``true`` and ``null`` included),
    so that every key downstream is a string: sortable, and comparable with field names.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: list[Finding] = []
        self._duplicates = 0
        self._unsafe: list[yaml.Node] = []  # scalars (values or keys) holding UNSAFE characters
        self._seen: dict[int, int] = {}  # id(collection node) -> subtree size; 0 while being built
        self._expanded = 0

    def build(self, node: yaml.Node) -> Any:
        return self._value(node)[0]

    def _refuse(self, node: yaml.Node, code: str, message: str) -> SourceError:
        m = node.start_mark
        return _error(self.path, m.line + 1, m.column + 1, code, message)

    def _value(self, node: yaml.Node) -> tuple[Any, int]:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node), 1
        size_before = self._seen.get(id(node))
        if size_before == 0:  # reached again while still being built: an alias inside its own anchor
            raise self._refuse(node, "yaml-recursive-alias",
                               "this anchored collection contains an alias of itself; it would never end "
                               "when expanded")
        if size_before is not None:  # second visit of a node: an alias being expanded
            self._expanded += size_before
            if self._expanded > MAX_ALIAS_EXPANSION:
                raise self._refuse(node, "yaml-alias-expansion",
                                   f"anchors and aliases expand to more than {MAX_ALIAS_EXPANSION} values "
                                   "(a 'billion laughs' document?); write the values out instead")
        self._seen[id(node)] = 0
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._tag(node)
            items, size = [], 1
            for child in node.value:
                value, n = self._value(child)
                items.append(value)
                size += n
            result: Any = items
        else:
            assert isinstance(node, yaml.MappingNode)
            if node.tag != _MAP_TAG:
                raise self._tag(node)
            result, size = self._mapping(node)
        self._seen[id(node)] = size
        return result, size

    def _tag(self, node: yaml.Node) -> SourceError:
        return self._refuse(node, "yaml-tag", f"tag {quote(node.tag)} is not allowed; this file holds only "
                                              "plain text, numbers, true/false, lists and mappings")

    def _mapping(self, node: yaml.MappingNode) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        size = 1
        merged: list[Any] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                value, n = self._value(value_node)
                size += n
                for extra in value if isinstance(value, list) else [value]:
                    if not isinstance(extra, dict):
                        raise self._refuse(value_node, "yaml-merge",
                                           "`<<` merges mappings only (an alias of a mapping, or a list of them)")
                    merged.append(extra)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._refuse(key_node, "yaml-complex-key", "mapping keys must be plain scalars")
            if key_node.tag not in _KEY_TAGS:
                raise self._tag(key_node)
            key = key_node.value
            if not key.isprintable() and UNSAFE.search(key):
                self._unsafe.append(key_node)
            if key in first_seen:
                self._duplicate(key, first_seen[key], key_node)
            first_seen[key] = key_node
            value, n = self._value(value_node)
            size += n
            out[key] = value
        for extra in reversed(merged):  # explicit keys win over merged ones, as YAML says
            for k, v in extra.items():
                out.setdefault(k, v)
        return out, size

    def _duplicate(self, key: str, first: yaml.Node, again: yaml.Node) -> None:
        self._duplicates += 1
        if self._duplicates > MAX_REPORTED:
            return
        m = again.start_mark
        message = (f"key {quote(key)} appears twice in one mapping (first at line {first.start_mark.line + 1}); "
                   "YAML would silently keep only the last one")
        if self._duplicates == MAX_REPORTED:
            message += f"; this is the {MAX_REPORTED}th, further ones in this file are not listed"
        self.findings.append(Finding(self.path, m.line + 1, m.column + 1, "", Severity.ERROR,
                                     "yaml-duplicate-key", message))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if not value.isprintable() and UNSAFE.search(value):  # isprintable: a fast C pre-check; UNSAFE ⊂ non-printable
            self._unsafe.append(node)
        if tag == _STR_TAG:
            return value
        if tag == _BOOL_TAG:
            return _BOOL.get(value, value)
        if tag == _NULL_TAG:
            return None
        if tag == _INT_TAG:  # also an explicit !!int, so a value that is no number stays text
            try:
                base = {"0o": 8, "0x": 16}.get(value[:2], 10)
                return int(value[2:] if base != 10 else value, base)
            except ValueError:
                return value
        if tag == _FLOAT_TAG:
            sign, bare = (value[0], value[1:]) if value[:1] in "+-" else ("", value)
            try:
                return float(sign + _SPECIAL_FLOATS.get(bare.lower(), bare))
            except ValueError:
                return value
        if tag == _MERGE_TAG:  # `<<` written as a value: just text
            return value
        raise self._tag(node)

    def unsafe_findings(self, root: yaml.Node, text: str) -> list[Finding]:
        """Located findings for unsafe characters: in values and keys (with their field), then in the
        rest of the raw text (comments) on lines no value finding covers."""
        findings: list[Finding] = []
        covered: set[int] = set()
        paths = _paths_to(root, {id(n) for n in self._unsafe}) if self._unsafe else {}
        for node in self._unsafe[:MAX_REPORTED]:
            parts = paths.get(id(node), ())
            m = node.start_mark
            covered.update(range(m.line + 1, node.end_mark.line + 2))
            chars = ", ".join(describe_char(chr(int(u[2:], 16))) for u in unsafe_chars(node.value))
            what = f"`{parts[-1]}`" if parts and isinstance(parts[-1], str) else "this value"
            if parts and parts[-1] == node.value:
                what = "this key"
            findings.append(Finding(self.path, m.line + 1, m.column + 1, pointer(parts), Severity.ERROR,
                                    "unsafe-character",
                                    f"{what} holds {chars}: control, bidi and zero-width characters are not "
                                    "allowed; they can hide, reorder or repaint text in reviews and logs"))
        if _UNSAFE_RAW.search(text):
            for match in _UNSAFE_RAW.finditer(text):
                if len(findings) >= MAX_REPORTED:
                    break
                line, column = _position(text, match.start())
                if line in covered:
                    continue
                covered.add(line)
                findings.append(Finding(self.path, line, column, "", Severity.ERROR, "unsafe-character",
                                        f"{describe_char(match.group())} in the file (a comment?): bidi and "
                                        "zero-width characters are not allowed; they can make a reviewer read "
                                        "something other than what is there"))
        return findings


def _paths_to(root: yaml.Node, targets: set[int]) -> dict[int, tuple[str | int, ...]]:
    """JSON-pointer parts of the first path to each target node (a key node maps to its own key)."""
    found: dict[int, tuple[str | int, ...]] = {}
    stack: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    visited: set[int] = set()
    while stack and len(found) < len(targets):
        node, parts = stack.pop()
        if id(node) in targets and id(node) not in found:
            found[id(node)] = parts
        if id(node) in visited or isinstance(node, yaml.ScalarNode):
            continue
        visited.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, parts + (i,)) for i, child in enumerate(node.value))
        else:
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                if id(k) in targets and id(k) not in found:
                    found[id(k)] = parts + (key,)
                stack.append((v, parts + (key,)))
    return found
