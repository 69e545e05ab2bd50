"""The audit log for a SIEM: JSON Lines as written (hashes can be recomputed), or ArcSight CEF lines.

CEF (ArcSight Common Event Format, rev. 25): ``CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|
Extension``; header fields escape ``\\`` and ``|``; extension values escape ``\\``, ``=`` and line breaks.
"""

from __future__ import annotations

import json
from typing import Any

from mailroom import __version__
from mailroom.audit.log import _parse_iso, canonical_json, line_hash

SEVERITY = {"run_start": 1, "run_end": 1, "change": 3, "change_failed": 7, "drift_new": 6, "drift_present": 5,
            "drift_resolved": 3}
NAME = {"run_start": "mailroom run started", "run_end": "mailroom run ended", "change": "mailbox access changed",
        "change_failed": "mailbox change failed", "drift_new": "drift found", "drift_present": "drift still present",
        "drift_resolved": "drift resolved"}


def _header(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|")


def _ext(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return (text.replace("\\", "\\\\").replace("=", "\\=").replace("\r\n", "\\n").replace("\n", "\\n")
            .replace("\r", "\\n"))


def cef(entry: dict[str, Any]) -> str:
    kind = str(entry.get("kind"))
    severity = SEVERITY.get(kind, 5)
    if kind == "run_end" and entry.get("result") not in ("ok", "clean", None):
        severity = 6
    raw_actor = entry.get("actor")
    actor: dict[str, Any] = raw_actor if isinstance(raw_actor, dict) else {}
    fields: list[tuple[str, Any]] = [
        ("rt", int(_parse_iso(str(entry["time"])).timestamp() * 1000)),
        ("act", kind), ("suser", actor.get("name")), ("duser", entry.get("subject")),
        ("outcome", entry.get("result")), ("msg", entry.get("detail")),
        ("cs1Label", "mailbox"), ("cs1", entry.get("mailbox")), ("cs2Label", "right"), ("cs2", entry.get("right")),
        ("cs3Label", "runId"), ("cs3", entry.get("run_id")), ("cs4Label", "stack"), ("cs4", entry.get("stack")),
        ("cs5Label", "before"), ("cs5", entry.get("before")), ("cs6Label", "after"), ("cs6", entry.get("after")),
        ("cn1Label", "seq"), ("cn1", entry.get("seq")),
        ("flexString1Label", "lineSha256"), ("flexString1", line_hash(canonical_json(entry).encode("utf-8"))),
        ("flexString2Label", "prevSha256"), ("flexString2", entry.get("prev")),
    ]
    ext = " ".join(f"{key}={_ext(value)}" for key, value in fields if value is not None)
    return (f"CEF:0|mailroom|mailroom|{_header(__version__)}|{_header(kind)}|{_header(NAME.get(kind, kind))}|"
            f"{severity}|{ext}")


def jsonl(entry: dict[str, Any]) -> str:
    return canonical_json(entry)
