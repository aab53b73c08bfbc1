"""The live page in a real browser: Debian's chromium, headless, driven by Selenium through
Debian's chromedriver (never a driver or browser downloaded by Selenium Manager).

A simulator whose session is open runs at 30x (a minute every two seconds); a worker
streams AAPL's trades into 1m bars and publishes the bar in progress every 250 ms
(``CHRONOX_TICK_LIVE_MS``); ``chronox serve`` serves the page. The page must draw the
stored candles as history and then move its in-progress candle as live bars arrive, and
show the pipeline's state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from chronox_stream.client.children import Child
from chronox_stream.settings import Settings
from tests.fixtures.sim import SimFactory, free_port
from tests.integration.conftest import WorkerFactory
from tests.integration.helpers import fetch_rows, poll

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(300)]

CLOCK_START = "2024-01-17T15:00:00Z"  # 10:00 in New York
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed: "
                    "apt-get install -y chromium chromium-driver (.ci/run does it)")  # fmt: skip
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,800", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)  # fmt: skip
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what} after {timeout_s:.0f}s")


async def test_the_live_page_draws_stored_candles_and_moves_the_live_one(
    settings: Settings, start_worker: WorkerFactory, sim_factory: SimFactory,
    browser: webdriver.Chrome, tmp_path: Path,
) -> None:  # fmt: skip
    market = await sim_factory(clock_start=CLOCK_START, speed=30, flatfiles=False)
    live = settings.with_overrides(polygon_rest_url=market.rest_url, polygon_ws_url=market.ws_url,
                                   polygon_api_key=market.api_key, tick_timeframes="1m",
                                   tick_live_ms=250)  # fmt: skip
    start_worker(**{k: getattr(live, k) for k in ("polygon_rest_url", "polygon_ws_url",
                                                  "polygon_api_key", "tick_timeframes",
                                                  "tick_live_ms")})  # fmt: skip
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "chronox_stream", "ingest", "--symbols", "AAPL",
                         "--strategy", "stream"],
        env={**os.environ, **live.to_env()}, check=True, capture_output=True, timeout=120,
    )  # fmt: skip

    async def stored_minutes() -> int:
        rows = await fetch_rows(live, "SELECT ts FROM {schema}.bars WHERE symbol = 'AAPL' "
                                      "AND tf = '1m'")  # fmt: skip
        return len(rows) if len(rows) >= 2 else 0

    stored = await poll(stored_minutes, timeout_s=120)
    assert stored, "no stored minute bars to draw"

    served = live.with_overrides(serve_port=free_port())
    server = Child.start("serve", ["chronox_stream", "serve"], env=served.to_env(),
                         log_path=tmp_path / "serve.log")  # fmt: skip
    try:
        await asyncio.to_thread(server.wait_for_log, "serving on", timeout_s=60)
        await asyncio.to_thread(watch_page, browser, served.serve_port, stored, tmp_path)
    finally:
        await asyncio.to_thread(server.stop)


def watch_page(browser: webdriver.Chrome, port: int, stored: int, tmp_path: Path) -> None:
    browser.get(f"http://127.0.0.1:{port}/?symbol=AAPL&tf=1m")
    chart = browser.find_element(By.ID, "chart")
    history = wait_until(lambda: int(chart.get_attribute("data-history") or 0), 30,
                         "no history drawn")  # fmt: skip
    assert history >= stored
    assert chart.find_elements(By.TAG_NAME, "canvas"), "the chart drew no canvas"

    def live_candle() -> tuple[str, str] | None:
        if int(chart.get_attribute("data-live-updates") or 0) == 0:
            return None
        return chart.get_attribute("data-last-time") or "", chart.get_attribute(
            "data-last-close") or ""

    first = wait_until(live_candle, 60, "no live update arrived")
    wait_until(lambda: (now := live_candle()) is not None and now != first, 60,
               "the live candle did not move")  # fmt: skip
    assert int(chart.get_attribute("data-bars") or 0) >= history
    wait_until(lambda: browser.find_element(By.ID, "stream").text.startswith("connected"), 30,
               "the pipeline panel does not show the stream connected")  # fmt: skip
    assert browser.find_element(By.ID, "dead-letters").text.isdigit()
    assert "postgres_sink" in browser.find_element(By.ID, "lag").text
    # Script errors and refused loads (the Content-Security-Policy), not a slow request.
    errors = [e for e in browser.get_log("browser")
              if e["level"] == "SEVERE" and e.get("source") != "network"]  # fmt: skip
    assert not errors, errors
    browser.save_screenshot(str(tmp_path / "live-page.png"))
