"""A job's page in a real browser shows its log growing while it runs, as text, until it ends (headless
Chromium, a real worker; see test_browser.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.faults import helpers
from tests.jobkinds import fault_kind
from tests.jobkinds.fault_kind import Gate
from tests.services import start_worker
from tests.ui.test_browser import TOKEN, browser, texts, ui_url, until

pytestmark = pytest.mark.integration

__all__ = ["browser", "ui_url"]  # fixtures


@pytest.fixture
def env(broker_url: str, sqlite_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """test_browser's environment, in which the UI, the worker and this process find the fault kind."""
    with fault_kind.visible_here():
        yield fault_kind.worker_env({**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": sqlite_url,
                                     "MLPQ_DATA_DIR": str(tmp_path / "data"), "MLPQ_UI_TOKEN": TOKEN})


def log_text(driver: webdriver.Chrome) -> str:
    return "\n".join(texts(driver, "#log"))


def test_the_job_page_shows_the_log_growing_live_as_text(env: dict[str, str], ui_url: str,
                                                         browser: webdriver.Chrome, tmp_path: Path) -> None:
    gate = Gate(tmp_path / "gate")
    gate.folder.mkdir()
    worker = start_worker(env, tmp_path / "worker.log", "--device", "cpu")
    try:
        browser.get(ui_url + "login")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        until(lambda: browser.find_elements(By.CSS_SELECTOR, "table.jobs"), "the jobs page after signing in")
        job_id, _ = helpers.submit_and_hold(env, gate)
        browser.get(f"{ui_url}jobs/{job_id}")
        until(lambda: "blocking until" in log_text(browser), "the running job's line", lambda: log_text(browser))
        browser.execute_script("window.notReloaded = true")
        gate.open()
        until(lambda: browser.find_elements(By.CSS_SELECTOR, '#log[data-state="done"]'), "the log to be done")
        lines = log_text(browser).splitlines()
        assert [line.split(" ", 2)[2] for line in lines[-2:]] == ["#1 job    released", "#1 worker attempt 1 succeeded"]
        assert browser.execute_script("return window.notReloaded") is True
        browser.save_screenshot(str(tmp_path / "job-log.png"))

        logged = helpers.submit(env, "fault", action="log", lines=1, message="<b>bold</b> \x1b[31m")
        helpers.finished(env, logged)
        browser.get(f"{ui_url}jobs/{logged}")
        assert "<b>bold</b> \\x1b[31m 0" in log_text(browser) and not browser.find_elements(By.CSS_SELECTOR, "#log b")
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        worker.stop()
