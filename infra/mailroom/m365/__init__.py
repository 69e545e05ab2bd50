"""The tenant client: token sources, one pacer and retry policy, Exchange admin REST and Graph."""
