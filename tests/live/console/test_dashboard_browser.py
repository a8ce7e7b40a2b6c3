"""The dashboard in headless Chromium (Debian's chromium + chromedriver, driven by Selenium).

Opens the page of a real paper session, checks the numbers shown against
``engine.get_status()``, clicks Halt and sees the engine halted, then Resume. With
``RUSTYBT_UPDATE_SCREENSHOTS=1`` it also refreshes the screenshots in ``docs/images``.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages ``chromium``
and ``chromium-driver``; ``.ci/run`` installs them). Without them the tests are skipped
with a message saying so.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.live.console.conftest import settled

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"

needs_browser = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason=(
        "BROWSER TESTS NOT RUN: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver); .ci/run installs them"
    ),
)


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1100",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def _wait(driver, predicate, timeout: float = 10.0) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: predicate(d))


@needs_browser
async def test_dashboard_shows_the_engine_and_its_halt_button_halts_it(session, tmp_path):
    engine, console, _ = session
    status = await settled(engine)  # the replay has ended: nothing moves any more

    def look_and_halt() -> dict:
        driver = _browser()
        try:
            driver.get(f"{console.url}?token={console.token}")
            _wait(driver, lambda d: _text(d, "fills") not in ("", "–"))
            _wait(driver, lambda d: "AAPL" in _text(d, "positions"))
            seen = {
                key: _text(driver, key)
                for key in ("orders_submitted", "fills", "rejects", "portfolio_value", "state")
            }
            seen["positions"] = _text(driver, "positions")
            if os.environ.get("RUSTYBT_UPDATE_SCREENSHOTS"):
                DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(DOCS_IMAGES / "dashboard.png"))
            driver.find_element("id", "reason").send_keys("test: halt from the dashboard")
            driver.find_element("id", "halt-btn").click()
            _wait(driver, lambda d: _text(d, "state") == "HALTED")
            seen["after_halt"] = _text(driver, "state")
            seen["message"] = _text(driver, "message")
            return seen
        finally:
            driver.quit()

    seen = await asyncio.to_thread(look_and_halt)
    assert seen["orders_submitted"] == str(status["orders_submitted"])
    assert seen["fills"] == str(status["fills"])
    assert seen["rejects"] == str(status["rejects"])
    assert seen["portfolio_value"] == f"{status['portfolio_value']:,.2f}"
    assert seen["state"] == "PAUSED"
    held = engine.ledger.positions[engine.strategy.aapl].amount
    assert f"AAPL {held:,.0f}" in seen["positions"].replace("\n", " ")
    assert seen["after_halt"] == "HALTED" and seen["message"] == "halt done"
    assert not engine.get_status()["can_trade"]
    tripped = [b for b in engine.circuit_breakers.get_tripped() if b.breaker_type.value == "manual"]
    assert tripped and "halt from the dashboard" in tripped[0].get_trip_reason()


@needs_browser
def test_a_report_renders_in_the_browser(tmp_path):
    from rustybt import run_algorithm
    from rustybt.metrics.report import write_report
    from tests.live.console.conftest import EveryTenBars

    result = run_algorithm(
        EveryTenBars(), bundle="demo", start="2024-01-02", end="2024-01-12", show_progress=False
    )
    out = result.save(tmp_path / "results")
    page = write_report(out, title="EveryTenBars backtest")
    driver = _browser()
    try:
        driver.get(page.as_uri())
        assert driver.title.startswith("EveryTenBars backtest")
        stats = driver.find_element("class name", "stats").text
        assert "Total return" in stats and "Sharpe" in stats
        assert len(driver.find_elements("tag name", "svg")) == 2
        if os.environ.get("RUSTYBT_UPDATE_SCREENSHOTS"):
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(DOCS_IMAGES / "report.png"))
    finally:
        driver.quit()
    shutil.rmtree(tmp_path / "results")
