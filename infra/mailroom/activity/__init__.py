"""Who uses their access: unified audit records folded into last use per mailbox and person (``usage``), and
the review's verdicts, unmanaged senders and decommission candidates from them (``review``). Pure: the
records come from ``mailroom.m365.auditlog``, the rights from the file, the audit settings from the tenant."""
