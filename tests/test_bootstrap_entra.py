"""bootstrap's Entra program (pulumi-azuread) under Pulumi mocks.

What this covers: every resource the program declares, its inputs, and the consent graph (which service
principal holds which app role on which API). What it cannot cover: what Entra does with them; the
azuread provider plugin cannot be built here (README "mailroom bootstrap"), so no Entra API is called.
The mock answers the resource APIs' ``app_role_ids`` with the real Graph and Exchange role ids, including
roles mailroom must *not* get, so a wrong role name would resolve to a wrong id and fail the test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
import pytest
from mailroom.bootstrap import entra
from mailroom.bootstrap.identities import APPLY, PLAN, CiTarget, federated_credentials

GRAPH = "00000003-0000-0000-c000-000000000000"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
# Published role ids (Graph permissions reference; Exchange.ManageAsApp: wire reference A.2).
ROLE_IDS = {
    GRAPH: {"User.Read.All": "df021288-bdef-4463-88db-98f22de89214",
            "User.EnableDisableAccount.All": "3011c876-62b7-4ada-afa2-506cbbecc68c",
            "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
            "GroupMember.Read.All": "98830695-27a2-44f7-8c18-0c3ebc9698f6",
            # [uncertain] AuditLogsQuery-Exchange.Read.All's id is from a third-party copy of Graph's app roles,
            # ExchangeMessageTrace.Read.All's was not found (searched again for issue 15's group work, in vain):
            # a stand-in that only this mock knows.
            "AuditLogsQuery-Exchange.Read.All": "6b0d2622-d34e-4470-935b-b96550e5ca8d",
            "ExchangeMessageTrace.Read.All": "00000000-0000-0000-0000-0000000e7ace",
            "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
            "Directory.ReadWrite.All": "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
            "RoleManagement.ReadWrite.Directory": "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8"},
    EXCHANGE: {"Exchange.ManageAsApp": "dc50a0fb-09a3-484d-be87-e023b12c6440",
               "full_access_as_app": "dc890d15-9560-4a4c-9b7f-a736ec74ec40"},
}
ID_TO_ROLE = {role_id: name for roles in ROLE_IDS.values() for name, role_id in roles.items()}
PREFIX = "azuread:index/"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[tuple[str, str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        kind = args.typ.removeprefix(PREFIX).split(":")[0]
        if kind == "servicePrincipal":
            state["objectId"] = f"sp:{args.name}"
            if args.inputs.get("useExisting"):
                state["appRoleIds"] = ROLE_IDS[args.inputs["clientId"]]
        if kind == "application":
            state["clientId"] = f"client:{args.name}"
        self.resources.append((kind, args.name, dict(args.inputs)))
        return f"/{kind}/{args.name}", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        raise AssertionError(f"the program calls no function, got {args.token}")


def run(ci: CiTarget) -> Mocks:
    # Pulumi's mock runtime uses the thread's current event loop; an earlier asyncio.run() unsets it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        mocks = Mocks()
        pulumi.runtime.set_mocks(mocks, project="mailroom", stack="bootstrap-test", preview=False)

        @pulumi.runtime.test
        def program() -> None:
            entra.declare(ci)

        program()
        return mocks
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def of(mocks: Mocks, kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(name, inputs) for k, name, inputs in mocks.resources if k == kind]


def consent(mocks: Mocks) -> set[tuple[str, str, str]]:
    """(principal, API, role) of every app role assignment: the consent graph."""
    api = {f"sp:{name}": inputs["clientId"] for name, inputs in of(mocks, "servicePrincipal")}
    return {(a["principalObjectId"].removeprefix("sp:"), api[a["resourceObjectId"]], ID_TO_ROLE[a["appRoleId"]])
            for _, a in of(mocks, "appRoleAssignment")}


GITHUB = CiTarget("github", "contoso/mailboxes")


def test_two_apps_two_service_principals_and_the_least_set_of_app_roles() -> None:
    mocks = run(GITHUB)
    apps = of(mocks, "application")
    assert sorted(name for name, _ in apps) == ["mailroom-apply", "mailroom-plan"]
    assert all(inputs["signInAudience"] == "AzureADMyOrg" and "password" not in inputs for _, inputs in apps)
    own_sps = [(n, i) for n, i in of(mocks, "servicePrincipal") if not i.get("useExisting")]
    assert sorted((n, i["clientId"]) for n, i in own_sps) == [
        ("mailroom-apply", "client:mailroom-apply"), ("mailroom-plan", "client:mailroom-plan")]
    assert consent(mocks) == {
        ("mailroom-plan", GRAPH, "User.Read.All"), ("mailroom-plan", GRAPH, "AuditLog.Read.All"),
        ("mailroom-plan", GRAPH, "AuditLogsQuery-Exchange.Read.All"), ("mailroom-plan", GRAPH,
                                                                       "ExchangeMessageTrace.Read.All"),
        ("mailroom-plan", GRAPH, "GroupMember.Read.All"), ("mailroom-plan", EXCHANGE, "Exchange.ManageAsApp"),
        ("mailroom-apply", GRAPH, "User.Read.All"), ("mailroom-apply", GRAPH, "User.EnableDisableAccount.All"),
        ("mailroom-apply", GRAPH, "AuditLog.Read.All"), ("mailroom-apply", GRAPH, "AuditLogsQuery-Exchange.Read.All"),
        ("mailroom-apply", EXCHANGE, "Exchange.ManageAsApp"),
    }
    # The resource APIs are referenced, never created; nothing grants a directory role or a broad permission.
    assert sorted(i["clientId"] for _, i in of(mocks, "servicePrincipal") if i.get("useExisting")) == [EXCHANGE, GRAPH]
    assert {k for k, _, _ in mocks.resources} == {"application", "servicePrincipal", "appRoleAssignment",
                                                 "applicationFederatedIdentityCredential"}
    granted = {role for _, _, role in consent(mocks)}
    assert not granted & {"Directory.ReadWrite.All", "User.ReadWrite.All", "RoleManagement.ReadWrite.Directory",
                          "full_access_as_app"}


def test_each_app_lists_exactly_its_consented_roles_as_required_access() -> None:
    mocks = run(GITHUB)
    for name, inputs in of(mocks, "application"):
        listed = {(r["resourceAppId"], ID_TO_ROLE[a["id"]]) for r in inputs["requiredResourceAccesses"]
                  for a in r["resourceAccesses"] if a["type"] == "Role"}
        assert listed == {(api, role) for who, api, role in consent(mocks) if who == name}


def test_github_subjects_plan_on_pull_requests_and_main_apply_only_in_the_environment() -> None:
    mocks = run(GITHUB)
    creds = {(n.split("-github")[0], i["subject"]) for n, i in of(mocks, "applicationFederatedIdentityCredential")}
    assert creds == {("mailroom-plan", "repo:contoso/mailboxes:pull_request"),
                     ("mailroom-plan", "repo:contoso/mailboxes:ref:refs/heads/main"),
                     ("mailroom-plan", "repo:contoso/mailboxes:environment:drift"),
                     ("mailroom-apply", "repo:contoso/mailboxes:environment:production")}
    for _, inputs in of(mocks, "applicationFederatedIdentityCredential"):
        assert inputs["issuer"] == "https://token.actions.githubusercontent.com"
        assert inputs["audiences"] == ["api://AzureADTokenExchange"]
        assert inputs["applicationId"] in ("/application/mailroom-plan", "/application/mailroom-apply")


def test_azure_devops_one_service_connection_per_identity() -> None:
    issuer = "https://vstoken.dev.azure.com/1f3c2a9e-0000-4000-8000-000000000001"
    mocks = run(CiTarget("azure-devops", "contoso/mailboxes", issuer=issuer))
    creds = {(i["applicationId"], i["subject"], i["issuer"])
             for _, i in of(mocks, "applicationFederatedIdentityCredential")}
    assert creds == {("/application/mailroom-plan", "sc://contoso/mailboxes/mailroom-plan", issuer),
                     ("/application/mailroom-apply", "sc://contoso/mailboxes/mailroom-apply", issuer)}


def test_gitlab_apply_only_on_the_protected_branch_plan_on_any_branch() -> None:
    mocks = run(CiTarget("gitlab", "contoso/mailboxes"))
    exact = [(i["applicationId"], i["subject"]) for _, i in of(mocks, "applicationFederatedIdentityCredential")]
    assert exact == [("/application/mailroom-apply", "project_path:contoso/mailboxes:ref_type:branch:ref:main")]
    flexible = [i for _, i in of(mocks, "applicationFlexibleFederatedIdentityCredential")]
    assert [(i["applicationId"], i["issuer"], i["audience"], i["claimsMatchingExpression"]) for i in flexible] == [
        ("/application/mailroom-plan", "https://gitlab.com", "api://AzureADTokenExchange",
         "claims['sub'] matches 'project_path:contoso/mailboxes:ref_type:branch:ref:*'")]


@pytest.mark.parametrize("bad", [
    dict(system="jenkins", repo="a/b"), dict(system="github", repo="justaname"),
    dict(system="github", repo="a/b:ref:refs/heads/x"), dict(system="azure-devops", repo="org/project"),
])
def test_a_target_that_would_give_a_wrong_subject_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        CiTarget(**bad)


def test_every_credential_belongs_to_a_declared_identity() -> None:
    for ci in (GITHUB, CiTarget("gitlab", "g/p"), CiTarget("azure-devops", "o/p", issuer="https://vstoken.dev.azure.com/x")):
        assert {c.identity for c in federated_credentials(ci)} == {PLAN.key, APPLY.key}
