"""Malformed requests to every route get the status and error envelope of the service they
called, never a bare ``500 Internal Server Error``; and an unexpected failure still answers
500 in that envelope, with the traceback in the server's log.

The table covers the kinds a probe found answering a bare 500 before (marked ``# was 500``)
and the neighbouring refusals, across Exchange (InvokeCommand, $batch), Graph (users,
mailboxSettings, directoryAudits, $batch), the token endpoint and the emulator's own routes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
EXO = "/adminapi/beta/{tenant}/InvokeCommand"
EXO_BATCH = "/adminapi/beta/{tenant}/$batch"
TOKEN = "/{tenant}/oauth2/v2.0/token"
EXCHANGE_CODES = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "RequestEntityTooLarge",
                  414: "RequestUriTooLong", 431: "RequestHeaderFieldsTooLarge", 500: "InternalServerError"}
DEEP = b"[" * 100_000 + b"]" * 100_000  # deeper than the JSON decoder can recurse
OVERFLOW_DATE = "9999-12-31T23:59:59-23:00"  # valid ISO, but past year 9999 once in UTC


def cmdlet(name: str, **params: Any) -> dict[str, Any]:
    return {"CmdletInput": {"CmdletName": name, "Parameters": params}}


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    envelope: str  # exchange | exchange-item | exchange-403 | graph | identity | emulator
    auth: str | None = None  # "exchange" | "graph": a valid token for that audience
    body: Any = None  # bytes are sent raw, anything else as JSON
    form: dict[str, str] | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    code: str = ""  # Graph error.code, OAuth error, or emulator error.code


FORM = {"grant_type": "client_credentials", "client_id": "probe", "client_secret": "x", "scope": GRAPH_SCOPE}

CASES = [
    # ------------------------------------------------ Exchange InvokeCommand
    Case("exo-not-json", "POST", EXO, 400, "exchange", "exchange", b"CmdletInput=Get-Mailbox"),
    Case("exo-json-array", "POST", EXO, 400, "exchange", "exchange", [1, 2]),
    Case("exo-json-string", "POST", EXO, 400, "exchange", "exchange", "Get-Mailbox"),
    Case("exo-no-cmdletinput", "POST", EXO, 400, "exchange", "exchange", {}),
    Case("exo-cmdletinput-string", "POST", EXO, 400, "exchange", "exchange", {"CmdletInput": "Get-Mailbox"}),
    Case("exo-cmdletname-number", "POST", EXO, 400, "exchange", "exchange", {"CmdletInput": {"CmdletName": 7}}),
    Case("exo-parameters-list", "POST", EXO, 400, "exchange", "exchange",
         {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": ["alice"]}}),
    Case("exo-identity-two-values", "POST", EXO, 400, "exchange", "exchange",
         cmdlet("Get-Mailbox", Identity=["alice", "bob"])),
    Case("exo-identity-object", "POST", EXO, 400, "exchange", "exchange", cmdlet("Get-Mailbox", Identity={"a": 1})),
    Case("exo-identity-float", "POST", EXO, 400, "exchange", "exchange", cmdlet("Get-Mailbox", Identity=1.5)),
    Case("exo-switch-not-bool", "POST", EXO, 400, "exchange", "exchange",
         cmdlet("New-Mailbox", Shared="yes", Name="x")),
    Case("exo-unknown-parameter", "POST", EXO, 400, "exchange", "exchange", cmdlet("Get-Mailbox", Colour="blue")),
    Case("exo-unknown-cmdlet", "POST", EXO, 403, "exchange-403", "exchange", cmdlet("Format-Disk")),
    Case("exo-nan-literal", "POST", EXO, 400, "exchange", "exchange",
         b'{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":NaN}}}'),
    Case("exo-infinite-number", "POST", EXO, 400, "exchange", "exchange",  # was 500
         b'{"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":1e999}}}'),
    Case("exo-deep-json", "POST", EXO, 400, "exchange", "exchange", DEEP),  # was 500
    Case("exo-not-utf8", "POST", EXO, 400, "exchange", "exchange", b'{"CmdletInput":"\xff\xfe"}'),
    Case("exo-resultsize-negative", "POST", EXO, 400, "exchange", "exchange", cmdlet("Get-Mailbox", ResultSize=-1)),
    Case("exo-resultsize-word", "POST", EXO, 400, "exchange", "exchange", cmdlet("Get-Mailbox", ResultSize="lots")),
    Case("exo-bad-skiptoken", "POST", EXO + "?$skiptoken=%FF.%FE", 400, "exchange", "exchange",
         cmdlet("Get-Mailbox")),
    Case("exo-accessrights-object", "POST", EXO, 400, "exchange", "exchange",
         cmdlet("Add-MailboxPermission", Identity="alice", User="bob", AccessRights={"x": 1})),
    Case("exo-hashtable-bad-key", "POST", EXO, 400, "exchange", "exchange",
         cmdlet("Set-Mailbox", Identity="alice", EmailAddresses={"Replace": ["smtp:a@contoso.com"]})),
    Case("exo-wrong-content-type", "POST", EXO, 400, "exchange", "exchange", b"<CmdletInput/>",
         headers={"Content-Type": "application/xml"}),
    Case("exo-get-method", "GET", EXO, 405, "exchange", "exchange"),
    Case("exo-unknown-route", "POST", "/adminapi/beta/{tenant}/RunEverything", 404, "exchange", "exchange", {}),
    Case("exo-huge-header", "POST", EXO, 431, "exchange", "exchange", cmdlet("Get-Mailbox"),
         headers={"X-Padding": "a" * 40_000}),
    Case("exo-huge-url", "POST", EXO + "?$select=" + "a" * 20_000, 414, "exchange", "exchange",
         cmdlet("Get-Mailbox")),
    # ------------------------------------------------ Exchange $batch
    Case("exo-batch-not-json", "POST", EXO_BATCH, 400, "exchange", "exchange", b"{requests"),
    Case("exo-batch-requests-object", "POST", EXO_BATCH, 400, "exchange", "exchange", {"requests": {"id": "1"}}),
    Case("exo-batch-empty", "POST", EXO_BATCH, 400, "exchange", "exchange", {"requests": []}),
    Case("exo-batch-too-many", "POST", EXO_BATCH, 400, "exchange", "exchange",
         {"requests": [{"id": str(i), "url": "InvokeCommand", "body": cmdlet("Get-Mailbox")} for i in range(11)]}),
    Case("exo-batch-item-not-object", "POST", EXO_BATCH, 400, "exchange", "exchange", {"requests": ["Get-Mailbox"]}),
    Case("exo-batch-item-headers-list", "POST", EXO_BATCH, 200, "exchange-item", "exchange",  # was 500
         {"requests": [{"id": "1", "url": "InvokeCommand", "headers": ["Prefer"], "body": cmdlet("Get-Mailbox")}]}),
    Case("exo-batch-item-headers-string", "POST", EXO_BATCH, 200, "exchange-item", "exchange",  # was 500
         {"requests": [{"id": "1", "url": "InvokeCommand", "headers": "x", "body": cmdlet("Get-Mailbox")}]}),
    Case("exo-batch-item-bad-url", "POST", EXO_BATCH, 200, "exchange-item", "exchange",  # was 500
         {"requests": [{"id": "1", "url": "http://[::1/InvokeCommand", "body": cmdlet("Get-Mailbox")}]}),
    Case("exo-batch-item-no-url", "POST", EXO_BATCH, 200, "exchange-item", "exchange",
         {"requests": [{"id": "1", "body": cmdlet("Get-Mailbox")}]}),
    Case("exo-batch-item-no-body", "POST", EXO_BATCH, 200, "exchange-item", "exchange",
         {"requests": [{"id": "1", "url": "InvokeCommand"}]}),
    # ------------------------------------------------ Graph
    Case("graph-patch-not-json", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph", b"accountEnabled",
         code="BadRequest"),
    Case("graph-patch-array", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph", [False],
         code="Request_BadRequest"),
    Case("graph-patch-deep-json", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph", DEEP,  # was 500
         code="BadRequest"),
    Case("graph-patch-nan", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",
         b'{"otherMails":[NaN]}', code="BadRequest"),
    Case("graph-patch-enabled-string", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",
         {"accountEnabled": "no"}, code="Request_BadRequest"),
    Case("graph-patch-name-number", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",
         {"displayName": 5}, code="Request_BadRequest"),
    Case("graph-patch-password-string", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",  # was 500
         {"passwordProfile": "hunter2"}, code="Request_BadRequest"),
    Case("graph-post-password-list", "POST", "/v1.0/users", 400, "graph", "graph",  # was 500
         {"accountEnabled": True, "displayName": "X", "mailNickname": "x", "userPrincipalName": "x@contoso.com",
          "passwordProfile": ["hunter2"]}, code="Request_BadRequest"),
    Case("graph-patch-unknown-property", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",
         {"shoeSize": 9}, code="Request_BadRequest"),
    Case("graph-patch-read-only", "PATCH", "/v1.0/users/alice@contoso.com", 400, "graph", "graph",
         {"mail": "x@contoso.com"}, code="Request_BadRequest"),
    Case("graph-top-word", "GET", "/v1.0/users?$top=ten", 400, "graph", "graph", code="Request_BadRequest"),
    Case("graph-top-superscript", "GET", "/v1.0/users?$top=%C2%B2", 400, "graph", "graph",  # was 500
         code="Request_BadRequest"),
    Case("graph-top-too-big", "GET", "/v1.0/users?$top=5000", 400, "graph", "graph", code="Request_BadRequest"),
    Case("graph-select-unknown", "GET", "/v1.0/users?$select=shoeSize", 400, "graph", "graph",
         code="Request_BadRequest"),
    Case("graph-count-word", "GET", "/v1.0/users?$count=maybe", 400, "graph", "graph", code="Request_BadRequest"),
    Case("graph-filter-syntax", "GET", "/v1.0/users?$filter=mail eq", 400, "graph", "graph",
         code="Request_UnsupportedQuery"),
    Case("graph-filter-too-deep", "GET", "/v1.0/users?$filter=" + "(" * 40 + "mail eq 'a'" + ")" * 40,  # was 500
         400, "graph", "graph", code="Request_UnsupportedQuery"),
    Case("graph-filter-too-long", "GET", "/v1.0/users?$filter=" + " or ".join(["mail eq 'a'"] * 300),
         400, "graph", "graph", code="Request_UnsupportedQuery"),
    Case("graph-filter-int-overflow", "GET", "/v1.0/users?$filter=displayName eq 99999999999999999999999",  # was 500
         400, "graph", "graph", code="Request_UnsupportedQuery"),
    Case("graph-bad-skiptoken", "GET", "/v1.0/users?$skiptoken=abc.def", 400, "graph", "graph",
         code="Request_BadRequest"),
    Case("graph-user-nul", "GET", "/v1.0/users/%00", 404, "graph", "graph", code="Request_ResourceNotFound"),
    Case("graph-user-not-an-id", "GET", "/v1.0/users/%7Bnot-a-guid%7D", 404, "graph", "graph",
         code="Request_ResourceNotFound"),
    Case("graph-audit-bad-date", "GET", "/v1.0/auditLogs/directoryAudits?$filter=activityDateTime ge 'soon'",  # was 500
         400, "graph", "graph", code="Request_UnsupportedQuery"),
    Case("graph-audit-date-number", "GET", "/v1.0/auditLogs/directoryAudits?$filter=activityDateTime in (5)",  # was 500
         400, "graph", "graph", code="Request_UnsupportedQuery"),
    Case("graph-settings-bad-enum", "PATCH", "/v1.0/users/alice@contoso.com/mailboxSettings", 400, "graph", "graph",
         {"automaticRepliesSetting": {"status": "sometimes"}}, code="RequestBodyRead"),
    Case("graph-settings-date-overflow", "PATCH", "/v1.0/users/alice@contoso.com/mailboxSettings",  # was 500
         400, "graph", "graph", {"automaticRepliesSetting": {"scheduledStartDateTime": {"dateTime": OVERFLOW_DATE}}},
         code="ErrorInvalidTimeSettings"),
    Case("graph-audit-query-date-overflow", "POST", "/v1.0/security/auditLog/queries", 400, "graph", "graph",
         {"filterStartDateTime": OVERFLOW_DATE, "filterEndDateTime": "2030-01-01T00:00:00Z"}, code="BadRequest"),
    Case("graph-audit-query-date-garbage", "POST", "/v1.0/security/auditLog/queries", 400, "graph", "graph",
         {"filterStartDateTime": "last tuesday", "filterEndDateTime": "2030-01-01T00:00:00Z"}, code="BadRequest"),
    Case("graph-trace-date-overflow", "GET", "/v1.0/admin/exchange/tracing/messageTraces?$filter=receivedDateTime "
         f"ge {OVERFLOW_DATE}", 400, "graph", "graph", code="BadRequest"),
    Case("graph-unknown-segment", "GET", "/v1.0/groups", 400, "graph", "graph", code="BadRequest"),
    Case("graph-options-method", "OPTIONS", "/v1.0/users", 405, "graph", "graph", code="Request_BadRequest"),
    Case("graph-huge-header", "GET", "/v1.0/users", 431, "graph", "graph",
         headers={"X-Padding": "a" * 40_000}, code="RequestHeaderFieldsTooLarge"),
    # ------------------------------------------------ Graph $batch
    Case("graph-batch-not-list", "POST", "/v1.0/$batch", 400, "graph", "graph", {"requests": "all"},
         code="BadRequest"),
    Case("graph-batch-too-many", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]}, code="BadRequest"),
    Case("graph-batch-no-id", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"method": "GET", "url": "/users"}]}, code="BadRequest"),
    Case("graph-batch-duplicate-id", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]},
         code="BadRequest"),
    Case("graph-batch-no-url", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"id": "1", "method": "GET"}]}, code="BadRequest"),
    Case("graph-batch-headers-list", "POST", "/v1.0/$batch", 400, "graph", "graph",  # was 500
         {"requests": [{"id": "1", "method": "GET", "url": "/users", "headers": ["accept"]}]}, code="BadRequest"),
    Case("graph-batch-bad-url", "POST", "/v1.0/$batch", 400, "graph", "graph",  # was 500
         {"requests": [{"id": "1", "method": "GET", "url": "http://[::1/v1.0/users"}]}, code="BadRequest"),
    Case("graph-batch-body-no-content-type", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"id": "1", "method": "PATCH", "url": "/users/alice@contoso.com",
                        "body": {"accountEnabled": False}}]}, code="BadRequest"),
    Case("graph-batch-forward-dependency", "POST", "/v1.0/$batch", 400, "graph", "graph",
         {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"]},
                       {"id": "2", "method": "GET", "url": "/users"}]}, code="BadRequest"),
    # ------------------------------------------------ token endpoint
    Case("token-not-utf8", "POST", TOKEN, 400, "identity", body=b"client_id=\xff\xfe",  # was 500
         headers={"Content-Type": "application/x-www-form-urlencoded"}, code="invalid_request"),
    Case("token-json-body", "POST", TOKEN, 400, "identity", body=FORM, code="invalid_request"),
    Case("token-no-client-id", "POST", TOKEN, 400, "identity", form={"grant_type": "client_credentials"},
         code="invalid_request"),
    Case("token-unknown-grant", "POST", TOKEN, 400, "identity", form={**FORM, "grant_type": "magic"},
         code="unsupported_grant_type"),
    Case("token-bad-scope", "POST", TOKEN, 400, "identity", form={**FORM, "scope": "https://example.com/.default"},
         code="invalid_scope"),
    Case("token-no-secret", "POST", TOKEN, 401, "identity", form={**FORM, "client_secret": ""},
         code="invalid_client"),
    Case("token-wrong-password", "POST", TOKEN, 400, "identity",
         form={**FORM, "grant_type": "password", "username": "alice@contoso.com", "password": ""},
         code="invalid_grant"),
    Case("token-unknown-tenant", "POST", "/fabrikam.example/oauth2/v2.0/token", 400, "identity", form=FORM,
         code="invalid_request"),
    Case("token-get-method", "GET", TOKEN, 400, "identity", code="invalid_request"),
    Case("token-huge-header", "POST", TOKEN, 431, "identity", form=FORM, headers={"X-Padding": "a" * 40_000},
         code="invalid_request"),
    Case("discovery-unknown-tenant", "GET", "/fabrikam.example/v2.0/.well-known/openid-configuration", 400,
         "identity", code="invalid_tenant"),
    # ------------------------------------------------ emulator control routes
    Case("profile-not-json", "PUT", "/_emulator/profile", 400, "emulator", body=b"{seed", code="BadRequest"),
    Case("profile-latency-string", "PUT", "/_emulator/profile", 400, "emulator",  # was 500
         body={"latency_ms": "slow"}, code="BadRequest"),
    Case("profile-rate-list", "PUT", "/_emulator/profile", 400, "emulator", body={"rate_limit": [5]},  # was 500
         code="BadRequest"),
    Case("tokens-audience-list", "POST", "/_emulator/tokens", 400, "emulator",  # was 500
         body={"audience": ["https://graph.microsoft.com"]}, code="BadRequest"),
    Case("tokens-lifetime-string", "POST", "/_emulator/tokens", 400, "emulator",
         body={"scope": GRAPH_SCOPE, "lifetime_seconds": "forever"}, code="BadRequest"),
    Case("emulator-unknown-route", "GET", "/_emulator/everything", 404, "emulator", code="NotFound"),
]


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTenant]:
    """One emulator for the whole table: every case must leave it healthy for the next."""
    running = LocalTenant(tmp_path_factory.mktemp("malformed"))
    running.start()
    yield running
    running.stop()


def send(tenant: LocalTenant, case: Case) -> httpx.Response:
    headers = dict(case.headers)
    if case.auth:
        scope = EXCHANGE_SCOPE if case.auth == "exchange" else GRAPH_SCOPE
        headers["Authorization"] = f"Bearer {tenant.token(scope)}"
    kwargs: dict[str, Any] = {}
    if isinstance(case.body, bytes):
        kwargs["content"] = case.body
    elif case.body is not None:
        kwargs["json"] = case.body
    if case.form is not None:
        kwargs["data"] = case.form
    url = tenant.base_url + case.path.replace("{tenant}", tenant.tenant_id)
    with httpx.Client(timeout=30) as client:  # a fresh connection: a failure cannot leak into the next case
        return client.request(case.method, url, headers=headers, **kwargs)


def check_exchange(body: dict[str, Any], status: int) -> None:
    error = body["error"]
    assert error["code"] == EXCHANGE_CODES[status] and error["message"]
    error_id, exc_type, text = error["details"][0]["message"].split("|", 2)  # "<id>|<.NET type>|<text>" (A.6)
    assert exc_type.startswith(("Microsoft.", "System.")) and exc_type.endswith("Exception") and text
    assert error["innererror"]["internalexception"]["message"] == text
    assert error["@adminapi.warnings"] == []


def check(case: Case, resp: httpx.Response) -> None:
    assert resp.status_code == case.status, resp.text[:500]
    if case.envelope == "exchange-403":
        # Documented: an unknown cmdlet gets a 403 whose body is not JSON (A.2, A.6).
        assert resp.content == b""
        return
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    if case.envelope == "exchange":
        check_exchange(body, case.status)
    elif case.envelope == "exchange-item":
        (item,) = body["responses"]
        assert item["status"] == 400
        check_exchange(item["body"], 400)
    elif case.envelope == "graph":
        error = body["error"]
        assert error["code"] == case.code and error["message"]
        assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    elif case.envelope == "identity":
        assert body["error"] == case.code
        assert body["error_description"].startswith("AADSTS") and isinstance(body["error_codes"], list)
        assert body["trace_id"] and body["correlation_id"]
    else:
        assert body["error"]["code"] == case.code and body["error"]["message"]


def test_the_table_is_broad_enough() -> None:
    kinds = {c.envelope.split("-")[0] for c in CASES}
    assert len(CASES) >= 40 and kinds == {"exchange", "graph", "identity", "emulator"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request_gets_the_service_envelope(tenant: LocalTenant, case: Case) -> None:
    check(case, send(tenant, case))
    assert httpx.get(f"{tenant.base_url}/_emulator/health", timeout=10).status_code == 200


def test_no_malformed_request_answered_500_and_the_tenant_still_works(tenant: LocalTenant) -> None:
    for case in CASES:  # the table again, back to back on this one server
        send(tenant, case)
    assert "500" not in tenant.metrics()["statuses"]
    assert "Traceback" not in tenant.log()
    mbx = tenant.exchange("Get-Mailbox", Identity="alice@contoso.com")
    assert mbx.status_code == 200 and mbx.json()["value"][0]["RecipientTypeDetails"] == "UserMailbox"
    assert tenant.graph("GET", "/users/alice@contoso.com").json()["userPrincipalName"] == "alice@contoso.com"


def test_oversize_header_block_is_refused_by_the_http_layer(tenant: LocalTenant) -> None:
    """Beyond what the HTTP layer buffers, uvicorn itself answers a plain 400 and closes, as a
    real front door answers a non-JSON 400 for an absurd header block; the tenant lives on."""
    try:
        with httpx.Client(timeout=30) as client:
            resp = client.get(f"{tenant.base_url}/v1.0/users", headers={"X-Padding": "a" * 1_000_000})
    except httpx.TransportError:
        pass  # the 400 can be lost to the reset of a socket closed with unread input
    else:
        assert resp.status_code == 400 and resp.headers["connection"] == "close"
    assert httpx.get(f"{tenant.base_url}/_emulator/health", timeout=10).status_code == 200


def corrupt(tenant: LocalTenant, upn: str) -> None:
    """Break one stored object behind the server's back (a second SQLite connection, as the
    seed command would be), so reading it raises an error no route expects."""
    conn = sqlite3.connect(tenant.state_path)
    with conn:
        conn.execute("UPDATE objects SET props = 'not json' WHERE upn_l = ?", (upn,))
    conn.close()


def test_unexpected_failure_is_a_500_envelope_and_logged(local_tenant: LocalTenant) -> None:
    corrupt(local_tenant, "alice@contoso.com")
    exo = local_tenant.exchange("Get-Mailbox", Identity="alice@contoso.com")
    assert exo.status_code == 500 and exo.headers["content-type"].startswith("application/json")
    check_exchange(exo.json(), 500)
    graph = local_tenant.graph("GET", "/users/alice@contoso.com")
    assert graph.status_code == 500
    assert graph.json()["error"]["code"] == "generalException"
    assert set(graph.json()["error"]["innerError"]) == {"date", "request-id", "client-request-id"}
    token = httpx.post(f"{local_tenant.base_url}/{local_tenant.tenant_id}/oauth2/v2.0/token",
                       data={**FORM, "grant_type": "password", "username": "alice@contoso.com", "password": "x"})
    assert token.status_code == 500 and token.json()["error"] == "temporarily_unavailable"
    log = local_tenant.log()
    assert log.count("Traceback (most recent call last)") == 3
    assert "unhandled error answering GET /v1.0/users/alice@contoso.com" in log
    # Other objects, and the server, are fine.
    assert local_tenant.exchange("Get-Mailbox", Identity="bob@contoso.com").status_code == 200
    assert httpx.get(f"{local_tenant.base_url}/_emulator/health").status_code == 200
