"""`mailroom bootstrap`: mailroom's own identities as code, least privilege.

Two identities, declared once in ``identities.py``: **plan** reads (validate, plan, drift, import) and
**apply** writes (apply, drift --remediate). Each is an Entra application with its service principal
(``entra.py``, a Pulumi program with pulumi-azuread), federated credentials for the CI system (no
secret), admin-consented app roles, and Exchange RBAC (``exchange.py``): a service principal registered
in Exchange and role assignments, the apply identity's writes bound to a management scope of shared
mailboxes only, so even a bug in mailroom cannot change a person's mailbox.
"""
