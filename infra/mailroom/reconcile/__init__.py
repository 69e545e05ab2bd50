"""Making one mailbox match, independent of Pulumi: read it, converge it."""
