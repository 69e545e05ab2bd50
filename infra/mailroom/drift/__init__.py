"""Drift: the bulk scan of managed and unmanaged mailboxes, findings, who did it."""
