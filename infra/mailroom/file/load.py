"""mailboxes.yaml (and its includes) → the desired model, with every finding located.

Includes are resolved by a walker of our own rather than ``glob``: a pattern is
relative, never climbs out with ``..``, and is matched only inside the main
file's directory (symbolic links are followed with ``realpath`` and anything
that resolves outside is refused without being read). The walk is bounded in
matches, depth and directory entries looked at, and only regular files are
opened. A file that ends up with no mailboxes, and a pattern that matches
nothing, are errors unless the file says it means it (``allow_empty: true``,
``{pattern: ..., optional: true}``): apply releases every mailbox the file no
longer holds, so a truncated file or a typo in a pattern must not look valid.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mailroom.core import rights
from mailroom.core.model import (
    Defaults,
    Desired,
    FolderAccess,
    FolderDelegate,
    Forwarding,
    Mailbox,
    Member,
    Origin,
    Policy,
    Protocols,
    SentItems,
    State,
)
from mailroom.core.textsafe import UNSAFE, printable
from mailroom.file import rules, schema
from mailroom.file.findings import Finding, Severity, quote
from mailroom.file.source import MAX_FILE_BYTES, Document, SourceError, file_kind, gc_paused, load

# Files one include pattern may match; more is refused (a pattern meant for a department, not the disk).
MAX_INCLUDE_MATCHES = 1_000
# Directory levels below the main file's directory that a pattern (`**` included) may reach.
MAX_INCLUDE_DEPTH = 8
# Directory entries one pattern may look at while matching: bounds the walk, whatever the tree holds.
MAX_INCLUDE_SCAN = 20_000
# All files of one run together (each file is also capped at source.MAX_FILE_BYTES).
MAX_TOTAL_BYTES = 4 * MAX_FILE_BYTES


@dataclass
class LoadResult:
    desired: Desired | None
    findings: list[Finding] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    def ok(self, *, strict: bool = False) -> bool:
        return self.desired is not None and not self.errors and not (strict and self.warnings)


def _display(path: str) -> str:
    rel = os.path.relpath(path)
    return printable(path if rel.startswith("..") else rel)


def load_desired(path: str) -> LoadResult:
    """Load, schema-check and rule-check ``path`` and its includes; never raises for bad input."""
    with gc_paused():
        return _load_desired(path)


def _inside(real: str, base_real: str) -> bool:
    return real == base_real or real.startswith(base_real.rstrip(os.sep) + os.sep)


def _load_desired(path: str) -> LoadResult:
    result = LoadResult(None)
    # The main file may be a symbolic link, but only to a file in or below its own directory: a pull
    # request can replace it with a link to /etc/shadow, whose lines would come back as findings.
    if not _inside(os.path.realpath(path), os.path.realpath(os.path.dirname(os.path.abspath(path)))):
        result.findings.append(Finding(_display(path), 1, 1, "", Severity.ERROR, "file-outside",
                                       "is a symbolic link that leads outside its own directory; not read"))
        return result
    try:
        main = load(path, display_path=_display(path), regular_only=True)
    except SourceError as exc:
        result.findings.append(exc.finding)
        return result
    docs = [main]
    result.findings.extend(main.findings)
    result.findings.extend(schema.check(main))
    if isinstance(main.data, dict):
        if main.data.get("version") is None:
            result.findings.append(main.finding((), "missing-field", "`version: 1` is required at the top"))
        if main.data.get("tenant") is None:
            result.findings.append(main.finding((), "missing-field",
                                                "`tenant` (with its accepted `domains`) is required at the top"))
        docs.extend(_includes(main, path, result))
        _check_not_empty(main, docs, result)
    result.documents = {d.path: d for d in docs}
    if not isinstance(main.data, dict):
        return result
    # Parts whose shape is wrong are left out of the model, so that the rules can
    # still report every other mistake in the same run.
    broken = {(f.file, _prefix(f.pointer)) for f in result.errors}
    spoiled = {f.pointer for f in result.errors if f.file == main.path and not f.pointer.startswith("/mailboxes")}
    desired, partial = _build(docs, broken, spoiled)
    result.findings.extend(rules.check(desired, result.documents, partial))
    result.findings.sort(key=Finding.sort_key)
    if not result.errors:
        result.desired = desired
    return result


def _prefix(pointer: str) -> str:
    """The part of the file a broken field spoils: a top-level section or one mailbox."""
    parts = pointer.split("/")[1:]
    if parts and parts[0] == "mailboxes" and len(parts) > 1:
        return f"/mailboxes/{parts[1]}"
    return "/" + parts[0] if parts else "/"


def _mailbox_count(doc: Document) -> int | None:
    """How many mailboxes ``doc`` lists; None when `mailboxes` has the wrong shape (the schema says so)."""
    if not isinstance(doc.data, dict):
        return None
    mailboxes = doc.data.get("mailboxes")
    if mailboxes is None:
        return 0
    return len(mailboxes) if isinstance(mailboxes, list) else None


def _allows_empty(doc: Document) -> bool:
    return isinstance(doc.data, dict) and doc.data.get("allow_empty") is True


def _check_not_empty(main: Document, docs: list[Document], result: LoadResult) -> None:
    """No mailbox at all is an error unless the main file says `allow_empty: true`: applied, it would
    release every managed mailbox, which is what a truncated file looks like."""
    counts = [_mailbox_count(d) for d in docs]
    if any(c is None for c in counts) or any(counts) or _allows_empty(main):
        return
    at: tuple[str | int, ...] = ("mailboxes",) if "mailboxes" in main.data else ()
    result.findings.append(main.finding(
        at, "no-mailboxes",
        "the file (with its includes) holds no mailboxes: apply would release every managed mailbox from "
        "management. If that is really meant, say `allow_empty: true` at the top", key=bool(at)))


_INCLUDE_KEYS = frozenset({"pattern", "optional"})


@dataclass(frozen=True)
class _Include:
    index: int
    pattern: str
    optional: bool


def _include_entries(main: Document) -> list[_Include]:
    entries = main.data.get("include") or []
    if not isinstance(entries, list):
        return []
    out = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            out.append(_Include(i, entry, False))
        elif isinstance(entry, dict) and isinstance(entry.get("pattern"), str) and entry.keys() <= _INCLUDE_KEYS:
            out.append(_Include(i, entry["pattern"], entry.get("optional") is True))
        # anything else: the schema reports its shape
    return out


def _includes(main: Document, path: str, result: LoadResult) -> list[Document]:
    base = os.path.dirname(os.path.abspath(path))
    base_real = os.path.realpath(base)
    seen = {os.path.realpath(path)}
    total = 0
    docs: list[Document] = []
    for inc in _include_entries(main):
        at = ("include", inc.index)
        if UNSAFE.search(inc.pattern):
            continue  # already an unsafe-character error; never handed to the filesystem
        matches, problems = _expand(base, base_real, inc.pattern)
        for code, message in problems:
            result.findings.append(main.finding(at, code, f"include {quote(inc.pattern)}: {message}"))
        if not matches and not problems and not inc.optional:
            result.findings.append(main.finding(
                at, "include-no-match",
                f"include {quote(inc.pattern)} matches no file. A typo here would silently drop every mailbox "
                "those files hold from management; if the pattern may match nothing, write it as "
                "`{pattern: ..., optional: true}`"))
        for match, real in matches:
            if real in seen:
                continue
            seen.add(real)
            try:
                total += os.stat(real).st_size
            except OSError:
                pass  # gone since the walk: load() says so
            if total > MAX_TOTAL_BYTES:
                result.findings.append(main.finding(
                    at, "file-too-large",
                    f"the included files together exceed {MAX_TOTAL_BYTES:,} bytes (MAX_TOTAL_BYTES); "
                    f"{_display(match)} and the files after it are not read"))
                return docs
            try:
                doc = load(real, display_path=_display(match), regular_only=True)
            except SourceError as exc:
                result.findings.append(exc.finding)
                continue
            result.findings.extend(doc.findings)
            result.findings.extend(schema.check(doc, main_file=main.path))  # include-redefines too
            if isinstance(doc.data, dict):
                if _mailbox_count(doc) == 0 and not _allows_empty(doc):
                    at_doc: tuple[str | int, ...] = ("mailboxes",) if "mailboxes" in doc.data else ()
                    result.findings.append(doc.finding(
                        at_doc, "no-mailboxes",
                        "this included file holds no mailboxes (truncated?); if it is meant to be empty, "
                        "say `allow_empty: true` in it", key=bool(at_doc)))
            docs.append(doc)
    return docs


class _Stop(Exception):
    """The walk hit a limit; the problem is already recorded."""


def _expand(base: str, base_real: str, pattern: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Files matching ``pattern`` under ``base`` as (path as shown, real path), and problems as (code, message).

    Components are matched with fnmatch one directory at a time (``**`` is any number
    of directories); names starting with a dot match only a pattern that does too, as
    in glob. Nothing outside ``base_real`` is listed, and nothing at all is opened.
    """
    if os.path.isabs(pattern) or pattern.startswith("~") or os.path.splitdrive(pattern)[0]:
        return [], [("include-absolute", "include patterns are relative to the main file's directory; "
                                         "absolute paths are refused")]
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    if ".." in parts:
        return [], [("include-outside", "`..` is refused: included files must be inside the main file's "
                                        "directory")]
    if not parts:
        return [], [("include-not-a-file", "the pattern names the main file's directory itself")]
    matches: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    budget = [MAX_INCLUDE_SCAN]
    visited: set[tuple[str, int]] = set()
    deep_reported = [False]

    def inside(real: str) -> bool:
        return _inside(real, base_real)

    def entries(directory: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as it:
                found = []
                for entry in it:
                    budget[0] -= 1
                    if budget[0] < 0:
                        problems.append(("include-too-many",
                                         f"matching it looked at more than {MAX_INCLUDE_SCAN:,} directory entries "
                                         "(MAX_INCLUDE_SCAN); name the directory that holds the files"))
                        raise _Stop
                    found.append(entry)
        except OSError:
            return []
        return sorted(found, key=lambda e: e.name)

    def consider(shown: str, idx: int, depth: int) -> None:
        """``shown`` matched component ``idx``: a file (last component) or a directory to go on in."""
        real = os.path.realpath(shown)
        if not inside(real):
            problems.append(("include-outside",
                             f"{_display(shown)} is a symbolic link that leads outside the main file's directory; "
                             "not read"))
            return
        try:
            mode = os.stat(real).st_mode
        except OSError:
            return  # a dangling link: nothing there
        last = idx == len(parts) - 1
        kind = file_kind(mode)
        if last and kind is None:
            if len(matches) >= MAX_INCLUDE_MATCHES:
                problems.append(("include-too-many", f"matches more than {MAX_INCLUDE_MATCHES:,} files "
                                                     "(MAX_INCLUDE_MATCHES); none of them is read"))
                matches.clear()
                raise _Stop
            matches.append((shown, real))
        elif last:
            problems.append(("include-not-a-file", f"matches {_display(shown)}, which is {kind}; only regular "
                                                   "files are read"))
        elif kind == "a directory":
            walk(shown, real, idx + 1, depth + 1)

    def walk(directory: str, real: str, idx: int, depth: int) -> None:
        if (real, idx) in visited:  # a link loop, or two routes to one directory
            return
        visited.add((real, idx))
        if depth > MAX_INCLUDE_DEPTH:
            if not deep_reported[0]:
                deep_reported[0] = True
                problems.append(("include-too-deep", f"reaches more than {MAX_INCLUDE_DEPTH} directory levels "
                                                     "below the main file (MAX_INCLUDE_DEPTH)"))
            return
        part = parts[idx]
        last = idx == len(parts) - 1
        if part == "**":
            if not last:
                walk(directory, real, idx + 1, depth)  # `**` as zero directories
            for entry in entries(directory):
                if entry.name.startswith("."):
                    continue
                shown = os.path.join(directory, entry.name)
                if last and not entry.is_dir():
                    consider(shown, idx, depth)  # `**` last: every file below
                elif entry.is_dir():
                    sub_real = os.path.realpath(shown)
                    if not inside(sub_real):
                        problems.append(("include-outside", f"{_display(shown)} is a symbolic link that leads "
                                                            "outside the main file's directory; not searched"))
                        continue
                    walk(shown, sub_real, idx, depth + 1)
        elif any(c in part for c in "*?["):
            for entry in entries(directory):
                if entry.name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatch(entry.name, part):
                    consider(os.path.join(directory, entry.name), idx, depth)
        else:
            shown = os.path.join(directory, part)
            if os.path.lexists(shown):
                consider(shown, idx, depth)

    try:
        walk(base, base_real, 0, 0)
    except _Stop:
        pass
    return sorted(set(matches)), problems


def _build(docs: list[Document], broken: set[tuple[str, str]],
           spoiled: set[str]) -> tuple[Desired, list[Mailbox]]:
    """The model from the well-formed parts, plus the addresses of broken mailboxes (so that a
    duplicate address is reported even while the mailbox that holds it has a schema error).

    ``spoiled``: JSON pointers of the main file's errors. A setting (tenant, defaults, policy) with an
    error falls back to the model's default on its own, so that one bad value is reported at its line
    while every other setting, and every check it drives, still works.
    """
    main = docs[0]

    def usable(at: str, *, inside_too: bool = True) -> bool:
        """No error at ``at`` or above it (a wrong-type section), nor, with ``inside_too``, below it."""
        return not any(p == at or (p and at.startswith(p + "/")) or (inside_too and p.startswith(at + "/"))
                       for p in spoiled)

    def section(data: Any, at: str) -> dict[str, Any]:
        """A mapping of settings; an error inside it spoils only that setting."""
        return data if isinstance(data, dict) and usable(at, inside_too=False) else {}

    def settings(cls: type, data: dict[str, Any], at: str) -> dict[str, Any]:
        """The keys of ``data`` that are fields of ``cls`` and hold no error; missing ones take the
        dataclass's default, so each default is declared once, in the model."""
        return {f.name: data[f.name] for f in fields(cls)
                if f.name in data and usable(f"{at}/{f.name}")}

    d = section(main.data.get("defaults"), "/defaults")
    sent = section(d.get("sent_items"), "/defaults/sent_items")
    audit = section(d.get("audit"), "/defaults/audit")
    protocols = section(d.get("protocols"), "/defaults/protocols")
    given = settings(Defaults, d, "/defaults")
    given.pop("sent_items", None)
    given["protocols"] = Protocols(**settings(Protocols, protocols, "/defaults/protocols"))
    given.pop("audit_enabled", None)  # written as audit.enabled
    if "enabled" in audit and usable("/defaults/audit/enabled"):
        given["audit_enabled"] = audit["enabled"]
    defaults = Defaults(sent_items=SentItems(**settings(SentItems, sent, "/defaults/sent_items")), **given)
    given_policy = settings(Policy, section(main.data.get("policy"), "/policy"), "/policy")
    if "allowed_forward_domains" in given_policy:
        given_policy["allowed_forward_domains"] = tuple(given_policy["allowed_forward_domains"])
    policy = Policy(**given_policy)
    listed = section(main.data.get("tenant"), "/tenant").get("domains")
    domains = tuple(dom for i, dom in enumerate(listed) if isinstance(dom, str) and usable(f"/tenant/domains/{i}")
                    ) if isinstance(listed, list) and usable("/tenant/domains", inside_too=False) else ()
    mailboxes: list[Mailbox] = []
    partial: list[Mailbox] = []
    for doc in docs:
        if not isinstance(doc.data, dict) or (doc.path, "/mailboxes") in broken:
            continue
        for i, raw in enumerate(doc.data.get("mailboxes") or []):
            named = raw.get("folders") if isinstance(raw, dict) else None
            origin = Origin(doc.path, i, doc.locate(("mailboxes", i))[0], tuple(
                (str(key), doc.locate(("mailboxes", i, "folders", key), key=True)[0])
                for key in (named if isinstance(named, dict) else ())))
            if (doc.path, f"/mailboxes/{i}") not in broken:
                mailboxes.append(_mailbox(raw, defaults, origin))
            elif isinstance(raw, dict) and isinstance(raw.get("address"), str):
                aliases: list[Any] = raw["aliases"] if isinstance(raw.get("aliases"), list) else []
                partial.append(Mailbox(address=raw["address"].strip(), display_name="", origin=origin,
                                       aliases=tuple(a.strip() for a in aliases if isinstance(a, str))))
    return Desired(domains, defaults, policy, tuple(mailboxes), tuple(doc.path for doc in docs)), partial


def _mailbox(raw: dict[str, Any], defaults: Defaults, origin: Origin) -> Mailbox:
    sent = raw.get("sent_items") or {}
    members = []
    for entry in raw.get("members") or ():
        if isinstance(entry, str):
            members.append(Member(entry.strip(), defaults.automap))
        else:
            is_group = "group" in entry
            members.append(Member(
                str(entry["group"] if is_group else entry["user"]).strip(),
                entry.get("automap", defaults.automap), is_group, "automap" in entry))
    return Mailbox(
        address=raw["address"].strip(),
        display_name=str(raw.get("display_name") or raw["address"]),
        owner=raw.get("owner"),
        aliases=tuple(a.strip() for a in raw.get("aliases") or ()),
        members=tuple(members),
        send_as=tuple(a.strip() for a in raw.get("send_as") or ()),
        send_on_behalf=tuple(a.strip() for a in raw.get("send_on_behalf") or ()),
        hidden_from_gal=raw.get("hidden_from_gal", defaults.hidden_from_gal),
        sent_items=SentItems(sent.get("copy_send_as", defaults.sent_items.copy_send_as),
                             sent.get("copy_send_on_behalf", defaults.sent_items.copy_send_on_behalf)),
        audit_enabled=(raw.get("audit") or {}).get("enabled", defaults.audit_enabled),
        sign_in_blocked=raw.get("sign_in_blocked", defaults.sign_in_blocked),
        # Each protocol the mailbox names overrides the profile's; the others are the profile's.
        protocols=replace(defaults.protocols, **(raw.get("protocols") or {})),
        forwarding=Forwarding(raw["forwarding"]["to"].strip(), **{k: v for k, v in raw["forwarding"].items()
                                                                  if k != "to"}) if raw.get("forwarding") else None,
        calendar=folder_access(raw["calendar"]) if isinstance(raw.get("calendar"), dict) else None,
        folders=_folders(raw.get("folders")),
        origin=origin,
        state=State(raw["state"]) if "state" in raw else Mailbox.state,  # else the model's default
    )


def _folders(raw: Any) -> tuple[tuple[str, FolderAccess], ...]:
    """``folders:``: the well-known ones (rights.OTHER_FOLDERS order), then the paths in the file's order."""
    if not isinstance(raw, dict):
        return ()
    keys = [k for k in rights.OTHER_FOLDERS if k in raw] + [k for k in raw if rights.is_path(str(k))]
    return tuple((str(k), folder_access(raw[k])) for k in keys if isinstance(raw[k], dict))


def folder_access(raw: dict[str, Any]) -> FolderAccess:
    """A folder's entry in the file (``calendar``): Default and Anonymous, then people per role, in the file's
    order (role by role, as rights.FOLDER_ROLES lists them)."""
    people = []
    for role in rights.ROLE_NAMES:
        for entry in raw.get(role) or ():
            if isinstance(entry, str):
                people.append(FolderDelegate(entry.strip(), role))
            else:
                people.append(FolderDelegate(str(entry["user"]).strip(), role, entry.get("delegate") is True,
                                             entry.get("private_items") is True))
    return FolderAccess(raw.get("default"), raw.get("anonymous"), tuple(people))
