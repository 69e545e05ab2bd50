"""`mailroom tenant`: run or seed the local tenant emulator.

mailroom never imports the emulator (``localtenant``); these sub-commands run
``python -m localtenant ...`` in a child process with the same interpreter and pass its
exit code through.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from mailroom import paths
from mailroom.cli import error_handler

EPILOG = """The local tenant speaks the Exchange Online admin API (InvokeCommand, $batch),
Microsoft Graph v1.0 (users, mailboxSettings, $batch, directoryAudits) and the Entra token
endpoint on one loopback port, with state in SQLite. Control routes (not part of the real
services): GET /_emulator/health, GET /_emulator/metrics, POST /_emulator/metrics/reset,
GET|PUT /_emulator/profile (fault profile at run time).

fault profile (YAML or JSON), e.g.:
  {seed: 7, latency_ms: {mean: 300, jitter: 50}, rate_limit: {per_second: 50, burst: 100},
   max_concurrency_per_app: 20, throttle_rate: 0.2, error_rate: 0.05, drop_rate: 0.01}

exit codes: serve and seed pass the emulator's own through (0 done); 64 usage error.
"""
DEFAULT_STATE = f"${paths.STATE_DIR_ENV}/{paths.TENANT_DB_NAME}, else .mailroom/{paths.TENANT_DB_NAME}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tenant", help="run or seed the local tenant emulator",
                       description="Run or seed the local Microsoft 365 tenant emulator used by the `local` "
                                   "stack, the tests and the benchmarks.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="tenant_command", metavar="ACTION")
    serve = actions.add_parser(
        "serve", help="serve the emulator in the foreground",
        description="Serve the local tenant until interrupted. An empty state file is seeded with the shipped "
                    "Contoso directory (30 users, a disabled leaver, 3 mail-enabled security groups).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--state", help=f"SQLite state file (default: {DEFAULT_STATE})")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default: 8765)")
    serve.add_argument("--port-file", metavar="FILE", help="write the bound port to FILE once listening")
    serve.add_argument("--profile", metavar="FILE", help="fault profile (YAML or JSON): latency, rate limit, "
                                                         "concurrency cap, 429/5xx/dropped-connection rates")
    serve.add_argument("--seed-directory", action="append", default=[], metavar="FILE",
                       help="seed this directory file (users, groups, shared mailboxes) before serving; "
                            "repeatable")
    serve.add_argument("--skiptoken-ttl", type=float, metavar="SECONDS",
                       help="Exchange paging continuation lifetime (default: 1800, as documented)")
    serve.set_defaults(func=run_serve)
    seed = actions.add_parser(
        "seed", help="seed a state file from a directory file",
        description="Add the users, groups and shared mailboxes of FILE to the local tenant's state. Objects "
                    "that already exist are left alone. The format is documented in infra/localtenant/seed.py; "
                    "infra/localtenant/data/directory.yaml is the shipped example.")
    seed.add_argument("file", metavar="FILE", help="directory file (YAML or JSON)")
    seed.add_argument("--state", help=f"SQLite state file (default: {DEFAULT_STATE})")
    seed.set_defaults(func=run_seed)
    stop = actions.add_parser(
        "stop", help="stop the embedded local tenant that plan/apply/drift started in the background",
        description="Stop the local tenant that mailroom started on demand (its state in .mailroom/tenant.db "
                    "is kept; the next command starts it again).",
        epilog="exit codes: 0 stopped, 1 none was running, 64 usage error")
    stop.set_defaults(func=run_stop)

    def usage(_args: argparse.Namespace) -> int:
        p.print_help(sys.stderr)
        return error_handler.USAGE

    p.set_defaults(func=usage)


def _localtenant(argv: list[str]) -> int:
    try:
        return subprocess.call([sys.executable, "-m", "localtenant", *argv])
    except KeyboardInterrupt:  # the child got the same Ctrl-C and shuts down on its own
        return 130


def run_serve(args: argparse.Namespace) -> int:
    argv = ["serve", "--state", _state(args), "--host", args.host, "--port", str(args.port)]
    for flag, value in (("--port-file", args.port_file), ("--profile", args.profile),
                        ("--skiptoken-ttl", args.skiptoken_ttl)):
        if value is not None:
            argv += [flag, str(value)]
    for path in args.seed_directory:
        argv += ["--seed-directory", path]
    return _localtenant(argv)


def run_seed(args: argparse.Namespace) -> int:
    return _localtenant(["seed", "--state", _state(args), args.file])


def _state(args: argparse.Namespace) -> str:
    # The same database the commands start the local tenant on (paths.tenant_db), not a second one.
    return str(args.state or paths.tenant_db())


def run_stop(_args: argparse.Namespace) -> int:
    from mailroom.engine.embedded import stop

    if stop(paths.PROJECT_DIR):
        print("mailroom: local tenant stopped")
        return 0
    print("mailroom: no local tenant was running")
    return 1
