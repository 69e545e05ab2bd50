"""Opaque, signed continuation tokens for Exchange ``$skiptoken`` and Graph ``$skiptoken``.

Stateless on purpose: the token carries the keyset cursor and its issue time, signed
with the tenant's server secret, so paging survives a restart and costs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class SkipTokenError(Exception):
    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def encode(secret: bytes, state: dict[str, Any]) -> str:
    payload = dict(state, iat=int(time.time()))
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    body = base64.urlsafe_b64encode(raw).rstrip(b"=")
    sig = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()[:16]).rstrip(b"=")
    return (body + b"." + sig).decode()


def decode(secret: bytes, token: str, max_age: float | None) -> dict[str, Any]:
    body, _, sig = token.encode().partition(b".")
    good = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()[:16]).rstrip(b"=")
    if not hmac.compare_digest(sig, good):
        raise SkipTokenError(expired=False)
    try:
        state: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    except ValueError as exc:
        raise SkipTokenError(expired=False) from exc
    if max_age is not None and time.time() - float(state.get("iat", 0)) > max_age:
        raise SkipTokenError(expired=True)
    return state


def fingerprint(value: Any) -> str:
    """Binds a continuation to the request it continues (same cmdlet and parameters)."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:16]
