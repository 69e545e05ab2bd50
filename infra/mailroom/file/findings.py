"""Findings: what validation (and later plan and drift) tell the user about a file position."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum

from mailroom.core.textsafe import UNSAFE, printable

# A value quoted in a message is cut to this many characters: a message is one readable line.
MAX_QUOTED = 80


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem, located as precisely as the YAML allows (1-based line and column).

    File, pointer and message are made printable on construction: they carry text
    from the file (names, keys, paths), and a finding is printed to terminals, JSON
    and pull-request annotations, where a newline or an escape sequence would forge
    or repaint output.
    """

    file: str
    line: int
    column: int
    pointer: str  # JSON pointer of the field, e.g. /mailboxes/3/members/0
    severity: Severity
    code: str
    message: str

    def __post_init__(self) -> None:
        for name in ("file", "pointer", "message", "code"):
            value = getattr(self, name)
            if UNSAFE.search(value):
                object.__setattr__(self, name, printable(value))

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.code)


def pointer(parts: tuple[str | int, ...]) -> str:
    """RFC 6901 JSON pointer for a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def quote(value: object, limit: int = MAX_QUOTED) -> str:
    """A value from the file for a message: JSON-quoted text (unsafe characters escaped), at most
    ``limit`` characters of it."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    shown = printable(json.dumps(text[:limit], ensure_ascii=False))
    return shown + ("…" if cut else "")


def render_text(findings: Sequence[Finding]) -> str:
    """One ``file:line:column: severity: message [code at pointer]`` line per finding."""
    return "".join(f"{f.file}:{f.line}:{f.column}: {f.severity.value}: {f.message} "
                   f"[{f.code} at {f.pointer or '/'}]\n" for f in findings)
