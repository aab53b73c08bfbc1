// The live page of `chronox serve`: candles of one symbol and timeframe (history from
// /v1/bars, then the in-progress and closed bars from /v1/live), and the pipeline's state
// from /v1/status. Everything from the server is put in the page as text (textContent),
// never as HTML. The chart element carries what it drew in data attributes (data-bars,
// data-history, data-live-updates, data-last-time, data-last-close) for tests and tools.
"use strict";

(function () {
  const SYMBOL_RE = /^[A-Z][A-Z0-9]*(?:[.-][A-Z0-9]+)?$/;
  const TIMEFRAMES = ["1m", "5m", "15m", "30m", "1h", "1d"];
  const HISTORY_BARS = 500;
  const STATUS_EVERY_MS = 5000;

  const el = (id) => document.getElementById(id);
  const chartEl = el("chart");
  const params = new URLSearchParams(window.location.search);
  const wanted = (params.get("symbol") || "AAPL").toUpperCase();
  const symbol = SYMBOL_RE.test(wanted) && wanted.length <= 12 ? wanted : "AAPL";
  const tf = TIMEFRAMES.includes(params.get("tf")) ? params.get("tf") : "1m";
  el("symbol").value = symbol;
  el("tf").value = tf;
  el("title").textContent = symbol + " · " + tf;
  document.title = symbol + " " + tf + " · chronox-stream";

  const chart = LightweightCharts.createChart(chartEl, {
    autoSize: true,
    layout: { background: { color: "#101418" }, textColor: "#c9d1d9" },
    grid: { vertLines: { color: "#1f262d" }, horzLines: { color: "#1f262d" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  const series = chart.addSeries(LightweightCharts.CandlestickSeries, {
    upColor: "#3fb950", downColor: "#f85149", borderVisible: false,
    wickUpColor: "#3fb950", wickDownColor: "#f85149",
  });
  const candles = new Map(); // epoch seconds -> candle
  let lastTime = 0;

  function say(text) {
    el("message").textContent = text;
  }

  function candle(bar) {
    return { time: bar.time, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
  }

  function count(name) {
    chartEl.dataset[name] = String(Number(chartEl.dataset[name] || "0") + 1);
  }

  // A bar at or after the last one is an update; an older one (a correction) redraws all.
  function draw(bar) {
    const c = candle(bar);
    candles.set(c.time, c);
    if (c.time >= lastTime) {
      series.update(c);
      lastTime = c.time;
    } else {
      series.setData([...candles.values()].sort((a, b) => a.time - b.time));
    }
    chartEl.dataset.bars = String(candles.size);
  }

  async function loadHistory() {
    const url = "/v1/bars/" + encodeURIComponent(symbol) + "?tf=" + encodeURIComponent(tf) +
      "&limit=" + HISTORY_BARS;
    const response = await fetch(url);
    const body = await response.json();
    if (!response.ok) {
      say("history: " + String(body.message || response.status));
      return;
    }
    for (const bar of body.bars) {
      const time = Math.floor(Date.parse(bar.ts) / 1000);
      candles.set(time, candle({ ...bar, time }));
      lastTime = Math.max(lastTime, time);
    }
    series.setData([...candles.values()].sort((a, b) => a.time - b.time));
    if (body.bars.length <= 150) chart.timeScale().fitContent();
    chartEl.dataset.history = String(body.bars.length);
    chartEl.dataset.bars = String(candles.size);
    if (body.bars.length === 0) say("no stored bars yet: waiting for live ones");
  }

  function openLive() {
    const url = "/v1/live/" + encodeURIComponent(symbol) + "?tf=" + encodeURIComponent(tf);
    const events = new EventSource(url);
    events.addEventListener("live", (event) => {
      const bar = JSON.parse(event.data);
      draw(bar);
      count("liveUpdates");
      chartEl.dataset.lastTime = String(bar.time);
      chartEl.dataset.lastClose = String(bar.close);
    });
    events.addEventListener("bar", (event) => {
      draw(JSON.parse(event.data));
      count("closedUpdates");
    });
    events.onerror = () => say("live stream interrupted: reconnecting");
    events.onopen = () => say("");
  }

  function row(name, value) {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    const td = document.createElement("td");
    th.textContent = name;
    td.textContent = value;
    tr.append(th, td);
    return tr;
  }

  async function refreshStatus() {
    try {
      const response = await fetch("/v1/status");
      const body = await response.json();
      if (!response.ok) throw new Error(String(body.message || response.status));
      const stream = el("stream");
      stream.textContent = body.stream.connected
        ? "connected, " + body.stream.symbols.length + " symbol(s)"
        : "not connected" + (body.stream.reason ? " (" + body.stream.reason + ")" : "");
      stream.className = body.stream.connected ? "ok" : "bad";
      el("dead-letters").textContent = String(body.dead_letters);
      el("lag").replaceChildren(...Object.entries(body.lag).map(
        ([group, lag]) => row(group, lag === null ? "-" : String(lag))));
      el("status-time").textContent = "as of " + body.generated_at;
      chartEl.dataset.status = "ok";
    } catch (error) {
      el("status-time").textContent = "status unavailable: " + String(error.message);
    }
  }

  fetch("/v1/symbols").then((r) => (r.ok ? r.json() : { symbols: [] })).then((body) => {
    el("symbols").replaceChildren(...body.symbols.map((entry) => {
      const option = document.createElement("option");
      option.value = entry.symbol;
      return option;
    }));
  }).catch(() => undefined);

  el("pick").addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams({ symbol: el("symbol").value.toUpperCase(), tf: el("tf").value });
    window.location.search = next.toString();
  });

  loadHistory().catch((error) => say("history: " + String(error.message))).finally(openLive);
  refreshStatus();
  window.setInterval(refreshStatus, STATUS_EVERY_MS);
})();
