"""The model → the file format, as text a person reviews: what ``mailroom import`` writes.

Pure functions. One layout, so that a re-import of an unchanged tenant gives the same bytes and a changed
tenant changes only the lines of what changed (``file/merge.py`` edits existing files with the same
functions): mailboxes by address, people by address, lower-case addresses, keys in one order, settings
equal to the file's ``defaults`` left out, Full Access members one per line (a member added or removed is
one line), the other lists on one line while they fit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailroom.core import rights
from mailroom.core.model import Defaults, FolderAccess, Mailbox, Policy, Protocols

SCHEMA_LINE = "# yaml-language-server: $schema={}"
INDENT = "    "  # a mailbox's keys, below its `  - ` entry
WIDTH = 110  # a one-line list longer than this is written one item per line
# The order of a mailbox's keys; ``field_lines`` renders each.
KEYS = ("address", "display_name", "owner", "aliases", "members", "send_as", "send_on_behalf", "hidden_from_gal",
        "sent_items", "audit", "sign_in_blocked", "protocols", "forwarding", "calendar",
        "folders")
# A plain scalar that reads back as the same text under the loader's YAML 1.2 core schema: starts with a
# letter other than those of true/false/null (see source._Loader.resolve), and holds nothing YAML reads as syntax.
_PLAIN = re.compile(r"[A-Za-z0-9._][A-Za-z0-9@._+/()&' *-]*")
_NOT_TEXT = re.compile(r"(?i:true|false|null|~)|[-+]?[0-9.][0-9a-fA-FxXoO._eE+-]*|\.(?:inf|nan)")


@dataclass(frozen=True)
class Entry:
    """One mailbox as written: the model and the comments it carries."""

    mailbox: Mailbox
    notes: tuple[str, ...] = ()
    owner_unknown: bool = False  # write `owner: null` (policy.require_owner is on; Exchange knows no owner)


def scalar(value: str) -> str:
    """``value`` as a YAML scalar that loads back as exactly this text."""
    if _PLAIN.fullmatch(value) and not _NOT_TEXT.fullmatch(value) and not value.endswith(" ") \
            and ": " not in value and " #" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def boolean(value: bool | None) -> str:
    return "null" if value is None else "true" if value else "false"


def protocols(values: Protocols, profile: Protocols | None = None) -> str:
    """``{pop: false, ...}``: every protocol, or (``profile``) those that differ from it; "" for none."""
    parts = [f"{r.attr}: {boolean(getattr(values, r.attr))}" for r in rights.PROTOCOLS
             if profile is None or getattr(values, r.attr) != getattr(profile, r.attr)]
    return f"{{{', '.join(parts)}}}" if parts else ""


def flow(items: Sequence[str]) -> str:
    return "[" + ", ".join(scalar(i) for i in items) + "]"


def _list(key: str, items: Sequence[str], indent: str) -> list[str]:
    line = f"{indent}{key}: {flow(items)}"
    if len(line) <= WIDTH:
        return [line]
    return [f"{indent}{key}:"] + [f"{indent}  - {scalar(i)}" for i in items]


def member_lines(mb: Mailbox, defaults: Defaults, indent: str = INDENT) -> list[list[str]]:
    """Each Full Access member's lines: an address, or ``user:``/``group:`` when it says more."""
    out = []
    for m in mb.members:
        if m.is_group:  # Exchange ignores AutoMapping for groups: never written
            out.append([f"{indent}  - group: {scalar(m.address)}"])
        elif m.automap != defaults.automap:
            out.append([f"{indent}  - user: {scalar(m.address)}", f"{indent}    automap: {boolean(m.automap)}"])
        else:
            out.append([f"{indent}  - {scalar(m.address)}"])
    return out


def field_lines(key: str, mb: Mailbox, defaults: Defaults, *, owner_unknown: bool = False,
                indent: str = INDENT) -> list[str]:
    """The lines of one key of a mailbox; none when it holds nothing or what ``defaults`` say."""
    if key == "address":
        return [f"{indent}address: {scalar(mb.address)}"]
    if key == "display_name":
        return [f"{indent}display_name: {scalar(mb.display_name)}"]
    if key == "owner":
        if mb.owner:
            return [f"{indent}owner: {scalar(mb.owner)}"]
        return [f"{indent}owner: null  # Exchange does not record owners: name one"] if owner_unknown else []
    if key == "members":
        if not mb.members:
            return []
        return [f"{indent}members:"] + [line for lines in member_lines(mb, defaults, indent) for line in lines]
    if key in ("aliases", "send_as", "send_on_behalf"):
        items = getattr(mb, key)
        return _list(key, items, indent) if items else []
    if key == "hidden_from_gal":
        return [] if mb.hidden_from_gal == defaults.hidden_from_gal else \
            [f"{indent}hidden_from_gal: {boolean(mb.hidden_from_gal)}"]
    if key == "sent_items":
        parts = [f"{name}: {boolean(getattr(mb.sent_items, name))}" for name in ("copy_send_as", "copy_send_on_behalf")
                 if getattr(mb.sent_items, name) != getattr(defaults.sent_items, name)]
        return [f"{indent}sent_items: {{{', '.join(parts)}}}"] if parts else []
    if key == "audit":
        return [] if mb.audit_enabled == defaults.audit_enabled else \
            [f"{indent}audit: {{enabled: {boolean(mb.audit_enabled)}}}"]
    if key == "sign_in_blocked":
        return [] if mb.sign_in_blocked == defaults.sign_in_blocked else \
            [f"{indent}sign_in_blocked: {boolean(mb.sign_in_blocked)}"]
    if key == "protocols":
        differ = protocols(mb.protocols, defaults.protocols)
        return [f"{indent}protocols: {differ}"] if differ else []
    if key == "forwarding":
        fwd = mb.forwarding
        return [] if fwd is None else \
            [f"{indent}forwarding: {{to: {scalar(fwd.to)}, keep_copy: {boolean(fwd.keep_copy)}}}"]
    if key == "calendar":
        return [] if mb.calendar is None else folder_lines("calendar", mb.calendar, indent)
    if key == "folders":
        return [] if not mb.folders else [f"{indent}folders:"] + [
            line for name, access in mb.folders for line in folder_lines(name, access, indent + "  ")]
    raise KeyError(key)


def folder_lines(key: str, access: FolderAccess, indent: str = INDENT) -> list[str]:
    """A folder's entries: Default and Anonymous when given, then one list per role (rights.FOLDER_ROLES order);
    an editor with delegate flags as ``{user: ..., delegate: true}``."""
    lines = [f"{indent}{scalar(key)}:"]  # a path's folder names may need quoting (inbox/Reports: 2026)
    inner = indent + "  "
    for name, value in (("default", access.default), ("anonymous", access.anonymous)):
        if value is not None:
            lines.append(f"{inner}{name}: {value}")
    for role in rights.ROLE_NAMES:
        people = [d for d in access.people if d.role == role]
        if not people:
            continue
        if not any(d.delegate or d.private_items for d in people):
            lines += _list(role, [d.address for d in people], inner)
            continue
        lines.append(f"{inner}{role}:")
        for d in people:
            flags = [f"{name}: true" for name, on in (("delegate", d.delegate), ("private_items", d.private_items))
                     if on]
            lines.append(f"{inner}  - {{user: {scalar(d.address)}, {', '.join(flags)}}}" if flags else
                         f"{inner}  - {scalar(d.address)}")
    return lines


def note_lines(notes: Sequence[str], indent: str = INDENT) -> list[str]:
    return [f"{indent}# {note}" for note in notes]


def entry_lines(entry: Entry, defaults: Defaults) -> list[str]:
    """One mailbox of the ``mailboxes`` list."""
    lines: list[str] = []
    for key in KEYS:
        lines += field_lines(key, entry.mailbox, defaults, owner_unknown=entry.owner_unknown)
    lines[0] = "  - " + lines[0][len(INDENT):]
    return lines + note_lines(entry.notes)


def mailboxes_lines(entries: Sequence[Entry], defaults: Defaults) -> list[str]:
    out = ["mailboxes:"]
    for i, entry in enumerate(entries):
        if i:
            out.append("")
        out += entry_lines(entry, defaults)
    return out


def defaults_lines(defaults: Defaults) -> list[str]:
    return ["defaults:", f"  sign_in_blocked: {boolean(defaults.sign_in_blocked)}",
            f"  automap: {boolean(defaults.automap)}",
            f"  sent_items: {{copy_send_as: {boolean(defaults.sent_items.copy_send_as)}, "
            f"copy_send_on_behalf: {boolean(defaults.sent_items.copy_send_on_behalf)}}}",
            f"  audit: {{enabled: {boolean(defaults.audit_enabled)}}}",
            f"  hidden_from_gal: {boolean(defaults.hidden_from_gal)}",
            f"  protocols: {protocols(defaults.protocols)}"]


def policy_lines(policy: Policy, notes: dict[str, str]) -> list[str]:
    def line(key: str, value: str) -> str:
        return f"  {key}: {value}" + (f"  # {notes[key]}" if key in notes else "")

    out = ["policy:", line("require_owner", boolean(policy.require_owner))]
    if policy.max_members is not None:
        out.append(line("max_members", str(policy.max_members)))
    out += [line("send_as_requires_member", boolean(policy.send_as_requires_member)),
            line("allow_external_members", boolean(policy.allow_external_members)),
            line("max_removals_per_apply", str(policy.max_removals_per_apply))]
    if policy.allowed_forward_domains:
        out.append(line("allowed_forward_domains", flow(list(policy.allowed_forward_domains))))
    if policy.max_default_calendar_access:
        out.append(line("max_default_calendar_access", policy.max_default_calendar_access))
    return out


def main_file(schema: str, header: Sequence[str], domains: Sequence[str], defaults: Defaults, policy: Policy,
              policy_notes: dict[str, str], includes: Sequence[str], entries: Sequence[Entry]) -> str:
    lines = [SCHEMA_LINE.format(schema), *(f"# {h}" if h else "#" for h in header), "version: 1", "",
             "tenant:", f"  domains: {flow(list(domains))}", "", *defaults_lines(defaults), "",
             *policy_lines(policy, policy_notes), ""]
    if includes:
        lines += ["include:", *(f"  - {scalar(i)}" for i in includes), ""]
    if entries:
        lines += mailboxes_lines(entries, defaults)
    elif includes:
        lines += ["mailboxes: []  # every shared mailbox is in an included file"]
    else:
        lines += ["allow_empty: true  # the tenant has no shared mailbox yet", "mailboxes: []"]
    return "\n".join(lines) + "\n"


def include_file(schema: str, header: Sequence[str], entries: Sequence[Entry], defaults: Defaults) -> str:
    lines = [SCHEMA_LINE.format(schema), *(f"# {h}" for h in header), *mailboxes_lines(entries, defaults)]
    return "\n".join(lines) + "\n"


def slug(group: str) -> str:
    """A department's or attribute's file name: lower case, letters, digits and dashes."""
    name = re.sub(r"[^a-z0-9]+", "-", group.casefold()).strip("-")
    return name[:60] or "other"
