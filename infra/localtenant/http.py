"""HTTP helpers shared by the service routes: responses, URLs and request bodies."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response

# Largest request body any route reads. Graph documents "The maximum request length
# supported is 4MB" (413 above it); Exchange's admin API documents no limit, so it gets the
# same cap [infer]. mailroom's largest real request (a 20-item $batch) is a few KB.
MAX_BODY_BYTES = 4 * 1024 * 1024


class BodyTooLarge(Exception):
    """The request body is over :data:`MAX_BODY_BYTES`; raised while it streams in, so the
    rest is never read (the guard in ``guard.py`` answers 413 and closes the connection)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json; charset=utf-8") -> Response:
    payload = b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(payload, status_code=status, headers=headers, media_type=content_type if body is not None else None)


def base_url(request: Request) -> str:
    """The emulator's own origin as the client reached it; next links must point back here."""
    return f"{request.url.scheme}://{request.url.netloc}"


def with_query(url: str, params: Iterable[tuple[str, str]]) -> str:
    """Append query parameters keeping OData ``$`` names readable and values encoded."""
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
    return f"{url}?{query}" if query else url


def _no_constant(name: str) -> Any:
    # NaN, Infinity and -Infinity are not JSON (RFC 8259); Python accepts them by default.
    raise ValueError(f"{name} is not a valid JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")  # e.g. 1e999, which Python reads as infinity
    return value


def parse_json(raw: bytes) -> tuple[Any, bool]:
    """(document, ok) for strict JSON: no NaN/Infinity, no out-of-range floats, and nesting
    too deep for the decoder is malformed rather than a crash."""
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite), True
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None, False


async def read_json(request: Request) -> tuple[Any, bool]:
    """(document, ok). An empty body is ``None`` and fine; malformed JSON is not."""
    return parse_json(await request.body())


async def read_form(request: Request) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body as a dict; None when it is not UTF-8."""
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return dict(parse_qsl(text, keep_blank_values=True))
