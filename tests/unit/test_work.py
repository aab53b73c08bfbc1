from datetime import UTC, datetime, timedelta

from chronox_stream.control import BackfillRequest
from chronox_stream.work import WorkItem, plan_work

NOW = datetime(2024, 1, 20, 12, tzinfo=UTC)


def test_one_item_per_symbol_and_phase_with_default_range() -> None:
    request = BackfillRequest(request_id="r", symbols=("AAPL", "MSFT"))
    items = plan_work(request, now=NOW, default_lookback=timedelta(days=3))
    assert [(i.symbol, i.phase) for i in items] == [("AAPL", "api"), ("MSFT", "api")]
    assert all(i.start == NOW - timedelta(days=3) and i.end == NOW for i in items)


def test_an_end_in_the_future_is_clipped_to_now() -> None:
    request = BackfillRequest(request_id="r", symbols=("AAPL",), end=NOW + timedelta(days=2))
    (item,) = plan_work(request, now=NOW, default_lookback=timedelta(days=1))
    assert item.end == NOW


def test_work_items_survive_the_wire() -> None:
    request = BackfillRequest(request_id="r", symbols=("AAPL",), throttle_ms=5, dry_run=True)
    (item,) = plan_work(request, now=NOW, default_lookback=timedelta(days=1))
    assert WorkItem.from_json(item.to_json()) == item
