"""One module per `mailroom` sub-command.

Each module exposes ``register(subparsers)``, which adds its parser and sets
``func`` to a callable taking the parsed ``argparse.Namespace`` and returning
the process exit code.
"""
