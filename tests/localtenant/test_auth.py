"""Token endpoint, discovery and bearer checks on Exchange and Graph."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import LocalTenant

EXCHANGE_SCOPE = "https://outlook.office365.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result


def test_client_credentials_tokens_carry_the_documented_claims(local_tenant: LocalTenant) -> None:
    url = f"{local_tenant.base_url}/{local_tenant.initial_domain}/oauth2/v2.0/token"
    resp = httpx.post(url, data={"grant_type": "client_credentials", "client_id": "app-1", "client_secret": "s",
                                 "client_info": "1", "scope": EXCHANGE_SCOPE})
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["ext_expires_in"] == 3599
    got = claims(body["access_token"])
    assert got["aud"] == "https://outlook.office365.com" and got["tid"] == local_tenant.tenant_id
    assert got["appid"] == "app-1" and got["roles"] == ["Exchange.ManageAsApp"] and got["exp"] > got["iat"]
    assertion = httpx.post(url, data={
        "grant_type": "client_credentials", "client_id": "app-2", "scope": GRAPH_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "eyJ.fake.jwt"})
    assert claims(assertion.json()["access_token"])["aud"] == "https://graph.microsoft.com"
    no_secret = httpx.post(url, data={"grant_type": "client_credentials", "client_id": "a", "scope": GRAPH_SCOPE})
    assert no_secret.status_code == 401 and no_secret.json()["error"] == "invalid_client"
    bad_scope = httpx.post(url, data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "s",
                                      "scope": "https://example.com/.default"})
    assert bad_scope.status_code == 400 and bad_scope.json()["error_codes"] == [70011]


def test_password_grant_acts_as_a_seeded_user(local_tenant: LocalTenant) -> None:
    token = local_tenant.token(EXCHANGE_SCOPE, username="heidi@contoso.com")
    got = claims(token)
    assert got["upn"] == "heidi@contoso.com" and got["aud"] == "https://outlook.office365.com" and "roles" not in got
    url = f"{local_tenant.base_url}/{local_tenant.tenant_id}/oauth2/v2.0/token"
    disabled = httpx.post(url, data={"grant_type": "password", "client_id": "c", "username": "oscar@contoso.com",
                                     "password": "x", "scope": GRAPH_SCOPE})
    assert disabled.status_code == 400 and disabled.json()["error_codes"] == [50057]
    unknown = httpx.post(url, data={"grant_type": "password", "client_id": "c", "username": "nobody@contoso.com",
                                    "password": "x", "scope": GRAPH_SCOPE})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"


def test_openid_configuration(local_tenant: LocalTenant) -> None:
    resp = httpx.get(f"{local_tenant.base_url}/{local_tenant.tenant_id}/v2.0/.well-known/openid-configuration")
    doc = resp.json()
    assert doc["token_endpoint"] == f"{local_tenant.base_url}/{local_tenant.tenant_id}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] and doc["issuer"]
    assert httpx.get(f"{local_tenant.base_url}/fabrikam.com/v2.0/.well-known/openid-configuration").status_code == 400


def test_401_without_token_wrong_audience_and_expired(local_tenant: LocalTenant) -> None:
    body = {"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "alice"}}}
    graph_url = f"{local_tenant.base_url}/v1.0/users/alice@contoso.com"
    assert httpx.post(local_tenant.exchange_url, json=body).status_code == 401
    no_token = httpx.get(graph_url)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "InvalidAuthenticationToken"
    graph_token = local_tenant.token(GRAPH_SCOPE)
    exo_token = local_tenant.token(EXCHANGE_SCOPE)
    # A Graph token is issued fine but refused by Exchange, and the other way round.
    wrong = httpx.post(local_tenant.exchange_url, json=body, headers={"Authorization": f"Bearer {graph_token}"})
    assert wrong.status_code == 401 and "audience" in wrong.headers["WWW-Authenticate"]
    wrong_graph = httpx.get(graph_url, headers={"Authorization": f"Bearer {exo_token}"})
    assert wrong_graph.status_code == 401 and "audience" in wrong_graph.json()["error"]["message"]
    expired = httpx.post(f"{local_tenant.base_url}/_emulator/tokens",
                         json={"scope": GRAPH_SCOPE, "lifetime_seconds": -60}).json()["access_token"]
    late = httpx.get(graph_url, headers={"Authorization": f"Bearer {expired}"})
    assert late.status_code == 401 and "expired" in late.json()["error"]["message"]
    forged = graph_token[:-4] + ("AAAA" if not graph_token.endswith("AAAA") else "BBBB")
    assert httpx.get(graph_url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    other_tenant = local_tenant.exchange_url.replace(local_tenant.tenant_id, "fabrikam.onmicrosoft.com")
    assert httpx.post(other_tenant, json=body, headers={"Authorization": f"Bearer {exo_token}"}).status_code == 401
    # The tenant segment may be the GUID or any accepted domain.
    by_domain = local_tenant.exchange_url.replace(local_tenant.tenant_id, "contoso.com")
    assert httpx.post(by_domain, json=body, headers={"Authorization": f"Bearer {exo_token}"}).status_code == 200
    assert local_tenant.metrics()["statuses"]["401"] == 7
