"""Shared team state: where the audit log, drift history and stack lock of each stack live.

``$MAILROOM_STORE`` unset: the local state directory, as before. ``azblob://<container>[/<prefix>]
[?lease=SECONDS]``: Azure Blob Storage (``azblob.py``). The Pulumi state stays on ``PULUMI_BACKEND_URL``.
"""
