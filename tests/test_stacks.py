"""Per-stack tenant configuration and the credential each auth mode builds (no network needed)."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    WorkloadIdentityCredential,
)
from mailroom.engine.stacks import tenant_config
from mailroom.errors import ConfigError
from mailroom.m365.auth import CLOUDS, EXCHANGE_SCOPE, GRAPH_SCOPE, AzureTokenSource, azure_credential, cloud_scopes
from mailroom.m365.tenant import TenantConfig, token_source

TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "11111111-1111-1111-1111-1111111111bb"


def write_stack(tmp: Path, **config: str) -> None:
    lines = "".join(f"  mailroom:{k}: {v}\n" for k, v in config.items())
    (tmp / "Pulumi.production.yaml").write_text("config:\n" + lines)


def test_real_stack_reads_its_tenant_from_config(tmp_path: Path) -> None:
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="workload-identity")
    cfg = tenant_config(tmp_path, "production")
    assert cfg == TenantConfig(tenant_id=TENANT, auth_mode="workload-identity", client_id=CLIENT)
    assert (cfg.cloud, cfg.exchange_url, cfg.authority) == ("public", "https://outlook.office365.com",
                                                            "https://login.microsoftonline.com")
    assert TenantConfig.from_json(cfg.to_json()) == cfg
    assert "secret" not in json.loads(cfg.to_json())  # the config the engine passes on holds no credential


@pytest.mark.parametrize("config,cloud,exchange,graph,authority", [
    ({"cloud": "usgov-high"}, "usgov-high", "https://outlook.office365.us", "https://graph.microsoft.us/v1.0",
     "https://login.microsoftonline.us"),
    ({"cloud": "usgov-dod"}, "usgov-dod", "https://webmail.apps.mil", "https://dod-graph.microsoft.us/v1.0",
     "https://login.microsoftonline.us"),
    ({"cloud": "china"}, "china", "https://partner.outlook.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0",
     "https://login.chinacloudapi.cn"),
    # a stack written before `mailroom:cloud`, as the README showed it: the endpoints name the cloud
    ({"exchangeUrl": "https://outlook.office365.us", "graphUrl": "https://graph.microsoft.us/v1.0",
      "authority": "https://login.microsoftonline.us"}, "usgov-high", "https://outlook.office365.us",
     "https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    ({"graphUrl": "https://dod-graph.microsoft.us/v1.0"}, "usgov-dod", "https://webmail.apps.mil",
     "https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
    # an override on a host of no cloud (a regional Exchange host) keeps the rest of the cloud
    ({"cloud": "usgov-high", "exchangeUrl": "https://x.outlook.office365.us"}, "usgov-high",
     "https://x.outlook.office365.us", "https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
])
def test_a_sovereign_stack_gets_its_clouds_endpoints(tmp_path: Path, config: dict[str, str], cloud: str,
                                                      exchange: str, graph: str, authority: str) -> None:
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="secret", **config)
    cfg = tenant_config(tmp_path, "production")
    assert (cfg.cloud, cfg.exchange_url, cfg.graph_url, cfg.authority) == (cloud, exchange, graph, authority)
    assert TenantConfig.from_json(cfg.to_json()) == cfg  # what the engine process receives


@pytest.mark.parametrize("config,message", [
    ({"authority": "https://login.microsoftonline.us"}, "usgov-dod and usgov-high; set `mailroom:cloud`"),
    ({"authority": "https://login.microsoftonline.us", "graphUrl": "https://graph.microsoft.com/v1.0"},
     "graphUrl` https://graph.microsoft.com/v1.0 belongs to the public cloud"),
    ({"cloud": "china", "authority": "https://login.microsoftonline.com"}, "belongs to the public cloud"),
    ({"cloud": "mars"}, "unknown `mailroom:cloud` 'mars'"),
])
def test_endpoints_of_two_clouds_are_a_clear_error(tmp_path: Path, config: dict[str, str], message: str) -> None:
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="secret", **config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        tenant_config(tmp_path, "production")


@pytest.mark.parametrize("config,message", [
    ({"tenantId": TENANT, "clientId": CLIENT}, "mailroom:authMode"),
    ({"clientId": CLIENT, "authMode": "secret"}, "mailroom:tenantId"),
    ({"tenantId": TENANT, "clientId": CLIENT, "authMode": "local"}, "only for the stack 'local'"),
])
def test_incomplete_stack_config_is_a_clear_error(tmp_path: Path, config: dict[str, str], message: str) -> None:
    write_stack(tmp_path, **config)
    with pytest.raises(ConfigError, match=message):
        tenant_config(tmp_path, "production")
    with pytest.raises(ConfigError, match="no Pulumi.staging.yaml"):
        tenant_config(tmp_path, "staging")


def self_signed_pem(ip: str | None = None) -> bytes:
    """A private key and a self-signed certificate in one PEM, as CertificateCredential reads them
    (with ``ip``: a TLS server certificate for that address)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailroom-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)))
    if ip:
        cert = cert.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                  critical=False)
    cert = cert.sign(key, hashes.SHA256())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)


def test_each_auth_mode_builds_its_credential_from_the_environment(tmp_path: Path) -> None:
    assert isinstance(azure_credential("secret", TENANT, CLIENT, {"AZURE_CLIENT_SECRET": "s3cret"}),
                      ClientSecretCredential)
    cert = tmp_path / "app.pem"
    cert.write_bytes(self_signed_pem())
    assert isinstance(azure_credential("certificate", TENANT, CLIENT, {"AZURE_CLIENT_CERTIFICATE_PATH": str(cert)}),
                      CertificateCredential)
    github = {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/?x=1", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}
    assert isinstance(azure_credential("workload-identity", TENANT, CLIENT, github), ClientAssertionCredential)
    for mode, env, missing in [("secret", {}, "AZURE_CLIENT_SECRET"),
                               ("certificate", {}, "AZURE_CLIENT_CERTIFICATE_PATH"),
                               ("workload-identity", {}, "id-token: write"),
                               ("password", {}, "unknown auth mode")]:
        with pytest.raises(ConfigError, match=missing):
            azure_credential(mode, TENANT, CLIENT, env)


def usgov_credentials(tmp_path: Path, authority: str, **options: bool) -> dict[str, Any]:
    """Every credential mailroom builds, for a tenant signing in at ``authority``."""
    cert = tmp_path / "app.pem"
    cert.write_bytes(self_signed_pem())
    token_file = tmp_path / "federated-token"
    token_file.write_text("header.payload.signature")
    envs = {"secret": {"AZURE_CLIENT_SECRET": "s3cret"},
            "certificate": {"AZURE_CLIENT_CERTIFICATE_PATH": str(cert)},
            "workload-identity (token file)": {"AZURE_FEDERATED_TOKEN_FILE": str(token_file)},
            "workload-identity (GitHub OIDC)": {"ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/?x=1",
                                                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}}
    return {name: azure_credential(name.split(" ")[0], TENANT, CLIENT, env, authority=authority, **options)
            for name, env in envs.items()}


def test_every_credential_of_a_us_gov_stack_signs_in_at_its_authority(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The authority azure-identity will use, read from the built credentials (a real request to
    login.microsoftonline.us is not possible here; the next test makes one to a local authority)."""
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="secret", cloud="usgov-high")
    cfg = tenant_config(tmp_path, "production")
    built = usgov_credentials(tmp_path, cfg.authority)
    assert [type(c) for c in built.values()] == [ClientSecretCredential, CertificateCredential,
                                                 WorkloadIdentityCredential, ClientAssertionCredential]
    for name, credential in built.items():
        # MSAL-based credentials keep it as _authority, the assertion ones in their AadClient
        used = getattr(credential, "_authority", None) or credential._client._authority
        assert used == "https://login.microsoftonline.us", name
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "s3cret")
    source = token_source(cfg)  # what Tenant builds for the stack
    assert isinstance(source, AzureTokenSource)
    assert source._credential._authority == "https://login.microsoftonline.us"


class TokenEndpoint(BaseHTTPRequestHandler):
    """A TLS authority on loopback: MSAL's discovery document and the token endpoint."""

    server: Any

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        base = f"https://127.0.0.1:{self.server.server_port}/{TENANT}"
        self.server.seen.append(("GET", self.path, {}))
        self._json({"token_endpoint": f"{base}/oauth2/v2.0/token", "issuer": f"{base}/v2.0",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize"})

    def do_POST(self) -> None:  # noqa: N802
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.server.seen.append(("POST", self.path, {k: v[0] for k, v in form.items()}))
        self._json({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                    "access_token": f"token-{len(self.server.seen)}"})

    def _json(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An https authority on 127.0.0.1 (azure-identity refuses plain http), trusted through
    REQUESTS_CA_BUNDLE, which azure-core's requests transport honours (wire reference D)."""
    pem = tmp_path / "tls.pem"
    pem.write_bytes(self_signed_pem(ip="127.0.0.1"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pem))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    for name in ("AZURE_AUTHORITY_HOST", "AZURE_REGIONAL_AUTHORITY_NAME"):  # only the config may decide
        monkeypatch.delenv(name, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenEndpoint)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pem)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_every_credential_asks_the_stacks_authority_for_the_clouds_scopes(tmp_path: Path, authority: Any) -> None:
    """A real token request from each credential type, to the authority of the stack config; the
    Exchange and Graph scopes asked for are the cloud's (GCC High), not the public cloud's."""
    url = f"https://127.0.0.1:{authority.server_port}"
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="secret", cloud="usgov-high", authority=url)
    cfg = tenant_config(tmp_path, "production")
    assert cfg.authority == url and cfg.graph_url == "https://graph.microsoft.us/v1.0"
    # MSAL validates an authority it does not know with Microsoft's discovery service; a loopback
    # authority must skip that (the sovereign authorities are known to MSAL and need not).
    built = usgov_credentials(tmp_path, cfg.authority, disable_instance_discovery=True)
    for name, credential in built.items():
        if "GitHub" in name:
            continue  # its assertion comes from GitHub's OIDC endpoint: same credential class as the token file's
        authority.seen.clear()
        source = AzureTokenSource(credential, cloud_scopes(CLOUDS[cfg.cloud]))
        asyncio.run(source.token(EXCHANGE_SCOPE))
        asyncio.run(source.token(GRAPH_SCOPE))
        posts = [(path, form) for method, path, form in authority.seen if method == "POST"]
        assert [path for path, _ in posts] == [f"/{TENANT}/oauth2/v2.0/token"] * 2, name
        assert [form["scope"] for _, form in posts] == ["https://outlook.office365.us/.default",
                                                        "https://graph.microsoft.us/.default"], name
        assert all(form["client_id"] == CLIENT for _, form in posts)
        assert ("client_secret" in posts[0][1]) == (name == "secret")
