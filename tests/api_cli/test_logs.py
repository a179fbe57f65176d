"""``mlpq logs`` on log lines written straight into the ledger: what it prints, escaped, per attempt, as JSON,
page after page; a job that does not exist is one line and exit 1. Following a running job is tested with a
real worker in tests/faults/test_job_logs.py."""

from __future__ import annotations

import json
import os

import pytest

from mlpq.api_cli import log_commands
from mlpq.db import job_logs
from mlpq.db.engine import make_engine
from mlpq.db.status import JobStatus
from tests.api_cli.ledger_rows import add_job, mlpq


@pytest.fixture(autouse=True)
def ledger(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLPQ_DATABASE_URL", database_url)
    return database_url


def add_lines(job_id: str, attempt: int, *lines: tuple[str, str, str]) -> None:
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    with engine.begin() as connection:
        job_logs.add_lines(connection, job_id, attempt, lines)
    engine.dispose()


def shown(output: str) -> list[str]:
    """Each printed line without its time (``YYYY-MM-DD HH:MM:SS.mmm``)."""
    return [line.split(" ", 2)[2] for line in output.splitlines()]


def test_lines_show_attempt_source_level_and_escaped_control_characters() -> None:
    job_id = add_job("himmelblau", {"steps": 10})
    add_lines(job_id, 1, ("worker", "INFO", "received by host-a"), ("job", "INFO", "step 1 \x1b]0;owned\x07"),
              ("stderr", "WARNING", "bidi \u202e done"))
    add_lines(job_id, 2, ("worker", "INFO", "attempt 2 started on host-b (cpu)"))
    done = mlpq("logs", job_id[:8])
    assert done.exit_code == 0, done.output
    assert shown(done.stdout) == ["#1 worker received by host-a", "#1 job    step 1 \\x1b]0;owned\\x07",
                                  "#1 stderr WARNING bidi \\u202e done", "#2 worker attempt 2 started on host-b (cpu)"]
    assert shown(mlpq("logs", job_id, "--attempt", "2").stdout) == ["#2 worker attempt 2 started on host-b (cpu)"]


def test_json_gives_one_object_per_line_with_the_text_as_stored() -> None:
    job_id = add_job("himmelblau", {"steps": 10})
    add_lines(job_id, 1, ("job", "INFO", "a\x1bb"), ("worker", "INFO", "attempt 1 succeeded"))
    done = mlpq("logs", job_id, "--json")
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(row["attempt"], row["source"], row["level"], row["line"]) for row in rows] == [
        (1, "job", "INFO", "a\x1bb"), (1, "worker", "INFO", "attempt 1 succeeded")]
    assert rows[0]["id"] < rows[1]["id"] and rows[0]["at"] <= rows[1]["at"]


def test_a_long_log_is_read_page_after_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log_commands, "PAGE", 3)
    job_id = add_job("himmelblau", {"steps": 10})
    add_lines(job_id, 1, *(("job", "INFO", f"line {n}") for n in range(7)))
    assert shown(mlpq("logs", job_id).stdout) == [f"#1 job    line {n}" for n in range(7)]


def test_a_job_without_lines_says_so_and_an_unknown_job_is_one_line() -> None:
    job_id = add_job("himmelblau", {"steps": 10}, status=JobStatus.QUEUED)
    done = mlpq("logs", job_id)
    assert done.exit_code == 0 and done.stdout == "" and done.stderr == f"job {job_id} has no log lines (queued)\n"
    done = mlpq("logs", "ffff0000")
    assert done.exit_code == 1 and done.output == "Error: no job ffff0000\n"
    done = mlpq("logs", job_id, "--attempt", "0")
    assert done.exit_code == 2 and len(done.output.splitlines()) == 1
