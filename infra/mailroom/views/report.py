"""Drift reports: text for a terminal, Markdown for a PR or issue, JSON for machines, a CSV of every grant,
and one self-contained HTML page (no server, no scripts, no external assets; ``views/page.py``'s frame).

The page scales with the grants, not with mailboxes × people: a summary, the findings, then one section per
mailbox listing only the people who hold something there (managed mailboxes, and the unmanaged ones when
their access was read), each right as its mark with a status word when it is not as in the file. About 130
bytes a mailbox and 45 a grant: 5,000 mailboxes with 30,000 grants stay well under 2 MB
(tests/test_report.py measures it). The CSV has one row per mailbox × person × right.

Every value a finding holds may come from the tenant (a display name, a trustee, a caller), so
each is shown through ``mailroom.core.textsafe`` for its medium and never acts as markup or commands."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from mailroom.access.index import IN_FILE, PENDING, UNDECLARED, UNMANAGED, Access, grants
from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Desired, State
from mailroom.core.textsafe import html, md_inline_code, md_text, printable
from mailroom.drift.scan import KINDS, DriftFinding, ScanResult
from mailroom.views.page import Provenance, frame, status

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



# a grant's place (access.index) → its status word on the page (views/page.STATUS_TEXT)
_STATUS = {IN_FILE: "ok", PENDING: "missing", UNDECLARED: "extra", UNMANAGED: "unmanaged"}
_WORDS = {"ok": "as in the file", "extra": "in the tenant, not in the file", "missing": "in the file, not in the "
          "tenant", "stale": "held by a disabled or deleted account", "high": "mail leaves the mailbox, not as the "
          "file says", "unmanaged": "a mailbox the file does not manage", "changed": "a setting differs from the file",
          "error": "could not be read: not checked"}

_CSS = """
#access h3{margin:12px 0 2px;padding:2px 4px;background:#eef2f7;font-size:13px;overflow-wrap:anywhere}
#access p{margin:0 0 4px 12px;overflow-wrap:anywhere}.sev-high td{background:#fff0f0}
body:has(#only-drift:checked) .c{display:none}
@media print{body:has(#only-drift:checked) .c{display:revert}#access p{orphans:2;widows:2}}
"""


def coverage(desired: Desired, result: ScanResult) -> list[str]:
    """What the scan read, for the page's provenance."""
    present = sum(1 for mb in desired.mailboxes if mb.state is State.PRESENT)
    managed = {mb.key for mb in desired.mailboxes}
    read_unmanaged = sum(1 for k in result.live if k not in managed)
    out = [f"{present:,} managed mailboxes, {len(result.live) - read_unmanaged:,} read, "
           f"{len(result.errors):,} could not be read",
           f"{len(result.unmanaged):,} shared mailboxes the file does not manage"
           + (f", access of {read_unmanaged:,} read" if read_unmanaged else ", their access not read")]
    out.append(f"inbox rules not checked: {result.rules_unread}" if result.rules_unread else "inbox rules checked")
    return out


def access_rows(found: Sequence[DriftFinding], desired: Desired, result: ScanResult) -> list[tuple[Access, str]]:
    """Every grant of the file and of the tenant with its page status (ok, extra, missing, stale, unmanaged)."""
    stale = {(smtp_key(f.mailbox), smtp_key(f.subject or ""), f.right) for f in found if f.kind == "stale_access"}
    out = []
    for a in grants(desired, result.live, smtp_key):
        st = _STATUS[a.status] if a.live is not None else "ok"
        if (smtp_key(a.mailbox), smtp_key(a.holder), a.right) in stale:
            st = "stale"
        out.append((a, st))
    return out


CSV_FIELDS = ("mailbox", "managed", "owner", "person", "right", "label", "status", "in_file", "in_tenant",
              "removed_by")


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: a leading = + - @ (a formula) is quoted with ``'``."""
    text = printable("" if value is None else value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def render_csv(found: Sequence[DriftFinding], desired: Desired, result: ScanResult) -> str:
    """One row per mailbox × person × right, managed and (when read) unmanaged mailboxes."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for a, st in access_rows(found, desired, result):
        w.writerow([_cell(v) for v in (a.mailbox, a.managed, a.owner or "", a.holder, a.right, a.label, st,
                                       a.declared, "" if a.live is None else a.live, a.removed_by)])
    return buf.getvalue()


def _mark(right: str) -> str:
    row = rights.BY_KEY.get(right)
    return row.mark[0] if row is not None and row.mark else rights.label(right)


def _finding_rows(found: Sequence[DriftFinding]) -> str:
    e = html
    rows = []
    for f in sorted(found, key=lambda f: (f.severity != "high", smtp_key(f.mailbox), f.kind)):
        who = f"{e(f.changed_by)} at {e(f.changed_at or '')}" if f.changed_by else ""
        cls = "finding sev-high" if f.severity == "high" else "finding"
        rows.append(f"<tr class='{cls}'><td>{e(f.mailbox)}</td><td class='kind'>{e(f.kind.replace('_', ' '))}</td>"
                    f"<td>{e(f.right or '')}</td><td>{e(f.subject or '')}</td><td>{e(str(f.describe()))}</td>"
                    f"<td>{e(f.first_seen)}</td><td>{who}</td></tr>")
    return "".join(rows) or "<tr><td colspan=7>none</td></tr>"


def render_html(found: Sequence[DriftFinding], desired: Desired, result: ScanResult, generated: str,
                provenance: Provenance | None = None) -> str:
    e = html
    prov = provenance or Provenance("not stated", "not stated", "not stated", generated, coverage(desired, result))
    by_box: dict[str, list[tuple[Access, str]]] = {}
    for a, st in access_rows(found, desired, result):
        by_box.setdefault(smtp_key(a.mailbox), []).append((a, st))
    findings_of: dict[str, list[DriftFinding]] = {}
    for f in found:
        findings_of.setdefault(smtp_key(f.mailbox), []).append(f)

    # (key, address, display name, owner, where, managed)
    boxes: list[tuple[str, str, str, str, str, bool]] = []
    for mb in desired.mailboxes:
        if mb.state is State.PRESENT or mb.key in findings_of:
            where = f"{mb.origin.file}:{mb.origin.line}" if mb.origin else ""
            boxes.append((mb.key, mb.address, mb.display_name, mb.owner or "", where, True))
    for row in result.unmanaged:
        address = str(row.get("PrimarySmtpAddress") or "")
        boxes.append((smtp_key(address), address, str(row.get("DisplayName") or ""), "", "", False))
    boxes.sort(key=lambda b: (b[0] not in findings_of and not any(st != "ok" for _, st in by_box.get(b[0], [])),
                              not b[5], b[0]))

    sections = []
    flagged = []
    for n, (key, address, name, owner, where, managed) in enumerate(boxes):
        held = by_box.get(key, [])
        mine = findings_of.get(key, [])
        worst = _worst(held, mine, managed, address in result.errors)
        people: dict[str, list[str]] = {}
        shown: dict[str, str] = {}
        for a, st in held:
            pk = smtp_key(a.holder)
            shown.setdefault(pk, a.holder)
            mark = e(_mark(a.right))
            people.setdefault(pk, []).append(mark if st == "ok" else f"{mark} {status(st)}")
        # One paragraph of people a mailbox, not a table: a grant costs its address and its marks (the page's
        # size grows with grants, and 5,000 mailboxes must stay under 2 MB).
        listed = "; ".join(f"{e(shown[pk])} {' '.join(people[pk])}" for pk in sorted(people))
        sends = _forwarding(result, key)
        facts = [e(name) if name and name != address else "",
                 f"owner {e(owner)}" if owner else ("no owner" if managed else "not managed by the file"),
                 e(where), f"forwards to {', '.join(e(x) for x in sends)}" if sends else ""]
        word = "OK" if worst == "ok" else status(worst)
        head = f"{e(address)} {word} · {' · '.join(x for x in facts if x)}"
        if worst == "ok":
            sections.append(f"<h3 class=c>{head}</h3><p class=c>{listed or 'nobody'}</p>")
            continue
        sections.append(f"<h3 id=m{n}>{head}</h3><p>{listed or 'nobody'}</p>")
        kinds = ", ".join(f"{k.replace('_', ' ')} {c}" for k, c in sorted(_count(mine).items()))
        flagged.append(f"<tr><td><a href='#m{n}'>{e(address)}</a><td>{status(worst)}<td>{e(owner)}<td>{e(kinds)}")
    counts = ", ".join(f"{n} {e(k.replace('_', ' '))}" for k, n in sorted(summary(found).items())) or "no drift"
    used = {a.right for rows in by_box.values() for a, _ in rows}  # only the marks this page shows
    legend = " ".join(f"{e(r.mark[0])} = {e(r.mark[1])};" for r in rights.TABLE if r.mark and r.key in used)
    words = "".join(f"<li>{status(k)} {e(v)}</li>" for k, v in _WORDS.items())
    kinds_list = "".join(f"<li><b>{e(k.replace('_', ' '))}</b>: {e(v)}</li>" for k, v in KINDS.items())
    body = f"""<p id="summary">{len(found)} finding(s): {counts}. {len(boxes):,} mailboxes below
({sum(1 for b in boxes if b[5]):,} managed), {sum(len(v) for v in by_box.values()):,} grants.</p>
<h2>Mailboxes that need attention</h2>
<table id="attention"><thead><tr><th>mailbox<th>status<th>owner<th>findings</thead>
<tbody>{''.join(flagged) or '<tr><td colspan=4>none</td></tr>'}</tbody></table>
<h2>Findings</h2>
<table id="findings"><thead><tr><th>mailbox</th><th>finding</th><th>right</th><th>subject</th><th>detail</th>
<th>first seen</th><th>changed by</th></tr></thead>
<tbody>{_finding_rows(found)}</tbody></table>
<h2>Access by mailbox</h2>
<p class="legend">Each mailbox, then everyone who holds a right on it: {legend} a right without a
status word is as in the file.</p><ul class="legend">{words}</ul>
<p class="filters"><label><input type="checkbox" id="only-drift"> only mailboxes that need attention</label></p>
<div id="access">{''.join(sections)}</div>
<h2>Finding kinds</h2><ul>{kinds_list}</ul>"""
    return frame("mailroom drift report", prov, body, _CSS)


def _count(found: Sequence[DriftFinding]) -> dict[str, int]:
    return summary(found)


def _worst(held: Sequence[tuple[Access, str]], found: Sequence[DriftFinding], managed: bool, unread: bool) -> str:
    """The mailbox's status word: the most serious of its findings and grants."""
    kinds = {f.kind for f in found}
    if unread or "scan_error" in kinds:
        return "error"
    if any(f.severity == "high" for f in found):
        return "high"
    grant_states = {st for _, st in held}
    for st in ("extra", "stale", "missing"):
        if st in grant_states:
            return st
    for kind, st in (("mailbox_not_deleted", "extra"), ("mailbox_missing", "missing"),
                     ("changed_setting", "changed"), ("stale_access", "stale")):
        if kind in kinds:
            return st
    return "ok" if managed else "unmanaged"


def _forwarding(result: ScanResult, key: str) -> list[str]:
    """Where the mailbox's mail goes besides itself (the forwarding rows of the rights table)."""
    live = result.live.get(key)
    if live is None:
        return []
    sends = [str(getattr(live.spec, r.attr)) for r in rights.SETTINGS if r.exfiltration and getattr(live.spec, r.attr)]
    return sends + [f"inbox rule {r}" for r in live.spec.forward_rules]
