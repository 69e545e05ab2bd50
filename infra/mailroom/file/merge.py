"""Re-import into existing files: edit only the lines of what changed, keep everything else byte for byte.

Line-level edits located by the loader's own node positions (``Document.root``), not a round-trip YAML
library: a round-trip dump re-indents, re-wraps and re-quotes what it did not change (and would be one more
dependency); here every line that did not change stays as it was, comments, key order, blank lines and
the file split included. What changed is rendered by ``file/emit.py``, so merged and fresh files agree.

Per mailbox, a key is rewritten only when its value differs from the tenant's (compared as the model
compares, case-insensitively); a block list of members changes item by item; a one-line key keeps its
trailing comment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import yaml

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.core.model import Defaults, FolderAccess, Mailbox, State
from mailroom.file import emit
from mailroom.file.emit import KEYS, Entry
from mailroom.file.source import Document


@dataclass
class Merged:
    text: dict[str, str] = field(default_factory=dict)  # path → new text, for the files that changed
    changes: list[str] = field(default_factory=list)  # what changed, one line each: "address: what"


def _blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def trim_notes(lines: list[str], start: int, end: int) -> int:
    """``end`` moved up past trailing blank and comment-only lines (they belong to what follows)."""
    while end > start + 1 and _blank_or_comment(lines[end - 1]):
        end -= 1
    return end


def _inline_comment(line: str) -> str:
    """A trailing ``  # ...`` of a one-line value, kept when the value is rewritten."""
    at = line.find(" #")
    if at < 0 or line[:at].count('"') % 2:  # none, or inside a quoted value
        return ""
    return line[len(line[:at].rstrip()):]


def _people(values: tuple[str, ...]) -> set[str]:
    return {smtp_key(v) for v in values}


def _members(mb: Mailbox, defaults: Defaults) -> dict[str, tuple[bool, bool]]:
    return {m.key: (m.is_group, m.is_group or m.automap) for m in mb.members}


def differs(key: str, old: Mailbox, new: Mailbox, defaults: Defaults) -> bool:
    if key == "display_name":
        return old.display_name != new.display_name
    if key in ("aliases", "send_as", "send_on_behalf"):
        return _people(getattr(old, key)) != _people(getattr(new, key))
    if key == "members":
        return _members(old, defaults) != _members(new, defaults)
    if key == "hidden_from_gal":
        return old.hidden_from_gal != new.hidden_from_gal
    if key == "sent_items":
        return old.sent_items != new.sent_items
    if key == "audit":
        return old.audit_enabled != new.audit_enabled
    if key == "sign_in_blocked":
        return old.sign_in_blocked != new.sign_in_blocked
    if key == "protocols":
        return old.protocols != new.protocols
    if key == "forwarding":
        return (None if old.forwarding is None else (smtp_key(old.forwarding.to), old.forwarding.keep_copy)) != \
            (None if new.forwarding is None else (smtp_key(new.forwarding.to), new.forwarding.keep_copy))
    if key == "calendar":
        return _folder(old.calendar) != _folder(new.calendar)
    if key == "folders":
        # A path's folder names are case-insensitive, as Exchange's are.
        return {k.casefold(): _folder(a, k) for k, a in old.folders} != \
            {k.casefold(): _folder(a, k) for k, a in new.folders}
    return False  # address (the key), owner (Exchange knows none: the file's stands)


def _folder(access: FolderAccess | None, folder: str = "calendar") -> object:
    """A folder's entries as compared: Default and Anonymous by their value (none given: Exchange's), people by
    address key whatever their order in the file; a folder the file does not name is one at Exchange's values."""
    access = access or FolderAccess()
    return (access.default or rights.folder_default(folder, rights.DEFAULT_ENTRY),
            access.anonymous or rights.folder_default(folder, rights.ANONYMOUS_ENTRY),
            frozenset((d.key, d.role, d.delegate, d.private_items) for d in access.people))


class _Edits:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.edits: list[tuple[int, int, list[str]]] = []  # (start, end, replacement), 0-based lines

    def replace(self, start: int, end: int, new: list[str]) -> None:
        self.edits.append((start, end, new))

    def apply(self) -> list[str]:
        out = list(self.lines)
        for start, end, new in sorted(self.edits, key=lambda e: (e[0], e[1]), reverse=True):
            out[start:end] = new
        return out


def _pairs(node: yaml.Node) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(k.value), k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _member_key(item: yaml.Node) -> str:
    if isinstance(item, yaml.ScalarNode):
        return smtp_key(str(item.value))
    for name, _, v in _pairs(item):
        if name in ("user", "group") and isinstance(v, yaml.ScalarNode):
            return smtp_key(str(v.value))
    return ""


def _edit_members(edits: _Edits, value: yaml.SequenceNode, end: int, new: Mailbox, defaults: Defaults,
                  old: Mailbox) -> None:
    """A block list of members, item by item: unchanged members keep their lines and comments."""
    lines = edits.lines
    items = value.value
    rendered = dict(zip([m.key for m in new.members], emit.member_lines(new, defaults), strict=True))
    before = _members(old, defaults)
    after = _members(new, defaults)
    dash = items[0].start_mark.column - 2 if items else len(emit.INDENT) + 2  # where each item's `- ` starts
    shift = dash - len(emit.INDENT) - 2

    def render(key: str) -> list[str]:
        return [(" " * shift + line) if shift >= 0 else line[-shift:] for line in rendered[key]]

    starts = [item.start_mark.line for item in items] + [end]
    keys = [_member_key(item) for item in items]
    for i, key in enumerate(keys):
        span_end = trim_notes(lines, starts[i], starts[i + 1])
        if key not in after:
            edits.replace(starts[i], span_end, [])
        elif before.get(key) != after[key]:
            edits.replace(starts[i], span_end, render(key))
    for key in sorted(set(after) - set(keys)):
        last = trim_notes(lines, starts[0], end) if items else end
        at = next((starts[i] for i, k in enumerate(keys) if k > key), last)
        edits.replace(at, at, render(key))


def merge(docs: Mapping[str, Document], texts: Mapping[str, str], existing: Mapping[tuple[str, int], Mailbox],
          defaults: Defaults, tenant: Mapping[str, Entry], in_scope: Callable[[str], bool],
          unreadable: set[str], target: Callable[[Entry], str]) -> Merged:
    """Edit ``texts`` (path → text of each loaded file) so that its mailboxes match ``tenant`` (address key →
    entry). ``existing``: the file's mailboxes by (path, index); ``in_scope``: the address keys this import
    read (others are left alone); ``unreadable``: keys that could not be read (left alone too); ``target``:
    the file a mailbox the files do not hold yet goes to."""
    out = Merged()
    seen: set[str] = set()
    edits = {path: _Edits(text.split("\n")) for path, text in texts.items()}
    appended: dict[str, list[Entry]] = {}
    for path, doc in docs.items():
        e = edits[path]
        lines = e.lines
        listed = next((v for name, _, v in _pairs(doc.root) if name == "mailboxes"), None)
        if not isinstance(listed, yaml.SequenceNode):
            continue
        entries = listed.value
        starts = [n.start_mark.line for n in entries] + [listed.end_mark.line if listed.value else len(lines)]
        for i, node in enumerate(entries):
            mb = existing.get((path, i))
            if mb is None:
                continue
            key = mb.key
            seen.add(key)
            if not in_scope(key) or key in unreadable or mb.state is State.ABSENT:
                continue
            raw_end = min(starts[i + 1], len(lines))
            entry_end = trim_notes(lines, starts[i], raw_end)
            new = tenant.get(key)
            if new is None:
                # Gone from the tenant: the entry goes, with the blank line that set it apart.
                lo = starts[i] - 1 if starts[i] > 0 and not lines[starts[i] - 1].strip() else starts[i]
                e.replace(lo, entry_end, [])
                out.changes.append(f"{mb.address}: removed (no longer in the tenant)")
                continue
            _edit_entry(e, node, entry_end, "\n".join(lines[starts[i]:raw_end]), mb, new, defaults, out)
    for key in sorted(set(tenant) - seen):
        if in_scope(key):
            entry = tenant[key]
            appended.setdefault(target(entry), []).append(entry)
            out.changes.append(f"{entry.mailbox.address}: added")
    for path, new_entries in appended.items():
        if path not in edits:
            continue  # the caller writes new files itself
        _append(edits[path], docs[path], new_entries, defaults)
    for path, e in edits.items():
        text = "\n".join(e.apply())
        if text != texts[path]:
            out.text[path] = text
    return out


def _edit_entry(e: _Edits, node: yaml.Node, entry_end: int, text: str, old: Mailbox, new: Entry,
                defaults: Defaults, out: Merged) -> None:
    """``text``: the entry with its trailing comments, where a note already written is found."""
    lines = e.lines
    pairs = _pairs(node)
    present = {name: (k, v) for name, k, v in pairs}
    key_starts = sorted(k.start_mark.line for _, k, _ in pairs) + [entry_end]
    indent = " " * (pairs[0][1].start_mark.column if pairs else len(emit.INDENT))

    def span(k: yaml.Node) -> tuple[int, int]:
        start = k.start_mark.line
        nxt = next(s for s in key_starts if s > start) if start < entry_end else entry_end
        return start, trim_notes(lines, start, min(nxt, entry_end))

    changed = []
    for key in KEYS:
        if not differs(key, old, new.mailbox, defaults):
            continue
        changed.append(key)
        rendered = emit.field_lines(key, new.mailbox, defaults, indent=indent)
        if key in present:
            k, v = present[key]
            start, end = span(k)
            if key == "members" and isinstance(v, yaml.SequenceNode) and not v.flow_style and v.value and rendered:
                _edit_members(e, v, end, new.mailbox, defaults, old)
                continue
            if len(rendered) == 1 and end - start == 1:
                rendered = [rendered[0] + _inline_comment(lines[start][k.start_mark.column:])]
            e.replace(start, end, rendered)
        elif rendered:
            before = [present[p][0] for p in KEYS[:KEYS.index(key)] if p in present]
            at = span(before[-1])[1] if before else (pairs[0][1].start_mark.line + 1 if pairs else entry_end)
            e.replace(at, at, rendered)
    notes = [n for n in new.notes if n not in text]
    if notes:
        e.replace(entry_end, entry_end, emit.note_lines(notes, indent))
        changed.append("notes")
    if changed:
        out.changes.append(f"{old.address}: {', '.join(changed)} changed")


def _append(e: _Edits, doc: Document, entries: list[Entry], defaults: Defaults) -> None:
    lines = e.lines
    blocks = [emit.entry_lines(entry, defaults) for entry in entries]
    body = [line for block in blocks for line in ["", *block]]
    listed = next(((k, v) for name, k, v in _pairs(doc.root) if name == "mailboxes"), None)
    if listed is None or not isinstance(listed[1], yaml.SequenceNode):
        end = len(lines) - 1 if lines and not lines[-1] else len(lines)
        e.replace(end, end, ["mailboxes:", *body[1:]])
    elif listed[1].flow_style:  # `mailboxes: []`: becomes a block list
        line = listed[0].start_mark.line
        e.replace(line, line + 1, ["mailboxes:", *body[1:]])
    else:
        end = trim_notes(lines, listed[1].start_mark.line, min(listed[1].end_mark.line, len(lines)))
        e.replace(end, end, body)
