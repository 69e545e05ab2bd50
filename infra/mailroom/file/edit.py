"""Remove people's grants from the files as one reviewable change: only the lines of those grants move.

``propose_removals(texts, removals)`` takes the text of every loaded file (``read_texts(loaded)``) and a list
of ``Removal(mailbox, right, person)`` (``right``: a key of the rights table that names people in a list,
``removable``: the GRANT rows and a folder's per-role rows, so a row added to the table later is removable
with no change here: its ``file_key`` says where the file writes it, dotted for a nested key such as
``calendar.editor``). It returns a ``Proposal``: the edited files (``FileChange(path, before,
after, lines)``), which removals it made, which it could not find in the files, and ``diff()``, a unified
diff that ``git apply`` accepts (``Proposal.write(path)`` writes it; ``Proposal.write(None)`` edits the
files in place). ``mailroom revoke --propose`` and ``mailroom review --propose`` both write through it.

How a grant is removed, by how the list is written (positions come from the loader's own YAML nodes, as
``file/merge.py`` does; no round-trip library, so nothing else is re-indented or re-quoted):

- a block list item (``- bob@x`` or a ``- user: ...`` mapping over several lines): its lines go, and
  nothing else; comment and blank lines after it stay (they belong to what follows);
- a flow list (``[a@x, bob@x]``): its line is rewritten without the item, the other items as written
  and the line's trailing comment kept;
- a list left with no item becomes ``key: []`` on the key's line (its comment kept): the reviewer sees the
  mailbox now grants that right to nobody, where a vanished key would be easy to miss;
- a list shared through a YAML anchor (``members: *team``) is not edited: changing it would change every
  mailbox that uses the anchor. Such a removal is reported in ``Proposal.manual`` with its location.

Comparison of people is by ``smtp_key`` (case-insensitive, as every address), so the caller passes each
spelling of a person it wants removed (revoke passes every address the directory knows for the person).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mailroom.core import rights
from mailroom.core.identity import smtp_key
from mailroom.file.merge import trim_notes
from mailroom.file.source import Document, SourceError, loads

# The keys a list entry written as a mapping names its person by (members: user/group).
PERSON_KEYS = ("user", "group")


@dataclass(frozen=True)
class Removal:
    mailbox: str  # the mailbox's address, any case
    right: str  # a rights-table key of shape GRANT (member, send_as, send_on_behalf, ...)
    person: str  # one spelling of the person, compared by smtp_key
    folder: str | None = None  # a path folder's path (inbox/Reports): its rows are shared by every path folder

    def to_dict(self) -> dict[str, str]:
        return {"mailbox": self.mailbox, "right": self.right, "person": self.person,
                **({"folder": self.folder} if self.folder else {})}


@dataclass(frozen=True)
class Located:
    """A removal made (or needing a person): where the grant was written."""

    removal: Removal
    path: str
    line: int  # 1-based, in the file before the change
    reason: str = ""  # for Proposal.manual: why it was not edited

    def to_dict(self) -> dict[str, object]:
        return {**self.removal.to_dict(), "file": self.path, "line": self.line,
                **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class FileChange:
    path: str  # as loaded (relative to the working directory when inside it)
    before: str
    after: str
    lines: tuple[int, ...]  # 1-based lines of ``before`` that changed or went


@dataclass
class Proposal:
    changes: list[FileChange] = field(default_factory=list)
    removed: list[Located] = field(default_factory=list)
    missing: list[Removal] = field(default_factory=list)  # not written in any file
    manual: list[Located] = field(default_factory=list)  # written, but not editable safely (a shared anchor)

    @property
    def empty(self) -> bool:
        return not self.changes

    def diff(self, root: str | Path | None = None) -> str:
        """A unified diff of every change, paths relative to ``root`` (default: the working directory) with
        ``a/`` and ``b/`` prefixes: ``git apply`` in ``root`` applies it."""
        base = Path(root or os.getcwd()).resolve()
        out: list[str] = []
        for c in self.changes:
            try:
                rel = Path(c.path).resolve().relative_to(base).as_posix()
            except ValueError:
                rel = Path(c.path).as_posix()
            out += _unified(c.before, c.after, rel)
        return "".join(out)

    def write(self, out: str | Path | None, root: str | Path | None = None) -> None:
        """``out``: write the diff there (a patch for ``git apply``); None: edit the files in place."""
        if out is not None:
            _atomic(Path(out), self.diff(root))
            return
        for c in self.changes:
            _atomic(Path(c.path), c.after)


def _unified(before: str, after: str, rel: str) -> list[str]:
    lines = list(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                      f"a/{rel}", f"b/{rel}", n=3))
    if not lines:
        return []
    out = [f"diff --git a/{rel} b/{rel}\n", lines[0].rstrip("\n") + "\n", lines[1].rstrip("\n") + "\n"]
    for line in lines[2:]:
        if line.endswith("\n"):
            out.append(line)
        else:  # the file's last line has no newline: git's marker, or the patch does not apply
            out += [line + "\n", "\\ No newline at end of file\n"]
    return out


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.mailroom-tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_texts(paths: Iterable[str]) -> dict[str, str]:
    """The text of each loaded file (``LoadResult.documents``'s keys), as the loader read it."""
    out = {}
    for p in paths:
        with open(p, encoding="utf-8", newline="") as fh:
            text = fh.read()
        out[p] = text[1:] if text.startswith("\ufeff") else text
    return out


def removable(row: rights.Right) -> bool:
    """A right the file writes as a list of people at ``row.file_key``: a GRANT row (Full Access, Send As,
    Send on Behalf), or a folder row of a person's role (``calendar.reviewer``; not the folder's Default or
    Anonymous entry, which names nobody). Read from the row, so new rows of either kind need nothing here."""
    if row.shape is rights.Shape.GRANT:
        return True
    return row.shape.value == "folder" and getattr(row.write, "role", None) is not None


def grant_rights() -> tuple[rights.Right, ...]:
    """The rights a person can be removed from in the file."""
    return tuple(r for r in rights.TABLE if removable(r))


def _pairs(node: yaml.Node) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(str(k.value), k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _get(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    found = None
    for name, k, v in _pairs(node):
        if name == key:
            found = (k, v)
    return found


def _item_person(item: yaml.Node) -> str:
    if isinstance(item, yaml.ScalarNode):
        return smtp_key(str(item.value))
    for name, _, v in _pairs(item):
        if name in PERSON_KEYS and isinstance(v, yaml.ScalarNode):
            return smtp_key(str(v.value))
    return ""


def _stop(lines: list[str], end: yaml.Mark) -> int:
    """The 0-based line a block list's lines end before: PyYAML ends a block collection where the next token
    starts (the next key's line), or, at the end of the file, just after its last character."""
    return min(end.line + 1 if lines[end.line][:end.column].strip() else end.line, len(lines)) \
        if end.line < len(lines) else len(lines)


def _comment_at(line: str, column: int) -> str:
    """The trailing ``  # ...`` of ``line`` after ``column`` (where a value ended), kept when it is rewritten."""
    rest = line[column:]
    at = rest.find("#")
    return "  " + rest[at:].rstrip("\r") if at >= 0 and rest[:at].strip() in ("", ",") else ""


@dataclass
class _FileEdit:
    path: str
    text: str
    doc: Document
    lines: list[str] = field(default_factory=list)
    # list node id → (key node, list node, indices of items to drop)
    drops: dict[int, tuple[yaml.Node, yaml.SequenceNode, set[int]]] = field(default_factory=dict)


def propose_removals(texts: Mapping[str, str], removals: Iterable[Removal]) -> Proposal:
    """See the module docstring. ``texts``: path → text of every file the mailboxes are written in."""
    proposal = Proposal()
    edits: dict[str, _FileEdit] = {}
    mailbox_at: dict[str, list[tuple[str, yaml.Node]]] = {}  # mailbox key → [(path, its mapping node)]
    for path, text in texts.items():
        try:
            doc = loads(text, path)
        except SourceError as exc:  # the caller loaded these files; they changed since
            raise ValueError(f"{path} no longer loads: {exc.finding.message}") from None
        edits[path] = _FileEdit(path, text, doc, text.split("\n"))
        listed = _get(doc.root, "mailboxes")
        if listed is None or not isinstance(listed[1], yaml.SequenceNode):
            continue
        for entry in listed[1].value:
            address = _get(entry, "address")
            if address is not None and isinstance(address[1], yaml.ScalarNode):
                mailbox_at.setdefault(smtp_key(str(address[1].value)), []).append((path, entry))
    shared = _shared_lists(edits.values())
    seen: set[tuple[str, str, str, str]] = set()
    for removal in removals:
        ident = (smtp_key(removal.mailbox), removal.right, smtp_key(removal.person), removal.folder or "")
        if ident in seen:
            continue
        seen.add(ident)
        row = rights.BY_KEY.get(removal.right)
        if row is None or not removable(row):
            raise ValueError(f"{removal.right!r} is not a grant of the rights table")
        found = False
        for path, entry in mailbox_at.get(ident[0], []):
            at = _walk(entry, row.file_key, removal.folder)
            if at is None:
                continue
            key, seq = at
            if not isinstance(seq, yaml.SequenceNode):
                continue
            for i, item in enumerate(seq.value):
                if _item_person(item) != ident[2]:
                    continue
                found = True
                located = Located(removal, path, item.start_mark.line + 1)
                if id(seq) in shared or seq.start_mark.line < key.start_mark.line:
                    proposal.manual.append(Located(removal, path, key.start_mark.line + 1,
                                                   "the list is shared through a YAML anchor; edit it by hand"))
                    continue
                edits[path].drops.setdefault(id(seq), (key, seq, set()))[2].add(i)
                proposal.removed.append(located)
        if not found:
            proposal.missing.append(removal)
    for e in edits.values():
        change = _apply(e)
        if change is not None:
            proposal.changes.append(change)
    return proposal


def _walk(entry: yaml.Node, file_key: str, folder: str | None = None) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key node, value node) a dotted ``file_key`` names in a mailbox's mapping; a path folder's rows say
    ``folders.<path>.<role>``, and ``folder`` is that path (one key: a folder name may hold a dot)."""
    node, found = entry, None
    for part in file_key.split("."):
        if part == rights.PATH_KEY:
            if folder is None:
                return None
            part = folder
        found = _get(node, part)
        if found is None:
            return None
        node = found[1]
    return found


def _shared_lists(files: Iterable[_FileEdit]) -> set[int]:
    """Ids of sequence nodes reached more than once (an anchor and its aliases share one node)."""
    count: dict[int, int] = {}
    for e in files:
        stack: list[yaml.Node] = [e.doc.root]
        visited: set[int] = set()
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.SequenceNode):
                count[id(node)] = count.get(id(node), 0) + 1
            if id(node) in visited:
                continue
            visited.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                stack.extend(v for _, v in node.value)
    return {k for k, n in count.items() if n > 1}


def _apply(e: _FileEdit) -> FileChange | None:
    lines = e.lines
    replace: list[tuple[int, int, list[str]]] = []  # (start, end, new lines), 0-based, end exclusive
    for key, seq, drop in e.drops.values():
        keep = [item for i, item in enumerate(seq.value) if i not in drop]
        if seq.flow_style:
            start, end = seq.start_mark, seq.end_mark
            first, last = start.line, end.line
            head = lines[first][:start.column]
            tail = lines[last][end.column:]
            inner = ", ".join(e.text[item.start_mark.index:item.end_mark.index] for item in keep)
            replace.append((first, last + 1, [f"{head}[{inner}]{tail}"]))
            continue
        stop = _stop(lines, seq.end_mark)
        if not keep:  # the list goes; the key stays, as `key: []`, with its line's comment
            key_line = key.start_mark.line
            line = lines[key_line]
            cr = "\r" if line.endswith("\r") else ""
            comment = _comment_at(line.rstrip("\r"), key.end_mark.column + 1)
            emptied = line[:key.end_mark.column] + ": []" + comment + cr
            replace.append((key_line, trim_notes(lines, key_line, stop), [emptied]))
            continue
        starts = [item.start_mark.line for item in seq.value]
        bounds = starts[1:] + [stop]
        for i in sorted(drop):
            replace.append((starts[i], trim_notes(lines, starts[i], bounds[i]), []))
    if not replace:
        return None
    out = list(lines)
    touched: set[int] = set()
    for start, end, new in sorted(replace, reverse=True):
        out[start:end] = new
        touched.update(range(start + 1, end + 1))
    after = "\n".join(out)
    try:
        loads(after, e.path)  # never hand over a file that no longer parses
    except SourceError as exc:
        raise AssertionError(f"editing {e.path} broke it: {exc.finding.message}") from None
    return FileChange(e.path, e.text, after, tuple(sorted(touched)))
