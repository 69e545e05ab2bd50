"""Typed errors of the tenant client: each says which service, cmdlet, identity and message."""

from __future__ import annotations


class TenantError(Exception):
    """Anything the tenant answered that mailroom could not use."""


class ConfigError(TenantError):
    """The stack or environment does not say how to reach or authenticate to the tenant."""


class AuthError(TenantError):
    """A token could not be obtained (wrong credentials, unreachable token endpoint)."""


class ExchangeError(TenantError):
    def __init__(self, cmdlet: str, identity: str | None, status: int, error_type: str, message: str) -> None:
        self.cmdlet, self.identity, self.status = cmdlet, identity, status
        self.error_type, self.service_message = error_type, message
        target = f" {identity}" if identity else ""
        super().__init__(f"{cmdlet}{target}: HTTP {status} {error_type}: {message}".rstrip(": "))


class NotFound(ExchangeError):
    """ManagementObjectNotFoundException: the identity does not resolve."""


class ProxyAddressExists(ExchangeError):
    """ProxyAddressExistsException: an address is already used by another recipient."""


class GraphError(TenantError):
    def __init__(self, operation: str, status: int, code: str, message: str) -> None:
        self.operation, self.status, self.code = operation, status, code
        super().__init__(f"Graph {operation}: HTTP {status} {code}: {message}")


class RetriesExhausted(TenantError):
    """The service kept throttling or failing until the retry deadline passed."""
