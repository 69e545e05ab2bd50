"""Binding of ``CmdletInput.Parameters`` the way the ExchangeOnlineManagement module
encodes them (wire reference A.3): switches as ``true``, arrays or bare strings,
``GenericHashTable`` objects with Add/Remove keys of any case. Lenient where real clients
differ (missing ``@odata.type``, comma-joined strings), strict on unknown names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from localtenant.exchange.models import CmdletError, MultiValue

BINDING = "System.Management.Automation.ParameterBindingException"
# Accepted by every cmdlet; they change nothing the emulator models.
COMMON = frozenset({"confirm", "erroraction", "warningaction", "verbose", "debug", "force",
                    "informationaction", "errorvariable", "warningvariable"})
UNLIMITED = None


def binding_error(text: str) -> CmdletError:
    return CmdletError(400, BINDING, text)


def _split(values: Iterable[Any]) -> list[str]:
    out: list[str] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, str):
            raise binding_error(f"Cannot convert '{value}' to the type 'System.String'.")
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


class Params:
    """Case-insensitive view of the parameters; ``Key@odata.type`` annotations are dropped."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = {k: v for k, v in raw.items() if "@" not in k}
        self._by_lower = {k.lower(): v for k, v in self.raw.items()}

    def check(self, allowed: frozenset[str], mandatory: Iterable[str]) -> None:
        for name in self.raw:
            if name.lower() not in allowed and name.lower() not in COMMON:
                raise binding_error(f"A parameter cannot be found that matches parameter name '{name}'.")
        missing = [m for m in mandatory if self._by_lower.get(m.lower()) in (None, "")]
        if missing:
            raise binding_error(
                f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}."
            )

    def has(self, name: str) -> bool:
        return name.lower() in self._by_lower

    def string(self, name: str) -> str | None:
        value = self._by_lower.get(name.lower())
        if value is None:
            return None
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise binding_error(f"Cannot bind parameter '{name}'. Cannot convert value to type System.String.")
        return str(value)

    def require(self, name: str) -> str:
        value = self.string(name)
        if value is None or not value.strip():
            raise binding_error(f"Cannot validate argument on parameter '{name}'. The argument is null or empty.")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self._by_lower.get(name.lower())
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower().lstrip("$") in ("true", "false"):
            return value.strip().lower().lstrip("$") == "true"
        raise binding_error(
            f"Cannot process argument transformation on parameter '{name}'. Cannot convert value "
            f'"{value}" to type "System.Boolean". Boolean parameters accept only Boolean values and numbers.'
        )

    def switch(self, name: str) -> bool:
        return bool(self.boolean(name))

    def strings(self, name: str) -> list[str] | None:
        """A ``string[]`` (or a bare/comma-joined string), e.g. AccessRights."""
        value = self._by_lower.get(name.lower())
        if value is None:
            return None
        return _split(value if isinstance(value, list) else [value])

    def multivalue(self, name: str) -> MultiValue | None:
        """A multi-valued property update: array/string replaces; a hashtable adds/removes."""
        if not self.has(name):
            return None
        value = self._by_lower[name.lower()]
        if value is None:
            return MultiValue(replace=[])
        if isinstance(value, dict):
            change = MultiValue()
            for key, item in value.items():
                if "@" in key:
                    continue
                items = _split(item if isinstance(item, list) else [item])
                if key.lower() == "add":
                    change.add += items
                elif key.lower() == "remove":
                    change.remove += items
                else:
                    raise binding_error(
                        f"Cannot process argument transformation on parameter '{name}'. The hashtable key "
                        f"'{key}' isn't valid; use Add or Remove."
                    )
            return change
        return MultiValue(replace=_split(value if isinstance(value, list) else [value]))

    def result_size(self, default: int = 1000, maximum: int | None = None) -> int | None:
        """``ResultSize``: an integer or "Unlimited" (None). Cmdlets default to 1000 [doc]."""
        value = self._by_lower.get("resultsize")
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return maximum
        try:
            size = int(value)
        except (TypeError, ValueError, OverflowError):
            size = 0
        if size < 1 or isinstance(value, bool):
            raise binding_error(
                f"Cannot process argument transformation on parameter 'ResultSize'. Cannot convert value "
                f'"{value}" to type "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]".'
            )
        return min(size, maximum) if maximum else size

    def audit_values(self) -> list[dict[str, str]]:
        """The Parameters of an ExchangeAdmin audit record: [{Name, Value}] strings."""
        return [{"Name": k, "Value": _text(v)} for k, v in self.raw.items()]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list):
        return ";".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_text(v)}" for k, v in value.items() if "@" not in k)
    return "" if value is None else str(value)
