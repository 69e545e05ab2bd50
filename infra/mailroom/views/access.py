"""Text views of ``who`` and ``revoke`` (their JSON is the operation's ``to_dict``). Tenant values are
shown through ``textsafe.printable``: a display name cannot repaint the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from mailroom.access.index import STATUS_TEXT, Access
from mailroom.access.read import Found
from mailroom.access.revoke import Revocation
from mailroom.core import rights
from mailroom.core.textsafe import printable


def _who_line(a: Access) -> str:
    via = f" via {' <- '.join(a.via)}" if a.via else ""
    where = f"  [{a.where}]" if a.where else ""
    return printable(f"  {a.mailbox:<40} {a.label:<15} {STATUS_TEXT[a.status]}{via}{where}")


def _person(found: Found) -> str:
    p = found.person
    name = f" ({p.name})" if p.name else ""
    return printable(f"{p.address}{name}")


def _sections(rows: Sequence[Access]) -> list[str]:
    out = []
    for title, keep in (("In the files", lambda a: a.managed and a.declared),
                        ("On managed mailboxes, not in the files (drift --remediate removes it)",
                         lambda a: a.managed and not a.declared),
                        ("On mailboxes the files do not manage (a manual step removes it)", lambda a: not a.managed)):
        chosen = [a for a in rows if keep(a)]
        if chosen:
            out += ["", f"{title}: {len(chosen)}", *(_who_line(a) for a in chosen)]
    return out


def render_who(found: Found) -> str:
    lines = [f"{_person(found)} can open or send as {len({a.mailbox.casefold() for a in found.access})} "
             f"mailbox(es): {len(found.access)} grant(s)"]
    lines += _sections(found.access)
    if found.groups:
        lines += ["", "Member of (directly or nested): " + ", ".join(printable(g['mail'] or g['name'])
                                                                    for g in found.groups)]
    if found.groups_unread:
        lines += ["", f"Note: {found.groups_unread}: access through groups is not shown"]
    if found.errors:
        lines += ["", f"Not read ({len(found.errors)}): " + ", ".join(printable(k) for k in sorted(found.errors))]
    return "\n".join(lines) + "\n"


def render_revoke(r: Revocation, diff: str, patch: str | None, in_place: bool) -> str:
    """``patch``: the file the change was written to; ``in_place``: the files were edited."""
    lines = [f"Revoking {_person(r.found)}"]
    if r.proposal.removed:
        files = ", ".join(f"{printable(c.path)} ({len(c.lines)} line(s))" for c in r.proposal.changes)
        lines += ["", f"One change removes {len(r.proposal.removed)} grant(s) from the files: {files}"]
        lines += [printable(f"  {x.removal.mailbox:<40} {rights.label(x.removal.right):<15} {x.path}:{x.line}")
                  for x in r.proposal.removed]
        if patch:
            lines += ["", f"Written to {printable(patch)}: apply it with `git apply {printable(patch)}` at the "
                          "repository's top, or attach it to a pull request"]
        elif in_place:
            lines += ["", "The files are edited in place: review with `git diff`, then open a pull request"]
        else:
            lines += ["", "Proposed change (--propose FILE writes it as a patch, --write edits the files):",
                      diff.rstrip("\n")]
    else:
        lines += ["", "The files grant nothing to this person."]
    for m in r.proposal.manual:
        lines.append(printable(f"Edit by hand: {m.removal.mailbox} {rights.label(m.removal.right)} at "
                               f"{m.path}:{m.line}: {m.reason}"))
    if r.outside:
        lines += ["", f"Access the files cannot remove ({len(r.outside)}):"]
        lines += [printable(f"  {a.mailbox:<40} {a.label:<15} {STATUS_TEXT[a.status]}: {a.removed_by}")
                  for a in r.outside]
    if r.through_groups:
        lines += ["", f"Access through groups ({len(r.through_groups)}): remove the person from the group they are "
                      "in (Entra), or remove the group's grant (revoke the group); its other members lose it too"]
        for a in r.through_groups:  # via: the granted group first, the person's own group last
            lines += [_who_line(a), printable(f"    through a group: remove the person from {a.via[-1]} or "
                                              f"{a.holder}'s grant")]
    if r.owned:
        lines += ["", "Owner of (choose a new owner): " + ", ".join(printable(o) for o in r.owned)]
    if r.found.groups_unread:
        lines += ["", f"Note: {r.found.groups_unread}"]
    return "\n".join(lines) + "\n"
