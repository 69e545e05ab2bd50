"""Values from the file or the tenant, made safe for the place they are shown.

A display name, alias or trustee name is data. Shown raw it can act as markup or
as a command: a newline and a code fence close a Markdown plan, ``<!--`` hides
the rest of a pull-request comment, ANSI escapes repaint a terminal, and a
right-to-left override reorders what a reviewer reads. Every renderer passes
such values through one of these functions; validation rejects the same
characters in the file (``UNSAFE``), so only tenant values ever need escaping.
"""

from __future__ import annotations

import html as _html
import re

# C0 and C1 controls (newline and tab included), DEL, the bidi embeddings,
# overrides and isolates, the line/paragraph separators, zero-width characters
# that hide text, and the BOM.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def unsafe_chars(value: str) -> list[str]:
    """The unsafe characters in ``value``, as ``U+XXXX`` names (for error messages)."""
    return sorted({f"U+{ord(ch):04X}" for ch in UNSAFE.findall(value)})


def printable(value: object) -> str:
    """One line with every unsafe character written as a visible ``\\uXXXX`` escape."""
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))


def md_inline_code(value: object) -> str:
    """``value`` as Markdown inline code that no backtick in it can close."""
    text = printable(value)
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(lines: list[str], info: str = "") -> list[str]:
    """A fenced code block around ``lines`` (each made printable) that no line in it can close."""
    body = [printable(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall("`{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body, fence]


def md_text(value: object) -> str:
    """``value`` as Markdown prose: printable, with HTML and Markdown punctuation escaped."""
    text = _html.escape(printable(value), quote=True)
    return re.sub(r"([\\`*_{}\[\]()#+\-!|~>])", r"\\\1", text)


def html(value: object) -> str:
    """``value`` for HTML text or a quoted attribute."""
    return _html.escape(printable(value), quote=True)
