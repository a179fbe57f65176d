"""The CLI through click's runner: help, exit codes, formats, and that bad input writes nothing."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import redis
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from mlpq import kinds
from mlpq.api_cli.cli import cli
from mlpq.db import jobs
from mlpq.db.schema import JOBS
from mlpq.db.status import JobStatus
from mlpq.db.engine import make_engine
from tests.jobkinds import fault_kind
from tests.services import queue_of

README = Path(__file__).parents[2] / "README.md"


def mlpq(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def job_count() -> int:
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        return connection.scalar(select(func.count()).select_from(JOBS)) or 0


def all_commands() -> list[tuple[str, Any]]:
    """mlpq's commands, with ``submit KIND`` and ``tune KIND`` for mlpq's own kinds only: other installed packages' kinds are
    theirs to document."""
    found = []
    root = click.Context(cli)
    for name in cli.list_commands(root):
        command = cli.get_command(root, name)
        assert command is not None and command.name == name
        found.append((name, command))
        if isinstance(command, click.Group):  # submit builds its commands from the installed kinds
            context = click.Context(command)
            found += [(f"{name} {sub}", command.get_command(context, sub)) for sub in command.list_commands(context)
                      if name not in ("submit", "tune") or sub in kinds.BUILTIN]
    return found


def test_the_commands_checked_do_not_depend_on_the_kinds_installed() -> None:
    alone = [name for name, _ in all_commands()]
    with fault_kind.visible_here():  # another package's kind, installed
        assert "fault" in kinds.names() and [name for name, _ in all_commands()] == alone


@pytest.mark.parametrize(("name", "command"), all_commands())
def test_every_command_has_help_with_an_example_and_is_in_the_readme(name: str, command: Any) -> None:
    for flag in ("-h", "--help"):
        result = mlpq(*name.split(), flag)
        assert result.exit_code == 0 and "Usage: mlpq" in result.output
    assert "Example:" in (command.help or "")
    assert f"mlpq {name}" in README.read_text()


def test_help_imports_no_heavy_library() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(['--help'], standalone_mode=False)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sqlalchemy', 'celery', 'kombu', "
             "'redis', 'alembic', 'pydantic', 'rich', 'platformdirs'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr


def test_a_command_imports_only_its_own_module() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(['results'], standalone_mode=False)\n"
             "print(sorted(m for m in sys.modules if m.endswith('_commands') or m.endswith('_command')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "['mlpq.api_cli.job_commands']", done.stderr


def test_a_ledger_at_the_head_revision_is_used_without_importing_alembic() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(['results'], standalone_mode=False)\n"
             "print('ALEMBIC' if 'alembic' in sys.modules else 'NO-ALEMBIC')")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "NO-ALEMBIC", done.stderr


@pytest.mark.parametrize("args", [["--help"], ["results"], ["show", "abcd"], ["submit", "--help"]])
def test_commands_that_need_no_torch_do_not_import_it(args: list[str]) -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(sys.argv[1:], standalone_mode=False)\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "NO-TORCH", done.stderr


BAD_SUBMITS = [
    (["himmelblau", "--lr", "nan"], "--lr"),
    (["himmelblau", "--lr", "inf"], "--lr"),
    (["himmelblau", "--lr", "-1"], "--lr"),
    (["himmelblau", "--lr", "0"], "--lr"),
    (["himmelblau", "--lr", "1e300"], "--lr"),
    (["himmelblau", "--lr", "fast"], "--lr"),
    (["himmelblau", "--steps", "0"], "--steps"),
    (["himmelblau", "--steps", "10000000000"], "--steps"),
    (["himmelblau", "--steps", "1.5"], "--steps"),
    (["himmelblau", "--log-every", "-3"], "--log-every"),
    (["himmelblau", "--start", "1"], "--start"),
    (["himmelblau", "--start", "nan,0"], "--start"),
    (["himmelblau", "--start", "1,2,3"], "--start"),
    (["himmelblau", "--start", "5000,0"], "--start"),
    (["himmelblau", "--optimizer", "lbfgs"], "--optimizer"),
    (["himmelblau", "--momentum", "0.9"], "momentum applies to sgd and rmsprop only"),
    (["himmelblau", "--optimizer", "sgd", "--momentum", "1"], "--momentum"),
    (["himmelblau", "--seed", "-1"], "--seed"),
    (["himmelblau", "--device", "gpu"], "--device"),
    (["himmelblau", "--device", "cuda:x"], "--device"),
    (["himmelblau", "--device", "cpu:1"], "--device"),
    (["himmelblau", "--device", "cuda:０"], "--device"),
    (["himmelblau", "--device", "cuda:٣"], "--device"),
    (["himmelblau", "--steps", "５"], "--steps"),
    (["himmelblau", "--steps", "10,٣0"], "--steps"),
    (["himmelblau", "--steps", "1_000"], "--steps"),
    (["himmelblau", "--lr", "０.１"], "--lr"),
    (["himmelblau", "--lr", "0.1,٠.٢"], "--lr"),
    (["himmelblau", "--start", "٣,٣"], "--start"),
    (["himmelblau", "--timeout", "６０"], "--timeout"),
    (["mnist", "--epochs", "0"], "--epochs"),
    (["mnist", "--epochs", "1000"], "--epochs"),
    (["mnist", "--epochs", "٣"], "--epochs"),
    (["mnist", "--batch-size", "²"], "--batch-size"),
    (["mnist", "--batch-size", "0"], "--batch-size"),
    (["mnist", "--lr", "-inf"], "--lr"),
    (["mnist", "--momentum", "-0.1"], "--momentum"),
    (["mnist", "--variant", "cnn"], "--variant"),
    (["mnist", "--dataset", "cifar"], "--dataset"),
    (["mnist", "--data-dir", "/proc/version"], "--data-dir"),
    (["mnist", "--data-dir", "/proc/1/nope"], "--data-dir"),
    (["mnist", "--data-dir", "relative/data"], "not an absolute path"),
    (["mnist", "--data-dir", "~/data"], "not an absolute path"),
    (["mnist", "--data-dir", "/"], "the system directory /"),
    (["mnist", "--data-dir", "/etc"], "the system directory /etc"),
    (["mnist", "--data-dir", "/usr/share/mnist"], "inside the system directory /usr"),
    (["mnist", "--data-dir", "/tmp/../sys/x"], "inside the system directory /sys"),
    (["mnist", "--data-dir", "/" + "d" * 2000], "longer than 1024 characters"),
    (["mnist", "--bogus"], "--bogus"),
    (["tsp"], "tsp"),
]


@pytest.mark.parametrize(("args", "mentions"), BAD_SUBMITS)
def test_bad_submit_is_a_one_line_usage_error_and_writes_nothing(args: list[str], mentions: str) -> None:
    result = mlpq("submit", *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and mentions in lines[0]
    assert job_count() == 0


@pytest.mark.parametrize(("args", "code", "message"), [
    (["show", "xyz"], 2, "is not a job id"),
    (["show", "abc"], 2, "is not a job id"),
    (["show", "abcdef"], 1, "no job abcdef"),
    (["results", "--status", "lost"], 2, "--status"),
    (["results", "--limit", "0"], 2, "--limit"),
    (["results", "--device", "gpu"], 2, "--device"),
    (["worker", "--device", "cuda"], 2, "a worker needs a GPU index"),
    (["worker", "--concurrency", "0"], 2, "--concurrency"),
    (["worker", "--concurrency", "٣"], 2, "--concurrency"),
    (["worker", "--device", "cuda:0", "--gpu-index", "０"], 2, "--gpu-index"),
    (["worker", "--max-jobs-per-process", "５"], 2, "--max-jobs-per-process"),
    (["workers", "--timeout", "１"], 2, "--timeout"),
    (["dead-letters", "--limit", "５"], 2, "--limit"),
    (["results", "--limit", "５"], 2, "--limit"),
    (["ui", "--port", "８７６５"], 2, "--port"),
    (["--database-url", "mysql://x@y/z", "results"], 2, "unsupported database 'mysql'"),
    (["--database-url", "::nonsense::", "results"], 2, "malformed database URL"),
    (["--broker-url", "http://x", "results"], 2, "malformed broker URL"),
    (["--broker-url", "redis://localhost:6379/²", "results"], 2, "the database is not a number"),
    (["--broker-url", "redis://localhost:6379/٣", "results"], 2, "the database is not a number"),
    (["--broker-url", "redis://localhost:abc/0", "results"], 2, "Invalid value for '--broker-url'"),
    (["--database-url", "postgresql://u@h:abc/db", "results"], 2, "Invalid value for '--database-url'"),
    (["--database-url", "postgresql://postgres@127.0.0.1:1/none", "results"], 1, "cannot reach the database"),
    (["nosuchcommand"], 2, "No such command"),
])
def test_errors_are_one_line_with_the_documented_exit_code(args: list[str], code: int, message: str) -> None:
    result = mlpq(*args)
    assert result.exit_code == code
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert "Traceback" not in result.output


HUGE = "x" * 100_000


@pytest.mark.parametrize(("args", "env"), [
    (["submit", "himmelblau", "--lr", HUGE], {}),
    (["submit", "himmelblau", "--lr", f"0.1,{HUGE}"], {}),
    (["submit", "himmelblau", "--optimizer", HUGE], {}),
    (["submit", "himmelblau", "--start", HUGE], {}),
    (["submit", "himmelblau", "--device", HUGE], {}),
    (["submit", "himmelblau", "--steps", "1" * 5000], {}),
    (["submit", "mnist", "--epochs", "٣" * 5000], {}),
    (["submit", "mnist", "--data-dir", "/" + HUGE], {}),
    (["submit", "mnist", "--data-dir", f"/tmp/{'y ' * 50_000}"], {}),
    (["show", HUGE], {}),
    (["results", "--status", HUGE], {}),
    (["--broker-url", f"redis://{HUGE}:x/0", "results"], {}),
    (["--database-url", f"postgresql://{HUGE}:x/db", "results"], {}),
    (["results"], {"MLPQ_LEASE_SECONDS": HUGE}),
    (["results"], {"MLPQ_DATA_DIR": "/" + HUGE}),
])
def test_no_error_echoes_more_than_about_100_characters_of_a_value(args: list[str], env: dict[str, str]) -> None:
    result = mlpq(*args, env=env)
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert len(line) < 400, line[:500]


def test_only_the_default_ledger_directory_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MLPQ_DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert mlpq("results").exit_code == 0
    assert (tmp_path / "xdg" / "mlpq" / "mlpq.db").is_file()
    elsewhere = mlpq("--database-url", f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}", "results")
    assert elsewhere.exit_code == 1
    assert elsewhere.output.startswith(f"Error: no such directory: '{tmp_path / 'missing'}'")
    assert not (tmp_path / "missing").exists()


def test_only_the_default_ledger_file_is_created_by_a_command(tmp_path: Path) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ledger.db'}"
    for command in (["results"], ["submit", "himmelblau"]):
        refused = mlpq("--database-url", url, *command)
        assert (refused.exit_code, refused.output) == (
            1, f"Error: no ledger at '{folder / 'ledger.db'}': run 'mlpq db upgrade' to create it\n")
    assert list(folder.iterdir()) == []
    assert mlpq("--database-url", url, "db", "upgrade").exit_code == 0
    assert mlpq("--database-url", url, "results").exit_code == 0


def test_submit_with_the_broker_down_exits_1_and_leaves_no_job() -> None:
    result = mlpq("submit", "himmelblau")  # the isolated env points the broker at port 1
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot reach the broker at redis://127.0.0.1:1/0")
    assert job_count() == 0


def test_submit_commits_the_row_then_publishes_only_its_id_as_json(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "mnist", "--epochs", "2", "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.output)["id"]
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        job = jobs.find_job(connection, job_id)
        assert job.status is JobStatus.QUEUED and job.device == "cpu"
        assert job.params["epochs"] == 2 and job.params["batch_size"] == 200 and job.params["seed"] >= 0
    [raw] = redis.Redis.from_url(broker_url).lrange(queue_of("cpu"), 0, -1)
    message = json.loads(raw)
    assert message["content-type"] == "application/json"
    assert json.loads(base64.b64decode(message["body"]))[0] == [job_id]
    assert message["headers"]["task"] == "mlpq.run_job"


def test_gpu_jobs_go_to_their_device_queue(broker_url: str) -> None:
    for device in ("cuda:1", "cuda"):
        assert mlpq("--broker-url", broker_url, "submit", "himmelblau", "--device", device).exit_code == 0
    client = redis.Redis.from_url(broker_url)
    assert [client.llen(queue_of(device)) for device in ("cuda:1", "cuda", "cpu")] == [1, 1, 0]


def test_a_given_seed_is_stored(broker_url: str) -> None:
    result = mlpq("--broker-url", broker_url, "submit", "himmelblau", "--seed", "42", "--start", "1,0",
                  "--start", "-4,0")
    job_id = result.output.split()[0]
    assert mlpq("show", job_id[:8], "--json").exit_code == 0
    params = json.loads(mlpq("show", job_id[:8], "--json").output)["params"]
    assert params["seed"] == 42 and params["starts"] == [[1.0, 0.0], [-4.0, 0.0]]


def finished_jobs() -> list[str]:
    """Two finished jobs written straight into the ledger: an MNIST success and a failed Himmelblau."""
    factory = make_engine(os.environ["MLPQ_DATABASE_URL"])
    ids = []
    with factory.begin() as connection:
        for kind, status, outcome in [
            ("himmelblau", JobStatus.FAILED, {"error": "diverged: f is not finite at step 3"}),
            ("mnist", JobStatus.SUCCEEDED, {"result": {"test_accuracy": 0.9, "headline": "test accuracy 90.00%",
                                                       "dataset_sizes": {"train": 60_000, "test": 10_000}}}),
        ]:
            job = jobs.create_job(connection, kind, {"seed": 1}, "cpu", timeout_s=60)
            jobs.claim_job(connection, job.id, "host")
            jobs.add_metrics(connection, job.id, 1, [(1, {"test_accuracy": 0.9})])
            jobs.finish_job(connection, job.id, 1, status, **outcome)
            ids.append(job.id)
    return ids


def test_results_in_every_format() -> None:
    failed, succeeded = finished_jobs()
    table = mlpq("results").output.splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["ID", "KIND", "STATUS", "DEVICE", "CREATED", "DURATION", "HEADLINE"]
    assert table[1].startswith(succeeded[:12]) and "test accuracy 90.00%" in table[1]
    assert table[2].startswith(failed[:12]) and "diverged: f is not finite" in table[2]
    rows = json.loads(mlpq("results", "--format", "json").output)
    assert [(r["id"], r["status"]) for r in rows] == [(succeeded, "succeeded"), (failed, "failed")]
    csv_lines = mlpq("results", "--format", "csv", "--status", "failed").output.splitlines()
    assert csv_lines[0] == ("id,kind,status,device,pool,created,duration_s,headline,sweep_id,param.seed,"
                            "result.f,result.distance,result.minima_found")
    assert len(csv_lines) == 2 and csv_lines[1].startswith(failed)
    assert json.loads(mlpq("results", "--kind", "himmelblau", "--format", "json").output)[0]["id"] == failed


def test_show_text_and_json() -> None:
    failed, succeeded = finished_jobs()
    text = mlpq("show", succeeded[:6]).output
    assert f"job       {succeeded}" in text and "status    succeeded" in text and "test accuracy 90.00%" in text
    assert "\n  dataset_sizes: 60,000/10,000\n" in text
    detail = json.loads(mlpq("show", failed, "--json").output)
    assert detail["error"] == "diverged: f is not finite at step 3" and detail["metrics"] == [
        {"step": 1, "test_accuracy": 0.9}]


def test_empty_results_say_how_to_start() -> None:
    result = mlpq("results")
    assert result.exit_code == 0 and "no jobs yet" in result.output


def test_a_cuda_worker_without_that_gpu_exits_1() -> None:
    import torch

    if torch.cuda.device_count() > 5:
        pytest.skip("this host has a sixth GPU")
    done = subprocess.run([sys.executable, "-m", "mlpq.api_cli", "worker", "--device", "cuda:5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == ("Error: no GPU for cuda:5 on this host (CUDA_VISIBLE_DEVICES='5', "
                                   "torch sees none)")
