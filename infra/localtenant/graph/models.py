"""Graph semantics over the shared directory: users, mailbox settings and directoryAudits.

``$filter`` ASTs compile to SQL here, per entity, so lookups such as
``proxyAddresses/any(x:x eq 'smtp:a@b')`` use the address index instead of a scan.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localtenant.common import Caller, parse_stamp, stamp
from localtenant.directory import (
    O_COLUMNS,
    DirectoryError,
    DirObject,
    Tenant,
    check_address,
    insert_object,
    record_directory_audit,
    update_object,
)
from localtenant.exchange.models import remove_mailbox
from localtenant.graph import filters
from localtenant.graph.filters import Any_, Bool, Compare, FilterError, Func, In, Node, Not

USER_BASE = "o.kind = 'user' AND o.user_deleted = 0"
_OPS = {"eq": "=", "ne": "<>", "ge": ">=", "le": "<=", "gt": ">", "lt": "<"}


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


@dataclass(frozen=True)
class Column:
    sql: str
    norm: Callable[[Any], Any]


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _like(value: str, func: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if func == "startswith" else f"%{escaped}"


class SqlFilter:
    """Compile a filter AST with an entity's field map and lambda handler."""

    def __init__(self, columns: Callable[[str], Column | None], lambdas: Callable[[Any_], tuple[str, list[Any]]],
                 special: Callable[[Compare], tuple[str, list[Any]] | None] = lambda _: None) -> None:
        self.columns, self.lambdas, self.special = columns, lambdas, special

    def column(self, field: str) -> Column:
        col = self.columns(field)
        if col is None:
            raise FilterError(f"Unsupported or invalid query filter clause specified for property '{field}'.")
        return col

    def compile(self, node: Node) -> tuple[str, list[Any]]:
        if isinstance(node, Bool):
            parts = [self.compile(i) for i in node.items]
            return f" {node.op.upper()} ".join(f"({s})" for s, _ in parts), [a for _, args in parts for a in args]
        if isinstance(node, Not):
            sql, args = self.compile(node.item)
            return f"NOT ({sql})", args
        if isinstance(node, Any_):
            return self.lambdas(node)
        if isinstance(node, Compare):
            special = self.special(node)
            if special is not None:
                return special
            col = self.column(node.field)
            if node.value is None:
                return f"{col.sql} IS {'NOT ' if node.op == 'ne' else ''}NULL", []
            return f"{col.sql} {_OPS[node.op]} ?", [col.norm(node.value)]
        if isinstance(node, In):
            col = self.column(node.field)
            return f"{col.sql} IN ({','.join('?' * len(node.values))})", [col.norm(v) for v in node.values]
        col = self.column(node.field)
        return f"lower({col.sql}) LIKE ? ESCAPE '\\'", [_like(node.value, node.name)]


# ---------------------------------------------------------------- users


def _user_column(field: str) -> Column | None:
    low = field.lower()
    direct = {
        "userprincipalname": Column("o.upn_l", _lower),
        "displayname": Column("lower(o.display_name)", _lower),
        "mail": Column("lower(o.mail)", _lower),
        "id": Column("o.id", _lower),
        "accountenabled": Column("o.account_enabled", lambda v: int(bool(v))),
        "usertype": Column("lower(coalesce(json_extract(o.props, '$.userType'), 'Member'))", _lower),
        "mailnickname": Column("lower(coalesce(json_extract(o.props, '$.mailNickname'), o.alias))", _lower),
    }
    if low in direct:
        return direct[low]
    for prop in ("givenName", "surname", "jobTitle", "department", "officeLocation", "usageLocation"):
        if low == prop.lower():
            return Column(f"lower(json_extract(o.props, '$.{prop}'))", _lower)
    return None


def _user_special(node: Compare) -> tuple[str, list[Any]] | None:
    # mail eq -> the primary address row, an index lookup instead of a scan.
    if node.field.lower() == "mail" and node.op == "eq" and isinstance(node.value, str):
        sql = "o.seq IN (SELECT object_seq FROM addresses WHERE address_l = ? AND is_primary = 1)"
        return sql, [node.value.lower()]
    return None


def _proxy_condition(var: str, node: Node) -> tuple[str, list[Any]]:
    if isinstance(node, Bool):
        parts = [_proxy_condition(var, i) for i in node.items]
        return f" {node.op.upper()} ".join(f"({s})" for s, _ in parts), [a for _, args in parts for a in args]
    if isinstance(node, Compare) and node.field == var and node.op == "eq" and isinstance(node.value, str):
        value = node.value.lower()
        # Only SMTP proxies are stored; other types (sip:, x500:) never match.
        return ("address_l = ?", [value[5:]]) if value.startswith("smtp:") else ("0", [])
    if isinstance(node, Func) and node.field == var:
        return "('smtp:' || address_l) LIKE ? ESCAPE '\\'", [_like(node.value, node.name)]
    raise FilterError("Unsupported or invalid query filter clause specified for property 'proxyAddresses'.")


def _user_lambda(node: Any_) -> tuple[str, list[Any]]:
    if node.collection.lower() != "proxyaddresses":
        raise FilterError(f"Unsupported or invalid query filter clause specified for property '{node.collection}'.")
    cond, args = _proxy_condition(node.var, node.body)
    return f"o.seq IN (SELECT object_seq FROM addresses WHERE {cond})", args


USER_FILTER = SqlFilter(_user_column, _user_lambda, _user_special)


def compile_user_filter(text: str | None, advanced: bool) -> tuple[str, list[Any]]:
    if not text:
        return USER_BASE, []
    try:
        node = filters.parse(text)
        if filters.uses_advanced(node) and not advanced:
            raise FilterError("Unsupported or invalid query filter clause specified for this request; it needs "
                              "the ConsistencyLevel: eventual header and $count=true.")
        sql, args = USER_FILTER.compile(node)
    except FilterError as err:
        raise bad_request(str(err), "Request_UnsupportedQuery") from err
    return f"{USER_BASE} AND ({sql})", args


def list_users(conn: sqlite3.Connection, where: str, args: list[Any], after: int, limit: int) -> list[DirObject]:
    rows = conn.execute(
        f"SELECT {O_COLUMNS} FROM objects o WHERE {where} AND o.seq > ? ORDER BY o.seq LIMIT ?", [*args, after, limit]
    )
    return [DirObject.from_row(r) for r in rows]


def count_users(conn: sqlite3.Connection, where: str, args: list[Any]) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM objects o WHERE {where}", args).fetchone()[0])


STRING_PROPS = ("givenName", "surname", "jobTitle", "department", "officeLocation", "mobilePhone",
                "usageLocation", "preferredLanguage", "mailNickname", "userType")
LIST_PROPS = ("businessPhones", "otherMails")
READ_ONLY = ("id", "mail", "proxyAddresses", "createdDateTime", "onPremisesSyncEnabled")


def _check_user_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("A JSON object is required in the request body.")
    out = {}
    for key, value in body.items():
        if key.startswith("@odata."):
            continue  # msgraph-sdk adds "@odata.type": "#microsoft.graph.user"
        if key in READ_ONLY:
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")
        if key == "accountEnabled" and not isinstance(value, bool):
            raise bad_request("Invalid value specified for property 'accountEnabled' of resource 'User'.")
        elif key in ("displayName", "userPrincipalName") and (not isinstance(value, str) or not value.strip()):
            raise bad_request(f"Invalid value specified for property '{key}' of resource 'User'.")
        elif key in STRING_PROPS and value is not None and not isinstance(value, str):
            raise bad_request(f"Invalid value specified for property '{key}' of resource 'User'.")
        elif key in LIST_PROPS and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise bad_request(f"Invalid value specified for property '{key}' of resource 'User'.")
        elif key == "passwordProfile" and (not isinstance(value, dict)
                                           or not isinstance(value.get("password"), (str, type(None)))):
            raise bad_request("Invalid value specified for property 'passwordProfile' of resource 'User'.")
        elif key not in ("accountEnabled", "displayName", "userPrincipalName", "passwordProfile", *STRING_PROPS,
                         *LIST_PROPS):
            raise bad_request(f"Property '{key}' does not exist on type 'microsoft.graph.user'.")
        out[key] = value
    return out


def _check_upn(upn: str, tenant: Tenant) -> None:
    try:
        check_address(upn, tenant)
    except DirectoryError as err:
        raise bad_request("Property userPrincipalName is invalid.") from err


def create_user(conn: sqlite3.Connection, tenant: Tenant, caller: Caller, body: Any) -> DirObject:
    """POST /users: an Entra user without a mailbox (no licence), so not an Exchange recipient."""
    doc = _check_user_body(body)
    missing = [k for k in ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")
               if k not in doc]
    if missing:
        raise bad_request(f"Invalid value specified for property '{missing[0]}' of resource 'User'.")
    _check_upn(doc["userPrincipalName"], tenant)
    props = {k: doc[k] for k in (*STRING_PROPS, *LIST_PROPS) if k in doc}
    password = (doc.get("passwordProfile") or {}).get("password")
    if password:
        props["password"] = password
    try:
        obj = insert_object(conn, kind="user", display_name=doc["displayName"], upn=doc["userPrincipalName"],
                            account_enabled=doc["accountEnabled"], props=props)
    except DirectoryError as err:
        raise bad_request(err.text) from err
    record_directory_audit(conn, activity="Add user", operation="Add", target=obj, caller=caller)
    return obj


def update_user(conn: sqlite3.Connection, tenant: Tenant, caller: Caller, obj: DirObject, body: Any) -> None:
    doc = _check_user_body(body)
    columns: dict[str, Any] = {}
    modified: list[tuple[str, Any, Any]] = []
    props = dict(obj.props)
    for key, value in doc.items():
        if key == "accountEnabled" and value != obj.account_enabled:
            columns["account_enabled"] = int(value)
            modified.append(("AccountEnabled", obj.account_enabled, value))
        elif key == "displayName" and value != obj.display_name:
            columns["display_name"] = value
            modified.append(("DisplayName", obj.display_name, value))
        elif key == "userPrincipalName" and value.lower() != (obj.upn or "").lower():
            _check_upn(value, tenant)
            if conn.execute("SELECT 1 FROM objects WHERE upn_l = ?", (value.lower(),)).fetchone():
                raise bad_request("Another object with the same value for property userPrincipalName already exists.")
            columns["upn"] = value
            modified.append(("UserPrincipalName", obj.upn, value))
        elif key == "passwordProfile":
            password = (value or {}).get("password")
            if password:
                props["password"] = password
        elif key in (*STRING_PROPS, *LIST_PROPS) and props.get(key) != value:
            modified.append((key[0].upper() + key[1:], props.get(key), value))
            props[key] = value
    if props != obj.props:
        columns["props"] = props
    if not columns:
        return
    update_object(conn, obj, **columns)
    if modified:
        record_directory_audit(conn, activity="Update user", operation="Update", target=obj, caller=caller,
                               modified=modified)


def delete_user(conn: sqlite3.Connection, caller: Caller, obj: DirObject) -> None:
    """Deleting the user of a mailbox soft-deletes the mailbox too, as Exchange follows Entra."""
    if obj.is_mailbox and not obj.soft_deleted:
        remove_mailbox(conn, obj, permanently=False)
    else:
        update_object(conn, obj, user_deleted=1)
    record_directory_audit(conn, activity="Delete user", operation="Delete", target=obj, caller=caller)


# ---------------------------------------------------------------- mailbox settings

REPLY_STATUS = ("disabled", "alwaysEnabled", "scheduled")
AUDIENCE = ("none", "contactsOnly", "all")
DELEGATE_DELIVERY = ("sendToDelegateAndInformationToPrincipal", "sendToDelegateAndPrincipal", "sendToDelegateOnly")
# mailboxSettings.userPurpose per RecipientTypeDetails (B.3).
PURPOSES = {"UserMailbox": "user", "SharedMailbox": "shared", "RoomMailbox": "room", "EquipmentMailbox": "equipment"}
SETTINGS_WRITABLE = ("automaticRepliesSetting", "timeZone", "language", "dateFormat", "timeFormat",
                     "workingHours", "delegateMeetingMessageDeliveryOptions", "archiveFolder")


def require_mailbox(obj: DirObject) -> None:
    if not obj.is_mailbox or obj.soft_deleted:
        raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                         "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")


def mailbox_settings(obj: DirObject) -> dict[str, Any]:
    require_mailbox(obj)
    start = obj.created[:10] + "T00:00:00.0000000"
    doc: dict[str, Any] = {
        "archiveFolder": "AAMkAD" + obj.id.replace("-", "")[:24] + "AAA=",
        "timeZone": "UTC",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOrInformationOnly",
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "userPurpose": PURPOSES.get(obj.rtd or "", "user"),
        "automaticRepliesSetting": {
            "status": "disabled", "externalAudience": "all",
            "internalReplyMessage": "", "externalReplyMessage": "",
            "scheduledStartDateTime": {"dateTime": start, "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": start, "timeZone": "UTC"},
        },
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
            "timeZone": {"name": "UTC"},
        },
    }
    saved = obj.props.get("mailboxSettings") or {}
    for key, value in saved.items():
        doc[key] = {**doc[key], **value} if isinstance(doc.get(key), dict) and isinstance(value, dict) else value
    return doc


def _enum(name: str, value: Any, valid: tuple[str, ...]) -> str:
    canon = {v.lower(): v for v in valid}
    if not isinstance(value, str) or value.lower() not in canon:
        raise bad_request(f"Cannot convert the literal '{value}' to the expected type '{name}'.", "RequestBodyRead")
    return canon[value.lower()]  # lowerCamel: kiota only matches enums in that form


def _reply_setting(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("automaticRepliesSetting must be an object.", "RequestBodyRead")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key.startswith("@odata."):
            continue
        if key == "status":
            out[key] = _enum("microsoft.graph.automaticRepliesStatus", item, REPLY_STATUS)
        elif key == "externalAudience":
            out[key] = _enum("microsoft.graph.externalAudienceScope", item, AUDIENCE)
        elif key in ("internalReplyMessage", "externalReplyMessage"):
            out[key] = "" if item is None else str(item)
        elif key in ("scheduledStartDateTime", "scheduledEndDateTime"):
            try:
                parse_stamp(str(item["dateTime"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise bad_request(f"{key} must be a dateTimeTimeZone.", "ErrorInvalidTimeSettings") from exc
            out[key] = {"dateTime": str(item["dateTime"]), "timeZone": str(item.get("timeZone") or "UTC")}
        else:
            raise bad_request(f"The property '{key}' does not exist on type "
                              "'microsoft.graph.automaticRepliesSetting'.", "RequestBodyRead")
    return out


def update_mailbox_settings(conn: sqlite3.Connection, obj: DirObject, body: Any) -> dict[str, Any]:
    """Merge a PATCH; returns the updated properties (the real API answers 200 with them)."""
    require_mailbox(obj)
    if not isinstance(body, dict):
        raise bad_request("A JSON object is required in the request body.", "RequestBodyRead")
    saved = dict(obj.props.get("mailboxSettings") or {})
    touched = []
    for key, value in body.items():
        if key.startswith("@odata."):
            continue
        if key == "userPurpose":
            raise bad_request("Property 'userPurpose' is read-only and cannot be set.", "ErrorInvalidProperty")
        if key not in SETTINGS_WRITABLE:
            raise bad_request(f"The property '{key}' does not exist on type 'microsoft.graph.mailboxSettings'.",
                              "RequestBodyRead")
        if key == "automaticRepliesSetting":
            value = {**(saved.get(key) or {}), **_reply_setting(value)}
        elif key == "delegateMeetingMessageDeliveryOptions":
            value = _enum("microsoft.graph.delegateMeetingMessageDeliveryOptions", value, DELEGATE_DELIVERY)
        saved[key] = value
        touched.append(key)
    merged = mailbox_settings(DirObject(**{**obj.__dict__, "props": {**obj.props, "mailboxSettings": saved}}))
    replies = merged["automaticRepliesSetting"]
    if replies["status"] == "scheduled" and parse_stamp(replies["scheduledEndDateTime"]["dateTime"]) <= parse_stamp(
            replies["scheduledStartDateTime"]["dateTime"]):
        raise bad_request("The end time must be after the start time.", "ErrorInvalidTimeSettings")
    update_object(conn, obj, props={**obj.props, "mailboxSettings": saved})
    return {key: merged[key] for key in touched}


# ---------------------------------------------------------------- directory audits

_AUDIT_JSON = {
    "id": "$.id", "category": "$.category", "activitydisplayname": "$.activityDisplayName",
    "result": "$.result", "loggedbyservice": "$.loggedByService", "operationtype": "$.operationType",
    "correlationid": "$.correlationId", "initiatedby/app/appid": "$.initiatedBy.app.appId",
    "initiatedby/app/displayname": "$.initiatedBy.app.displayName",
    "initiatedby/user/userprincipalname": "$.initiatedBy.user.userPrincipalName",
    "initiatedby/user/id": "$.initiatedBy.user.id",
}


def _audit_time(value: Any) -> str:
    try:
        return stamp(parse_stamp(str(value)))
    except ValueError as err:
        raise FilterError(f"'{value}' is not a valid DateTimeOffset for property 'activityDateTime'.") from err


def _audit_column(field: str) -> Column | None:
    low = field.lower()
    if low == "activitydatetime":
        return Column("activity_dt", _audit_time)
    if low in _AUDIT_JSON:
        return Column(f"json_extract(doc, '{_AUDIT_JSON[low]}')", lambda v: v)
    return None


def _audit_lambda(node: Any_) -> tuple[str, list[Any]]:
    body = node.body
    if (node.collection.lower() == "targetresources" and isinstance(body, Compare) and body.op == "eq"
            and body.field.lower() == f"{node.var}/id".lower()):
        return "target_id = ?", [str(body.value).lower()]
    raise FilterError("Only targetResources/any(t:t/id eq '...') is supported.")


AUDIT_FILTER = SqlFilter(_audit_column, _audit_lambda)


def list_directory_audits(
    conn: sqlite3.Connection, text: str | None, before: int | None, limit: int
) -> list[tuple[int, dict[str, Any]]]:
    where, args = "1", list[Any]()
    if text:
        try:
            where, args = AUDIT_FILTER.compile(filters.parse(text))
        except FilterError as err:
            raise bad_request(str(err), "Request_UnsupportedQuery") from err
    if before is not None:
        where += " AND seq < ?"
        args.append(before)
    rows = conn.execute(f"SELECT seq, doc FROM directory_audit WHERE {where} ORDER BY seq DESC LIMIT ?", [*args, limit])
    return [(seq, json.loads(doc)) for seq, doc in rows]
