"""The web app's routes through Starlette's ASGI test client, against a real SQLite ledger (and Redis for rerun)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from starlette.testclient import TestClient

from mlpq.api_cli.api import Client
from mlpq.config import Settings
from mlpq.db.clock import utcnow
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from mlpq.kinds.himmelblau import MINIMA
from mlpq.ui.app import PAGE_SIZE, create_app
from mlpq.ui.auth import COOKIE
from tests.api_cli.ledger_rows import add_job, himmelblau_job, mlpq, mnist_job

TOKEN = "s3cret-token-for-tests"
SCRIPT = "<script>alert('x')</script>"

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client() -> MakeClient:
    def make(*, token: str | None = None, allow_actions: bool = False, allowed_hosts: tuple[str, ...] = ("testserver",),
             debug: bool = False, **settings: str) -> TestClient:
        client = Client(Settings.from_env(**settings))
        app = create_app(client, token=token, allow_actions=allow_actions, allowed_hosts=allowed_hosts, debug=debug)
        return TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    return make


def signed_in(client: TestClient) -> TestClient:
    response = client.post("/login", data={"token": TOKEN, "next": "/jobs"})
    assert response.status_code == 303 and COOKIE in response.cookies
    return client


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the page"
    return match.group(1)


def status_of(job_id: str) -> JobStatus:
    return Client(Settings.from_env()).get(job_id).job.status


def test_jobs_page_lists_newest_first_with_badge_duration_and_headline(make_client: MakeClient) -> None:
    older, newer = himmelblau_job(), mnist_job()
    page = make_client().get("/jobs").text
    assert page.index(newer[:12]) < page.index(older[:12])
    assert '<span class="badge succeeded">succeeded</span>' in page
    assert "2/4 minima from 2 starts" in page and "test accuracy 83.00%" in page
    assert re.search(r'<td class="num">\d+\.\ds</td>', page)


def test_jobs_page_filters_by_kind_status_device_and_sweep(make_client: MakeClient) -> None:
    himmelblau, mnist = himmelblau_job(), mnist_job(sweep_id="abcdef123456")
    queued = add_job("mnist", {"seed": 1}, status=JobStatus.QUEUED, device="cuda:1")
    client = make_client()
    assert [r["id"] for r in client.get("/api/jobs?kind=himmelblau").json()] == [himmelblau]
    assert [r["id"] for r in client.get("/api/jobs?status=queued").json()] == [queued]
    assert [r["id"] for r in client.get("/api/jobs?device=cuda:1").json()] == [queued]
    assert [r["id"] for r in client.get("/api/jobs?sweep=abcdef").json()] == [mnist]
    page = client.get("/jobs?kind=mnist&status=succeeded").text
    assert mnist[:12] in page and himmelblau[:12] not in page and queued[:12] not in page


@pytest.mark.parametrize(("query", "api_query", "message"), [
    ("kind=bogus", "kind=bogus", "unknown kind 'bogus'"), ("status=done", "status=done", "unknown status 'done'"),
    ("device=tpu", "device=tpu", "device"), ("page=0", "limit=0", "must be a whole number"),
    ("page=x", "offset=-1", "must be a whole number"),
    ("page=²", "limit=²", "must be a whole number"), ("page=¹", "offset=¹", "must be a whole number"),
    ("page=٣", "limit=٣", "must be a whole number"), ("page=５", "limit=５", "must be a whole number"),
    ("page=" + "1" * 5000, "limit=" + "1" * 5000, "must be a whole number"),
    ("page=+2", "offset= 2", "must be a whole number"), ("device=cuda:٣", "device=cuda:０", "device"),
])
def test_bad_filters_are_one_line_400s(make_client: MakeClient, query: str, api_query: str, message: str) -> None:
    response = make_client().get(f"/jobs?{query}")
    assert response.status_code == 400
    error = re.search(r'<p class="error" id="error">(.*)</p>', response.text)
    assert error and message in error.group(1).replace("&#39;", "'") and "\n" not in error.group(1)
    api = make_client().get(f"/api/jobs?{api_query}")
    assert api.status_code == 400 and message in api.json()["error"]


def test_script_in_error_and_params_is_shown_as_text(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 1, "data_dir": SCRIPT}, status=JobStatus.FAILED,
                     result={"headline": SCRIPT}, sweep_id="feedbeef0001")
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(error=SCRIPT))
    client = make_client()
    for url in ("/jobs", f"/jobs/{job_id}", f"/jobs/{job_id}?partial=1", "/sweeps/feedbeef0001"):
        page = client.get(url).text
        assert "<script>alert" not in page, url
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page, url
    assert client.get(f"/api/jobs/{job_id}").json()["error"] == SCRIPT


def test_json_endpoints_return_what_the_cli_prints_with_json(make_client: MakeClient) -> None:
    for lr in (0.01, 0.1):
        mnist_job(lr=lr, sweep_id="5d41ab0000aa")
    single = himmelblau_job()
    client = make_client()
    assert client.get("/api/jobs").json() == json.loads(mlpq("results", "--format", "json").output)
    assert client.get(f"/api/jobs/{single}").json() == json.loads(mlpq("show", single, "--json").output)
    assert client.get("/api/sweeps/5d41ab").json() == json.loads(
        mlpq("compare", "--sweep", "5d41ab", "--format", "json").output)


def test_ten_thousand_jobs_page_by_page(make_client: MakeClient) -> None:
    now = utcnow()
    rows = [{"id": f"{i:032x}", "kind": "himmelblau", "status": JobStatus.SUCCEEDED, "device": "cpu",
             "params": {"seed": i}, "timeout_s": 60, "created_at": now - timedelta(seconds=i),
             "queued_at": now, "result": {"headline": f"job number {i}"}} for i in range(10_000)]
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(insert(JOBS), rows)
    client = make_client()
    first = client.get("/jobs").text
    assert first.count("<tr data-job=") == PAGE_SIZE and "job number 0<" in first and 'rel="next"' in first
    second = client.get("/jobs?page=2").text
    assert f"job number {PAGE_SIZE}<" in second and 'rel="prev"' in second
    last = client.get(f"/jobs?page={10_000 // PAGE_SIZE}").text
    assert last.count("<tr data-job=") == PAGE_SIZE and "job number 9999<" in last and 'rel="next"' not in last
    beyond = client.get(f"/jobs?page={10_000 // PAGE_SIZE + 1}")
    assert beyond.status_code == 200 and "no jobs on this page" in beyond.text
    api = client.get("/api/jobs?limit=10000").json()
    assert len(api) == 10_000 and api[0]["id"] == rows[0]["id"] and api[-1]["id"] == rows[-1]["id"]
    assert [r["id"] for r in client.get("/api/jobs?limit=2&offset=9998").json()] == [rows[9998]["id"],
                                                                                        rows[9999]["id"]]


def test_job_page_shows_parameters_times_worker_provenance_and_the_chart_url(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 7, "lr": 0.05}, result={"headline": "test accuracy 90.00%"},
                     provenance={"mlpq": "0.1.0", "torch": "2.14.1", "python": "3.11.7", "host": "box-1"})
    page = make_client().get(f"/jobs/{job_id[:6]}").text
    for text in ("<dt>lr</dt><dd>0.05</dd>", "test-host", "mlpq 0.1.0, torch 2.14.1, Python 3.11.7 (host box-1)",
                 "<th>started</th>", f'data-chart="/api/jobs/{job_id}/chart"', 'data-state="done"'):
        assert text in page


def test_job_page_tells_the_attempts_apart(make_client: MakeClient) -> None:
    from mlpq.db import jobs

    job_id = mnist_job(epochs=2)
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:  # as if attempt 1 had been lost after epoch 2 and attempt 2 resumed
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(status=JobStatus.RUNNING))
        jobs.end_attempt(connection, job_id, 1, jobs.WORKER_LOST)
        connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(status=JobStatus.QUEUED))
        jobs.claim_job(connection, job_id, "host-b")
        jobs.note_resumed(connection, job_id, 2, 3)
        jobs.add_metrics(connection, job_id, 2, [(3, {"train_loss": 0.3})])
        jobs.finish_job(connection, job_id, 2, JobStatus.SUCCEEDED, result={"headline": "done"})
    engine.dispose()
    page = make_client().get(f"/jobs/{job_id}").text
    assert ('<td id="attempts">attempt 1: epochs 1–2 on test-host (worker lost)<br>'
            "attempt 2: resumed at epoch 3 on host-b (succeeded)</td>") in page


def test_job_page_words_result_values_as_the_kind_formats_them(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 7}, result={"test_accuracy": 0.9, "dataset_sizes": {"train": 60000,
                                                                                          "test": 10000}})
    page = make_client().get(f"/jobs/{job_id}").text
    assert "<dt>dataset_sizes</dt><dd>60,000/10,000</dd>" in page and "{&#39;train&#39;" not in page
    assert "  dataset_sizes: 60,000/10,000" in mlpq("show", job_id).output  # as show words it


def test_mnist_chart_has_one_point_per_epoch_in_each_series(make_client: MakeClient) -> None:
    job_id = mnist_job(epochs=3)
    chart = make_client().get(f"/api/jobs/{job_id}/chart").json()
    assert chart["kind"] == "mnist" and chart["done"] is True
    losses, accuracy = chart["figure"]["panels"]
    assert [s["line"] for s in losses["series"]] == ["solid", "dashed"]
    for series in [*losses["series"], *accuracy["series"]]:
        assert [x for x, _y in series["points"]] == [1, 2, 3]
    assert accuracy["series"][0]["points"][2] == [3, pytest.approx(0.83)] and accuracy["y"]["ticks"] == "percent"


def test_himmelblau_chart_draws_each_start_to_its_end_over_contours_from_the_server(make_client: MakeClient) -> None:
    chart = make_client().get(f"/api/jobs/{himmelblau_job()}/chart").json()
    (panel,) = chart["figure"]["panels"]
    paths = [s["points"] for s in panel["series"] if s["line"] == "solid"]
    assert paths == [[[4.0, 0.0], [3.5, 1.0], [3.0, 2.0]], [[-4.0, 0.0], [-3.4, 2.0], [-2.805118, 3.131312]]]
    assert [s["points"] for s in panel["series"] if s["marker"] == "star"] == [[list(m) for m in MINIMA]]
    grid = panel["contours"]
    assert len(grid["z"]) == len(grid["y"]) and {len(row) for row in grid["z"]} == {len(grid["x"])}
    assert grid["z"][len(grid["y"]) // 2][len(grid["x"]) // 2] == round(math.log10(1 + 170), 4)  # f(0, 0) = 170


def test_running_job_chart_is_not_done(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 1}, status=JobStatus.RUNNING, metrics=[(1, {"test_accuracy": 0.5})])
    client = make_client()
    assert client.get(f"/api/jobs/{job_id}/chart").json()["done"] is False
    assert 'data-state="live"' in client.get(f"/jobs/{job_id}?partial=1").text


def test_sweep_page_shows_differing_parameters_and_highlights_the_best(make_client: MakeClient) -> None:
    ids = {lr: mnist_job(lr=lr, epochs=epochs, sweep_id="cafe00000001") for lr, epochs in ((0.01, 2), (0.1, 4))}
    client = make_client()
    page = client.get("/sweeps/cafe").text
    header = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    assert "<th>lr</th>" in header and "<th>epochs</th>" in header and "<th>seed</th>" not in header
    best = re.search(r'<tr data-job="([0-9a-f]+)" class="best"', page)
    assert best and best.group(1) == ids[0.1]  # 4 epochs: accuracy 0.84 against 0.82
    chart = client.get("/api/sweeps/cafe").json()
    assert {row["id"] for row in chart} == set(ids.values())
    overlay = client.get("/api/sweeps/cafe/chart").json()
    assert len(overlay["figure"]["panels"][1]["series"]) == 2
    assert client.get("/sweeps/0000").status_code == 404


def rosenbrock_sweep(sweep_id: str) -> dict[float, str]:
    """Two jobs of a kind that mlpq does not ship, ended at f = 0.5 (lr 0.01) and 0.01 (lr 0.1)."""
    return {lr: add_job("rosenbrock", {"seed": 0, "lr": lr}, sweep_id=sweep_id, result={"f": f, "x": 1.0, "y": 1.0},
                        metrics=[(step, {"f": f * (3 - step), "lr_now": lr}) for step in (1, 2)])
            for lr, f in ((0.01, 0.5), (0.1, 0.01))}


def test_a_kind_without_a_chart_gets_one_panel_per_numeric_metric_and_no_best(make_client: MakeClient) -> None:
    ids = rosenbrock_sweep("beef00000001")  # the kind is not installed here: nothing is known of it
    client = make_client()
    chart = client.get(f"/api/jobs/{ids[0.1]}/chart").json()
    panels = chart["figure"]["panels"]
    assert [(panel["title"], panel["x"]["label"]) for panel in panels] == [("f", "step"), ("lr_now", "step")]
    assert panels[0]["series"][0]["points"] == [[1, pytest.approx(0.02)], [2, pytest.approx(0.01)]]
    assert len(client.get("/api/sweeps/beef/chart").json()["figure"]["panels"][0]["series"]) == 2
    assert 'class="best"' not in client.get("/sweeps/beef").text


def test_the_best_of_a_sweep_is_the_one_its_kind_declares(make_client: MakeClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpq import kinds
    from mlpq.kinds.spec import JobSpec

    rosenbrock = kinds.Kind(name="rosenbrock", spec=JobSpec, runner="nowhere:run", help="", result_fields=("f",),
                            best=("f", "min"))
    monkeypatch.setattr(kinds, "find", lambda name: rosenbrock if name == "rosenbrock" else None)
    ids = rosenbrock_sweep("beef00000002")
    best = re.search(r'<tr data-job="([0-9a-f]+)" class="best"', make_client().get("/sweeps/beef").text)
    assert best and best.group(1) == ids[0.1]  # the lowest f


def test_workers_page_says_when_the_broker_is_unreachable(make_client: MakeClient) -> None:
    response = make_client().get("/workers")
    assert response.status_code == 200 and "cannot reach the broker at redis://127.0.0.1:1/0" in response.text
    api = make_client().get("/api/workers")
    assert api.status_code == 503 and api.json()["error"].startswith("cannot reach the broker")


def test_workers_endpoint_with_no_workers_is_empty(make_client: MakeClient, broker_url: str) -> None:
    client = make_client(broker_url=broker_url)
    assert client.get("/api/workers").json() == []
    assert "no live workers" in client.get("/workers").text


def test_unreadable_ledger_is_a_one_line_503(make_client: MakeClient) -> None:
    client = make_client(database_url="postgresql+psycopg://mlpq@127.0.0.1:1/mlpq")
    for url, is_json in (("/jobs", False), ("/api/jobs", True)):
        response = client.get(url)
        assert response.status_code == 503
        text = response.json()["error"] if is_json else response.text
        assert "cannot reach the database" in text and "Traceback" not in text


def test_unexpected_error_is_a_one_line_500_without_traceback(make_client: MakeClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(Client, "list", broken)
    response = make_client().get("/jobs")
    assert response.status_code == 500 and "Error: RuntimeError: boom second line</p>" in response.text
    assert "Traceback" not in response.text


def test_a_failure_gets_its_status_by_its_type_not_its_text(make_client: MakeClient,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpq.db.migrate import SchemaError

    def broken(*_args: object, **_kwargs: object) -> None:
        raise SchemaError("cannot reach revision 0009 from 0004_i8ledger: upgrade mlpq")

    monkeypatch.setattr(Client, "list", broken)
    response = make_client().get("/api/jobs")
    assert response.status_code == 500 and response.json()["error"].startswith("cannot reach revision 0009")


def test_the_ui_reports_failures_without_the_cli() -> None:
    probe = ("import sys\nfrom starlette.testclient import TestClient\nfrom mlpq.api_cli.api import Client\n"
             "from mlpq.config import Settings\nfrom mlpq.ui.app import create_app\n"
             "app = create_app(Client(Settings.from_env()), allowed_hosts=['testserver'])\n"
             "with TestClient(app, raise_server_exceptions=False) as client:\n"
             "    assert [client.get(url).status_code for url in ('/jobs/abcdef', '/api/workers')] == [404, 503]\n"
             "print(sorted(m for m in sys.modules if m == 'mlpq.api_cli.cli'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1:] == ["[]"], done.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_each_failure_logs_one_line_and_a_traceback_only_under_debug(make_client: MakeClient, debug: bool,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mlpq.ui")
    client = make_client(debug=debug)
    assert client.get("/jobs/abcdef").status_code == 404
    assert client.get("/api/workers").status_code == 503
    assert client.get("/jobs/%1b]0;owned%07").status_code == 404
    monkeypatch.setattr(Client, "list", lambda *_args, **_kwargs: 1 / 0)
    assert client.get("/api/jobs").status_code == 500
    lines = [(record.levelname, record.getMessage(), record.exc_info is not None)
             for record in caplog.records if record.name.startswith("mlpq.ui")]
    assert lines == [("INFO", "GET /jobs/abcdef: 404 no job abcdef", debug),
                     ("ERROR", "GET /api/workers: 503 cannot reach the broker at redis://127.0.0.1:1/0: Error 111 "
                               "connecting to 127.0.0.1:1. Connection refused.", debug),
                     ("INFO", "GET /jobs/\\x1b]0;owned\\x07: 404 no job \\x1b]0;owned\\x07", debug),
                     ("ERROR", "GET /api/jobs: 500 ZeroDivisionError: division by zero", debug)]


def test_api_index_lists_the_endpoints(make_client: MakeClient) -> None:
    index = make_client().get("/api").json()
    assert index["GET /api/jobs/{id}"] == "mlpq show --json"


def test_errors_of_the_api_index_are_json(make_client: MakeClient) -> None:
    response = make_client().post("/api")
    assert response.status_code == 405 and response.json() == {"error": "Method Not Allowed"}


def test_pages_send_a_content_security_policy(make_client: MakeClient) -> None:
    headers = make_client().get("/jobs").headers
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"


def test_static_chart_library_and_its_licence_are_served(make_client: MakeClient) -> None:
    client = make_client()
    assert "Chart.js v4" in client.get("/static/chart.umd.min.js").text[:200]
    assert "MIT" in client.get("/static/chart.js-LICENSE.md").text


# Host headers (DNS rebinding).

@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8765", "127.0.0.1:8765", "[::1]:8765", "[::1]",
                                  "192.0.2.7:8765", "gpu-box.example.org:8765", "gpu-box.example.org"])
def test_addresses_localhost_and_allowed_names_are_answered(make_client: MakeClient, host: str) -> None:
    client = make_client(allowed_hosts=("gpu-box.example.org",))
    response = client.get("/api/jobs", headers={"Host": host})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("host", ["attacker.example:8765", "attacker.example", "localhost.attacker.example",
                                  "testserver", "gpu-box.example.org.attacker.example", "[attacker.example]:80",
                                  "localhost:x", "localhost:8765:1", ""])
def test_any_other_host_is_a_one_line_400(make_client: MakeClient, host: str) -> None:
    job_id = mnist_job()
    for token in (None, TOKEN):
        client = make_client(token=token, allowed_hosts=("gpu-box.example.org",))
        for url in ("/api/jobs", f"/api/jobs/{job_id}", "/jobs", "/login", "/static/mlpq.js"):
            response = client.get(url, headers={"Host": host})
            assert response.status_code == 400, (url, host)
            assert response.text.count("\n") == 1 and "unknown Host" in response.text and job_id not in response.text


# Token and actions.

def test_without_a_token_there_is_nothing_to_sign_in_to(make_client: MakeClient) -> None:
    response = make_client().get("/login?next=/workers")
    assert response.status_code == 303 and response.headers["location"] == "/workers"


def test_with_a_token_every_page_asks_for_it(make_client: MakeClient) -> None:
    job_id = mnist_job()
    client = make_client(token=TOKEN)
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 303 and response.headers["location"] == f"/login?next=%2Fjobs%2F{job_id}"
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    wrong = client.post("/login", data={"token": "wrong", "next": "/jobs"})
    assert wrong.status_code == 401 and "wrong token" in wrong.text and COOKIE not in wrong.cookies
    signed_in(client)
    assert client.get(f"/jobs/{job_id}").status_code == 200


def test_every_api_path_without_the_token_is_a_401_in_json(make_client: MakeClient) -> None:
    client = make_client(token=TOKEN)
    for url in ("/api", "/api/", "/api/jobs", "/api/nothing/here"):
        response = client.get(url)
        assert response.status_code == 401 and "sign in" in response.json()["error"], url
    assert client.get("/api", headers={"Authorization": f"Bearer {TOKEN}"}).json()["GET /api"] == "this list"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_sends_you_to_another_site(make_client: MakeClient, target: str) -> None:
    response = make_client(token=TOKEN).post("/login", data={"token": TOKEN, "next": target})
    assert response.headers["location"] == "/jobs"


def test_actions_are_off_without_allow_actions(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 1}, status=JobStatus.QUEUED)
    open_client = make_client()
    assert open_client.post(f"/jobs/{job_id}/cancel", data={"csrf": "x"}).status_code == 403
    client = signed_in(make_client(token=TOKEN))
    page = client.get(f"/jobs/{job_id}").text
    assert 'id="cancel"' not in page
    response = client.post(f"/jobs/{job_id}/cancel", data={"csrf": "x"})
    assert response.status_code == 403 and "actions are off" in response.text
    assert status_of(job_id) is JobStatus.QUEUED


def test_cancel_needs_the_session_and_its_csrf_token_from_our_origin(make_client: MakeClient) -> None:
    job_id = add_job("mnist", {"seed": 1}, status=JobStatus.QUEUED)
    anonymous = make_client(token=TOKEN, allow_actions=True)
    assert anonymous.post(f"/jobs/{job_id}/cancel", data={"csrf": "x"}).status_code == 303  # to /login
    client = signed_in(make_client(token=TOKEN, allow_actions=True))
    token = csrf_of(client.get(f"/jobs/{job_id}").text)
    assert client.post(f"/jobs/{job_id}/cancel", data={}).status_code == 403
    assert client.post(f"/jobs/{job_id}/cancel", data={"csrf": token[:-1] + ("1" if token.endswith("0") else "0")}).status_code == 403
    cross = client.post(f"/jobs/{job_id}/cancel", data={"csrf": token}, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "another origin" in cross.text
    assert status_of(job_id) is JobStatus.QUEUED
    done = client.post(f"/jobs/{job_id}/cancel", data={"csrf": token}, headers={"Origin": "http://testserver"})
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job_id}"
    assert status_of(job_id) is JobStatus.CANCELLED


def test_rerun_submits_the_job_again(make_client: MakeClient, broker_url: str) -> None:
    job_id = mnist_job()
    client = signed_in(make_client(token=TOKEN, allow_actions=True, broker_url=broker_url))
    token = csrf_of(client.get(f"/jobs/{job_id}").text)
    response = client.post(f"/jobs/{job_id}/rerun", data={"csrf": token})
    assert response.status_code == 303
    new_id = response.headers["location"].removeprefix("/jobs/")
    rerun = Client(Settings.from_env()).get(new_id).job
    assert rerun.rerun_of == job_id and rerun.status is JobStatus.QUEUED


@pytest.mark.parametrize(("kind", "params", "says"), [
    ("mnist", {"seed": 1, "lr": -5.0}, "lr: Input should be greater than 0"),
    ("mnist", {"seed": 1, "epochs": 3, "colour": "blue"}, "colour: Extra inputs are not permitted"),
    ("rosenbrock", {"seed": 0}, "unknown kind 'rosenbrock'"),
])
def test_rerun_of_a_job_this_mlpq_cannot_run_is_a_one_line_422_that_stores_nothing(
        make_client: MakeClient, broker_url: str, kind: str, params: dict[str, object], says: str) -> None:
    job_id = add_job(kind, params)
    client = signed_in(make_client(token=TOKEN, allow_actions=True, broker_url=broker_url))
    response = client.post(f"/jobs/{job_id}/rerun", data={"csrf": csrf_of(client.get(f"/jobs/{job_id}").text)})
    assert response.status_code == 422
    error = re.search(r'<p class="error" id="error">(.*)</p>', response.text)
    assert error and f"job {job_id} cannot be run again by this mlpq: {says}" in error.group(1).replace("&#39;", "'")
    assert "pydantic" not in response.text and "\n" not in error.group(1)
    assert [job.id for job in Client(Settings.from_env()).list()] == [job_id]


def test_rerun_with_the_broker_down_is_a_one_line_503(make_client: MakeClient) -> None:
    job_id = mnist_job()
    client = signed_in(make_client(token=TOKEN, allow_actions=True))
    response = client.post(f"/jobs/{job_id}/rerun", data={"csrf": csrf_of(client.get(f"/jobs/{job_id}").text)})
    assert response.status_code == 503 and "cannot reach the broker" in response.text
    assert len(Client(Settings.from_env()).list()) == 1


# The command.

@pytest.mark.parametrize("name", ["attacker example", "-x.org", "a..b", "é.org", "x" * 300])
def test_a_malformed_allowed_host_is_a_usage_error(name: str) -> None:
    result = mlpq("ui", "--allowed-host", name)
    assert result.exit_code == 2 and "invalid host name" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_allow_actions_without_a_token_is_a_usage_error() -> None:
    result = mlpq("ui", "--allow-actions")
    assert result.exit_code == 2 and "--allow-actions needs a token: set MLPQ_UI_TOKEN" in result.output


def test_a_taken_port_is_a_one_line_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = mlpq("ui", "--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1 and "cannot listen on 127.0.0.1:" in result.output
    assert len(result.output.strip().splitlines()) == 1


@contextlib.contextmanager
def running_ui(log_path: Path, *args: str, token: str = "") -> Iterator[str]:
    """``mlpq ui --port 0 ARGS`` running, its output in ``log_path``; yields ``http://127.0.0.1:PORT``."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "mlpq.api_cli", "ui", "--port", "0", *args],
                                   env={**os.environ, "MLPQ_UI_TOKEN": token}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"mlpq ui on http://[^:]+:(\d+)/", log_path.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield f"http://127.0.0.1:{found.group(1)}"
    finally:
        process.terminate()
        process.wait(20)


def get(url: str, **headers: str) -> tuple[int, bytes]:
    """The status and body of a GET, whatever the status."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.integration
@pytest.mark.parametrize(("host", "token", "says"), [
    ("127.0.0.1", "", "(this machine only; from elsewhere use an SSH tunnel; read-only)"),
    ("0.0.0.0", "", "Warning: anyone who can reach 0.0.0.0:"),
    ("0.0.0.0", TOKEN, "(reachable from other hosts; read-only)"),
])
def test_ui_serves_pages_and_says_where(host: str, token: str, says: str, tmp_path: Path) -> None:
    job_id = mnist_job()
    with running_ui(tmp_path / "ui.log", "--host", host, token=token) as base:
        assert says in (tmp_path / "ui.log").read_text()
        status, body = get(f"{base}/api/jobs/{job_id}", **({"Authorization": f"Bearer {token}"} if token else {}))
        assert status == 200 and json.loads(body)["id"] == job_id


@pytest.mark.integration
def test_ui_logs_one_line_per_failed_request_without_a_traceback(tmp_path: Path) -> None:
    log_path = tmp_path / "ui.log"
    requests = {"/jobs/abcdef": 404, "/api/jobs/abcdef": 404, "/nothing/here": 404, "/api/workers": 503}
    with running_ui(log_path) as base:
        for path, status in requests.items():
            assert get(base + path)[0] == status, path
        deadline = time.monotonic() + 30
        while log_path.read_text().count("\n") < 1 + len(requests):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
    lines = log_path.read_text().splitlines()
    assert "Traceback" not in log_path.read_text() and len(lines) == 1 + len(requests), lines
    for path, status in requests.items():
        assert sum(f"GET {path}: {status} " in line for line in lines) == 1, (path, lines)


@pytest.mark.integration
def test_ui_answers_only_its_addresses_localhost_and_allowed_hosts(tmp_path: Path) -> None:
    job_id = mnist_job()
    with running_ui(tmp_path / "ui.log", "--allowed-host", "GPU-box.example.org", "--allowed-host", "ui.lan") as base:
        port = base.rpartition(":")[2]
        for host in ("localhost", "127.0.0.1", "gpu-box.example.org", "ui.lan"):
            status, body = get(f"{base}/api/jobs", Host=f"{host}:{port}")
            assert status == 200 and job_id in body.decode(), host
        status, body = get(f"{base}/api/jobs", Host=f"attacker.example:{port}")
        assert status == 400 and job_id not in body.decode() and body.decode().count("\n") == 1


def test_help_does_not_import_the_web_stack() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(['--help'], standalone_mode=False)\n"
             "print(sorted(m for m in ('starlette', 'uvicorn', 'jinja2', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


def add_log(job_id: str, *lines: tuple[str, str, str]) -> None:
    from mlpq.db import job_logs

    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        job_logs.add_lines(connection, job_id, 1, lines)
    engine.dispose()


def test_job_page_shows_the_log_as_text_with_control_characters_escaped(make_client: MakeClient) -> None:
    job_id = add_job("himmelblau", {"steps": 10})
    add_log(job_id, ("worker", "INFO", "received by host-a"), ("job", "WARNING", f"{SCRIPT} \x1b]0;owned\x07"))
    page = make_client().get(f"/jobs/{job_id}").text
    log = re.search(r'<pre class="log" id="log" data-log="([^"]+)" data-after="(\d+)" data-state="(\w+)"[^>]*>(.*?)</pre>',
                    page, re.S)
    assert log and log[1] == f"/api/jobs/{job_id}/log" and log[3] == "done"
    lines = log[4].splitlines()
    assert lines[0].endswith(" #1 worker received by host-a")
    assert lines[1].endswith(" #1 job    WARNING &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; \\x1b]0;owned\\x07")
    assert SCRIPT not in page and "\x1b" not in page


def test_the_log_endpoint_gives_the_lines_after_one_and_says_when_the_log_is_done(make_client: MakeClient) -> None:
    job_id = add_job("himmelblau", {"steps": 10}, status=JobStatus.RUNNING)
    add_log(job_id, ("job", "INFO", "one"), ("job", "INFO", "two \x1b"))
    client = make_client()
    first = client.get(f"/api/jobs/{job_id}/log").json()
    assert [(line["line"], line["text"].split(" ", 2)[2]) for line in first["lines"]] == [
        ("one", "#1 job    one"), ("two \x1b", "#1 job    two \\x1b")]
    assert first["done"] is False
    after = client.get(f"/api/jobs/{job_id}/log?after={first['lines'][0]['id']}").json()
    assert [line["line"] for line in after["lines"]] == ["two \x1b"]
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        from mlpq.db import jobs

        jobs.finish_job(connection, job_id, 1, JobStatus.SUCCEEDED, result={})
    engine.dispose()
    last = client.get(f"/api/jobs/{job_id}/log?after={first['lines'][-1]['id']}").json()
    assert last == {"lines": [], "done": True}
    assert client.get(f"/api/jobs/{job_id}/log?attempt=2").json()["lines"] == []
    bad = client.get(f"/api/jobs/{job_id}/log?after=-1")
    assert bad.status_code == 400 and bad.json() == {"error": "after must be a whole number from 0 to 1000000000000"}
    assert client.get("/api/jobs/ffff0000/log").status_code == 404
