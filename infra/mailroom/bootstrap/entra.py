"""The Entra side of bootstrap as a Pulumi program (pulumi-azuread), run inline on its own stack.

Per identity of ``identities.py``: an application (single tenant), its service principal, the app roles
it holds on Microsoft Graph and Office 365 Exchange Online as app role assignments (that *is* admin
consent for application permissions; the application's ``required_resource_accesses`` list the same
roles, so the portal's "API permissions" page shows them as granted), and the federated credentials of
the CI system. No password or certificate is declared: CI signs in with its OIDC token.

The resource APIs' service principals are referenced with ``use_existing`` (they exist in every tenant),
and role ids are read from their ``app_role_ids``, so no role GUID is written here.

The pulumi-azuread provider plugin (``pulumi-resource-azuread``) cannot be built from the registries on
this project's build machine (see README "mailroom bootstrap"); the tests run this program under Pulumi
mocks, which check every resource and input, not what Entra does with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mailroom.bootstrap.identities import IDENTITIES, CiTarget, Identity, federated_credentials


@dataclass(frozen=True)
class Declared:
    """One line of what the program declares, at grant level (the plan and `bootstrap show`)."""

    identity: str
    kind: str  # "application" | "app role" | "federated credential"
    subject: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"identity": self.identity, "kind": self.kind, "subject": self.subject, "detail": self.detail}


def declared(ci: CiTarget | None, identities: tuple[Identity, ...] = IDENTITIES) -> list[Declared]:
    """What ``declare`` makes, as lines; without a CI target, no federated credentials."""
    out: list[Declared] = []
    credentials = federated_credentials(ci) if ci else []
    for i in identities:
        out.append(Declared(i.display_name, "application", i.display_name,
                            "single tenant, with its service principal; no password or certificate"))
        out += [Declared(i.display_name, "app role", r.name, f"{r.api}, admin consent: {r.why}") for r in i.app_roles]
        out += [Declared(i.display_name, "federated credential", c.subject,
                         f"{'matching ' if c.matches else ''}{c.issuer}") for c in credentials if c.identity == i.key]
    return out


def declare(ci: CiTarget, identities: tuple[Identity, ...] = IDENTITIES) -> None:
    import pulumi
    import pulumi_azuread as azuread  # optional extra: only bootstrap on a real tenant needs it

    apis: dict[str, Any] = {}
    for role in (r for i in identities for r in i.app_roles):
        if role.api_app_id not in apis:
            apis[role.api_app_id] = azuread.ServicePrincipal(f"api-{role.api}", client_id=role.api_app_id,
                                                             use_existing=True)

    def role_id(api_app_id: str, name: str) -> Any:
        return apis[api_app_id].app_role_ids.apply(lambda ids: ids[name])

    credentials = federated_credentials(ci)
    for identity in identities:
        by_api: dict[str, list[str]] = {}
        for role in identity.app_roles:
            by_api.setdefault(role.api_app_id, []).append(role.name)
        app = azuread.Application(
            identity.display_name, display_name=identity.display_name, sign_in_audience="AzureADMyOrg",
            description=f"mailroom ({identity.purpose}); managed by `mailroom bootstrap`",
            required_resource_accesses=[azuread.ApplicationRequiredResourceAccessArgs(
                resource_app_id=api, resource_accesses=[
                    azuread.ApplicationRequiredResourceAccessResourceAccessArgs(id=role_id(api, name), type="Role")
                    for name in names]) for api, names in by_api.items()])
        sp = azuread.ServicePrincipal(identity.display_name, client_id=app.client_id)
        for role in identity.app_roles:
            azuread.AppRoleAssignment(f"{identity.display_name}-{role.name}",
                                      app_role_id=role_id(role.api_app_id, role.name),
                                      principal_object_id=sp.object_id,
                                      resource_object_id=apis[role.api_app_id].object_id)
        for cred in (c for c in credentials if c.identity == identity.key):
            name = f"{identity.display_name}-{cred.name}"
            if cred.matches:
                azuread.ApplicationFlexibleFederatedIdentityCredential(
                    name, application_id=app.id, display_name=cred.name, issuer=cred.issuer,
                    audience=cred.audience, claims_matching_expression=cred.claims_matching_expression)
            else:
                azuread.ApplicationFederatedIdentityCredential(
                    name, application_id=app.id, display_name=cred.name, issuer=cred.issuer,
                    subject=cred.subject, audiences=[cred.audience])
        pulumi.export(f"{identity.key}_client_id", app.client_id)
        pulumi.export(f"{identity.key}_object_id", sp.object_id)  # Exchange's New-ServicePrincipal -ObjectId
