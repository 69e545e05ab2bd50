"""Benchmark: `mailroom validate` against a bare yaml.CSafeLoader parse of the same files.

Generates 10,000 shared mailboxes with 5 members each across 20 included files,
then times, in one run, (a) parsing every file with yaml.CSafeLoader and
(b) the full validation (schema, semantics, policy) and prints the ratio.
Target (issue 2): validate ≤ 2× the bare parse.

    .venv/bin/python bench/validate.py [--mailboxes N] [--files F] [--repeat R]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "infra"))
from mailroom.file.load import load_desired  # noqa: E402


def generate(root: str, mailboxes: int, files: int, members: int = 5) -> str:
    per_file = mailboxes // files
    os.makedirs(os.path.join(root, "mailboxes.d"), exist_ok=True)
    with open(os.path.join(root, "mailboxes.yaml"), "w") as fh:
        fh.write("version: 1\ntenant:\n  domains: [contoso.com]\n"
                 "policy:\n  require_owner: true\n  max_members: 25\n  send_as_requires_member: true\n"
                 "include:\n  - mailboxes.d/*.yaml\nmailboxes: []\n")
    n = 0
    for f in range(files):
        lines = ["mailboxes:\n"]
        for _ in range(per_file):
            people = [f"user{(n * 7 + k) % 20000}@contoso.com" for k in range(members)]
            lines.append(
                f"  - address: shared{n}@contoso.com\n"
                f"    display_name: Shared mailbox {n}\n"
                f"    owner: {people[0]}\n"
                f"    aliases: [alias{n}@contoso.com]\n"
                f"    members:\n" + "".join(f"      - {p}\n" for p in people[:-1])
                + f"      - user: {people[-1]}\n        automap: false\n"
                f"    send_as: [{people[0]}]\n"
                f"    send_on_behalf: [{people[1]}]\n")
            n += 1
        with open(os.path.join(root, "mailboxes.d", f"dept{f:02d}.yaml"), "w") as fh:
            fh.write("".join(lines))
    return os.path.join(root, "mailboxes.yaml")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailboxes", type=int, default=10_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="best of R runs for each side")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as root:
        main_file = generate(root, args.mailboxes, args.files)
        paths = [main_file] + sorted(glob.glob(os.path.join(root, "mailboxes.d", "*.yaml")))
        parse_times, validate_times = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for p in paths:
                with open(p, "rb") as fh:
                    yaml.load(fh.read().decode(), Loader=yaml.CSafeLoader)
            parse_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            result = load_desired(main_file)
            validate_times.append(time.perf_counter() - t0)
            assert result.desired is not None, result.findings[:3]
            assert len(result.desired.mailboxes) == args.mailboxes
        parse, validate = min(parse_times), min(validate_times)
        print(f"files: {len(paths)}  mailboxes: {args.mailboxes}  members each: 5")
        print(f"bare parse (yaml.CSafeLoader): {parse:.3f} s")
        print(f"mailroom validate:             {validate:.3f} s")
        print(f"ratio validate / parse:        {validate / parse:.2f}x  (target <= 2.00x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
