"""`mailroom drift`: live tenant vs the file, with first/last seen, who did it, and reports."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from typing import Any

from mailroom import drift as drift_mod
from mailroom import history, report
from mailroom.commands.plan import add_common
from mailroom.drift import DriftFinding, ScanResult
from mailroom.engine import state_dir
from mailroom.identity import smtp_key
from mailroom.runner import Invalid, Run, prepare, progress
from mailroom.tenant import Tenant
from mailroom.textsafe import printable

EPILOG = """exit codes:
  0  no drift
  1  error: the file is invalid, or a mailbox could not be read (it is reported, never as clean)
  2  drift found
  3  --remediate: apply refused by the mass-removal guard
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("drift", help="compare the live tenant with the file and report every difference",
                       description="Scan every shared mailbox in bulk and report missing grants, unmanaged "
                                   "access, changed settings, missing or unmanaged mailboxes and stale access, "
                                   "each with when it was first seen and who made the change.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(p)
    p.add_argument("--json", metavar="FILE", help="write the report as JSON (- for stdout)")
    p.add_argument("--markdown", metavar="FILE", help="write the report as Markdown")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with the access matrix")
    p.add_argument("--remediate", action="store_true",
                   help="hand over to apply (with its mass-removal guard) to revert managed drift")
    p.add_argument("--concurrency", type=int, default=32,
                   help="most requests in flight (default 32); the request rate adapts to throttling by itself")
    p.set_defaults(func=run)


def _bar(done: int, total: int) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = int(width * done / max(total, 1))
        print(f"\r  scanning [{'#' * filled}{'.' * (width - filled)}] {done}/{total} mailboxes", end="",
              file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)


async def collect(prepared: Run, concurrency: int) -> tuple[list[DriftFinding], ScanResult, dict[str, Any]]:
    async with Tenant(prepared.tenant, concurrency=concurrency) as t:
        result = await drift_mod.scan(t, prepared.desired, _bar)
        found = drift_mod.findings(prepared.desired, result, t.directory)
        if found:
            boxes = sorted({f.mailbox for f in found if f.kind != "scan_error"})
            rows = await t.exchange.admin_audit_log(boxes) if boxes else []
            needs_graph = any(f.right == "sign_in_blocked" or f.kind == "stale_access" for f in found)
            audits = await t.graph.directory_audits() if needs_graph else []
            ids: dict[str, str] = {}
            for key, live in result.live.items():
                ids[key] = live.object_id
            for f in found:
                recipient = t.directory.lookup(f.subject) if f.subject else None
                if recipient is not None:
                    ids[smtp_key(f.subject or "")] = recipient.id
            history.attribute(found, rows, audits, t.directory, ids)
        sent = (t.transport.stats, t.graph_transport.stats)
        stats = {"mailboxes": len(result.live) + len(result.errors), "unmanaged": len(result.unmanaged),
                 "exchange_requests": t.transport.stats.requests, "graph_requests": t.graph.requests,
                 "retries": sum(s.retries for s in sent), "throttled": sum(s.throttled for s in sent),
                 "errors": len(result.errors)}
    return found, result, stats


def run(args: argparse.Namespace) -> int:
    try:
        prepared = prepare(args.file, args.stack)
    except Invalid as exc:
        sys.stdout.write(str(exc))
        return 1
    except Exception as exc:
        print(f"mailroom drift: {type(exc).__name__}: {printable(exc)}", file=sys.stderr)
        return 1
    log = prepared.audit_log()
    log.start_run(detail="drift", context={"file": str(prepared.file)})
    progress(f"mailroom: scanning stack {prepared.stack} ({len(prepared.desired.mailboxes)} managed mailboxes)")
    try:
        found, result, stats = asyncio.run(collect(prepared, args.concurrency))
    except Exception as exc:
        log.end_run("failed", {"error": str(exc)})
        print(f"mailroom drift: scan failed: {type(exc).__name__}: {printable(exc)}", file=sys.stderr)
        return 1
    found, resolved = drift_mod.track(found, drift_mod.state_path(state_dir(prepared.project_dir), prepared.stack))
    entries = []
    for f in found:
        kind = "drift_new" if f.first_seen == f.last_seen else "drift_present"
        entries.append(log.entry(kind, mailbox=f.mailbox, subject=f.subject, right=f.right, before=f.expected,
                                 after=f.actual, detail=f"{f.kind}: {f.detail}".rstrip(": ")
                                 + (f" by {f.changed_by} at {f.changed_at}" if f.changed_by else "")))
    for r in resolved:
        entries.append(log.entry("drift_resolved", mailbox=r.get("mailbox"), subject=r.get("subject"),
                                 right=r.get("right"), detail=str(r.get("kind"))))
    if entries:
        log.append(entries)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    if args.json == "-":
        print(report.render_json(found, resolved, stats))
    else:
        sys.stdout.write(report.render_text(found, resolved))
        if args.json:
            _write(args.json, report.render_json(found, resolved, stats))
    if args.markdown:
        _write(args.markdown, report.render_markdown(found, resolved))
    if args.html:
        _write(args.html, report.render_html(found, prepared.desired, result, generated))
    code = 1 if result.errors else (2 if found else 0)
    log.end_run("error" if result.errors else ("drift" if found else "clean"), {"findings": len(found), **stats})
    if args.remediate and found and not result.errors:
        from mailroom.commands import apply as apply_cmd

        progress("mailroom: --remediate: handing over to apply")
        applied = apply_cmd.run(argparse.Namespace(file=args.file, stack=args.stack, yes=True,
                                                   allow_mass_removal=False, json=False))
        remediation = prepared.audit_log()
        remediation.start_run(detail="drift remediation")
        remediation.end_run({0: "ok", 3: "refused"}.get(applied, "failed"), {"apply_exit": applied})
        if applied == 3:
            return 3
        if applied != 0:
            return 1
    return code


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
