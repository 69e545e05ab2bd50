"""HTTP helpers shared by the service routes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response


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


async def read_json(request: Request) -> tuple[Any, bool]:
    """(document, ok). An empty body is ``None`` and fine; malformed JSON is not."""
    raw = await request.body()
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False
