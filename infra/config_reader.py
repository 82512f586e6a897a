"""Reading one ``pingpod:*`` key: its text, typed and checked, or its default.

:class:`Reader` turns the strings a :class:`ConfigSource` holds (``pulumi.Config``
in the program, a stack file in ``infra.cost``) into strings, integers,
booleans, lists and maps, falls back on the key's default (``infra.keys``) when
it is unset or blank, and raises a :class:`ConfigError` that names the key and
what it expects. Which keys are read, and how they combine, is ``infra.config``'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Protocol

import pulumi

from infra.keys import (
    DEFAULTS,
    PROJECT,
    default_integer,
    default_mapping,
    default_string,
    default_strings,
)


class ConfigSource(Protocol):
    """Where keys come from: ``pulumi.Config`` in a program, a stack file elsewhere."""

    def get(self, key: str) -> str | None: ...


class ConfigError(pulumi.RunError):
    """A configuration value is missing or malformed.

    A ``RunError`` so the CLI prints the message alone, without a traceback.
    """


class Reader:
    """Reads one key at a time and raises a ConfigError that names it."""

    def __init__(self, config: ConfigSource) -> None:
        self._config = config

    def _raw(self, key: str) -> str | None:
        value = self._config.get(key)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def refuse_removed(self, removed: Mapping[str, str]) -> None:
        for key, reason in removed.items():
            if self._config.get(key) is not None:
                raise ConfigError(
                    f"{PROJECT}:{key} was removed: {reason}. "
                    f"Delete it from the stack (pulumi config rm {key})."
                )

    def _fail(self, key: str, expected: str, got: object) -> ConfigError:
        return ConfigError(f"{PROJECT}:{key}: expected {expected}, got {got!r}")

    def string(
        self,
        key: str,
        *,
        expected: str,
        pattern: re.Pattern[str] | None = None,
        required: str | None = None,
        check: Callable[[str], bool] | None = None,
    ) -> str:
        """A string; ``required`` names the condition that makes it mandatory."""
        raw = self._raw(key)
        if raw is None:
            if required is not None:
                raise ConfigError(
                    f"{PROJECT}:{key} is required {required}: expected {expected} "
                    f"(pulumi config set {key} <value>)"
                )
            return default_string(key)
        if pattern is not None and not pattern.match(raw):
            raise self._fail(key, expected, raw)
        if check is not None and not check(raw):
            raise self._fail(key, expected, raw)
        return raw

    def integer(self, key: str, *, minimum: int, maximum: int, unit: str = "") -> int:
        expected = f"an integer from {minimum} to {maximum}{unit}"
        raw = self._raw(key)
        if raw is None:
            return default_integer(key)
        try:
            value = int(raw, 10)
        except ValueError:
            raise self._fail(key, expected, raw) from None
        if not minimum <= value <= maximum:
            raise self._fail(key, expected, value)
        return value

    def boolean(self, key: str) -> bool:
        raw = self._raw(key)
        if raw is None:
            return bool(DEFAULTS[key])
        lowered = raw.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise self._fail(key, "true or false", raw)

    def string_list(
        self,
        key: str,
        *,
        expected: str,
        pattern: re.Pattern[str],
        min_items: int = 0,
    ) -> tuple[str, ...]:
        """A list of strings: a YAML list in the stack file, JSON on the wire."""
        list_expected = f"a list of {expected}"
        if min_items:
            list_expected += f" (at least {min_items})"
        raw = self._raw(key)
        if raw is None:
            items: object = list(default_strings(key))
        else:
            try:
                items = json.loads(raw)
            except json.JSONDecodeError:
                raise self._fail(key, list_expected, raw) from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise self._fail(key, list_expected, raw)
        strings: list[str] = [i for i in items if isinstance(i, str)]
        if len(strings) < min_items:
            raise self._fail(key, list_expected, strings)
        for item in strings:
            if not pattern.match(item):
                raise ConfigError(f"{PROJECT}:{key}: expected {list_expected}; {item!r} is not one")
        return tuple(strings)

    def string_map(
        self,
        key: str,
        *,
        expected: str,
        keys: tuple[str, re.Pattern[str]],
        values: tuple[str, re.Pattern[str]],
    ) -> tuple[tuple[str, str], ...]:
        """A map of strings: a YAML mapping in the stack file, a JSON object on the wire.

        ``keys`` and ``values`` are what each must be and the pattern it must match
        in full. ``pulumi config set --path`` stores a value that reads as a
        boolean or a whole number typed (``true``, ``42``); those come back as the
        strings they were typed as. Returns the pairs sorted by key.
        """
        map_expected = f"an object of {expected}"
        raw = self._raw(key)
        if raw is None:
            entries: object = default_mapping(key)
        else:
            try:
                entries = json.loads(raw)
            except json.JSONDecodeError:
                raise self._fail(key, map_expected, raw) from None
        if not isinstance(entries, dict):
            raise self._fail(key, map_expected, raw)
        key_expected, key_pattern = keys
        value_expected, value_pattern = values
        pairs: list[tuple[str, str]] = []
        for name, value in entries.items():
            if not key_pattern.fullmatch(name):
                raise self._fail(key, key_expected, name)
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | str):
                text = str(value)
            else:
                raise self._fail(key, f"{value_expected} for {name!r}", value)
            if not value_pattern.fullmatch(text):
                raise self._fail(key, f"{value_expected} for {name!r}", text)
            pairs.append((name, text))
        return tuple(sorted(pairs))
