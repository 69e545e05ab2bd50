"""`mailroom revoke PERSON`: take a leaver out of every mailbox in the files as one reviewable change."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path

from mailroom import output
from mailroom.access import read
from mailroom.access.revoke import Revocation, revoke
from mailroom.cli import error_handler, options
from mailroom.cli.error_handler import UsageError
from mailroom.engine.runner import Invalid, prepare
from mailroom.file.edit import read_texts
from mailroom.file.load import load_desired
from mailroom.m365.tenant import Tenant
from mailroom.views import access as view

EPILOG = """exit codes:
  0   nothing to do: the files grant the person nothing and the tenant shows no other access
  1   error: the file is invalid, the person is unknown to the tenant, or the tenant could not be read
  2   a change is proposed (or written), or access remains that the files cannot remove (listed)
  64  usage error

The change removes the person from every grant of the files (Full Access, Send As, Send on Behalf and
every other grant of the rights table), touching only those lines; a list left empty stays as `key: []`.
  (default)        print the change as a unified diff; nothing is written
  --propose FILE   write it to FILE as a patch (`git apply FILE` at the repository's top, or attach it
                   to a pull request); paths are relative to the git top level of the main file
  --write          edit the files in place (then review with `git diff`)
Then: open a pull request; `mailroom apply` after the merge removes the grants from the tenant.
Listed, not edited: grants on managed mailboxes the files do not declare (`drift --remediate` removes
them), grants on mailboxes the files do not manage and access through groups (a manual step), and
mailboxes the person owns (choose a new owner). --offline reads no tenant: only PERSON's spelling in
the files is matched, and nothing outside the files is listed.

--json prints one document: {"format_version": 1, "command": "revoke", "person", "removed": [{"mailbox",
"right", "person", "file", "line"}], "files": [{"path", "lines"}], "manual_edits", "outside_files":
[<who's access rows>], "through_groups", "owner_of", "groups_unread", "scan", "patch": str, "written":
null | FILE | "in place"}.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("revoke", help="remove a leaver from every mailbox in the files as one change",
                       description="Remove PERSON's grants from every mailbox in the files as one reviewable "
                                   "change, and list access outside the files that only drift --remediate or a "
                                   "manual step can remove.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("person", metavar="PERSON", help="UPN, SMTP address, alias or display name")
    options.add_common(p)
    options.add_json(p, "the change and what remains")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--propose", metavar="FILE", help="write the change to FILE as a patch for `git apply`")
    out.add_argument("--write", action="store_true", help="edit the files in place")
    p.add_argument("--offline", action="store_true",
                   help="do not read the tenant: match PERSON as written in the files only")
    p.add_argument("--concurrency", type=int, default=32, help="most requests in flight (default 32)")
    p.set_defaults(func=run)


def git_top(path: Path) -> Path:
    """The repository the files are in (patch paths are relative to it), else the file's directory."""
    try:
        done = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return path.parent
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else path.parent


def run(args: argparse.Namespace) -> int:
    if not args.person.strip():
        raise UsageError("PERSON is empty")
    if args.offline:
        loaded = load_desired(args.file)
        if loaded.desired is None or loaded.errors:
            return error_handler.invalid("revoke", args.file, Invalid(loaded), bool(args.json), "changed")
        desired = loaded.desired
        found = read.offline(desired, args.person)
    else:
        try:
            prepared = prepare(args.file, options.stack(args.stack))
        except Invalid as exc:
            return error_handler.invalid("revoke", args.file, exc, bool(args.json), "changed")
        desired = prepared.desired
        output.progress(f"mailroom: reading every shared mailbox of stack {prepared.stack}")

        async def collect() -> read.Found:
            async with Tenant(prepared.tenant, concurrency=args.concurrency) as t:
                return await read.read_person(t, desired, args.person, output.bar)

        found = asyncio.run(collect())
    result = revoke(found, desired, read_texts(desired.files))
    root = git_top(Path(args.file).resolve())
    diff = result.proposal.diff(root)
    written = None
    if not result.proposal.empty and (args.propose or args.write):
        result.proposal.write(args.propose, root)
        written = args.propose or "in place"
    _say(args, result, diff, written)
    if found.errors:
        return error_handler.ERROR
    return error_handler.CHANGES if result.pending else error_handler.OK


def _say(args: argparse.Namespace, result: Revocation, diff: str, written: str | None) -> None:
    if args.json:
        output.print_document("revoke", {**result.to_dict(), "patch": diff, "written": written})
    else:
        patch = args.propose if written else None
        sys.stdout.write(view.render_revoke(result, diff, patch, bool(args.write and written)))
