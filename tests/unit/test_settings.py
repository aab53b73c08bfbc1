"""The API key is read from the project's variable or the names Polygon's and Massive's
clients read, the project's winning."""

from __future__ import annotations

import pytest

from chronox_stream.settings import Settings

NAMES = ("CHRONOX_POLYGON_API_KEY", "POLYGON_API_KEY", "MASSIVE_API_KEY")


@pytest.mark.parametrize(
    ("env", "key"),
    [({"POLYGON_API_KEY": "from-polygon"}, "from-polygon"),
     ({"MASSIVE_API_KEY": "from-massive"}, "from-massive"),
     ({"CHRONOX_POLYGON_API_KEY": "own", "POLYGON_API_KEY": "p", "MASSIVE_API_KEY": "m"}, "own"),
     ({"POLYGON_API_KEY": "p", "MASSIVE_API_KEY": "m"}, "p"),
     ({}, "")],
)  # fmt: skip
def test_the_first_key_variable_set_wins(
    env: dict[str, str], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.polygon_api_key.get_secret_value() == key
    assert settings.to_env()["CHRONOX_POLYGON_API_KEY"] == key, "a child process gets it too"
    assert settings.with_overrides(topic_prefix="x").polygon_api_key.get_secret_value() == key
    assert Settings(polygon_api_key="given").polygon_api_key.get_secret_value() == "given"
