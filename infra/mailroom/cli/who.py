"""`mailroom who PERSON`: every mailbox a person can open or send as, from one bulk read."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mailroom import output
from mailroom.access import read
from mailroom.cli import error_handler, options
from mailroom.core.textsafe import printable
from mailroom.engine.runner import Invalid, prepare
from mailroom.m365.tenant import Tenant
from mailroom.views import access as view

EPILOG = """exit codes:
  0   listed (also when the person can open nothing)
  1   error: the file is invalid, the person is unknown to the tenant, or the tenant could not be read
  64  usage error

PERSON is any spelling the tenant knows: UPN, primary or secondary SMTP address, alias or display name.
Access is listed directly and through groups (nested; needs Graph GroupMember.Read.All: without it the
groups are said to be unread), on managed mailboxes (in the files or not) and on shared mailboxes the
files do not manage. One bulk read of every shared mailbox (as drift), one listing of the person's groups
and one memberOf listing per group for the chain (via finance-team <- payroll-team).

--json prints one document: {"format_version": 1, "command": "who", "person": {"query", "id", "address",
"name", "kind", "spellings"}, "access": [{"mailbox", "right", "label", "holder", "via", "managed", "declared",
"live", "status", "removed_by", "where", "owner"}], "groups": [{"id", "name", "mail"}], "groups_unread":
null | str, "not_read": {mailbox: why}, "scan": {...}}. status: in-file | pending | undeclared | unmanaged.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("who", help="list every mailbox a person can open or send as",
                       description="Every mailbox PERSON can open (Full Access) or send as (Send As, Send on "
                                   "Behalf), directly and through groups, on managed and unmanaged mailboxes.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("person", metavar="PERSON", help="UPN, SMTP address, alias or display name")
    options.add_common(p)
    options.add_json(p, "the access")
    p.add_argument("--concurrency", type=int, default=32, help="most requests in flight (default 32)")
    p.set_defaults(func=run)


async def collect(prepared: object, person: str, concurrency: int) -> read.Found:
    from mailroom.engine.runner import Run

    assert isinstance(prepared, Run)
    async with Tenant(prepared.tenant, concurrency=concurrency) as t:
        return await read.read_person(t, prepared.desired, person, output.bar)


def run(args: argparse.Namespace) -> int:
    try:
        prepared = prepare(args.file, options.stack(args.stack))
    except Invalid as exc:
        return error_handler.invalid("who", args.file, exc, bool(args.json), "read")
    output.progress(f"mailroom: reading every shared mailbox of stack {prepared.stack}")
    found = asyncio.run(collect(prepared, args.person, args.concurrency))
    if found.groups_unread:
        print(f"mailroom who: {printable(found.groups_unread)}; access through groups is not shown",
              file=sys.stderr)
    if args.json:
        output.print_document("who", {"person": found.person.to_dict(), "access": [a.to_dict() for a in found.access],
                                      "groups": found.groups, "groups_unread": found.groups_unread or None,
                                      "not_read": found.errors, "scan": found.stats})
    else:
        sys.stdout.write(view.render_who(found))
    return error_handler.ERROR if found.errors else error_handler.OK
