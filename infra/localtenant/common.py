"""Small helpers shared by every service: clocks, ids and wire date formats."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone

# Stable namespace so a seed file produces the same object ids on every run.
ID_NAMESPACE = uuid.UUID("6f1c0a52-5c3e-4b8e-9d0e-3f3b1c7a9e21")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stamp(dt: datetime | None = None) -> str:
    """Storage format: fixed-width ISO in UTC, so string order is time order."""
    return (dt or utcnow()).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(value: str) -> datetime:
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    # .NET writes 7 fractional digits; Python accepts at most 6.
    if "." in text:
        head, _, rest = text.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac):]
        text = f"{head}.{frac[:6].ljust(6, '0')}{tz}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    try:
        return dt.astimezone(timezone.utc)
    except OverflowError as err:  # 9999-12-31T23:59:59-23:00 is past year 9999 in UTC
        raise ValueError(f"Date out of range: '{value}'") from err


def dotnet_offset(value: str) -> str:
    """``2022-06-29T17:57:03.0000000+00:00``: Exchange's DateTime with offset."""
    return parse_stamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def dotnet_utc(value: str) -> str:
    """``2022-06-29T17:57:03.0000000Z``: Exchange's *UTC properties and Graph audit times."""
    return parse_stamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def graph_dt(value: str) -> str:
    """``2022-06-29T17:57:03Z``: Graph's DateTimeOffset for directory properties."""
    return parse_stamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_guid() -> str:
    return str(uuid.uuid4())


def stable_guid(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


def is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) in (32, 36, 38)


def fake_sid(tenant_id: str, rid: int) -> str:
    """A Windows-looking SID, stable per tenant, so Get-*Permission rows look real."""
    digest = hashlib.sha256(tenant_id.encode()).digest()
    a, b, c = (int.from_bytes(digest[i : i + 4], "big") for i in (0, 4, 8))
    return f"S-1-5-21-{a}-{b}-{c}-{1000 + rid}"


class Caller:
    """Who made a request, from the validated token: an app (client credentials) or a
    user (delegated token with a ``upn`` claim)."""

    __slots__ = ("app_id", "app_name", "upn", "user_id", "tenant_id", "roles")

    def __init__(
        self, app_id: str, app_name: str, tenant_id: str, upn: str | None = None, user_id: str | None = None,
        roles: tuple[str, ...] | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_name = app_name
        self.tenant_id = tenant_id
        self.upn = upn
        self.user_id = user_id
        self.roles = roles  # the token's app roles (app-only tokens); None for a user's token

    @property
    def label(self) -> str:
        """What the audit logs show as the caller: the UPN for a user, else the app id."""
        return self.upn or self.app_id


# The first-party app that real Entra shows as the initiator of changes Exchange makes to
# directory objects (New-Mailbox creating the user, Remove-Mailbox deleting it).
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"
EXCHANGE_APP_NAME = "Office 365 Exchange Online"
