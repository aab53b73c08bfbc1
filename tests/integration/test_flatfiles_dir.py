"""The flatpack phase reading a local folder of day files (``CHRONOX_FLATFILES_DIR``).

The folder is laid out like the bucket (``us_stocks_sip/minute_aggs_v1/YYYY/MM/DAY.csv.gz``,
what ``aws s3 sync`` of Polygon's bucket makes), filled with files downloaded from the
simulator's S3 endpoint with a real S3 client. The workers get an S3 endpoint where nothing
listens, so every flat-file bar they store came from the folder.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.settings import Settings
from tests.fixtures.sim import SimServer, free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll, rest_aggregates, wait_finished

pytestmark = pytest.mark.integration

START = "2024-01-10T04:00:00-05:00"
END = "2024-01-12T20:00:00-05:00"
DAYS = ("2024-01-10", "2024-01-11", "2024-01-12")


def day_path(root: Path, day: str) -> Path:
    return root / "us_stocks_sip" / "minute_aggs_v1" / day[:4] / day[5:7] / f"{day}.csv.gz"


async def mirror(sim: SimServer, root: Path, days: tuple[str, ...]) -> None:
    """Download the minute files of ``days`` from the simulator's bucket into ``root``."""
    async with sim.s3_client() as s3:
        for day in days:
            target = day_path(root, day)
            key = target.relative_to(root).as_posix()
            response = await s3.get_object(Bucket=sim.bucket, Key=key)
            async with response["Body"] as body:
                data = await body.read()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)


async def backfill(settings: Settings, producer: AIOKafkaProducer, request_id: str) -> list[Any]:
    doc = {"request_id": request_id, "symbols": ["AAPL", "MSFT"], "strategy": "flatpack+api",
           "start": START, "end": END, "timeframe": "1m"}  # fmt: skip
    await producer.send_and_wait(
        settings.topic("control"), key=request_id.encode(), value=orjson.dumps(doc)
    )
    return await wait_finished(settings, request_id, timeout_s=180)


async def stored_equals_rest(settings: Settings, sim: SimServer) -> dict[str, set[str]]:
    """Assert the stored 1m bars are the simulator's REST bars; return sources by NY day."""
    first = int(datetime.fromisoformat(START).timestamp() * 1000)
    last = int(datetime.fromisoformat(END).timestamp() * 1000) - 1
    span = f"1/minute/{first}/{last}"
    truth = {
        (symbol, b["t"]): (b["o"], b["h"], b["l"], b["c"], b["v"], b["n"])
        for symbol in ("AAPL", "MSFT")
        for b in await rest_aggregates(sim.rest_url, sim.api_key, symbol, span)
    }
    assert len(truth) > 1000, "three seeded sessions of two symbols"

    async def landed() -> Any:
        rows = await fetch_rows(
            settings,
            "SELECT symbol, ts, open, high, low, close, volume, transactions, source "
            "FROM {schema}.bars WHERE tf = '1m'",
        )
        return rows if len(rows) >= len(truth) else None

    rows = await poll(landed, timeout_s=90)
    assert rows is not None, "the bars did not reach PostgreSQL"
    stored = {
        (r["symbol"], int(r["ts"].timestamp() * 1000)):
        (r["open"], r["high"], r["low"], r["close"], r["volume"], r["transactions"])
        for r in rows
    }  # fmt: skip
    assert stored == truth
    sources: dict[str, set[str]] = {}
    for r in rows:
        sources.setdefault(r["ts"].astimezone(NEW_YORK).strftime("%Y-%m-%d"), set()).add(
            r["source"]
        )
    return sources


def phase_states(events: list[Any], phase: str) -> dict[str, str]:
    """The final state of ``phase`` per symbol."""
    return {e["symbol"]: e["state"] for e in events
            if e.get("phase") == phase and e["state"] != "started"}  # fmt: skip


async def test_a_local_folder_feeds_flatpack_and_a_missing_day_is_left_to_api(
    settings: Settings,
    sim: SimServer,
    start_worker: WorkerFactory,
    producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "flatfiles"
    await mirror(sim, folder, ("2024-01-10", "2024-01-12"))
    start_worker(flatfiles_dir=folder, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    events = await backfill(settings, producer, "local-1")
    assert phase_states(events, "flatpack") == {"AAPL": "done", "MSFT": "done"}
    assert phase_states(events, "api") == {"AAPL": "done", "MSFT": "done"}
    sources = await stored_equals_rest(settings, sim)
    assert sources == {"2024-01-10": {"flatpack"}, "2024-01-11": {"api"},
                       "2024-01-12": {"flatpack"}}  # fmt: skip


async def test_a_corrupt_local_day_file_is_reported_and_the_worker_goes_on(
    settings: Settings,
    sim: SimServer,
    start_worker: WorkerFactory,
    producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "flatfiles"
    await mirror(sim, folder, DAYS)
    day_path(folder, "2024-01-11").write_bytes(b"\x1f\x8b\x08\x00 this is not a gzip stream")
    worker = start_worker(flatfiles_dir=folder, s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    events = await backfill(settings, producer, "local-2")
    failed = [e for e in events if e.get("phase") == "flatpack" and e["state"] == "failed"]
    assert {e["symbol"] for e in failed} == {"AAPL", "MSFT"}
    assert all("not a readable aggregates file" in e["error"] for e in failed)
    assert phase_states(events, "api") == {"AAPL": "done", "MSFT": "done"}
    sources = await stored_equals_rest(settings, sim)
    assert sources == {"2024-01-10": {"flatpack"}, "2024-01-11": {"api"}, "2024-01-12": {"api"}}
    assert worker.process.poll() is None, "a corrupt day file never stops the worker"

    day_path(folder, "2024-01-11").unlink()
    await mirror(sim, folder, ("2024-01-11",))
    again = await backfill(settings, producer, "local-3")
    assert phase_states(again, "flatpack") == {"AAPL": "done", "MSFT": "done"}
