"""``mlpq ui`` in a real browser: headless Chromium driven by Selenium, a real worker, Redis and an SQLite ledger.

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/services.sh installs them). Screenshots of
each page are saved in the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from mlpq.api_cli.api import Client
from mlpq.config import Settings
from mlpq.db.status import JobStatus
from tests import services

pytestmark = pytest.mark.integration

TOKEN = "browser-test-token"
DEADLINE_S = 180
T = TypeVar("T")


def until(probe: Callable[[], T | None], what: str, seen: Callable[[], str] = lambda: "",
          timeout: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` (and ``seen()``) after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} {seen()}".rstrip())


@pytest.fixture
def env(broker_url: str, sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MLPQ_BROKER_URL": broker_url, "MLPQ_DATABASE_URL": sqlite_url,
            "MLPQ_DATA_DIR": str(tmp_path / "data"), "MLPQ_UI_TOKEN": TOKEN}


@pytest.fixture
def ui_url(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """``mlpq ui --port 0 --allow-actions`` running; yields its address from the line it prints."""
    log_path = tmp_path / "ui.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(services.mlpq_command("ui", "--port", "0", "--allow-actions"), env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield until(lambda: (re.search(r"mlpq ui on (http://\S+/)", log_path.read_text()) or [None, None])[1]
                    if process.poll() is None else pytest.fail(f"mlpq ui exited:\n{log_path.read_text()}"),
                    "mlpq ui to listen", timeout=60)
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1320,960"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def submit(env: dict[str, str], *args: str) -> dict[str, Any]:
    """``mlpq submit ARGS --json``: a job's row, or a sweep's ``{"sweep_id", "jobs"}``."""
    done = services.run_mlpq("submit", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def texts(driver: webdriver.Chrome, selector: str) -> list[str]:
    """The text of every element ``selector`` matches, read in one go (live parts are replaced as they refresh)."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(element => element.textContent.trim())", selector)


def status_in_page(driver: webdriver.Chrome, job_id: str) -> str | None:
    found = texts(driver, f'tr[data-job="{job_id}"] .badge')
    return found[0] if found else None


def points_per_series(driver: webdriver.Chrome) -> list[int]:
    return driver.execute_script(
        "return [...document.querySelectorAll('.chart canvas')].flatMap("
        "canvas => Chart.getChart(canvas).data.datasets.map(set => set.data.length))")


@pytest.mark.timeout(1200)
def test_jobs_appear_run_and_finish_live_charts_grow_and_a_queued_job_is_cancelled(
        env: dict[str, str], ui_url: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    worker = services.start_worker(env, tmp_path / "worker.log", "--device", "cpu")
    try:
        browser.get(ui_url + "login")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "sign-in").click()
        until(lambda: browser.find_elements(By.CSS_SELECTOR, "table.jobs"), "the jobs page after signing in")
        browser.get(f"{ui_url}workers")
        until(lambda: texts(browser, "tbody td:nth-child(2)") == ["cpu"]
              and texts(browser, "tbody td:nth-child(4)") == ["idle"], "the CPU worker listed, idle",
              lambda: browser.page_source)
        browser.save_screenshot(str(tmp_path / "workers.png"))
        browser.get(f"{ui_url}jobs")
        browser.execute_script("window.notReloaded = true")

        himmelblau = submit(env, "himmelblau", "--steps", "200000", "--log-every", "20000")["id"]
        mnist = submit(env, "mnist", "--epochs", "3", "--dataset", "mnist-sample")["id"]
        seen: dict[str, list[str]] = {himmelblau: [], mnist: []}

        def both_succeeded() -> bool:
            for job_id, statuses in seen.items():
                status = status_in_page(browser, job_id)
                if status and (not statuses or statuses[-1] != status):
                    statuses.append(status)
            return all(statuses[-1:] == ["succeeded"] for statuses in seen.values())

        until(both_succeeded, "both jobs to show succeeded", timeout=600)
        assert browser.execute_script("return window.notReloaded") is True
        for job_id, statuses in seen.items():
            assert "running" in statuses and statuses.index("running") < statuses.index("succeeded"), seen
        browser.save_screenshot(str(tmp_path / "jobs.png"))

        browser.get(f"{ui_url}jobs/{mnist}")
        until(lambda: points_per_series(browser) == [3, 3, 3], "three points in each MNIST series", timeout=30)
        browser.save_screenshot(str(tmp_path / "job-mnist.png"))
        browser.get(f"{ui_url}jobs/{himmelblau}")
        until(lambda: points_per_series(browser) == [11, 1, 1, 4],
              "the Himmelblau path, its start and end point, the four minima", timeout=30)
        browser.save_screenshot(str(tmp_path / "job-himmelblau.png"))

        sweep_id = submit(env, "himmelblau", "--lr", "0.001,0.01,0.1", "--steps", "2000", "--log-every", "200",
                          "--start", "-1,-1", "--start", "1,4")["sweep_id"]
        browser.get(f"{ui_url}sweeps/{sweep_id}")
        until(lambda: texts(browser, "tr.best"), "the best sweep member highlighted")
        until(lambda: browser.find_elements(By.CSS_SELECTOR, '.chart[data-state="done"]'), "the overlay chart")
        assert len(texts(browser, "tr[data-job]")) == 3
        browser.save_screenshot(str(tmp_path / "sweep.png"))

        queued = submit(env, "mnist", "--device", "cuda:7", "--epochs", "1")["id"]  # no worker serves cuda:7
        browser.get(f"{ui_url}jobs/{queued}")
        browser.find_element(By.ID, "cancel").click()
        until(lambda: "cancelled" in texts(browser, "#status"), "the job to show cancelled")
        assert Client(Settings.from_env(env)).get(queued).job.status is JobStatus.CANCELLED
        browser.save_screenshot(str(tmp_path / "cancelled.png"))

        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors
    finally:
        worker.stop()
