"""Planning work items: one per symbol, strategies from the request, registry or default."""

from datetime import UTC, datetime, timedelta

from chronox_stream.contracts.control import BackfillRequest
from chronox_stream.contracts.work import WorkItem, plan_work

NOW = datetime(2024, 1, 20, 12, tzinfo=UTC)
REGISTERED = {
    "AAPL": (("flatpack", "api"), True),
    "MSFT": (("snapshot", "stream"), True),
    "TSLA": (("api",), False),
}


def plan(**fields: object) -> dict[str, WorkItem]:
    request = BackfillRequest(request_id="r", **fields)  # type: ignore[arg-type]
    return {i.symbol: i for i in plan_work(request, now=NOW, registered=REGISTERED)}


def test_registry_driven_covers_enabled_symbols_with_their_strategies() -> None:
    items = plan()
    assert {s: i.phases for s, i in items.items()} == {
        "AAPL": ("flatpack", "api"),
        "MSFT": ("snapshot", "stream"),
    }


def test_a_request_strategy_overrides_the_registry() -> None:
    items = plan(strategy=("api",))
    assert {i.phases for i in items.values()} == {("api",)}


def test_ad_hoc_symbols_use_the_registry_or_the_default() -> None:
    items = plan(symbols=("TSLA", "NVDA"))
    assert items["TSLA"].phases == ("api",)
    assert items["NVDA"].phases == ("flatpack", "api", "snapshot", "stream")


def test_no_stream_removes_the_stream_phase() -> None:
    assert plan(symbols=("MSFT",), enable_stream=False)["MSFT"].phases == ("snapshot",)


def test_an_end_in_the_future_is_clipped_to_now() -> None:
    items = plan(symbols=("AAPL",), end=NOW + timedelta(days=2))
    assert items["AAPL"].end == NOW and items["AAPL"].start is None


def test_work_items_survive_the_wire() -> None:
    (item,) = plan(symbols=("AAPL",), start=NOW - timedelta(days=1), throttle_ms=5).values()
    assert WorkItem.from_json(item.to_json()) == item
