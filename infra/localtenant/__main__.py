"""``python -m localtenant serve|seed``: the local tenant emulator's command line."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from localtenant.context import SKIPTOKEN_TTL, Emulator
from localtenant.faults import Faults, Profile
from localtenant.http import parse_json
from localtenant.seed import SHIPPED, SeedError, load_file, seed
from localtenant.store import Store

DEFAULT_STATE = ".mailroom/tenant.db"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localtenant",
                                     description="Local Microsoft 365 tenant emulator (Exchange admin API + Graph).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="run the emulator HTTP server",
                           description="Serve Exchange InvokeCommand, Graph v1.0 and the token endpoint on one "
                                       "port. An empty state is seeded with the shipped Contoso directory.")
    serve.add_argument("--state", default=DEFAULT_STATE, help=f"SQLite state file (default {DEFAULT_STATE})")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default 8765)")
    serve.add_argument("--port-file", help="write the bound port to this file once listening")
    serve.add_argument("--profile", help="fault profile, YAML or JSON (latency, rate limit, 429/5xx/drop rates)")
    serve.add_argument("--seed-directory", action="append", default=[], metavar="FILE",
                       help="seed this directory file before serving (idempotent; repeatable, applied in order)")
    serve.add_argument("--skiptoken-ttl", type=float, default=SKIPTOKEN_TTL,
                       help="Exchange paging continuation lifetime in seconds (default 1800, as documented)")
    seed_cmd = sub.add_parser("seed", help="seed a state file from a directory file",
                              description="Seed users, groups and shared mailboxes into a state file. "
                                          "The file format is documented in localtenant/seed.py.")
    seed_cmd.add_argument("--state", default=DEFAULT_STATE, help=f"SQLite state file (default {DEFAULT_STATE})")
    seed_cmd.add_argument("file", help="directory file (YAML or JSON)")
    return parser


def load_profile(path: str) -> Profile:
    """Read and validate a profile file; ProfileError (a ValueError) says which setting is wrong."""
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        doc, ok = parse_json(text.encode())
        if not ok:
            raise ValueError("not valid JSON (NaN and Infinity are not JSON either)")
        return Profile.from_dict(doc)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"not valid YAML: {err}") from err
    return Profile.from_dict(doc)


def _check_serve_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Profile:
    """Refuse bad settings the argparse way (usage, the flag named, exit status 2) before
    touching the state file."""
    if not 0 <= args.port <= 65535:
        parser.error(f"argument --port: must be between 0 and 65535, not {args.port}")
    if not math.isfinite(args.skiptoken_ttl) or args.skiptoken_ttl <= 0:
        parser.error(f"argument --skiptoken-ttl: must be a finite number of seconds > 0, not {args.skiptoken_ttl}")
    if not args.profile:
        return Profile()
    try:
        return load_profile(args.profile)
    except (OSError, ValueError) as err:
        parser.error(f"argument --profile: {args.profile}: invalid fault profile: {err}")


def _seed(store: Store, path: str | Path) -> None:
    try:
        report = seed(store, load_file(path), str(path))
    except (SeedError, OSError) as err:
        raise SystemExit(f"localtenant: {err}") from err
    print(f"localtenant: {path}: {report}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "seed":
        store = Store(args.state)
        _seed(store, args.file)
        store.close()
        return 0
    profile = _check_serve_args(parser, args)
    store = Store(args.state)
    for path in args.seed_directory:
        _seed(store, path)
    if store.get_meta("tenant") is None:
        _seed(store, SHIPPED)
    from localtenant.server import serve  # uvicorn is only needed to serve

    serve(Emulator.open(store, Faults(profile), args.skiptoken_ttl), args.host, args.port, args.port_file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
