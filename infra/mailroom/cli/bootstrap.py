"""`mailroom bootstrap plan|apply|show`: mailroom's own identities as code (parse → operation → view)."""

from __future__ import annotations

import argparse
import sys

from mailroom import output
from mailroom.bootstrap import run as ops
from mailroom.bootstrap import view
from mailroom.bootstrap.identities import CI_SYSTEMS, CiTarget
from mailroom.cli import error_handler, options
from mailroom.cli.error_handler import UsageError

EPILOG = """exit codes:
  0   plan: no changes; apply: done (or nothing to do); show: shown
  1   error (tenant or engine failure, not confirmed); apply stops at the first failed change and says which
  2   plan: changes pending
  64  usage error

On the local stack only the Exchange side is planned and applied (the local tenant has no Entra); the
identities are the client ids mailroom-plan and mailroom-apply there. On a real stack the Entra side is the
Pulumi stack bootstrap-<stack> (pulumi-azuread; its provider plugin must be installed) and the Exchange side
signs in as --admin-client-id.

--json prints one document: plan {"format_version": 1, "command": "bootstrap plan", "stack", "has_changes",
"entra": {"applied", "pending", "declared"}, "exchange": {"changes": [{"op", "kind", "identity", "subject",
"detail", "cmdlet"}]}}; apply {"command": "bootstrap apply", "stack", "result", "applied", "client_ids",
"stack_yaml" (null on the local stack), "ci_variables"}; show {"command": "bootstrap show", "stack",
"identities": [{"name", "purpose", "client_id", "registered_in_exchange", "app_roles", "exchange_roles",
"federated_credentials"}], "undeclared_assignments"}.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bootstrap", help="mailroom's own identities: plan, apply, show",
                       description="Create and keep mailroom's two identities with least privilege: plan (read "
                                   "only) and apply (writes shared mailboxes only): Entra apps, federated "
                                   "credentials for CI, admin-consented Graph and Exchange app roles, and "
                                   "Exchange role assignments scoped to shared mailboxes.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("plan", "show what bootstrap would create or change, grant by grant"),
                       ("apply", "create or change it, then print the stack settings and CI variables to use"),
                       ("show", "print which identity can do what, and whether Exchange holds it")):
        a = actions.add_parser(name, help=text, description=text, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        options.add_stack(a)
        a.add_argument("--ci", choices=CI_SYSTEMS, help="the CI system whose jobs sign in as the identities")
        a.add_argument("--repo", metavar="OWNER/NAME",
                       help="GitHub owner/repo, GitLab group/project, or Azure DevOps organization/project")
        a.add_argument("--environment", default="production",
                       help="GitHub: the protected environment of the apply job (default: production)")
        a.add_argument("--branch", default="main", help="the default branch (default: main)")
        a.add_argument("--issuer", default="",
                       help="GitLab: the instance URL (default https://gitlab.com); Azure DevOps: "
                            "https://vstoken.dev.azure.com/<organization id> (required)")
        a.add_argument("--admin-client-id", metavar="ID",
                       help="real stacks: the admin app the Exchange side signs in as (Exchange Administrator)")
        options.add_json(a)
        if name == "apply":
            a.add_argument("--yes", action="store_true", help="apply without asking (CI)")
        a.set_defaults(func=run)


def _target(args: argparse.Namespace) -> ops.Target:
    ci = None
    if args.ci or args.repo:
        if not (args.ci and args.repo):
            raise UsageError("--ci and --repo go together")
        try:
            ci = CiTarget(args.ci, args.repo, environment=args.environment, branch=args.branch, issuer=args.issuer)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return ops.Target(options.stack(args.stack), ci, args.admin_client_id)


def _print(lines: list[str]) -> None:
    sys.stdout.write("\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> int:
    target = _target(args)
    command = f"bootstrap {args.action}"
    if args.action == "show":
        shown = ops.show(target)
        if args.json:
            output.print_document(command, view.show_json(shown))
        else:
            _print(view.show_text(shown))
        return error_handler.OK
    output.progress(f"mailroom: planning bootstrap of stack {target.stack}")
    planned = ops.plan(target)
    if args.action == "plan":
        if args.json:
            output.print_document(command, view.plan_json(planned))
        else:
            _print(view.plan_text(planned))
        return error_handler.CHANGES if planned.has_changes else error_handler.OK
    if not args.json:
        print("\n".join(view.plan_text(planned)), file=sys.stderr)
    if planned.has_changes and not args.yes:
        if not output.is_terminal(sys.stdin):
            raise error_handler.FatalError("not a terminal; pass --yes to apply without confirmation. Nothing "
                                           "was changed.")
        print("Apply these changes? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().casefold() not in ("y", "yes"):
            raise error_handler.FatalError("cancelled; nothing was changed")
    planned, done = ops.apply(planned)
    if args.json:
        output.print_document(command, view.applied_json(planned, done))
    else:
        _print(view.next_steps(planned, done))
    return error_handler.OK
