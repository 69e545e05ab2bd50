"""The access review as text (terminal), Markdown (a pull request or issue), JSON (one versioned document) and
HTML (one self-contained page). Every tenant or file value goes through ``core/textsafe``."""

from __future__ import annotations

from typing import Any

from mailroom.activity.review import Review, Row
from mailroom.core import rights
from mailroom.core.textsafe import html, md_text, printable
from mailroom.views.page import Provenance, frame

VERDICT_TEXT = {"active": "ACTIVE", "unused": "UNUSED", "unknown": "UNKNOWN"}


def _right(key: str, folder: str | None = None) -> str:
    """The right's label; a path folder's rows by its path (inbox/Reports reviewer)."""
    return rights.folder_label(rights.BY_KEY[key], folder)


def summary(review: Review) -> dict[str, int]:
    return {"active": review.count("active"), "unused": review.count("unused"), "unknown": review.count("unknown"),
            "unmanaged_senders": len(review.senders), "decommission_candidates": len(review.candidates)}


def _evidence(r: Row) -> str:
    if r.last_activity:
        return f"last {r.last_activity[:19].replace('T', ' ')}: {r.evidence}"
    return r.fix or "no delegate action in the window"


def render_text(review: Review) -> str:
    s = summary(review)
    out = [f"access review, last {review.since_days} days: {s['active']} active, {s['unused']} unused, "
           f"{s['unknown']} unknown"]
    for r in review.rows:
        out.append(printable(f"  {VERDICT_TEXT[r.verdict]:<8} {r.mailbox}  {_right(r.right, r.folder)}  {r.person}"
                             f"{' (group)' if r.is_group else ''}  — {_evidence(r)}"))
    if review.senders:
        out.append(f"acted on a mailbox without access in the file: {len(review.senders)}")
        for x in review.senders:
            out.append(printable(f"  {x.mailbox}  {x.person}  {', '.join(x.operations)} x{x.count}, last "
                                 f"{x.last_activity[:19].replace('T', ' ')}"))
    if review.candidates:
        out.append(f"decommission candidates (no delegate action, no inbound mail in {review.since_days} days): "
                   f"{len(review.candidates)}")
        for c in review.candidates:
            mail = "" if c.inbound_checked else " (inbound mail not checked)"
            out.append(printable(f"  {c.mailbox}  reviewer: {c.reviewer or 'no owner'}{mail}"))
    return "\n".join(out) + "\n"


def render_json(review: Review, stats: dict[str, Any], proposal: dict[str, Any] | None) -> dict[str, Any]:
    """The body of ``mailroom review --json`` (output.document adds format_version and command)."""
    return {"since_days": review.since_days, "summary": summary(review),
            "access": [r.to_dict() for r in review.rows],
            "unmanaged_senders": [x.to_dict() for x in review.senders],
            "decommission_candidates": [c.to_dict() for c in review.candidates],
            "scan": stats, "proposal": proposal}


def render_markdown(review: Review) -> str:
    s = summary(review)
    out = [f"# Access review, last {review.since_days} days", "",
           f"{s['active']} active, {s['unused']} unused, {s['unknown']} unknown; "
           f"{s['unmanaged_senders']} unmanaged senders; {s['decommission_candidates']} decommission candidates", "",
           "| verdict | mailbox | access | person | evidence | reviewer |", "|---|---|---|---|---|---|"]
    for r in review.rows:
        out.append(f"| {VERDICT_TEXT[r.verdict]} | {md_text(r.mailbox)} | {md_text(_right(r.right, r.folder))} | "
                   f"{md_text(r.person)} | {md_text(_evidence(r))} | {md_text(r.reviewer or 'no owner')} |")
    if review.senders:
        out += ["", "## Acted without access in the file", "", "| mailbox | person | actions | last |",
                "|---|---|---|---|"]
        out += [f"| {md_text(x.mailbox)} | {md_text(x.person)} | {md_text(', '.join(x.operations))} x{x.count} | "
                f"{md_text(x.last_activity)} |" for x in review.senders]
    if review.candidates:
        out += ["", "## Decommission candidates", "", "| mailbox | reviewer | inbound mail checked |", "|---|---|---|"]
        out += [f"| {md_text(c.mailbox)} | {md_text(c.reviewer or 'no owner')} | "
                f"{'yes' if c.inbound_checked else 'no'} |" for c in review.candidates]
    return "\n".join(out) + "\n"


CSS = ".v-active{background:#e4f6e4;color:#1b5e20}.v-unused{background:#ffd6d6;color:#8a0000}" \
      ".v-unknown{background:#e0e0e0;color:#333}"


def render_html(review: Review, provenance: Provenance) -> str:
    rows = "".join(
        f"<tr><td><span class='st v-{html(r.verdict)}'>{html(VERDICT_TEXT[r.verdict])}</span></td>"
        f"<td>{html(r.mailbox)}</td><td>{html(_right(r.right, r.folder))}</td><td>{html(r.person)}</td>"
        f"<td>{html(_evidence(r))}</td><td>{html(r.reviewer or 'no owner')}</td></tr>" for r in review.rows)
    s = summary(review)
    body = [f"<p>{s['active']} active, {s['unused']} unused, {s['unknown']} unknown, last {review.since_days} "
            "days.</p><table><thead><tr><th>verdict</th><th>mailbox</th><th>access</th><th>person</th>"
            f"<th>evidence</th><th>reviewer</th></tr></thead><tbody>{rows}</tbody></table>"]
    if review.senders:
        senders = "".join(f"<tr><td>{html(x.mailbox)}</td><td>{html(x.person)}</td>"
                          f"<td>{html(', '.join(x.operations))} x{x.count}</td><td>{html(x.last_activity)}</td></tr>"
                          for x in review.senders)
        body.append("<h2>Acted without access in the file</h2><table><thead><tr><th>mailbox</th><th>person</th>"
                    f"<th>actions</th><th>last</th></tr></thead><tbody>{senders}</tbody></table>")
    if review.candidates:
        cands = "".join(f"<tr><td>{html(c.mailbox)}</td><td>{html(c.reviewer or 'no owner')}</td>"
                        f"<td>{'yes' if c.inbound_checked else 'no'}</td></tr>" for c in review.candidates)
        body.append("<h2>Decommission candidates</h2><table><thead><tr><th>mailbox</th><th>reviewer</th>"
                    f"<th>inbound mail checked</th></tr></thead><tbody>{cands}</tbody></table>")
    return frame(f"Access review, last {review.since_days} days", provenance, "".join(body), css=CSS)


def proposal_header(review: Review, removed: list[Row]) -> str:
    """The text before the patch (``git apply`` skips it): what the change is and who reviews it."""
    reviewers = sorted({r.reviewer for r in removed if r.reviewer})
    lines = [f"mailroom review: remove access unused for {review.since_days} days ({len(removed)} grants)", "",
             "Reviewers (the mailboxes' owners): " + (", ".join(reviewers) or "none named"), ""]
    lines += [f"  {r.mailbox}: {_right(r.right, r.folder)} of {r.person} (reviewer: {r.reviewer or 'no owner'})"
              for r in removed]
    return "\n".join(printable(line) for line in lines) + "\n\n"
