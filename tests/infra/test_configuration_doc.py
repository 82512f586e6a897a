"""docs/configuration.md lists every stack key with its default, and which keys set a
provisioner variable whose own default is another (the one place that says why)."""

from __future__ import annotations

import re

from infra.keys import DEFAULTS
from infra.provisioner import provisioner_env
from infra.settings import AppSettings
from services.common.env import env_defaults
from services.provisioner.settings import Settings
from tests.doctable import CONFIGURATION, defaults_in, differences, literals, shown, table_after

KEYS = "## Pulumi stack keys"
PAIRS = "### Stack keys and the provisioner's defaults"


def variable_of(key: str) -> str:
    """A stack key's name as a provisioner variable: maxSessions -> MAX_SESSIONS."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


def documented_pairs(text: str) -> dict[str, tuple[str, str, str]]:
    """stack key -> (its default, the variable it sets, the variable's default), as written."""
    pairs: dict[str, tuple[str, str, str]] = {}
    for key_cell, key_default, variable_cell, variable_default in table_after(text, PAIRS):
        (key,) = literals(key_cell) or [key_cell]
        (variable,) = literals(variable_cell) or [variable_cell]
        pairs[key] = (
            "".join(literals(key_default) or []),
            variable,
            "".join(literals(variable_default) or []),
        )
    return pairs


def code_pairs() -> dict[str, tuple[str, str, str]]:
    """The same, from the code: every key whose name is a provisioner variable's."""
    variables = env_defaults(Settings)
    return {
        key: (shown(default), variable_of(key), shown(variables[variable_of(key)]))
        for key, default in DEFAULTS.items()
        if variable_of(key) in variables
    }


def test_the_key_table_is_the_keys_defaults() -> None:
    documented = defaults_in(table_after(CONFIGURATION.read_text(), KEYS))
    assert differences(documented, DEFAULTS) == []


def test_a_changed_key_default_is_caught() -> None:
    documented = defaults_in(table_after(CONFIGURATION.read_text(), KEYS))
    changed = {**DEFAULTS, "nodeInstanceTypes": ["t4g.large"], "kubeContext": "kind"}
    assert differences(documented, changed) == [
        "kubeContext: the table says '', the code 'kind'",
        "nodeInstanceTypes: the table says '[t4g.medium]', the code '[t4g.large]'",
    ]


def test_the_pairs_table_is_every_key_that_sets_a_variable() -> None:
    pairs = code_pairs()
    assert documented_pairs(CONFIGURATION.read_text()) == pairs
    # The pairing by name is real: the Deployment sets each of those variables.
    app = AppSettings(
        namespace="pingpod",
        pool_size=4,
        max_sessions=100,
        session_idle_timeout=120,
        session_max_lifetime=900,
        provisioner_replicas=2,
        allowed_origins=("https://pingpod.example.com",),
        echo_arm64_only=False,
    )
    set_by_stack = {str(var.name) for var in provisioner_env(app)}
    assert {variable for _, variable, _ in pairs.values()} <= set_by_stack
    # And the table is where the differences are explained.
    assert {key for key, (mine, _, theirs) in pairs.items() if mine != theirs} >= {
        "maxSessions",
        "sessionIdleTimeout",
    }


def test_a_default_changed_on_one_side_of_a_pair_is_caught() -> None:
    row = "| `maxSessions` | `100` | `MAX_SESSIONS` | `50` |"
    text = CONFIGURATION.read_text()
    assert row in text
    documented = documented_pairs(text.replace(row, row.replace("`50`", "`100`")))
    assert documented["maxSessions"] == ("100", "MAX_SESSIONS", "100")
    assert documented != code_pairs()
