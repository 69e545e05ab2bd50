"""The frame every HTML page of mailroom shares: a provenance header, one stylesheet, print rules.

A page is one self-contained file (no server, no scripts, no external assets): a Content-Security-Policy
meta element forbids every fetch and every script, so even a value that escaped ``textsafe.html`` could not
run or load anything. Sorting and filtering work without scripts: tables are written sorted (findings
first), and a filter is a checkbox that CSS ``:has()`` reads.

Provenance says what a reader needs to trust a printed page: which stack and tenant, which commit of the
file, when, and what was covered (how many mailboxes read, which could not be). The print rules keep every
finding on paper: no fixed widths, long addresses break anywhere, table headers repeat, colour is never
the only marker (every status is written as text too), and filters are ignored in print.

Use: ``frame(title, provenance, body_html, css=extra_css)``; ``provenance_html`` alone for a page section.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailroom.core.textsafe import html

# Nothing may be fetched or run; inline styles only. (A meta CSP applies to a file opened from disk too.)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"

# Status words (text markers; colour only repeats them). One place, so report and review agree.
STATUS_TEXT = {"ok": "OK", "extra": "EXTRA", "missing": "MISSING", "stale": "STALE", "high": "HIGH",
               "unmanaged": "UNMANAGED", "changed": "CHANGED", "error": "UNREAD"}

CSS = """
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d1d1f;max-width:100%}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin-top:28px}h3{font-size:14px;margin:18px 0 4px}
table{border-collapse:collapse;margin:8px 0;width:100%}td,th{border:1px solid #bbb;padding:3px 6px;
text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}th{background:#f3f3f3}
.prov{border:1px solid #bbb;padding:6px 10px;margin:8px 0 16px;background:#fafafa}
.prov dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}.prov dt{font-weight:bold}
.prov dd{margin:0;overflow-wrap:anywhere}
.st{font-weight:bold;white-space:nowrap;padding:0 4px;border-radius:3px}
.st-ok{background:#e4f6e4;color:#1b5e20}.st-extra,.st-high{background:#ffd6d6;color:#8a0000}
.st-missing,.st-changed{background:#fff1c2;color:#7a5a00}.st-stale{background:#e8dcff;color:#4b2a86}
.st-unmanaged,.st-error{background:#e0e0e0;color:#333}
.filters{margin:8px 0}.filters label{margin-right:16px}
body:has(#only-drift:checked) .clean{display:none}
@media print{
  body{margin:0;font-size:10pt}
  .filters{display:none}
  body:has(#only-drift:checked) .clean{display:revert}
  thead{display:table-header-group}tr,.keep{break-inside:avoid}
  section{break-inside:auto}h2,h3{break-after:avoid}
  .st{border:1px solid #000}
  a{color:inherit;text-decoration:none}
}
@page{size:A4;margin:12mm}
"""


@dataclass(frozen=True)
class Provenance:
    """Where a page comes from. ``coverage``: what was read, as short facts (``"5,000 managed mailboxes"``)."""

    stack: str
    tenant: str
    commit: str
    generated: str
    coverage: Sequence[str] = field(default_factory=tuple)
    command: str = ""

    def rows(self) -> list[tuple[str, str]]:
        out = [("stack", self.stack), ("tenant", self.tenant), ("file commit", self.commit),
               ("generated", self.generated)]
        if self.command:
            out.append(("command", self.command))
        out.append(("coverage", "; ".join(self.coverage) or "not stated"))
        return out


def commit_of(directory: str | Path) -> str:
    """The git commit the file's directory is at (``abc1234``, ``+ uncommitted changes`` when dirty), or
    ``"not a git checkout"``. The one piece of I/O here: callers pass the result into ``Provenance``."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10,
                              check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        if not head:
            return "not a git checkout"
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{head} + uncommitted changes" if dirty else head


def provenance_html(p: Provenance) -> str:
    rows = "".join(f"<dt>{html(k)}</dt><dd>{html(v)}</dd>" for k, v in p.rows())
    return f"<div class='prov' id='provenance'><dl>{rows}</dl></div>"


def status(kind: str) -> str:
    """A status as text with its colour (``<span class='st st-extra'>EXTRA</span>``): never colour alone."""
    word = STATUS_TEXT.get(kind, kind.upper())
    return f"<span class='st st-{html(kind)}'>{html(word)}</span>"


def frame(title: str, provenance: Provenance, body: str, css: str = "") -> str:
    """The whole page: ``body`` is trusted markup built with ``textsafe.html`` for every value."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}">
<title>{html(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}{css}</style></head>
<body>
<h1>{html(title)}</h1>
{provenance_html(provenance)}
{body}
</body></html>
"""
