"""Configuration: defaults, validation messages, and the README documenting every variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerum_server.settings import ENVIRONMENT, Settings, SettingsError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_environment_variable_is_in_the_readme_table() -> None:
    text = README.read_text()
    missing = [name for name in ENVIRONMENT if f"| `{name}` |" not in text]
    assert missing == []


def test_defaults_give_a_local_server_on_port_3001() -> None:
    settings = Settings.from_env({})
    assert settings.naming.id_prefix == "http://localhost:3001/v1/id/"
    assert settings.naming.context_url == "http://localhost:3001/v1/context.json"
    assert settings.max_limit == 500 and settings.max_skip == 100000
    assert settings.uses_local_issuer
    assert settings.worker_header and not settings.down and not settings.read_only


def test_prefix_follows_port_and_explicit_values_win() -> None:
    assert Settings.from_env({"PORT": "8080"}).rerum_prefix == "http://localhost:8080/v1/"
    explicit = Settings.from_env({"RERUM_ID_PREFIX": "https://store.rerum.io/v1/id/"})
    assert explicit.naming.id_prefix == "https://store.rerum.io/v1/id/"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOWN": "maybe"}, "DOWN has value 'maybe'; expected true or false."),
        ({"PORT": "x"}, "PORT has value 'x'; expected an integer."),
        ({"RERUM_DB_POOL_SIZE": "0"}, "RERUM_DB_POOL_SIZE has value 0; expected at least 1."),
        (
            {"RERUM_REDIS_MAXMEMORY": "lots"},
            "RERUM_REDIS_MAXMEMORY has value 'lots'; expected a size such as 256mb or 1gb.",
        ),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message
