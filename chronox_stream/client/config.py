"""``chronox config``: the settings a command would run with, every secret masked.

The values are the environment's (``CHRONOX_*``, and the API key's other names) with the
command's flags over them. A secret shows as ``***`` when set (empty when not); a URL
shows with its password masked, so the address stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from chronox_stream.client.reach import MASK, masked_url
from chronox_stream.settings import Settings


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    variable: str
    value: str | int | float | bool | None
    explicit: bool  # set by the environment or a flag, not the default


def shown(value: object) -> str | int | float | bool | None:
    """A setting's value as printed: secrets masked, URLs without their passwords."""
    if isinstance(value, SecretStr):
        text = value.get_secret_value()
        return masked_url(text) if "://" in text else (MASK if text else "")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and "://" in value:
        return masked_url(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def rows(settings: Settings, explicit: set[str]) -> list[Row]:
    """Every setting, in the order of the settings object; ``explicit``: the names set by
    the environment or a flag."""
    return [
        Row(name, f"CHRONOX_{name.upper()}", shown(getattr(settings, name)), name in explicit)
        for name in type(settings).model_fields
    ]


def render(settings: Settings, explicit: set[str]) -> str:
    """One line per setting: variable, value, and ``(set)`` when not the default."""
    table = rows(settings, explicit)
    width = max(len(row.variable) for row in table)
    return "\n".join(
        f"{row.variable:<{width}}  {'' if row.value is None else row.value}"
        + ("  (set)" if row.explicit else "")
        for row in table
    )


def as_json(settings: Settings, explicit: set[str]) -> dict[str, object]:
    """``{"settings": {name: value}, "set": [names set by the environment or a flag]}``."""
    table = rows(settings, explicit)
    return {
        "settings": {row.name: row.value for row in table},
        "set": [row.name for row in table if row.explicit],
    }
