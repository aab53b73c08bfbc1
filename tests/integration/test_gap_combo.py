"""Gap detection with flat files (the seed's test_flatpack_api_gap_combo): a day missing from
the bucket is an interior hole, found and filled by the api phase.

The range ends on 2024-01-16: the shared simulator's clock is on the evening of the 17th,
whose flat files appear only the next morning (as Polygon's), so the 17th would be a
trailing gap, not an interior one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

pytestmark = pytest.mark.integration


async def test_flatpack_api_gap_combo(
    settings: Settings, sim_knobs: Any, start_worker: WorkerFactory, producer: AIOKafkaProducer
) -> None:
    """A day missing from the flat files is an interior hole: found, and filled by api."""
    await sim_knobs.set_knobs(missing_days=["2024-01-12"])
    start_worker()
    doc = {"request_id": "combo-1", "symbols": ["AAPL"], "strategy": "flatpack+api",
           "start": "2024-01-11", "end": "2024-01-16"}  # fmt: skip
    await producer.send_and_wait(settings.topic("control"), key=b"combo-1", value=orjson.dumps(doc))
    await wait_finished(settings, "combo-1", timeout_s=120)
    span = "1/minute/2024-01-11/2024-01-16"  # New York dates, as the request's
    truth = await rest_aggregates(sim_knobs.rest_url, sim_knobs.api_key, "AAPL", span)

    async def landed() -> Any:
        rows = await fetch_rows(settings, "SELECT ts, close, source FROM {schema}.bars "
                                          "WHERE tf = '1m'")  # fmt: skip
        return rows if len(rows) >= len(truth) else None

    rows = await poll(landed, timeout_s=90)
    assert rows is not None
    by_day: dict[str, set[str]] = {}
    for r in rows:
        by_day.setdefault(r["ts"].astimezone(NEW_YORK).strftime("%Y-%m-%d"), set()).add(r["source"])
    assert by_day["2024-01-12"] == {"api"}
    assert by_day["2024-01-11"] == {"flatpack"} and by_day["2024-01-16"] == {"flatpack"}
    assert {int(r["ts"].timestamp() * 1000): r["close"] for r in rows} == {
        b["t"]: b["c"] for b in truth
    }
