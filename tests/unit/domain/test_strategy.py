import pytest

from chronox_stream.domain.strategy import format_strategy, parse_strategy


@pytest.mark.parametrize(
    ("text", "phases"),
    [
        ("api", ("api",)),
        ("flatpack+api", ("flatpack", "api")),
        ("api+flatpack", ("flatpack", "api")),
        ("snapshot+stream", ("snapshot", "stream")),
        ("flatpack+api+snapshot+stream", ("flatpack", "api", "snapshot", "stream")),
    ],
)
def test_strategy_parsing(text: str, phases: tuple[str, ...]) -> None:
    assert parse_strategy(text) == phases
    assert parse_strategy(format_strategy(parse_strategy(text))) == phases


@pytest.mark.parametrize("text", ["", "+", "api+", "api++flatpack", "api+api", "ftp", "API"])
def test_strategy_validation(text: str) -> None:
    with pytest.raises(ValueError):
        parse_strategy(text)
