"""Every codec on every input topic: records that another client compressed are processed.

Most producers outside Python compress (librdkafka, the Java client), and aiokafka, under
the Faust agents and our own consumers, decodes snappy, lz4 and zstd only with its codec
library installed. One worker takes, for each codec, a backfill request, registry
commands, raw ticks and bar envelopes produced by librdkafka (confluent-kafka); each
batch is checked to be stored with its codec, so the test cannot pass on uncompressed
records. The chronox topics the worker writes for itself (work, status, ticks.bars,
ticks.state, the dead letters, the wider bar topics) are given a codec by topic config,
so the broker compresses what the worker's own producers send and its consumers read it
back compressed. (Faust's changelog topics are left alone: the admin call would replace
their configs, and they are read by the same aiokafka consumer.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import cycle
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from confluent_kafka import KafkaError, Message, Producer

from chronox_stream.client.registry import read_entries
from chronox_stream.contracts.envelope import envelope
from chronox_stream.contracts.ticks import Tick
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.registry import RegistryCommand
from chronox_stream.runtime.names import TopicNames
from chronox_stream.runtime.topics import partitions_of, read_to_end, topic_specs
from chronox_stream.settings import Settings
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import consume, fetch_rows, poll

pytestmark = [pytest.mark.integration, pytest.mark.long]

CODECS = ("gzip", "snappy", "lz4", "zstd")
#: The codec field of a Kafka record batch's attributes.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
INPUTS = ("control", "registry", "ticks.raw", "bars.1m")
#: One trading day per codec for its backfill request (the simulator serves them all).
DAYS = dict(zip(CODECS, ("2024-01-10", "2024-01-11", "2024-01-12", "2024-01-16"), strict=True))
MINUTE = datetime(2024, 1, 16, 15, 0, tzinfo=UTC)

Key = tuple[str, str]  # (input topic, codec)


def request_of(codec: str) -> dict[str, Any]:
    """A request with every field spelt out: long enough for each codec to shrink it."""
    day = DAYS[codec]
    return {"request_id": f"codec-{codec}", "symbols": ["AAPL"], "strategy": "api",
            "timeframe": "1m", "snapshot_method": "snapshot", "publish_mode": "kafka-first",
            "enable_stream": False, "throttle_ms": 0, "dry_run": False,
            "start": f"{day}T00:00:00+00:00", "end": f"{day}T23:59:59+00:00"}  # fmt: skip


def registry_commands_of(codec: str) -> list[RegistryCommand]:
    """Two commands on one key, so they travel (and are compressed) in one batch."""
    symbol = f"RG{codec.upper()}"
    return [RegistryCommand(op="add", symbol=symbol, strategy="flatpack+api"),
            RegistryCommand(op="disable", symbol=symbol)]  # fmt: skip


def ticks_of(codec: str) -> list[Tick]:
    """Three trades in MINUTE, the last in its final second: the idle clock closes it."""
    symbol, base = f"TK{codec.upper()}", 10.0 + CODECS.index(codec)
    trades = ((5, 0.25, 100), (30, 0.75, 40), (59, -0.5, 60))  # (second, price step, size)
    return [Tick(symbol=symbol, ts=int((MINUTE + timedelta(seconds=s)).timestamp() * 1000),
                 price=base + step, size=size, sequence=n)
            for n, (s, step, size) in enumerate(trades)]  # fmt: skip


def bars_of(codec: str) -> list[Bar]:
    """Two api bars of one symbol, as any producer of the bar topics may send them."""
    base = 20.0 + CODECS.index(codec)
    return [Bar(symbol=f"BR{codec.upper()}", tf="1m", ts=MINUTE + timedelta(minutes=n),
                open=base, high=base + 1, low=base - 0.5, close=base + 0.5, volume=1000.0 + n,
                vwap=base + 0.2, transactions=10 + n)
            for n in range(2)]  # fmt: skip


def messages_of(settings: Settings, codec: str) -> list[tuple[str, str, bytes, bytes]]:
    """(input, topic, key, value) of everything sent with ``codec``."""
    request = request_of(codec)
    out = [("control", settings.topic("control"), request["request_id"].encode(),
            orjson.dumps(request))]  # fmt: skip
    out += [("registry", settings.topic("registry"), c.symbol.encode(), c.to_json())
            for c in registry_commands_of(codec)]  # fmt: skip
    out += [("ticks.raw", settings.topic("ticks.raw"), t.symbol.encode(), t.to_json())
            for t in ticks_of(codec)]  # fmt: skip
    out += [("bars.1m", settings.topic("bars.1m"), b.symbol.encode(),
             envelope(b, "api")) for b in bars_of(codec)]  # fmt: skip
    return out


def produce_with_librdkafka(settings: Settings, codec: str) -> dict[str, list[Message]]:
    """Send ``codec``'s messages with confluent-kafka; their delivery reports by input."""
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                         "compression.type": codec, "linger.ms": 100})  # fmt: skip
    delivered: dict[str, list[Message]] = {name: [] for name in INPUTS}
    errors: list[KafkaError] = []

    def report(name: str) -> Any:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                errors.append(error)
            else:
                delivered[name].append(message)

        return on_delivery

    for name, topic, key, value in messages_of(settings, codec):
        producer.produce(topic, value=value, key=key, on_delivery=report(name))
    assert producer.flush(30) == 0 and not errors, f"{codec}: not delivered: {errors}"
    return delivered


Position = tuple[str, int, int]  # (topic, partition, offset)


async def stored_codecs(settings: Settings, positions: list[Position]) -> dict[Position, list[int]]:
    """The codec of each record batch the broker stores from each position on (up to 1 MiB)."""
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap)
    await client.bootstrap()
    out: dict[Position, list[int]] = {}
    try:
        await client.set_topics(sorted({topic for topic, _, _ in positions}))
        for topic, partition, offset in positions:
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            request = FetchRequest(500, 1, 1 << 20, 0, [(topic, [(partition, offset, 1 << 20)])])
            response = await client.send(leader, request)
            ((_, partitions),) = response.topics
            ((_, error, _, *_, raw),) = partitions  # the record set comes last in every version
            assert error == 0, f"fetch of {topic}[{partition}]@{offset}: error {error}"
            records, codecs = MemoryRecords(raw), []
            while (batch := records.next_batch()) is not None:
                codecs.append(batch.compression_type)
            out[(topic, partition, offset)] = codecs
    finally:
        await client.close()
    return out


async def compress_internal_topics(settings: Settings) -> dict[str, str]:
    """Make the broker compress, with each codec in turn, the topics the worker writes for
    itself (keeping each topic's own configs: the admin call replaces them all)."""
    inputs = {settings.topic(name) for name in INPUTS}
    specs = sorted((s for s in topic_specs(settings) if s.name not in inputs),
                   key=lambda s: s.name)  # fmt: skip
    chosen = {spec.name: codec for spec, codec in zip(specs, cycle(CODECS), strict=False)}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.alter_configs([
            ConfigResource(ConfigResourceType.TOPIC, spec.name,
                           {**spec.config, "compression.type": chosen[spec.name]})
            for spec in specs
        ])  # fmt: skip
    finally:
        await admin.close()
    errors = [(r[3], r[1]) for response in responses for r in response.resources if r[0]]
    assert not errors, f"topic configs not changed: {errors}"
    # The broker applies a config change once it reads it from the metadata log: a record
    # written before that is stored as the old config says.
    assert await poll(lambda: compression_applied(settings, chosen), timeout_s=30), (
        "the broker did not apply the topics' compression.type"
    )
    return chosen


async def compression_applied(settings: Settings, chosen: dict[str, str]) -> bool:
    """Whether the broker reports each topic's ``compression.type`` as ``chosen``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in chosen]
        )
    finally:
        await admin.close()
    reported = {resource[3]: value for response in responses for resource in response.resources
                for name, value, *_ in resource[4] if name == "compression.type"}  # fmt: skip
    return reported == chosen


async def internal_codecs(settings: Settings, topics: list[str]) -> dict[str, set[int]]:
    """The codecs of every batch stored on ``topics`` (those that hold any)."""
    positions = [(tp.topic, tp.partition, 0) for topic in topics
                 for tp in await partitions_of(settings, topic)]  # fmt: skip
    out: dict[str, set[int]] = {}
    for (topic, _, _), codecs in (await stored_codecs(settings, positions)).items():
        if codecs:
            out.setdefault(topic, set()).update(codecs)
    return out


async def control_processed(settings: Settings) -> set[Key]:
    """Requests whose work finished, with a non-empty api phase."""
    def events_of(records: list[Any]) -> list[dict[str, Any]]:
        return [orjson.loads(r.value) for r in records]

    def all_finished(records: list[Any]) -> bool:
        finished = {e["request_id"] for e in events_of(records) if e["state"] == "finished"}
        return finished >= {request_of(c)["request_id"] for c in CODECS}

    events = events_of(await consume(settings, settings.topic("status"), until=all_finished,
                                     timeout_s=5))  # fmt: skip
    done = {}
    for codec in CODECS:
        rid = request_of(codec)["request_id"]
        mine = [e for e in events if e["request_id"] == rid]
        done[codec] = any(e["state"] == "finished" for e in mine) and any(
            e["state"] == "done" and e["phase"] == "api" and e["count"] > 0 for e in mine
        )
    return {("control", c) for c, ok in done.items() if ok}


async def registry_processed(settings: Settings) -> set[Key]:
    """Symbols added and then disabled: both commands of the batch applied, in order."""
    entries = {e.symbol: (e.strategy, e.enabled) for e in await read_entries(settings)}
    want = ("flatpack+api", False)
    return {("registry", c) for c in CODECS
            if entries.get(registry_commands_of(c)[0].symbol) == want}  # fmt: skip


async def ticks_processed(settings: Settings) -> set[Key]:
    """Symbols whose minute is in PostgreSQL as the ticks make it: a stream bar."""
    rows = await fetch_rows(settings, "SELECT symbol, open, high, low, close, volume, source "
                            "FROM {schema}.bars WHERE tf = '1m' AND ts = $1", MINUTE)  # fmt: skip
    got = {r["symbol"]: (r["open"], r["high"], r["low"], r["close"], r["volume"], r["source"])
           for r in rows}  # fmt: skip
    out = set()
    for codec in CODECS:
        ticks = ticks_of(codec)
        prices = [t.price for t in ticks]
        want = (ticks[0].price, max(prices), min(prices), ticks[-1].price,
                sum(t.size for t in ticks), "stream")  # fmt: skip
        if got.get(ticks[0].symbol) == want:
            out.add(("ticks.raw", codec))
    return out


async def bars_processed(settings: Settings) -> set[Key]:
    rows = await fetch_rows(settings, "SELECT symbol, ts, open, high, low, close, volume, vwap, "
                            "transactions, source FROM {schema}.bars "
                            "WHERE symbol LIKE 'BR%'")  # fmt: skip
    got = {(r["symbol"], r["ts"]): tuple(r.values())[2:] for r in rows}
    out = set()
    for codec in CODECS:
        want = {(b.symbol, b.ts): (b.open, b.high, b.low, b.close, b.volume, b.vwap,
                                   b.transactions, "api") for b in bars_of(codec)}  # fmt: skip
        if all(got.get(key) == value for key, value in want.items()):
            out.add(("bars.1m", codec))
    return out


async def processed(settings: Settings) -> set[Key]:
    return (await control_processed(settings) | await registry_processed(settings)
            | await ticks_processed(settings) | await bars_processed(settings))  # fmt: skip


async def test_every_codec_on_every_input_topic_is_processed(
    settings: Settings, start_worker: WorkerFactory
) -> None:
    worker = start_worker(tick_timeframes="1m")
    internal = await compress_internal_topics(settings)
    assert set(internal.values()) == set(CODECS)

    stored: dict[Key, set[int]] = {}
    for codec in CODECS:
        for name, messages in produce_with_librdkafka(settings, codec).items():
            positions = [(m.topic(), m.partition(), m.offset()) for m in messages]
            firsts = (await stored_codecs(settings, positions)).values()
            stored[(name, codec)] = {codecs[0] for codecs in firsts}
    assert stored == {(name, codec): {CODEC_IDS[codec]} for name in INPUTS for codec in CODECS}, (
        "librdkafka sent a batch uncompressed: make its records more compressible"
    )

    everything = {(name, codec) for name in INPUTS for codec in CODECS}

    async def all_processed() -> bool:
        return await processed(settings) == everything

    await poll(all_processed, timeout_s=120)
    missing = sorted(everything - await processed(settings))
    assert not missing, f"not processed (topic, codec): {missing}\n{worker.log_tail()}"
    dead = await read_to_end(settings, TopicNames.for_settings(settings).dlq)
    assert [(r.topic, dict(r.headers).get("chronox-reason")) for r in dead] == []
    assert worker.process.poll() is None, worker.log_tail()
    # What the worker wrote for itself (and read back) was compressed by the broker.
    written = await internal_codecs(settings, list(internal))
    assert written == {topic: {CODEC_IDS[internal[topic]]} for topic in written}
    names = TopicNames.for_settings(settings)
    assert {names.work, names.status, names.ticks_bars} <= set(written)
