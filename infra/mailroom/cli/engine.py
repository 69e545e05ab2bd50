"""`mailroom engine`: set up and show the Pulumi engine mailroom runs."""

from __future__ import annotations

import argparse
import subprocess

from mailroom.engine.workspace import pulumi_bin_dir

EPILOG = """exit codes:
  0   available
  1   not available (the message says how to install Pulumi)
  64  usage error
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="make sure the Pulumi engine is installed and show its version",
                       description="Find a Pulumi CLI of at least the pinned SDK's version on PATH, or build "
                                   "one from Go modules into the cache (minutes, once), and print where it is and "
                                   "its version.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    bin_dir = pulumi_bin_dir()  # a ConfigError (not available) is one line and exit 1, by the error handler
    version = subprocess.run([str(bin_dir / "pulumi"), "version"], capture_output=True, text=True, check=False)
    print(f"{bin_dir}\npulumi {version.stdout.strip()}")
    return 0 if version.returncode == 0 else 1
