"""Settings from environment variables, for the echo server and the provisioner.

A service's settings are a frozen dataclass; each field is read from the
variable of the same name in upper case (``max_frame_bytes`` from
``MAX_FRAME_BYTES``) and parsed to the field's annotated type. ``read_env``
returns the fields whose variable is set (an unset or empty one keeps the
field's default); a value that does not parse raises :class:`EnvError`, which
names the variable. ``env_defaults`` lists every variable with its default, for
the tables in docs/configuration.md (a test keeps them equal).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class EnvError(ValueError):
    """An environment variable holds what its setting cannot take; ``key`` names it."""

    def __init__(self, key: str, expected: str, got: str) -> None:
        super().__init__(f"{key}: expected {expected}, got {got!r}")
        self.key = key
        self.expected = expected
        self.got = got


def env_name(field_name: str) -> str:
    """The variable a settings field is read from."""
    return field_name.upper()


def read_env(settings: type, environ: Mapping[str, str]) -> dict[str, Any]:
    """The fields of the dataclass ``settings`` whose variables ``environ`` sets, parsed.

    Looks each variable up with ``environ.get``, so a recording mapping sees
    every name read. Pass the result to the class as keyword arguments.
    """
    hints = _hints(settings)
    values: dict[str, Any] = {}
    for field in fields(settings):
        key = env_name(field.name)
        raw = environ.get(key)
        if raw is None or raw == "":
            continue
        values[field.name] = parse(key, raw, hints[field.name])
    return values


def env_defaults(settings: type) -> dict[str, object]:
    """Each variable the dataclass ``settings`` reads, with its field's default."""
    defaults: dict[str, object] = {}
    for field in fields(settings):
        if field.default is not MISSING:
            defaults[env_name(field.name)] = field.default
        elif field.default_factory is not MISSING:
            defaults[env_name(field.name)] = field.default_factory()
        else:
            raise TypeError(f"{settings.__name__}.{field.name} has no default")
    return defaults


def parse(key: str, raw: str, kind: object) -> object:
    """``raw`` as a value of the type ``kind``; EnvError naming ``key`` if it is not one."""
    if isinstance(kind, types.UnionType):  # X | None: a set variable is an X
        (inner,) = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return parse(key, raw, inner)
    if kind is bool:
        word = raw.strip().lower()
        if word not in _TRUE + _FALSE:
            raise EnvError(key, "true or false", raw)
        return word in _TRUE
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise EnvError(key, "an integer", raw) from None
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise EnvError(key, "a number", raw) from None
        if not math.isfinite(number):  # "inf" and "nan" parse, and break every comparison
            raise EnvError(key, "a finite number", raw)
        return number
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind is Path:
        return Path(raw)
    if kind is str:
        return raw
    raise TypeError(f"{key}: no parser for settings of type {kind!r}")


def require(ok: bool, key: str, expected: str, got: object) -> None:
    """Raise EnvError naming ``key`` unless ``ok`` (a setting's range or form)."""
    if not ok:
        raise EnvError(key, expected, str(got))


def _hints(settings: type) -> dict[str, Any]:
    if not is_dataclass(settings):
        raise TypeError(f"{settings!r} is not a dataclass")
    # Resolved here, not from Field.type: under `from __future__ import annotations`
    # that is a string.
    return typing.get_type_hints(settings)
