"""Polygon flat files (CSV.gz) of a symbol universe, written once per (seed, symbols, day).

Three files per trading day, keyed like Polygon's bucket
(``us_stocks_sip/{kind}/YYYY/MM/YYYY-MM-DD.csv.gz``): ``minute_aggs_v1`` and
``day_aggs_v1`` (``ticker,volume,open,close,high,low,window_start,transactions``,
``window_start`` in ns) and ``trades_v1`` (Polygon's trade header, times in
ns), rows sorted by ticker then time. They hold final values (every trade, late
ones too), so a day's files are published only after the day, at a set time
of the next calendar day (:func:`published_ns`; the ``flatfiles_publish_at``
knob, by default 11:00 New York, as Polygon publishes): before it they are not
in the bucket at all.

Files live under ``<data_dir>/<model digest>-seed<seed>-<universe digest>/`` (the
universe is the symbols and the splits)
in the bucket layout (the model digest covers the source of the modules that
decide the bytes), so a restart with the same code, seed and universe reuses them;
writes are atomic (temporary file, then rename) and the gzip header carries
no timestamp, so the bytes are reproducible.
"""

from __future__ import annotations

import gzip
import inspect
import os
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from hashlib import blake2b
from importlib import import_module
from pathlib import Path
from typing import Literal

from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.sim.corporate import Split
from chronox_stream.sim.history import day_bar, minute_bars
from chronox_stream.sim.market import Market, Trade
from chronox_stream.sim.sessions import TradingDay, ny_date, to_ns, trading_day, trading_days

Kind = Literal["minute_aggs_v1", "day_aggs_v1", "trades_v1"]
KINDS: tuple[Kind, ...] = ("minute_aggs_v1", "day_aggs_v1", "trades_v1")
DEFAULT_DAYS = 5
AGG_HEADER = "ticker,volume,open,close,high,low,window_start,transactions"
_MODEL_MODULES = (
    "chronox_stream.domain.conditions",
    *(f"chronox_stream.sim.{name}"
      for name in ("aggregate", "corporate", "flatfiles", "history", "market", "sessions")),
)  # fmt: skip
TRADES_HEADER = (
    "ticker,conditions,correction,exchange,id,participant_timestamp,price,sequence_number,"
    "sip_timestamp,size,tape,trf_id,trf_timestamp"
)


def object_key(kind: Kind, day: date) -> str:
    return f"us_stocks_sip/{kind}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}.csv.gz"


@lru_cache(maxsize=1)
def _model_digest() -> str:
    """Digest of the source of every module that decides a file's bytes."""
    digest = blake2b(digest_size=5)
    for name in _MODEL_MODULES:
        digest.update(Path(inspect.getfile(import_module(name))).read_bytes())
    return digest.hexdigest()


def cache_root(
    data_dir: Path, seed: int, symbols: Sequence[str], splits: Sequence[Split] = ()
) -> Path:
    """The cache folder of a (model version, seed, symbol universe, splits)."""
    universe_text = ",".join(sorted(symbols))
    if splits:
        universe_text += "|" + ",".join(sorted(repr(s) for s in splits))
    universe = blake2b(universe_text.encode(), digest_size=5).hexdigest()
    return data_dir / f"{_model_digest()}-seed{seed}-{universe}"


def _agg_rows(market: Market, symbols: Sequence[str], day: date, kind: Kind) -> list[str]:
    rows = [AGG_HEADER]
    for symbol in sorted(symbols):
        if kind == "minute_aggs_v1":
            bars = list(minute_bars(market, symbol, day))
        else:
            bar = day_bar(market, symbol, day)
            bars = [bar] if bar is not None else []
        rows.extend(
            f"{symbol},{b.volume},{b.open},{b.close},{b.high},{b.low},{b.start_ns},{b.transactions}"
            for b in bars
        )
    return rows


def _trade_row(t: Trade) -> str:
    conditions = ",".join(str(c) for c in t.conditions)
    if len(t.conditions) > 1:
        conditions = f'"{conditions}"'
    trf_id = "" if t.trf_id is None else str(t.trf_id)
    trf_ns = "" if t.trf_ns is None else str(t.trf_ns)
    return (
        f"{t.symbol},{conditions},0,{t.exchange},{t.trade_id},{t.participant_ns},{t.price},"
        f"{t.sequence},{t.sip_ns},{t.size},{t.tape},{trf_id},{trf_ns}"
    )


def render(market: Market, symbols: Sequence[str], day: date, kind: Kind) -> bytes:
    """One file's compressed bytes."""
    if kind == "trades_v1":
        rows = [TRADES_HEADER]
        for symbol in sorted(symbols):
            rows.extend(_trade_row(t) for t in market.day(symbol, day))
    else:
        rows = _agg_rows(market, symbols, day, kind)
    return gzip.compress(("\n".join(rows) + "\n").encode(), compresslevel=6, mtime=0)


def ensure_day(market: Market, symbols: Sequence[str], day: date, root: Path) -> dict[str, Path]:
    """The day's files (object key -> path), written if not cached yet."""
    found: dict[str, Path] = {}
    for kind in KINDS:
        key = object_key(kind, day)
        path = root / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            partial.write_bytes(render(market, symbols, day, kind))
            partial.replace(path)
        found[key] = path
    return found


def published_ns(day: date, publish_at: time) -> int:
    """When ``day``'s files appear: ``publish_at`` New York time on the next calendar day.

    Any time of that day is after the day's last trade and its last late report
    (20:15 at the latest), so a file never holds a bar later than sim-now.
    """
    return to_ns(datetime.combine(day + timedelta(days=1), publish_at, tzinfo=NEW_YORK))


def planned_days(
    now_ns: int, first: date | None, last: date | None, publish_at: time
) -> list[date]:
    """Days in the bucket at ``now_ns``: trading days in ``[first, last]`` already published.

    Without ``last``, up to the latest published day; without ``first``, the five
    trading days ending there.
    """
    end = _latest_published(now_ns, publish_at)
    if end is None:
        return []
    if last is not None:
        end = min(end, last)
    if first is not None:
        return [d.day for d in trading_days(first, end)]
    found = trading_days(end - timedelta(days=4 * DEFAULT_DAYS), end)
    return [d.day for d in found[-DEFAULT_DAYS:]]


def _latest_published(now_ns: int, publish_at: time) -> date | None:
    day = ny_date(now_ns)
    for back in range(0, 16):
        session: TradingDay | None = trading_day(day - timedelta(days=back))
        if session is not None and published_ns(session.day, publish_at) <= now_ns:
            return session.day
    return None


def next_publication_ns(now_ns: int, publish_at: time) -> int | None:
    """The first publication instant after ``now_ns`` (within two weeks), if any."""
    today = ny_date(now_ns)
    for ahead in range(-1, 15):
        session = trading_day(today + timedelta(days=ahead))
        if session is not None and (at := published_ns(session.day, publish_at)) > now_ns:
            return at
    return None
