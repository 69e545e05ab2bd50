"""`mailroom import`: every shared mailbox of a tenant as reviewed YAML, read in one bulk scan.

parse → operation (``reconcile.adopt``: scan and model; ``file.emit`` / ``file.merge``: the text) → write
(atomically, every file or none) → report. The module is ``adopt`` because ``import`` is Python's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailroom import output, paths
from mailroom.cli import error_handler, options
from mailroom.cli.error_handler import FatalError, UsageError
from mailroom.core.model import Defaults, Desired, Policy
from mailroom.core.textsafe import printable
from mailroom.file import emit
from mailroom.file.emit import Entry
from mailroom.file.load import load_desired
from mailroom.file.merge import merge
from mailroom.file.source import load
from mailroom.m365.tenant import Tenant
from mailroom.reconcile import adopt

NAME = "import"
INCLUDE_DIR = "mailboxes.d"
HEADER = (
    "Imported by `mailroom import`: every shared mailbox of the tenant. Review it; `mailroom plan` then shows",
    "no changes and the first `mailroom apply` brings them under management without a tenant write.",
    "Owners: Exchange does not record who owns a shared mailbox, so no `owner` is written; name one each.",
    "AutoMapping: Exchange Online does not report it, so members have the default (automap: true) unless",
    "this file said otherwise before. Grants that are not delegations (SELF, inherited, deny, system) are",
    "left out; a grant to a deleted account is a comment on its mailbox.",
)
EPILOG = f"""exit codes:
  0   done: the files are written (a mailbox that could not be read is a warning and left out)
  1   error: the tenant cannot be reached or kept throttling, the file exists (without --merge) or is
      invalid; nothing is written
  64  usage error

Files are written atomically, all or none: each to a temporary file beside it, then renamed.
--split-by department (the mailbox's Entra user's department) or custom-attribute:N (CustomAttributeN,
1-15) writes one file per value under {INCLUDE_DIR}/ and an `include` in the main file.

--json prints one document: {{"format_version": 1, "command": "import", "files", "mailboxes", "skipped",
"warnings", "changes", "scan": {{"mailboxes", "exchange_requests", "graph_requests", "retries",
"throttled"}}}}; "skipped" counts what is not a delegation, by kind (self, inherited, deny, system,
orphan, system_mailbox, outside_domains); "changes" (with --merge) says what changed, one line each.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(NAME, help="write the tenant's shared mailboxes as a mailboxes file, to adopt them",
                       description="Read every shared mailbox of the tenant in one bulk scan and write the file "
                                   "format mailroom reads, so that plan shows no changes and the first apply "
                                   "makes no tenant write. With --merge, update existing files in place.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_stack(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="FILE", help=f"the main file to write (default: {paths.DEFAULT_FILE})")
    where.add_argument("--dir", metavar="DIR", help=f"write DIR/{paths.DEFAULT_FILE} (and DIR/{INCLUDE_DIR}/)")
    p.add_argument("--split-by", default="none", metavar="KEY",
                   help="department | custom-attribute:N | none (default): one file per value")
    p.add_argument("--mailbox", action="append", default=[], metavar="PATTERN",
                   help="only mailboxes whose address matches this shell pattern (repeatable)")
    p.add_argument("--merge", action="store_true",
                   help="update the existing files: only what changed, keeping comments, order and split")
    options.add_json(p, "what was written")
    p.set_defaults(func=run)


def _split(value: str) -> str:
    if value in ("none", adopt.DEPARTMENT):
        return value
    if value.startswith(adopt.CUSTOM) and value[len(adopt.CUSTOM):].isdigit() \
            and 1 <= int(value[len(adopt.CUSTOM):]) <= 15:
        return value
    raise UsageError(f"--split-by {value!r}: use department, custom-attribute:N (N from 1 to 15) or none")


def run(args: argparse.Namespace) -> int:
    split = _split(args.split_by)
    main = Path(args.out) if args.out else Path(args.dir or ".") / paths.DEFAULT_FILE
    stack = options.stack(args.stack)
    if main.exists() and not args.merge:
        raise FatalError(f"{printable(main)} exists: pass --merge to update it, or --out another file. "
                         "Nothing was written.")
    existing = None
    if args.merge and main.exists():
        existing = load_desired(str(main))
        if existing.desired is None:
            raise FatalError(f"{printable(main)} is invalid ({len(existing.errors)} error(s); see `mailroom "
                             "validate`): fix it before merging into it. Nothing was written.")
    project = paths.find_project(main.resolve().parent) or paths.PROJECT_DIR
    from mailroom.engine.stacks import tenant_config  # starts the local tenant when the stack is local

    cfg = tenant_config(project, stack)
    output.progress(f"mailroom: reading every shared mailbox of stack {stack}")
    desired = existing.desired if existing is not None else None
    imported, stats = asyncio.run(_read(cfg, desired, split, args.mailbox))
    for warning in imported.warnings:
        print(f"mailroom import: warning: {printable(warning)}", file=sys.stderr)
    if existing is not None and existing.desired is not None:
        files, changes = _merged(existing, imported, split, args.mailbox, main)
    else:
        files, changes = _fresh(imported, split, main, project), []
    _write_all(files)
    body = {"files": sorted(str(f) for f in files), "mailboxes": len(imported.mailboxes),
            "skipped": dict(sorted(imported.skipped.items())), "warnings": imported.warnings,
            "changes": changes, "scan": stats}
    if args.json:
        output.print_document(NAME, body)
    else:
        sys.stdout.write(_text(body, bool(existing)))
    return error_handler.OK


async def _read(cfg: Any, desired: Desired | None, split: str, patterns: list[str]) -> tuple[adopt.Imported,
                                                                                             dict[str, int]]:
    async with Tenant(cfg) as t:
        domains = desired.domains if desired is not None else adopt.routable(await t.exchange.accepted_domains())
        if desired is None:
            desired = adopt.empty(domains)
        wanted = adopt.matcher(patterns)
        scoped = replace(desired, mailboxes=tuple(mb for mb in desired.mailboxes if wanted(mb.key)))
        result = await adopt.read(t, scoped, patterns, output.bar)
        imported = adopt.adopt(result, t.directory, domains, split, patterns)
        sent = (t.transport.stats, t.graph_transport.stats)
        stats = {"mailboxes": len(result.live) + len(result.errors), "exchange_requests": t.transport.stats.requests,
                 "graph_requests": t.graph_transport.stats.requests, "retries": sum(s.retries for s in sent),
                 "throttled": sum(s.throttled for s in sent)}
    imported.stats = stats
    return imported, stats


def _entries(imported: adopt.Imported, policy: Policy) -> list[Entry]:
    return [Entry(a.mailbox, a.notes, owner_unknown=policy.require_owner) for a in imported.mailboxes]


def _schema(main_dir: Path, project: Path, name: str) -> str:
    rel = os.path.relpath(project / "schema" / name, main_dir.resolve())
    return rel if rel.startswith(".") else f"./{rel}"


def _fresh(imported: adopt.Imported, split: str, main: Path, project: Path) -> dict[Path, str]:
    """A new main file (and one file per group): defaults chosen to keep the file short."""
    defaults = adopt.common_defaults([a.mailbox for a in imported.mailboxes])
    external = adopt.needs_external(imported)
    forwarded = adopt.forward_domains(imported)
    policy = Policy(require_owner=False, allow_external_members=external, allowed_forward_domains=forwarded)
    notes = {"require_owner": "Exchange does not record owners: name them, then turn this on"}
    if external:
        notes["allow_external_members"] = "the tenant grants access to people outside tenant.domains"
    if forwarded:
        notes["allowed_forward_domains"] = "mailboxes forward mail there today: review (CIS 6.2.1)"
    entries = dict(zip([a.mailbox.key for a in imported.mailboxes], _entries(imported, policy), strict=True))
    groups: dict[str, list[Entry]] = {}
    for a in imported.mailboxes:
        groups.setdefault(emit.slug(a.group) if a.group else "", []).append(entries[a.mailbox.key])
    files: dict[Path, str] = {}
    includes = []
    if split != "none" and any(groups.keys() - {""}):
        includes = [f"{INCLUDE_DIR}/*.yaml"]
        schema = _schema(main.parent / INCLUDE_DIR, project, "mailboxes-include.schema.json")
        for name, group in sorted(groups.items()):
            if name:
                files[main.parent / INCLUDE_DIR / f"{name}.yaml"] = emit.include_file(
                    schema, [f"Shared mailboxes of {name} ({split}), imported by `mailroom import`."], group, defaults)
        kept = groups.get("", [])
    else:
        kept = [entries[a.mailbox.key] for a in imported.mailboxes]
    for path in files:
        if path.exists():
            raise FatalError(f"{printable(path)} exists: pass --merge to update it. Nothing was written.")
    files[main] = emit.main_file(_schema(main.parent, project, "mailboxes.schema.json"), HEADER, imported.domains,
                                 defaults, policy, notes, includes, kept)
    return files


def _merged(existing: Any, imported: adopt.Imported, split: str, patterns: list[str],
            main: Path) -> tuple[dict[Path, str], list[str]]:
    desired: Desired = existing.desired
    defaults: Defaults = desired.defaults
    by_origin = {(mb.origin.file, mb.origin.index): mb for mb in desired.mailboxes if mb.origin is not None}
    docs = {path: load(path, display_path=path) for path in desired.files}
    texts = {path: Path(path).read_text(encoding="utf-8-sig") for path in desired.files}
    # The file's policy stands: forwarding it does not allow is a note, never a wider policy (within_policy).
    allowed = adopt.within_policy(imported, desired.policy.allowed_forward_domains)
    tenant = {e.mailbox.key: e for e in _entries(allowed, desired.policy)}
    groups = {a.mailbox.key: a.group for a in imported.mailboxes}
    main_path = desired.files[0]
    by_name = {Path(p).name: p for p in desired.files[1:]}

    def target(entry: Entry) -> str:
        group = groups.get(entry.mailbox.key, "")
        return by_name.get(f"{emit.slug(group)}.yaml", main_path) if split != "none" and group else main_path

    merged = merge(docs, texts, by_origin, defaults, tenant, adopt.matcher(patterns),
                   imported.unreadable, target)
    return {Path(p): text for p, text in merged.text.items()}, merged.changes


def _write_all(files: dict[Path, str]) -> None:
    """Every file or none: all are written to temporary files first, then each renamed over its target."""
    temps: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
    except BaseException:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in temps:
        os.replace(tmp, path)


def _text(body: dict[str, Any], merged: bool) -> str:
    lines = []
    if merged:
        lines += [f"  {printable(c)}" for c in body["changes"]] or ["  no changes: the files match the tenant"]
    skipped = ", ".join(f"{n} {kind}" for kind, n in body["skipped"].items()) or "nothing"
    lines.append(f"mailroom import: {body['mailboxes']} shared mailboxes, {len(body['files'])} file(s) written; "
                 f"skipped (not delegations): {skipped}; {len(body['warnings'])} warning(s)")
    return "\n".join(lines) + "\n"
