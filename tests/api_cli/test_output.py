"""What the CLI prints for people of stored or received text (a job's kind, parameters, result, error and
metrics, a worker's name) has its control characters escaped: whoever can write to the ledger or to Redis
cannot drive the operator's terminal."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from click.testing import CliRunner

from mlpq.api_cli import output
from mlpq.api_cli.api import WorkerInfo
from mlpq.api_cli.cli import cli
from mlpq.api_cli.progress import Lines
from mlpq.db import jobs
from mlpq.db.engine import make_engine
from mlpq.db.records import MetricRecord
from mlpq.db.status import JobStatus

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b1m\u202e\r"
"""A terminal title, a screen clear, a C1 CSI, a right-to-left override, a carriage return."""
RAW = "\x1b\x07\x9b\u202e\r"


def forged_job(kind: str, params: dict[str, Any], *, error: str, metrics: dict[str, Any],
               result: dict[str, Any] | None = None) -> str:
    """A failed job as someone with write access to the ledger could leave it."""
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        job = jobs.create_job(connection, kind, params, "cpu", timeout_s=60)
        jobs.claim_job(connection, job.id, f"host{ESCAPES}")
        jobs.add_metrics(connection, job.id, 1, [(1, metrics)])
        jobs.finish_job(connection, job.id, 1, JobStatus.FAILED, error=error, result=result)
    engine.dispose()
    return job.id


def printed(*args: str) -> str:
    done = CliRunner().invoke(cli, list(args))
    assert done.exit_code == 0, done.output
    return done.output


def assert_escaped(text: str) -> None:
    assert not any(char in text for char in RAW), repr(text)
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b1m\\u202e\\r" in text


@pytest.fixture
def forged() -> tuple[str, str]:
    first = forged_job(f"forged{ESCAPES}", {"name": f"a{ESCAPES}", "lr": 0.1}, error=f"boom{ESCAPES}\nline 2",
                       metrics={"loss": f"x{ESCAPES}"}, result={"headline": f"best{ESCAPES}"})
    second = forged_job(f"forged{ESCAPES}", {"name": f"b{ESCAPES}", "lr": 0.1}, error="boom",
                        metrics={"loss": 1.0}, result={"headline": f"best{ESCAPES}"})
    return first, second


def test_results_escape_stored_text(forged: tuple[str, str]) -> None:
    assert_escaped(printed("results"))


def test_show_escapes_stored_text_and_keeps_one_line_per_field(forged: tuple[str, str]) -> None:
    text = printed("show", forged[0])
    for field in ("kind", "worker", "params", "error", "result"):
        [line] = [line for line in text.splitlines() if line.startswith(f"{field} ")]
        assert_escaped(line)
    assert "line 2" in [line for line in text.splitlines() if line.startswith("error ")][0]
    assert_escaped(text.split("\n\n")[-1])  # the metrics table


def test_compare_escapes_stored_text(forged: tuple[str, str]) -> None:
    assert_escaped(printed("compare", *forged))


def test_json_output_keeps_stored_text_as_it_is(forged: tuple[str, str]) -> None:
    shown = printed("show", forged[0], "--json")
    assert json.loads(shown)["error"] == f"boom{ESCAPES}\nline 2" and "\x1b" not in shown


def test_the_workers_table_escapes_a_workers_name() -> None:
    worker = WorkerInfo(name=f"cpu.1@host{ESCAPES}", host=f"host{ESCAPES}", device="cpu", pool=None,
                        queues=["mlpq.x.cpu"], active_jobs=[], queued=0, gpu_name=f"GPU{ESCAPES}",
                        gpu_memory_used_mib=None, gpu_memory_total_mib=None)
    table = output.workers_table([worker])
    assert_escaped(table)
    assert len(table.splitlines()) == 2


def test_progress_lines_escape_stored_metrics(capsys: pytest.CaptureFixture[str], forged: tuple[str, str]) -> None:
    from mlpq.api_cli.api import Client
    from mlpq.config import Settings

    job = Client(Settings.from_env(os.environ)).get(forged[0]).job
    Lines(job).metric(MetricRecord(1, {"loss": f"x{ESCAPES}"}))
    assert_escaped(capsys.readouterr().err)
