"""Emitting bars: dedup, publish mode, throttle, dry run.

Order of effects per emit: decide each chunk of bars with the dedup table, overlaid with
the decisions of the emit's earlier chunks (nothing is recorded yet), then (db-first)
write PostgreSQL, then send every chunk to the bar topics and wait until Kafka has all
the envelopes (:func:`~chronox_stream.runtime.loop.deliver`, the produce step of the
batch loop too), and only then record each chunk's state as emitted. A crash in between
can re-send a bar (downstream sinks are idempotent) but can never mark a bar emitted that
is not on the topic. One wait for the acknowledgements per emit, not per chunk: a round
trip to the brokers costs more than producing a chunk.

Unthrottled, a chunk's envelopes go out as a few record batches
(:mod:`~chronox_stream.runtime.produce`: each on the partition a per-bar send would
pick), not one send per bar; a throttle (``throttle_ms > 0``) spaces the bars out, so it
sends them one by one. Either way ``deliver`` runs the sends and waits for every
acknowledgement; a failed send raises and nothing of the emit is recorded.

Each emit (but a dry run's) first lets the dedup table purge the stale buckets
of the partition being processed (:meth:`Dedup.purge`): every writer of the
table is an emitter, inside the event that owns the partition.

A bar the sinks would refuse as an envelope
(:func:`~chronox_stream.contracts.envelope.check_bar`, the rules of
:func:`~chronox_stream.contracts.envelope.decode_bar`) is not published: it is handed to
``reject`` with the reason (the worker dead-letters it, as ``invalid_envelope``), so every
envelope on a bar topic made here is one the sinks take. A chunk's envelopes are
serialized at once (:func:`~chronox_stream.contracts.envelope.envelopes`), and given with
their bars to ``seed`` (the worker's :class:`~chronox_stream.sinks.decoded.Seeded`) before
they are sent, so that the worker's sinks take the bars without decoding them: seeded
first, a record a sink reads the moment it is acknowledged is found too, and an entry whose
send then fails is still exact (keyed by the bytes) and ages out.

A dry run decides exactly as a real run, on the table's state overlaid with what it
would have recorded (:class:`~chronox_stream.domain.dry_run.DryRunDedup`), so its count is
the real run's; it sends, writes and records nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol, TypeAlias

from chronox_stream.contracts.control import PublishMode
from chronox_stream.contracts.envelope import envelopes, split_valid
from chronox_stream.contracts.rejects import Rejected
from chronox_stream.domain.bars import Bar
from chronox_stream.domain.dedup import Bucket, admit_batch, bucket_key
from chronox_stream.domain.dry_run import DryRunDedup
from chronox_stream.domain.sources import Source
from chronox_stream.runtime import metrics
from chronox_stream.runtime.loop import deliver

CHUNK = 1000

#: ``send(tf, key, value)``: one bar's envelope to its topic; returns its delivery.
Send: TypeAlias = Callable[[str, bytes, bytes], Awaitable[Awaitable[Any]]]
#: ``send_batches(tf, [(key, value), ...])``: the sends of a chunk's envelopes as record
#: batches (:func:`~chronox_stream.runtime.produce.batch_sends`), for ``deliver`` to run.
#: ``reject(bar, source, why)``: a bar refused before publication, for the dead letters.
Reject: TypeAlias = Callable[[Bar, Source, Rejected], Awaitable[None]]
#: ``seed(source, bars, envelopes)``: the envelope each bar is sent as, before it is sent.
Seed: TypeAlias = Callable[[Source, Sequence[Bar], Sequence[bytes]], None]
SendBatches: TypeAlias = Callable[
    [str, Sequence[tuple[bytes, bytes]]], Awaitable[Iterable[Awaitable[Awaitable[Any]]]]
]


class Dedup(Protocol):
    def current(self, keys: set[str]) -> dict[str, Bucket]: ...

    def record(self, buckets: dict[str, Bucket]) -> None: ...

    def purge(self) -> int: ...


class EmitPolicy(Protocol):
    """How bars are published: a work item carries its request's choices, the stream its own."""

    @property
    def dry_run(self) -> bool: ...
    @property
    def publish_mode(self) -> PublishMode: ...
    @property
    def throttle_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class LivePolicy:
    """The stream's policy: every bar at once, Kafka first (the sink mirrors it)."""

    dry_run: bool = False
    publish_mode: PublishMode = "kafka-first"
    throttle_ms: int = 0


class Emitter:
    """Publishes bars under one policy; ``count`` says how many were (or would be) emitted."""

    def __init__(
        self,
        policy: EmitPolicy,
        *,
        dedup: Dedup,
        send: Send,
        write_db: Callable[[Sequence[tuple[Bar, Source]]], Awaitable[None]],
        reject: Reject,
        send_batches: SendBatches | None = None,
        seed: Seed | None = None,
    ) -> None:
        self._policy = policy
        self._dedup: Dedup = DryRunDedup(dedup) if policy.dry_run else dedup
        self._send = send
        # A throttle spaces the bars out one by one: only an unthrottled policy batches.
        self._send_batches = send_batches if policy.throttle_ms <= 0 else None
        self._write_db = write_db
        self._reject = reject
        self._seed = seed
        self._gap_s = policy.throttle_ms / 1000
        self._last_publish = 0.0
        self.count = 0

    async def emit(self, bars: Sequence[Bar], source: Source) -> int:
        """Emit what dedup admits; return how many of ``bars`` were (or would be) emitted."""
        dry_run = self._policy.dry_run
        if not dry_run:
            self._dedup.purge()
        # The decisions of the emit's chunks wait here until Kafka has the bars: a later
        # chunk is judged against the earlier ones, and nothing is recorded before the acks.
        pending: dict[str, Bucket] = {}
        chunks: list[tuple[list[Bar], dict[str, Bucket]]] = []
        dropped = 0
        for offset in range(0, len(bars), CHUNK):
            valid, refused = split_valid(bars[offset : offset + CHUNK], source)
            if not dry_run:
                for bar, why in refused:
                    await self._reject(bar, source, why)
            keys = [bucket_key(bar) for bar in valid]
            wanted = set(keys)
            buckets = self._dedup.current(wanted - pending.keys())
            buckets.update((key, pending[key]) for key in wanted & pending.keys())
            admitted, state = admit_batch(valid, source, buckets, keys)
            dropped += len(valid) - len(admitted)
            pending.update(state)
            if dry_run:
                self._dedup.record(state)  # in memory only: later phases of the item see it
            if admitted:
                chunks.append((admitted, state))
        if not dry_run and chunks:
            await self._publish_chunks(chunks, source)
        if not dry_run:
            metrics.emitted(source, [admitted for admitted, _ in chunks], dropped)
        emitted = sum(len(admitted) for admitted, _ in chunks)
        self.count += emitted
        return emitted

    async def _publish_chunks(
        self, chunks: Sequence[tuple[list[Bar], dict[str, Bucket]]], source: Source
    ) -> None:
        """Write (db-first), send every chunk's envelopes, wait for all the acks, and only
        then record each chunk's dedup state: one wait for the acks per emit, not per chunk."""
        if self._policy.publish_mode == "db-first":
            for admitted, _ in chunks:
                await self._write_db([(b, source) for b in admitted])
        sends: list[Iterable[Awaitable[Awaitable[Any]]]] = []
        for admitted, _ in chunks:
            payloads = envelopes(admitted, source)
            if self._seed is not None:
                self._seed(source, admitted, payloads)
            if self._send_batches is None:
                pairs = zip(admitted, payloads, strict=True)
                sends.append(self._publish(bar, payload) for bar, payload in pairs)
            else:
                sends.append(await self._batches(self._send_batches, admitted, payloads))
        await deliver(chain.from_iterable(sends))
        for _, state in chunks:
            self._dedup.record(state)

    @staticmethod
    async def _batches(
        send_batches: SendBatches, bars: Sequence[Bar], payloads: Sequence[bytes]
    ) -> Iterable[Awaitable[Awaitable[Any]]]:
        """The sends of ``bars``' envelopes as record batches, per timeframe's topic."""
        by_tf: dict[str, list[tuple[bytes, bytes]]] = {}
        keys: dict[str, bytes] = {}
        for bar, payload in zip(bars, payloads, strict=True):
            records = by_tf.get(bar.tf)
            if records is None:
                records = by_tf[bar.tf] = []
            key = keys.get(bar.symbol)
            if key is None:
                key = keys[bar.symbol] = bar.symbol.encode()
            records.append((key, payload))
        sends: list[Iterable[Awaitable[Awaitable[Any]]]] = []
        for tf, records in by_tf.items():
            sends.append(await send_batches(tf, records))
        return chain.from_iterable(sends)

    async def _publish(self, bar: Bar, payload: bytes) -> Awaitable[Any]:
        """Send one bar's envelope (after the throttle's gap); return its delivery."""
        if self._gap_s > 0:
            wait = self._last_publish + self._gap_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_publish = time.monotonic()
        return await self._send(bar.tf, bar.symbol.encode(), payload)
