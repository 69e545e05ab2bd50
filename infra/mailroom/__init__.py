"""mailroom: shared mailboxes as code for Microsoft 365."""

__version__ = "0.1.0"
