"""textsafe: for many hostile strings, each helper's output cannot act as markup or commands."""

from __future__ import annotations

import html as std_html
import random
import re

import pytest
from mailroom.core.textsafe import UNSAFE, html, md_fence, md_inline_code, md_text, printable, unsafe_chars

HOSTILE = [
    "x\n```\n<!-- ", "<script>alert(1)</script>", "\x1b[2J", "\u202egnp.exe", "<img src=x onerror=alert(1)>",
    "' onmouseover='alert(1)", '" autofocus onfocus="alert(1)', "`", "``", "```", "````", "`x`", "a``b```c",
    "\n```\n", "   ```", "~~~", "| a | b |", "\\|", "\\", "<!--", "-->", "# heading", "* item", "[x](javascript:1)",
    "![i](http://x/i.png)", "&lt;script&gt;", "&amp;", "\r\n\r\n", "\x00\x07\x08\x7f\x85\x9b", "\u2028\u2029",
    "\u200b\u200d\ufeff", "\u2066\u2067\u2068\u2069\u061c", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "",
]
# Characters that mean something to a terminal, Markdown or HTML, for random strings of them.
ALPHABET = "`~<>&\"'|\\!-*_[](){}#+=\n\r\t\x1b\x07\x9b\u202e\u2066\u200b\ufeff aé漢"


def hostile_strings(n: int = 2000) -> list[str]:
    rng = random.Random(9)
    return HOSTILE + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 24))) for _ in range(n)]


STRINGS = hostile_strings()


def test_printable_leaves_one_visible_line() -> None:
    for s in STRINGS:
        out = printable(s)
        assert not UNSAFE.search(out), repr(s)
        assert "\n" not in out and "\x1b" not in out
        assert out.isprintable(), repr(s)
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"  # shown, not obeyed
    assert printable("\x1b[2J") == "\\u001b[2J"
    assert unsafe_chars("a\x1b\u202e") == ["U+001B", "U+202E"]


def code_span_content(span: str) -> str:
    """CommonMark: a code span opened by n backticks ends at the next run of exactly n."""
    opener = re.match("`+", span)
    assert opener, span
    n = len(opener.group())
    closer = next((m for m in re.finditer("`+", span[n:]) if len(m.group()) == n), None)
    assert closer is not None, span
    return span[n:n + closer.start()]


def test_md_inline_code_cannot_be_closed_early() -> None:
    for s in filter(None, STRINGS):  # an empty value gives "``", shown literally: harmless
        span = md_inline_code(s)
        assert "\n" not in span
        content = code_span_content(span)
        # the span runs to the end of the output: nothing after it is read as Markdown
        assert len(span) == 2 * len(re.match("`+", span).group()) + len(content), repr(s)  # type: ignore[union-attr]
        stripped = content[1:-1] if content[:1] == content[-1:] == " " and content.strip() else content
        assert printable(s) in (content, stripped), repr(s)  # CommonMark strips one padding space


def test_md_fence_no_line_inside_closes_the_fence() -> None:
    rng = random.Random(3)
    for _ in range(500):
        lines = rng.sample(STRINGS, rng.randint(1, 6))
        block = md_fence(lines, "text")
        fence = re.match("`+", block[0]).group()  # type: ignore[union-attr]
        assert block[0] == fence + "text" and block[-1] == fence and len(fence) >= 3
        closing = re.compile(rf"^ {{0,3}}`{{{len(fence)},}}[ \t]*$")
        for inner in block[1:-1]:
            assert not closing.match(inner), (lines, inner)
            assert "\n" not in inner and "\r" not in inner and not UNSAFE.search(inner)
        assert block[1:-1] == [printable(line) for line in lines]


def unescaped(text: str, char: str) -> list[int]:
    """Positions of ``char`` not escaped by an odd run of backslashes."""
    out = []
    for m in re.finditer(re.escape(char), text):
        run = len(text[:m.start()]) - len(text[:m.start()].rstrip("\\"))
        if run % 2 == 0:
            out.append(m.start())
    return out


def test_md_text_is_inert_prose() -> None:
    for s in STRINGS:
        out = md_text(s)
        assert "<" not in out and ">" not in out and "\n" not in out and not UNSAFE.search(out), repr(s)
        for char in "`*_[]|#!~-":
            assert not unescaped(out, char), (s, out, char)
        assert std_html.unescape(re.sub(r"\\(.)", r"\1", out)) == printable(s)  # nothing lost, only escaped


def test_html_is_inert_text_and_attribute_value() -> None:
    for s in STRINGS:
        out = html(s)
        assert not set("<>\"'") & set(out) and not UNSAFE.search(out), repr(s)
        assert std_html.unescape(out) == printable(s)


@pytest.mark.parametrize("value", ["<script>alert(1)</script>", "\u202egnp.exe", "x\n```\n<!-- "])
def test_the_issue_examples(value: str) -> None:
    assert "<" not in html(value) and "<" not in md_text(value)
    assert "\u202e" not in html(value) + md_text(value) + printable(value) + md_inline_code(value)
