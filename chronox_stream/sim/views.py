"""Bodies of the REST endpoints other than ``/v2/aggs`` (pure): snapshot, prev, open-close, status.

Each takes the market, sim-now and the late-trades knob and returns Polygon's
JSON shape without ``request_id`` (the handler adds it). Like the aggregates,
each is built from the trades reported by sim-now only
(:mod:`chronox_stream.sim.history`): a late trade counts from its report time
on. Choices where Polygon leaves room:

- previous close: the day bar of the last trading day strictly before sim-now's
  New York date;
- open-close: ``open``/``close`` are the first/last open/close-eligible trades
  of the regular session, ``high``/``low``/``volume`` the whole day's bar,
  ``preMarket`` the first eligible pre-market trade, ``afterHours`` the last
  eligible after-hours trade; served once the day's after-hours are over;
- snapshot: the snapshot day is the latest trading day whose 03:30 New York
  has passed (data is cleared at 03:30 and refills with the first trade);
  ``day`` holds its trades reported by sim-now, ``min`` its latest closed minute bar,
  ``lastQuote`` is absent (the simulator has no quotes).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from chronox_stream.domain.conditions import sets_open_close
from chronox_stream.domain.market_calendar import NEW_YORK
from chronox_stream.sim.adjusted import scaled_json
from chronox_stream.sim.aggregate import Agg, fold
from chronox_stream.sim.corporate import price_factor
from chronox_stream.sim.history import bars_as_of, day_bar_as_of, trades_as_of
from chronox_stream.sim.market import Market, Trade
from chronox_stream.sim.sessions import (
    NS_PER_MIN,
    TradingDay,
    calendar_range,
    closures,
    from_ns,
    ny_date,
    ny_midnight_ns,
    previous_trading_day,
    trading_day,
)

SNAPSHOT_CLEARED_AT_NS = 210 * NS_PER_MIN  # 03:30 after New York midnight
_ZERO_OHLCV = {"o": 0, "h": 0, "l": 0, "c": 0, "v": 0, "vw": 0}


def bar_json(bar: Agg) -> dict[str, Any]:
    """A bar as in ``results`` of ``/v2/aggs``."""
    return {
        "v": bar.volume,
        "vw": bar.vwap,
        "o": bar.open,
        "c": bar.close,
        "h": bar.high,
        "l": bar.low,
        "t": bar.start_ms,
        "n": bar.transactions,
    }


def _ohlcv(bar: Agg | None) -> dict[str, Any]:
    if bar is None:
        return dict(_ZERO_OHLCV)
    return {"o": bar.open, "h": bar.high, "l": bar.low, "c": bar.close, "v": bar.volume,
            "vw": bar.vwap}  # fmt: skip


def previous_close(
    market: Market, symbol: str, now_ns: int, adjusted: bool = True, *, late_trades: bool
) -> dict[str, Any]:
    """``/v2/aggs/ticker/{T}/prev`` without ``request_id`` (split-adjusted unless told not)."""
    previous = previous_trading_day(ny_date(now_ns))
    bar = (
        day_bar_as_of(market, symbol, previous.day, now_ns, late_trades=late_trades)
        if previous is not None
        else None
    )
    body: dict[str, Any] = {
        "ticker": symbol,
        "queryCount": 1 if bar else 0,
        "resultsCount": 1 if bar else 0,
        "adjusted": adjusted,
        "status": "OK",
    }
    if bar is not None and previous is not None:
        factor = price_factor(market.splits, symbol, previous.day, executed_by=ny_date(now_ns))
        served = scaled_json(bar, factor) if adjusted else bar_json(bar)
        body["results"] = [{"T": symbol, **served}]
    return body


def open_close(
    market: Market, symbol: str, day: date, now_ns: int, *, late_trades: bool
) -> dict[str, Any] | None:
    """``/v1/open-close/{T}/{date}`` without ``request_id``; ``None``: no data (404)."""
    session = trading_day(day)
    if session is None or session.post_close_ns > now_ns:
        return None
    whole = day_bar_as_of(market, symbol, day, now_ns, late_trades=late_trades)
    if whole is None:
        return None
    reported = trades_as_of(market, symbol, day, now_ns, late_trades=late_trades)
    priced = [t for t in reported if sets_open_close(t.conditions)]
    regular = [t for t in priced if session.phase(t.sip_ns) == "regular"]
    pre = [t for t in priced if session.phase(t.sip_ns) == "pre"]
    post = [t for t in priced if session.phase(t.sip_ns) == "post"]
    body: dict[str, Any] = {
        "status": "OK",
        "from": day.isoformat(),
        "symbol": symbol,
        "open": regular[0].price if regular else whole.open,
        "high": whole.high,
        "low": whole.low,
        "close": regular[-1].price if regular else whole.close,
        "volume": whole.volume,
    }
    if pre:
        body["preMarket"] = pre[0].price
    if post:
        body["afterHours"] = post[-1].price
    return body


def _snapshot_day(now_ns: int) -> date | None:
    """The latest trading day whose 03:30 New York is not after ``now_ns``."""
    candidate = ny_date(now_ns)
    if now_ns < ny_midnight_ns(candidate) + SNAPSHOT_CLEARED_AT_NS:
        candidate -= timedelta(days=1)
    if trading_day(candidate) is not None:
        return candidate
    previous = previous_trading_day(candidate)
    return previous.day if previous is not None else None


def _last_trade(trade: Trade) -> dict[str, Any]:
    return {"c": list(trade.conditions), "i": trade.trade_id, "p": trade.price, "s": trade.size,
            "t": trade.sip_ns, "x": trade.exchange}  # fmt: skip


def snapshot(market: Market, symbol: str, now_ns: int, *, late_trades: bool) -> dict[str, Any]:
    """``/v2/snapshot/locale/us/markets/stocks/tickers/{T}`` without ``request_id``."""
    day = _snapshot_day(now_ns)
    ticker: dict[str, Any] = {
        "ticker": symbol,
        "day": dict(_ZERO_OHLCV),
        "prevDay": dict(_ZERO_OHLCV),
    }
    ticker["min"] = {"av": 0, "t": 0, "n": 0, **_ZERO_OHLCV}
    ticker["todaysChange"], ticker["todaysChangePerc"], ticker["updated"] = 0, 0, now_ns
    if day is None:
        return {"status": "OK", "ticker": ticker}
    trades = trades_as_of(market, symbol, day, now_ns, late_trades=late_trades)
    today = fold(trades, ny_midnight_ns(day), ny_midnight_ns(day + timedelta(days=1)))
    previous = previous_trading_day(day)
    prev_bar = (
        day_bar_as_of(market, symbol, previous.day, now_ns, late_trades=late_trades)
        if previous is not None
        else None
    )
    ticker["day"], ticker["prevDay"] = _ohlcv(today), _ohlcv(prev_bar)
    minutes = bars_as_of(market, symbol, day, "minute", now_ns, late_trades=late_trades)
    closed = [b for b in minutes if b.end_ns <= now_ns]
    if closed:
        minute = closed[-1]
        volume = today.volume if today is not None else 0
        ticker["min"] = {"av": volume, **bar_json(minute)}
    last = trades[-1] if trades else _last_of_day(market, symbol, previous)
    if last is not None:
        ticker["lastTrade"] = _last_trade(last)
        ticker["updated"] = last.sip_ns
    if today is not None and prev_bar is not None:
        change = round(today.close - prev_bar.close, 4)
        ticker["todaysChange"] = change
        ticker["todaysChangePerc"] = round(100 * change / prev_bar.close, 4)
    return {"status": "OK", "ticker": ticker}


def _last_of_day(market: Market, symbol: str, session: TradingDay | None) -> Trade | None:
    if session is None:
        return None
    trades = market.day(symbol, session.day)
    return trades[-1] if trades else None


def _rfc3339(ns: int) -> str:
    return from_ns(ns).astimezone(NEW_YORK).replace(microsecond=0).isoformat()


def _fx_open(local: datetime) -> bool:
    """Forex trades from Sunday 17:00 to Friday 17:00 New York."""
    weekday, hour = local.weekday(), local.hour
    if weekday == 5:
        return False
    if weekday == 4:
        return hour < 17
    return not (weekday == 6 and hour < 17)


def market_now(now_ns: int) -> dict[str, Any]:
    """``/v1/marketstatus/now``."""
    session = trading_day(ny_date(now_ns))
    phase = session.phase(now_ns) if session is not None else "closed"
    market = {"pre": "extended-hours", "post": "extended-hours", "regular": "open"}.get(
        phase, "closed"
    )
    local = from_ns(now_ns).astimezone(NEW_YORK)
    return {
        "market": market,
        "serverTime": _rfc3339(now_ns),
        "earlyHours": phase == "pre",
        "afterHours": phase == "post",
        "exchanges": {
            "nyse": market,
            "nasdaq": market,
            "otc": "open" if phase == "regular" else "closed",
        },
        "currencies": {"fx": "open" if _fx_open(local) else "closed", "crypto": "open"},
    }


def _utc_ms(ns: int) -> str:
    return from_ns(ns).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def market_upcoming(now_ns: int) -> list[dict[str, Any]]:
    """``/v1/marketstatus/upcoming``: holidays and early closes of the coming year."""
    first = ny_date(now_ns)
    last = min(first + timedelta(days=365), calendar_range()[1])
    entries: list[dict[str, Any]] = []
    for closure in closures(first, last):
        for exchange in ("NYSE", "NASDAQ"):
            entry: dict[str, Any] = {
                "date": closure.day.isoformat(),
                "exchange": exchange,
                "name": closure.name,
                "status": closure.status,
            }
            if closure.open_ns is not None and closure.close_ns is not None:
                entry["open"] = _utc_ms(closure.open_ns)
                entry["close"] = _utc_ms(closure.close_ns)
            entries.append(entry)
    return entries
