"""Flat files through the simulator's S3 endpoint, read with a real S3 client (aiobotocore).

A day's files appear at 11:00 New York the next calendar day (the
``flatfiles_publish_at`` knob), never earlier: the shared simulator's clock is
at 20:30 New York on 2024-01-17, so its bucket holds the days up to the 16th.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ClientError

from tests.fixtures.sim import SimFactory, SimServer

pytestmark = pytest.mark.integration

DAYS = ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16"]
#: 11:00 New York on 2024-01-18 (16:00Z): when the 17th's files are due.
ELEVEN_ON_THE_18TH_NS = int(datetime(2024, 1, 18, 16, tzinfo=UTC).timestamp()) * 10**9
AGG_HEADER = ["ticker", "volume", "open", "close", "high", "low", "window_start", "transactions"]
TRADES_HEADER = [
    "ticker", "conditions", "correction", "exchange", "id", "participant_timestamp", "price",
    "sequence_number", "sip_timestamp", "size", "tape", "trf_id", "trf_timestamp",
]  # fmt: skip


def key(kind: str, day: str) -> str:
    return f"us_stocks_sip/{kind}/{day[:4]}/{day[5:7]}/{day}.csv.gz"


@pytest.fixture
async def s3(sim: SimServer) -> AsyncIterator[Any]:
    async with sim.s3_client() as client:
        yield client


async def read_csv(s3: Any, bucket: str, object_key: str) -> list[list[str]]:
    response = await s3.get_object(Bucket=bucket, Key=object_key)
    async with response["Body"] as body:
        text = gzip.decompress(await body.read()).decode()
    return list(csv.reader(io.StringIO(text)))


async def rest_bars(sim: SimServer, symbol: str, tail: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    url = f"{sim.rest_url}/v2/aggs/ticker/{symbol}/range/{tail}?limit=50000"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        return list((await resp.json()).get("results", []))


async def test_the_bucket_holds_three_files_per_trading_day(sim: SimServer, s3: Any) -> None:
    listing = await s3.list_objects_v2(Bucket=sim.bucket, Prefix="us_stocks_sip/")
    keys = {item["Key"] for item in listing["Contents"]}
    kinds = ("minute_aggs_v1", "day_aggs_v1", "trades_v1")
    assert keys == {key(kind, day) for kind in kinds for day in DAYS}
    assert (await sim.info())["flatfile_days"] == DAYS


async def test_aggregate_files_equal_rest_bar_for_bar(sim: SimServer, s3: Any) -> None:
    rows = await read_csv(s3, sim.bucket, key("minute_aggs_v1", "2024-01-16"))
    assert rows[0] == AGG_HEADER
    days = await read_csv(s3, sim.bucket, key("day_aggs_v1", "2024-01-16"))
    assert days[0] == AGG_HEADER and [r[0] for r in days[1:]] == sorted(sim.symbols)
    for symbol in sim.symbols:
        minute = [r for r in rows[1:] if r[0] == symbol]
        rest = await rest_bars(sim, symbol, "1/minute/2024-01-16/2024-01-16")
        assert [_from_file(r) for r in minute] == [_from_rest(b) for b in rest]
        daily = await rest_bars(sim, symbol, "1/day/2024-01-16/2024-01-16")
        assert [_from_file(r) for r in days[1:] if r[0] == symbol] == [_from_rest(daily[0])]


def _from_file(row: list[str]) -> tuple[float, ...]:
    _, volume, o, c, h, low, start_ns, n = row
    assert int(start_ns) % 1_000_000 == 0, "window_start is in nanoseconds"
    return (float(o), float(h), float(low), float(c), int(volume), int(start_ns) // 10**6, int(n))


def _from_rest(bar: dict[str, Any]) -> tuple[float, ...]:
    return (bar["o"], bar["h"], bar["l"], bar["c"], bar["v"], bar["t"], bar["n"])


async def test_trades_file_has_polygons_columns(sim: SimServer, s3: Any) -> None:
    rows = await read_csv(s3, sim.bucket, key("trades_v1", "2024-01-16"))
    assert rows[0] == TRADES_HEADER
    body = rows[1:]
    assert {r[0] for r in body} == set(sim.symbols)
    assert any("," in r[1] for r in body), "several conditions are one quoted field"
    assert all(len(r[8]) == 19 for r in body), "sip_timestamp in nanoseconds"
    trf = [r for r in body if r[3] == "4"]
    assert trf and all(r[11] and r[12] for r in trf)
    assert all(not r[11] for r in body if r[3] != "4")


async def test_a_missing_day_disappears_and_comes_back(sim_knobs: SimServer, s3: Any) -> None:
    await sim_knobs.set_knobs(missing_days=["2024-01-12"])
    with pytest.raises(ClientError) as missing:
        await s3.get_object(Bucket=sim_knobs.bucket, Key=key("minute_aggs_v1", "2024-01-12"))
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert "2024-01-12" not in (await sim_knobs.info())["flatfile_days"]
    assert await read_csv(s3, sim_knobs.bucket, key("minute_aggs_v1", "2024-01-16"))
    await sim_knobs.reset_knobs()
    assert await read_csv(s3, sim_knobs.bucket, key("minute_aggs_v1", "2024-01-12"))


async def listed(s3: Any, bucket: str) -> set[str]:
    listing = await s3.list_objects_v2(Bucket=bucket, Prefix="us_stocks_sip/")
    return {item["Key"] for item in listing.get("Contents", [])}


async def assert_absent(s3: Any, bucket: str, day: str) -> None:
    """No file of ``day``: every GET is NoSuchKey (404) and no listing shows it."""
    for kind in ("minute_aggs_v1", "day_aggs_v1", "trades_v1"):
        with pytest.raises(ClientError) as missing:
            await s3.get_object(Bucket=bucket, Key=key(kind, day))
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not {k for k in await listed(s3, bucket) if day in k}


async def test_the_day_of_the_clock_has_no_files_yet(sim: SimServer, s3: Any) -> None:
    """20:30 New York on the 17th: the day is over, but its files come the next morning."""
    assert (await sim.clock())["now_ns"] < ELEVEN_ON_THE_18TH_NS
    await assert_absent(s3, sim.bucket, "2024-01-17")
    assert "2024-01-17" not in (await sim.info())["flatfile_days"]


async def test_a_day_appears_at_eleven_new_york_the_next_day_and_stays(
    sim_factory: SimFactory,
) -> None:
    """Moving the clock across 11:00 New York (16:00Z in January) publishes the day at once;
    later days come one by one, and the files of past days remain."""
    market = await sim_factory(clock_start="2024-01-18T15:59:00Z", speed=0)
    async with market.s3_client() as s3:
        await assert_absent(s3, market.bucket, "2024-01-17")
        before = (await market.info())["flatfile_days"]
        assert before[-1] == "2024-01-16" and len(before) == 5, "the default: five days"
        await market.set_clock(now="2024-01-18T16:00:00Z")
        rows = await read_csv(s3, market.bucket, key("minute_aggs_v1", "2024-01-17"))
        last_bar_ns = max(int(r[6]) for r in rows[1:])
        assert last_bar_ns < (await market.clock())["now_ns"], "no bar later than sim-now"
        assert (await market.info())["flatfile_days"] == [*before, "2024-01-17"]
        await market.set_clock(now="2024-01-24T12:00:00Z")
        days = (await market.info())["flatfile_days"]
        assert days == [*before, "2024-01-17", "2024-01-18", "2024-01-19", "2024-01-22"]
        assert {k for k in await listed(s3, market.bucket) if before[0] in k}, "the past stays"
        await assert_absent(s3, market.bucket, "2024-01-23")


async def test_the_publication_time_is_a_knob(sim_knobs: SimServer, s3: Any) -> None:
    """An earlier publication time (here midnight New York) publishes the 17th at 05:00Z on
    the 18th, still after the shared clock's 01:30Z; a later one holds back the 16th too."""
    await sim_knobs.set_knobs(flatfiles_publish_at="00:00")
    await assert_absent(s3, sim_knobs.bucket, "2024-01-17")
    await sim_knobs.set_knobs(flatfiles_publish_at="23:30")
    await assert_absent(s3, sim_knobs.bucket, "2024-01-16")
    assert (await sim_knobs.knobs())["flatfiles_publish_at"] == "23:30"
    await sim_knobs.reset_knobs()
    assert await read_csv(s3, sim_knobs.bucket, key("minute_aggs_v1", "2024-01-16"))
