"""mailroom's two identities and everything they may do: each permission, role and subject once.

Pure data and pure functions; ``entra.py`` (pulumi-azuread), ``exchange.py`` (Exchange RBAC) and the
CLI's ``show`` all read it, so what is granted, what is tested and what is shown cannot disagree.

Sources. Graph app roles and the least-privileged choice per call: the Graph reference pages of the
calls mailroom makes (``GET /users``, ``PATCH /users/{id}`` for ``accountEnabled``: "User.EnableDisableAccount.All
and User.Read.All" is the least-privileged pair, ``GET /auditLogs/directoryAudits``: AuditLog.Read.All,
``/security/auditLog/queries``: AuditLogsQuery-Exchange.Read.All for Exchange records, ``GET
/admin/exchange/tracing/messageTraces``: ExchangeMessageTrace.Read.All, ``GET /users/{id}/transitiveMemberOf``
and ``GET /groups/{id}/transitiveMembers``: GroupMember.Read.All; User.Read.All alone lists a user's groups
by id only, without names).
``Exchange.ManageAsApp`` and its role id: wire reference A.2. Exchange roles per cmdlet: M365DSC's
settings.json per resource (Mail Recipients for *-MailboxPermission and *-RecipientPermission, View-Only
Recipients to read mailbox permissions) and the built-in roles' descriptions (Mail Recipient Creation:
New-/Remove-Mailbox; View-Only Configuration: Get-AcceptedDomain). No Exchange audit role: Search-AdminAuditLog
was retired in 2024, and the unified audit log is read through Graph. Federated credential subjects: GitHub's
OIDC docs (``repo:O/R:pull_request``, ``repo:O/R:ref:refs/heads/B``, ``repo:O/R:environment:E``), Azure
DevOps' workload identity service connections (issuer ``https://vstoken.dev.azure.com/<organization id>``, subject
``sc://<organization>/<project>/<service connection>``), GitLab's ID tokens (``project_path:G/P:ref_type:
branch:ref:B``); the audience is Entra's ``api://AzureADTokenExchange`` for all three.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph
EXCHANGE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"  # Office 365 Exchange Online
AUDIENCE = "api://AzureADTokenExchange"
CI_SYSTEMS = ("github", "azure-devops", "gitlab")


@dataclass(frozen=True)
class AppRole:
    """An application permission on a Microsoft API, granted by an app role assignment (admin consent)."""

    api: str
    api_app_id: str
    name: str
    why: str  # which commands need it, for `bootstrap show` and the plan


@dataclass(frozen=True)
class Scope:
    """An Exchange recipient management scope."""

    name: str
    filter: str


@dataclass(frozen=True)
class ExchangeRole:
    role: str
    write_scope: Scope | None  # None: the role's own (organisation-wide) scope; only read-only roles have none
    why: str


@dataclass(frozen=True)
class Identity:
    key: str  # "plan" | "apply"
    display_name: str
    purpose: str
    app_roles: tuple[AppRole, ...]
    exchange_roles: tuple[ExchangeRole, ...]

    def assignment_name(self, role: ExchangeRole) -> str:
        """The role assignment's name in Exchange (at most 64 characters)."""
        return f"{self.display_name}-{role.role}"[:64]


USER_READ = AppRole("Microsoft Graph", GRAPH_APP_ID, "User.Read.All",
                    "resolve people to Entra object ids and read the sign-in state of shared mailboxes' accounts "
                    "(plan, apply, drift, import)")
USER_ENABLE_DISABLE = AppRole("Microsoft Graph", GRAPH_APP_ID, "User.EnableDisableAccount.All",
                              "block or allow sign-in of a shared mailbox's account, accountEnabled (apply); the "
                              "narrowest permission that writes it, instead of User.ReadWrite.All")
AUDIT_READ = AppRole("Microsoft Graph", GRAPH_APP_ID, "AuditLog.Read.All",
                     "who changed sign-in, from the directory audits (drift)")
AUDIT_QUERY = AppRole("Microsoft Graph", GRAPH_APP_ID, "AuditLogsQuery-Exchange.Read.All",
                      "search the unified audit log's Exchange records: who changed a grant (drift) and who uses "
                      "their access (review); Search-AdminAuditLog is retired")
MESSAGE_TRACE = AppRole("Microsoft Graph", GRAPH_APP_ID, "ExchangeMessageTrace.Read.All",
                        "message traces: which mailboxes still receive mail (review's decommission candidates)")
GROUP_MEMBERS = AppRole("Microsoft Graph", GRAPH_APP_ID, "GroupMember.Read.All",
                        "nested group membership: who holds access through a group (who, revoke) and which of a "
                        "group's members used it (review)")
MANAGE_AS_APP = AppRole("Office 365 Exchange Online", EXCHANGE_APP_ID, "Exchange.ManageAsApp",
                        "call Exchange admin REST without a user; what the app may do there is its Exchange "
                        "roles below, nothing more")

SHARED_MAILBOXES = Scope("mailroom-shared-mailboxes", "RecipientTypeDetails -eq 'SharedMailbox'")

READ_RECIPIENTS = ExchangeRole("View-Only Recipients", None,
                               "read mailboxes, recipients, Full Access and Send As (plan, drift, import)")
READ_CONFIGURATION = ExchangeRole("View-Only Configuration", None, "read the accepted domains (import)")
WRITE_RECIPIENTS = ExchangeRole("Mail Recipients", SHARED_MAILBOXES,
                                "change shared mailboxes: settings, aliases, Full Access, Send As, Send on "
                                "Behalf (apply); also reads what it changes")
CREATE_RECIPIENTS = ExchangeRole("Mail Recipient Creation", SHARED_MAILBOXES,
                                 "create and delete shared mailboxes (apply)")

PLAN = Identity("plan", "mailroom-plan", "read only: validate, plan (pull requests), drift, import, who, review",
                (USER_READ, AUDIT_READ, AUDIT_QUERY, MESSAGE_TRACE, GROUP_MEMBERS, MANAGE_AS_APP),
                (READ_RECIPIENTS, READ_CONFIGURATION))
APPLY = Identity("apply", "mailroom-apply", "writes, shared mailboxes only: apply, drift --remediate",
                 (USER_READ, USER_ENABLE_DISABLE, AUDIT_READ, AUDIT_QUERY, MANAGE_AS_APP),
                 (WRITE_RECIPIENTS, CREATE_RECIPIENTS))
IDENTITIES = (PLAN, APPLY)

# The local tenant has no Entra app registrations: there the two identities are these client ids (any
# client id gets a token there; what it may do in Exchange is what bootstrap registers for it).
LOCAL_CLIENT_IDS = {PLAN.key: "mailroom-plan", APPLY.key: "mailroom-apply"}


@dataclass(frozen=True)
class CiTarget:
    """Where mailroom's pipelines run: the federated credentials are derived from it."""

    system: str  # one of CI_SYSTEMS
    repo: str  # GitHub owner/repo, GitLab group/project, Azure DevOps organization/project
    environment: str = "production"  # GitHub: the apply job's protected environment
    branch: str = "main"
    issuer: str = ""  # GitLab: the instance (default https://gitlab.com); Azure DevOps: required
    connections: dict[str, str] = field(default_factory=lambda: {"plan": "mailroom-plan", "apply": "mailroom-apply"})

    def __post_init__(self) -> None:
        if self.system not in CI_SYSTEMS:
            raise ValueError(f"unknown CI system {self.system!r}; use one of {', '.join(CI_SYSTEMS)}")
        owner, _, name = self.repo.partition("/")
        if not owner or not name or any(c.isspace() or c in ":'\"" for c in self.repo):
            raise ValueError(f"repository {self.repo!r} must be OWNER/NAME (GitHub), GROUP/PROJECT (GitLab) or "
                             "ORGANIZATION/PROJECT (Azure DevOps)")
        if self.system == "azure-devops" and not self.issuer.startswith("https://vstoken.dev.azure.com/"):
            raise ValueError("Azure DevOps needs --issuer https://vstoken.dev.azure.com/<organization id> (the "
                             "issuer its workload identity service connection shows)")


@dataclass(frozen=True)
class FederatedCredential:
    """Entra trusts a CI job's OIDC token as the identity: exact ``subject``, or a ``matches`` pattern
    (a flexible federated credential) where the CI system puts a varying branch name in the subject."""

    identity: str  # Identity.key
    name: str
    issuer: str
    subject: str
    matches: bool = False
    audience: str = AUDIENCE

    @property
    def claims_matching_expression(self) -> str:
        return f"claims['sub'] matches '{self.subject}'"


def federated_credentials(ci: CiTarget) -> list[FederatedCredential]:
    """Plan: pull requests and the default branch; apply: only the protected environment (GitHub), its own
    service connection (Azure DevOps) or the protected default branch (GitLab)."""
    if ci.system == "github":
        issuer, base = "https://token.actions.githubusercontent.com", f"repo:{ci.repo}"
        return [FederatedCredential("plan", "github-pull-requests", issuer, f"{base}:pull_request"),
                FederatedCredential("plan", f"github-{ci.branch}", issuer, f"{base}:ref:refs/heads/{ci.branch}"),
                FederatedCredential("plan", "github-drift", issuer, f"{base}:environment:drift"),
                FederatedCredential("apply", f"github-{ci.environment}", issuer,
                                    f"{base}:environment:{ci.environment}")]
    if ci.system == "azure-devops":
        org, project = ci.repo.split("/", 1)
        return [FederatedCredential(key, f"azure-devops-{ci.connections[key]}", ci.issuer,
                                    f"sc://{org}/{project}/{ci.connections[key]}") for key in ("plan", "apply")]
    issuer, base = ci.issuer or "https://gitlab.com", f"project_path:{ci.repo}:ref_type:branch:ref:"
    # A merge request's pipeline runs on its source branch, whose name is in the subject: the plan
    # identity matches any branch (it only reads); apply is the protected default branch only.
    return [FederatedCredential("plan", "gitlab-branches", issuer, base + "*", matches=True),
            FederatedCredential("apply", f"gitlab-{ci.branch}", issuer, base + ci.branch)]


def ci_variables(client_ids: dict[str, str], tenant_id: str) -> dict[str, str]:
    """The CI variables the templates in ci/templates read (names once, here and there)."""
    return {"AZURE_TENANT_ID": tenant_id, "MAILROOM_PLAN_CLIENT_ID": client_ids["plan"],
            "MAILROOM_APPLY_CLIENT_ID": client_ids["apply"]}


def stack_yaml(tenant_id: str, apply_client_id: str) -> str:
    """``Pulumi.<stack>.yaml`` for mailroom's stack: the apply identity; CI's set-identity.sh switches a
    plan job to the plan identity."""
    return ("config:\n"
            f"  mailroom:tenantId: {tenant_id}\n"
            f"  mailroom:clientId: {apply_client_id}\n"
            "  mailroom:authMode: workload-identity\n")
