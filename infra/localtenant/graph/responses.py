"""Graph v1.0 wire format: user JSON with ``$select``, the error envelope (B.5), context
URLs and the per-request ids Graph puts in ``innerError``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from localtenant.common import dotnet_utc, graph_dt, new_guid, utcnow
from localtenant.directory import DirObject

CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
# Graph's default user property set when no $select is given (B.2).
DEFAULT_USER = ("businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
                "officeLocation", "preferredLanguage", "surname", "userPrincipalName")
USER_PROPS = DEFAULT_USER + ("accountEnabled", "proxyAddresses", "userType", "mailNickname", "createdDateTime",
                             "department", "usageLocation", "otherMails", "onPremisesSyncEnabled")
_CANON = {p.lower(): p for p in USER_PROPS}
# A group's default property set (group resource: "Returned by default"), the ones the emulator models.
DEFAULT_GROUP = ("id", "createdDateTime", "description", "displayName", "groupTypes", "mail", "mailEnabled",
                 "mailNickname", "securityEnabled", "proxyAddresses", "visibility")
# $select on a directoryObject collection: a property of either type (users and groups mixed).
DIRECTORY_CANON = {**_CANON, **{p.lower(): p for p in DEFAULT_GROUP}}


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, client_request_id: str | None = None,
          headers: dict[str, str] | None = None) -> GraphResponse:
    request_id = new_guid()
    body = {"error": {"code": code, "message": message, "innerError": {
        "date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }}}
    return GraphResponse(status, body, {"request-id": request_id, **(headers or {})})


def throttled(retry_after: int, code: str = "TooManyRequests") -> GraphResponse:
    message = ("Application is over its MailboxConcurrency limit." if code == "ApplicationThrottled"
               else "Too many requests. Please retry after the time given in the Retry-After header.")
    return error(429, code, message, headers={"Retry-After": str(retry_after)})


def server_error(status: int) -> GraphResponse:
    code = {503: "serviceNotAvailable", 504: "gatewayTimeout", 502: "badGateway"}.get(status, "generalException")
    headers = {"Retry-After": "1"} if status in (503, 504) else {}
    return error(status, code, "The service is temporarily unavailable. Please retry.", headers=headers)


def parse_select(value: str | None, canon: dict[str, str] = _CANON, entity: str = "user") -> list[str] | None:
    if value is None:
        return None
    out = []
    for part in value.split(","):
        name = part.strip()
        if not name:
            continue
        if name.lower() not in canon:
            raise ValueError(f"Could not find a property named '{name}' on type 'microsoft.graph.{entity}'.")
        out.append(canon[name.lower()])
    return out


def user(obj: DirObject, addresses: Sequence[str] | None, select: Sequence[str] | None) -> dict[str, Any]:
    props = obj.props
    values: dict[str, Any] = {
        "id": obj.id, "businessPhones": props.get("businessPhones", []), "displayName": obj.display_name,
        "givenName": props.get("givenName"), "jobTitle": props.get("jobTitle"), "mail": obj.mail,
        "mobilePhone": props.get("mobilePhone"), "officeLocation": props.get("officeLocation"),
        "preferredLanguage": props.get("preferredLanguage"), "surname": props.get("surname"),
        "userPrincipalName": obj.upn, "accountEnabled": obj.account_enabled,
        "proxyAddresses": list(addresses or []), "userType": props.get("userType", "Member"),
        "mailNickname": props.get("mailNickname") or obj.alias or (obj.upn or "").partition("@")[0],
        "createdDateTime": graph_dt(obj.created), "department": props.get("department"),
        "usageLocation": props.get("usageLocation"), "otherMails": props.get("otherMails", []),
        "onPremisesSyncEnabled": None,
    }
    return {key: values[key] for key in (select or DEFAULT_USER)}


def group(obj: DirObject, addresses: Sequence[str] | None, select: Sequence[str] | None) -> dict[str, Any]:
    """A mail-enabled security group as Graph shows it (groupTypes empty, mailEnabled and securityEnabled)."""
    values: dict[str, Any] = {
        "id": obj.id, "createdDateTime": graph_dt(obj.created), "description": obj.props.get("description"),
        "displayName": obj.display_name, "groupTypes": [], "mail": obj.mail, "mailEnabled": True,
        "mailNickname": obj.alias, "securityEnabled": True, "proxyAddresses": list(addresses or []),
        "visibility": None,
    }
    return {key: values[key] for key in (select or DEFAULT_GROUP) if key in values}


def directory_object(obj: DirObject, addresses: Sequence[str] | None, select: Sequence[str] | None, full: bool,
                     typed: bool) -> dict[str, Any]:
    """One member of a directoryObject collection. ``typed``: the collection is not cast, so each object says
    its ``@odata.type``. Not ``full``: the caller may not read this type, so only the id and type are real and
    every other property is null (Graph's "limited information" for inaccessible member objects)."""
    if obj.kind == "group":
        body = group(obj, addresses, [s for s in select if s in DEFAULT_GROUP] if select else None)
    else:
        body = user(obj, addresses, [s for s in select if s in _CANON.values()] if select else None)
    if not full:
        body = {k: (v if k == "id" else None) for k, v in body.items()}
    return {"@odata.type": f"#microsoft.graph.{obj.kind}", **body} if typed or not full else body


def users_context(base: str, select: Sequence[str] | None, entity: bool = False) -> str:
    shape = f"({','.join(select)})" if select else ""
    return f"{base}/v1.0/$metadata#users{shape}" + ("/$entity" if entity else "")


def audit(doc: dict[str, Any]) -> dict[str, Any]:
    """Stored entries keep the sortable storage stamp; Graph shows 7 fractional digits."""
    return {**doc, "activityDateTime": dotnet_utc(doc["activityDateTime"])}
