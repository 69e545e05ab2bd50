"""Findings as CI annotations: GitHub workflow commands, Azure DevOps logging commands, GitLab Code Quality.

A finding is printable already (``Finding`` escapes control characters, so none holds a newline); each
renderer below adds what its CI syntax needs on top, so that no value from the file (a key, an address, an
included file's name) can end an annotation early, start another one, or set a property.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from mailroom.file.findings import Finding, Severity


def github(findings: Sequence[Finding]) -> str:
    """One ``::error file=…,line=…,col=…,title=…::message`` workflow command per finding (shown on the
    pull request's diff). The escapes are GitHub's (``@actions/core``'s ``escapeData``/``escapeProperty``)."""
    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    return "".join(f"::{f.severity.value} file={prop(f.file)},line={f.line},col={f.column},"
                   f"title={prop(f.code)}::{data(f.message)} ({f.pointer or '/'})\n" for f in findings)


def azure_devops(findings: Sequence[Finding]) -> str:
    """One ``##vso[task.logissue type=…;sourcepath=…;linenumber=…;columnnumber=…;code=…]message`` logging
    command per finding. The escapes are azure-pipelines-task-lib's: ``%`` → ``%AZP25`` first (the agent
    unescapes it last), CR and LF in data and properties, and ``;`` and ``]`` in properties, which would
    otherwise end the property or the property list."""
    def data(text: str) -> str:
        return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(";", "%3B").replace("]", "%5D")

    return "".join(f"##vso[task.logissue type={f.severity.value};sourcepath={prop(f.file)};linenumber={f.line};"
                   f"columnnumber={f.column};code={prop(f.code)}]{data(f.message)} ({f.pointer or '/'})\n"
                   for f in findings)


# GitLab's severities are Code Climate's (info, minor, major, critical, blocker); an error fails validation
# (major), a warning does not unless --strict (minor).
GITLAB_SEVERITY = {Severity.ERROR: "major", Severity.WARNING: "minor"}


def gitlab(findings: Sequence[Finding]) -> str:
    """A GitLab Code Quality report: a JSON array of ``{description, check_name, fingerprint, severity,
    location: {path, lines: {begin}}}``, what ``artifacts: reports: codequality`` reads.

    The fingerprint leaves the line out, so that a finding which only moved (a mailbox added above it) is
    the same finding in the merge request's comparison with its target branch; repeats of one finding are
    numbered, as GitLab drops all but one issue of a fingerprint.
    """
    issues: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for f in findings:
        identity = json.dumps([f.file, f.code, f.pointer, f.message])
        repeat = seen.get(identity, 0)
        seen[identity] = repeat + 1
        fingerprint = hashlib.sha256(f"{identity}#{repeat}".encode()).hexdigest()
        issues.append({
            "description": f"{f.message} ({f.pointer or '/'})",
            "check_name": f.code,
            "fingerprint": fingerprint,
            "severity": GITLAB_SEVERITY[f.severity],
            "location": {"path": f.file, "lines": {"begin": f.line}},
        })
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


# `validate --format NAME` → its renderer; one table so that the CLI's choices and the renderers cannot drift.
RENDERERS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "github": github, "azure-devops": azure_devops, "gitlab": gitlab}
