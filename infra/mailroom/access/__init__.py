"""People, not mailboxes: who can open or send as which mailbox (``who``), and removing a leaver (``revoke``)."""
