"""Drift reports: text for a terminal, Markdown for a PR or issue, JSON for machines, and one
self-contained HTML page (no server, no scripts, no external assets) with an access matrix.

Every value a finding holds may come from the tenant (a display name, a trustee, a caller), so
each is shown through ``mailroom.core.textsafe`` for its medium and never acts as markup or commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired
from mailroom.core.textsafe import html, md_inline_code, md_text, printable
from mailroom.drift.scan import KINDS, DriftFinding, ScanResult

# right → its access-matrix mark, and the legend that explains the marks (the rights table)
RIGHT_MARK = {r.key: r.mark[0] for r in rights.TABLE if r.mark}
_MARK_LEGEND = ", ".join(f"{r.mark[0]} = {r.mark[1]}" for r in rights.TABLE if r.mark)


def summary(found: Sequence[DriftFinding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in found:
        out[f.kind] = out.get(f.kind, 0) + 1
    return out


def render_text(found: Sequence[DriftFinding], resolved: Sequence[dict[str, Any]]) -> str:
    if not found and not resolved:
        return "No drift: the tenant matches the file.\n"
    lines = [f.line() + printable(f"   [first seen {f.first_seen}]") for f in found]
    lines += [printable(f"{r['mailbox']}  resolved  {r.get('right') or ''} {r.get('subject') or ''}".rstrip())
              for r in resolved]
    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(summary(found).items()))
    return "\n".join(lines) + f"\n\n{len(found)} finding(s): {counts or 'none'}\n"


def render_json(found: Sequence[DriftFinding], resolved: Sequence[dict[str, Any]], stats: dict[str, Any]) -> str:
    from mailroom.output import FORMAT_VERSION

    return json.dumps({"format_version": FORMAT_VERSION, "command": "drift", "drift": bool(found),
                       "summary": summary(found), "findings": [f.to_dict() for f in found],
                       "resolved": list(resolved), "scan": stats}, indent=2, default=str)


def render_markdown(found: Sequence[DriftFinding], resolved: Sequence[dict[str, Any]]) -> str:
    out = ["### mailroom drift report", ""]
    if not found:
        out.append("No drift: the tenant matches the file.")
    else:
        out += ["| mailbox | finding | right | subject | detail | first seen | changed by |",
                "|---|---|---|---|---|---|---|"]
        for f in found:
            who = f"{f.changed_by} ({f.changed_at})" if f.changed_by else ""
            cells = [_code_cell(f.mailbox), *(md_text(v) for v in (f.kind.replace("_", " "), f.right or "",
                                                                     f.subject or "", f.describe(), f.first_seen,
                                                                     who))]
            out.append("| " + " | ".join(cells) + " |")
    if resolved:
        out += ["", f"{len(resolved)} finding(s) resolved since the last run."]
    return "\n".join(out) + "\n"


def _code_cell(value: object) -> str:
    """Inline code in a table cell, or escaped prose if it holds a pipe: GFM splits a row at
    pipes before it reads code spans, and how a backslash before a pipe counts varies."""
    return md_text(value) if "|" in printable(value) else md_inline_code(value)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d1d1f}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.matrix td{text-align:center;min-width:56px}
.extra{background:#ffd6d6;color:#8a0000;font-weight:bold}.missing{background:#fff1c2;color:#7a5a00;
font-style:italic}.stale{background:#e8dcff;color:#4b2a86}.ok{background:#e4f6e4}
.kind{white-space:nowrap}.legend span{display:inline-block;padding:2px 8px;margin-right:8px}
"""


def render_html(found: Sequence[DriftFinding], desired: Desired, result: ScanResult, generated: str) -> str:
    e = html
    rows = []
    for f in found:
        who = f"{e(f.changed_by)} at {e(f.changed_at or '')}" if f.changed_by else ""
        detail = f.describe()
        rows.append(f"<tr class='finding'><td>{e(f.mailbox)}</td><td class='kind'>{e(f.kind.replace('_', ' '))}</td>"
                    f"<td>{e(f.right or '')}</td><td>{e(f.subject or '')}</td><td>{e(str(detail))}</td>"
                    f"<td>{e(f.first_seen)}</td><td>{who}</td></tr>")
    # matrix: managed mailboxes × people; a cell lists rights, coloured by drift status
    extra = {(smtp_key(f.mailbox), smtp_key(f.subject or ""), f.right) for f in found if f.kind == "extra_grant"}
    missing = {(smtp_key(f.mailbox), smtp_key(f.subject or ""), f.right) for f in found if f.kind == "missing_grant"}
    stale = {(smtp_key(f.mailbox), smtp_key(f.subject or ""), f.right) for f in found if f.kind == "stale_access"}
    cells: dict[tuple[str, str], list[tuple[str, str]]] = {}
    people: dict[str, str] = {}
    boxes = [mb for mb in desired.mailboxes if mb.state.value == "present"]
    for mb in boxes:
        live = result.live.get(mb.key)
        grants = []
        if live is not None:
            grants += live.spec.grants()
        grants += [(f.right or "", f.subject or "") for f in found
                   if f.kind == "missing_grant" and smtp_key(f.mailbox) == mb.key and f.right in RIGHT_MARK]
        for right, who_addr in grants:
            if right not in RIGHT_MARK:
                continue
            pk = smtp_key(who_addr)
            people.setdefault(pk, who_addr)
            state = ("extra" if (mb.key, pk, right) in extra else "missing" if (mb.key, pk, right) in missing
                     else "stale" if (mb.key, pk, right) in stale else "ok")
            cells.setdefault((mb.key, pk), []).append((RIGHT_MARK[right], state))
    person_keys = sorted(people)
    head = "".join(f"<th>{e(people[p])}</th>" for p in person_keys) + "<th>forwarding</th>"
    body = []
    leaking = {smtp_key(f.mailbox) for f in found if f.severity == "high"}
    for mb in boxes:
        tds = []
        for p in person_keys:
            marks = cells.get((mb.key, p), [])
            worst = next((s for s in ("extra", "missing", "stale") if any(m[1] == s for m in marks)), "ok")
            text = " ".join(m[0] for m in marks)
            tds.append(f"<td class='{worst if marks else ''}' title='{e(text)}'>{e(text)}</td>")
        # Where the mailbox's mail goes besides itself (the forwarding rows of the rights table), red when the
        # file does not say so.
        live = result.live.get(mb.key)
        sends = [] if live is None else [getattr(live.spec, r.attr) for r in rights.SETTINGS if r.exfiltration]
        sends = [s for s in sends if s] + ([f"inbox rule {r}" for r in live.spec.forward_rules] if live else [])
        where = "extra" if mb.key in leaking else ("ok" if sends else "")
        tds.append(f"<td class='{where} forwarding'>{'<br>'.join(e(x) for x in sends)}</td>")
        body.append(f"<tr><th>{e(mb.address)}</th>{''.join(tds)}</tr>")
    counts = ", ".join(f"{n} {e(k.replace('_', ' '))}" for k, n in sorted(summary(found).items())) or "no drift"
    unmanaged = "".join(f"<li>{e(str(r.get('PrimarySmtpAddress')))} — {e(str(r.get('DisplayName') or ''))}</li>"
                        for r in result.unmanaged)
    kinds = "".join(f"<li><b>{e(k.replace('_', ' '))}</b>: {e(v)}</li>" for k, v in KINDS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mailroom drift report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body>
<h1>mailroom drift report</h1>
<p id="summary">{len(found)} finding(s): {counts}. Generated {e(generated)}.</p>
<h2>Findings</h2>
<table id="findings"><thead><tr><th>mailbox</th><th>finding</th><th>right</th><th>subject</th><th>detail</th>
<th>first seen</th><th>changed by</th></tr></thead>
<tbody>{''.join(rows) or '<tr><td colspan=7>none</td></tr>'}</tbody></table>
<h2>Access matrix</h2>
<p class="legend"><span class="ok">as in the file</span><span class="extra">extra (not in the file)</span>
<span class="missing">missing (in the file only)</span><span class="stale">disabled or deleted account</span>
{_MARK_LEGEND}</p>
<table class="matrix" id="matrix"><thead><tr><th>mailbox</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<h2>Shared mailboxes the file does not manage</h2><ul id="unmanaged">{unmanaged or '<li>none</li>'}</ul>
<h2>Finding kinds</h2><ul>{kinds}</ul>
</body></html>
"""
