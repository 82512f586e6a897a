"""docs/configuration.md lists every variable the two services read, with the code's default."""

from __future__ import annotations

import pytest

from services.common.env import env_defaults
from services.echo.settings import EchoSettings
from services.provisioner.settings import Settings
from tests.doctable import CONFIGURATION, defaults_in, differences, table_after

TABLES = {
    "## Provisioner environment variables": Settings,
    "## Echo server environment variables": EchoSettings,
}


def documented(heading: str, text: str | None = None) -> dict[str, str]:
    return defaults_in(table_after(text or CONFIGURATION.read_text(), heading))


@pytest.mark.parametrize("heading", TABLES)
def test_the_table_is_the_settings_class(heading: str) -> None:
    assert differences(documented(heading), env_defaults(TABLES[heading])) == []


def test_a_default_changed_in_the_code_is_caught() -> None:
    code = {**env_defaults(Settings), "MAX_SESSIONS": 51}
    assert differences(documented("## Provisioner environment variables"), code) == [
        "MAX_SESSIONS: the table says '50', the code '51'"
    ]


def test_a_variable_missing_from_the_table_is_caught() -> None:
    text = "\n".join(
        line
        for line in CONFIGURATION.read_text().splitlines()
        if not line.startswith("| `GRACE_SECONDS`")
    )
    found = documented("## Echo server environment variables", text)
    assert differences(found, env_defaults(EchoSettings)) == [
        "GRACE_SECONDS: in the code, not in the table"
    ]


def test_a_row_of_two_variables_is_read_as_two() -> None:
    found = documented("## Provisioner environment variables")
    assert (found["HOST"], found["PORT"]) == ("127.0.0.1", "8000")
    # Prose in the default column: no value of its own.
    assert found["ALLOWED_ORIGINS"] == ""
