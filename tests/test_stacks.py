"""Per-stack tenant configuration and the credential each auth mode builds (no network needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.identity import CertificateCredential, ClientAssertionCredential, ClientSecretCredential
from mailroom.auth import azure_credential
from mailroom.errors import ConfigError
from mailroom.stacks import tenant_config
from mailroom.tenant import TenantConfig

TENANT = "00000000-0000-0000-0000-0000000000aa"
CLIENT = "11111111-1111-1111-1111-1111111111bb"


def write_stack(tmp: Path, **config: str) -> None:
    lines = "".join(f"  mailroom:{k}: {v}\n" for k, v in config.items())
    (tmp / "Pulumi.production.yaml").write_text("config:\n" + lines)


def test_real_stack_reads_its_tenant_from_config(tmp_path: Path) -> None:
    write_stack(tmp_path, tenantId=TENANT, clientId=CLIENT, authMode="workload-identity",
                graphUrl="https://graph.microsoft.us/v1.0")
    cfg = tenant_config(tmp_path, "production")
    assert cfg == TenantConfig(tenant_id=TENANT, auth_mode="workload-identity", client_id=CLIENT,
                               graph_url="https://graph.microsoft.us/v1.0")
    assert cfg.exchange_url == "https://outlook.office365.com"
    assert TenantConfig.from_json(cfg.to_json()) == cfg
    assert "secret" not in json.loads(cfg.to_json())  # the config the engine passes on holds no credential


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


def self_signed_pem() -> bytes:
    """A private key and a self-signed certificate in one PEM, as CertificateCredential reads them."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailroom-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
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
