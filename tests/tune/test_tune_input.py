"""``mlpq tune``'s input: every bad ``--search``, objective, budget, sampler, pruner or resume is one line, exit
2, and writes nothing (no job, no study storage); and the parsing of what is good."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mlpq import kinds
from mlpq.api_cli import search
from mlpq.api_cli.cli import cli
from mlpq.db.engine import make_engine
from mlpq.db.schema import JOBS
from mlpq.api_cli.study_store import SQLITE_SUFFIX

HIMMELBLAU, MNIST = kinds.get("himmelblau"), kinds.get("mnist")


def ledger_file() -> Path:
    return Path(os.environ["MLPQ_DATABASE_URL"].removeprefix("sqlite:///"))


def job_count() -> int:
    with make_engine(os.environ["MLPQ_DATABASE_URL"]).connect() as connection:
        return connection.scalar(select(func.count()).select_from(JOBS)) or 0


@pytest.mark.parametrize(("args", "says"), [
    (["--search", "foo=1..2"], "--search 'foo': himmelblau has no such field"),
    (["--search", "lr=0..2"], "--search lr: 0 is out of the field's range (lr > 0)"),
    (["--search", "lr=0.1..20"], "--search lr: 20 is out of the field's range (lr <= 10)"),
    (["--search", "momentum=0..1"], "--search momentum: 1 is out of the field's range (momentum < 1)"),
    (["--search", "lr=0.5..0.1"], "--search lr: LOW must be below HIGH, not 0.5..0.1"),
    (["--search", "lr=0.1..0.1"], "--search lr: LOW must be below HIGH"),
    (["--search", "steps=0..10"], "--search steps: 0 is out of the field's range (steps >= 1)"),
    (["--search", "momentum=0..0.5:log"], "--search momentum: a :log range needs LOW > 0, not 0"),
    (["--search", "lr=1e-3..0.1:ln"], "--search lr: unknown scale 'ln'"),
    (["--search", "optimizer=adam,foo"], "--search optimizer: 'foo' is not one of"),
    (["--search", "optimizer=adam,,sgd"], "--search optimizer: empty choice"),
    (["--search", "optimizer="], "--search 'optimizer=': give NAME=LOW..HIGH[:log] or NAME=A,B,C"),
    (["--search", "optimizer=adam..sgd"], "--search optimizer: a range needs a numeric field"),
    (["--search", "lr=x..1"], "--search lr:"),
    (["--search", "steps=1.5..10"], "--search steps:"),
    (["--search", "lr=0.1..1", "--search", "lr=0.2..1"], "--search lr: given more than once"),
    (["--search", "lr=0.1..1", "--lr", "0.2"], "--search lr: also given a fixed value"),
    (["--search", "lr=0.1..1", "--steps", "10,20"], "--steps: give one value; search several with --search"),
    (["--search", "lr=0.1..1", "--momentum", "0.5"], "momentum applies to sgd and rmsprop only"),
    ([], "give at least one --search"),
    (["--search", "lr=0.1..1", "--trials", "0"], "'--trials': 0 is not in the range 1<=x<=10000"),
    (["--search", "lr=0.1..1", "--trials", "10001"], "'--trials': 10001 is not in the range"),
    (["--search", "lr=0.1..1", "--parallel", "0"], "'--parallel': 0 is not in the range"),
    (["--search", "lr=0.1..1", "--objective", "accuracy:max"], "--objective 'accuracy': himmelblau's results have f"),
    (["--search", "lr=0.1..1", "--objective", "f:up"], "the direction is min or max"),
    (["--search", "lr=0.1..1", "--objective", "distance"], "say whether to minimise or maximise it"),
    (["--search", "lr=0.1..1", "--sampler", "grid"], "'--sampler': 'grid' is not one of 'tpe', 'random'"),
    (["--search", "lr=0.1..1", "--pruner", "hyperband"], "'--pruner': 'hyperband' is not one of"),
    (["--resume", "ffff0000"], "no study ffff0000 in this ledger"),
    (["--resume", "xyz"], "is not a sweep id"),
    (["--resume", "ffff0000", "--search", "lr=0.1..1"], "--resume drives the study with its own settings"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args: list[str], says: str) -> None:
    before = ledger_file().read_bytes()
    result = CliRunner().invoke(cli, ["tune", "himmelblau", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.output
    assert job_count() == 0 and ledger_file().read_bytes() == before
    assert not ledger_file().with_name(ledger_file().name + SQLITE_SUFFIX).exists()


def test_resuming_a_study_of_another_kind_is_refused() -> None:
    from mlpq.api_cli import tune, tune_driver
    from mlpq.api_cli.api import Client
    from mlpq.config import Settings

    config = tune_driver.StudyConfig("mnist", (search.Range("lr", 0.01, 0.1, True, False),), {"seed": 1}, 2,
                                     search.Objective("test_accuracy", "max"), "tpe", "asha", 1, "cpu", None, None, 1)
    study = tune_driver.create_study(tune.open_storage(Client(Settings.from_env())), "cd" * 16, config)
    result = CliRunner().invoke(cli, ["tune", "himmelblau", "--resume", study.study_name[:6]])
    assert result.exit_code == 2 and result.output == f"Error: study {'cd' * 16} tunes 'mnist', not himmelblau\n"
    assert job_count() == 0


def test_tune_alone_asks_for_a_kind_or_a_study() -> None:
    result = CliRunner().invoke(cli, ["tune"])
    assert result.exit_code == 2 and "give a kind (mlpq tune KIND --search ...) or --resume STUDY_ID" in result.output


def test_ranges_and_choices_take_the_fields_own_types() -> None:
    lr = search.parse_dimension("lr=1e-3..0.5:log", MNIST)
    assert lr == search.Range("lr", 0.001, 0.5, True, False)
    assert search.parse_dimension("batch-size=50,100,200", MNIST) == search.Choices("batch_size", (50, 100, 200))
    assert search.parse_dimension("epochs=1..5", MNIST) == search.Range("epochs", 1, 5, False, True)
    assert search.parse_dimension("variant=module,functional", MNIST).values == ("module", "functional")
    assert search.dimension_of(lr.as_json()) == lr


def test_the_objective_defaults_to_the_kinds_best_and_takes_its_direction() -> None:
    assert search.parse_objective(None, MNIST) == search.Objective("test_accuracy", "max")
    assert search.parse_objective("test_accuracy", MNIST) == search.Objective("test_accuracy", "max")
    assert search.parse_objective("test_loss:min", MNIST) == search.Objective("test_loss", "min")
    with pytest.raises(click.UsageError, match="say whether"):
        search.parse_objective("test_loss", MNIST)


def test_only_running_a_study_imports_optuna() -> None:
    import subprocess
    import sys

    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\n"
             "for args in (['--help'], ['results'], ['tune', '--help'], ['tune', 'mnist', '--help'],\n"
             "             ['tune', 'command', '--help']):\n"
             "    cli.main(args, standalone_mode=False)\n"
             "print('optuna' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr


PROGRAM = ["--", "python", "train.py", "--lr", "{lr}"]
GOOD = ["--search", "lr=1e-4..1e-1:log", "--objective", "loss:min"]


@pytest.mark.parametrize(("args", "says"), [
    (["--search", "lr=1e-4..1e-1:log", *PROGRAM], "give --objective NAME:min or NAME:max, a value the script"),
    ([*GOOD, "--objective", "loss", *PROGRAM], "say whether to minimise or maximise it"),
    (GOOD, "no command: give it after --"),
    (["--objective", "loss:min", *PROGRAM], "give at least one --search"),
    ([*GOOD, "--", "python", "train.py"], "--search lr is not used: no argument has {lr}"),
    ([*GOOD, *PROGRAM, "--batch", "{bs}"], "{bs} in the command has no --search bs=..."),
    ([*GOOD, "--search", "lr=1..2", *PROGRAM], "--search lr: given more than once"),
    (["--search", "lr=0..1:log", "--objective", "loss:min", *PROGRAM], "a :log range needs LOW > 0"),
    (["--search", "lr=1..0", "--objective", "loss:min", *PROGRAM], "LOW must be below HIGH"),
    (["--search", "lr=a,,b", "--objective", "loss:min", *PROGRAM], "--search lr: empty choice"),
    (["--search", "l-r=1..2", "--objective", "loss:min", *PROGRAM], "--search 'l-r=1..2': give NAME=LOW..HIGH"),
    ([*GOOD, "--workdir", "runs", *PROGRAM], "--workdir: must be an absolute path"),
    ([*GOOD, "--env", "MLPQ_JOB_ID=1", *PROGRAM], "MLPQ_JOB_ID is set by the worker"),
    ([*GOOD, "--param", "lr=1", *PROGRAM], "No such option '--param'"),
    ([*GOOD, "--", "python", "x\0", "{lr}"], "argument 1 contains a NUL character"),
    (["--resume", "ffff0000", *PROGRAM], "--resume drives the study with its own settings"),
])
def test_bad_input_for_a_script_is_one_line_exit_2_and_writes_nothing(args: list[str], says: str) -> None:
    before = ledger_file().read_bytes()
    result = CliRunner().invoke(cli, ["tune", "command", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.output
    assert job_count() == 0 and ledger_file().read_bytes() == before
    assert not ledger_file().with_name(ledger_file().name + SQLITE_SUFFIX).exists()


def test_a_scripts_search_fills_its_arguments_as_python_writes_the_values() -> None:
    from mlpq.api_cli import trial_jobs, tune_program

    assert tune_program.parse_dimension("lr=1e-4..0.1:log") == search.Range("lr", 1e-4, 0.1, True, False)
    assert tune_program.parse_dimension("layers=1..4") == search.Range("layers", 1, 4, False, True)
    assert tune_program.parse_dimension("act=relu,tanh,relu") == search.Choices("act", ("relu", "tanh"))
    fixed = {"argv": ["python", "t.py", "--lr={lr}", "{layers}", "{act}"], "workdir": None, "env": {}}
    params = trial_jobs.job_params("command", fixed, {"lr": 0.0031622776601683794, "layers": 3, "act": "tanh"})
    assert params["argv"] == ["python", "t.py", "--lr=0.0031622776601683794", "3", "tanh"]
    assert params["values"] == {"lr": "0.0031622776601683794", "layers": "3", "act": "tanh"}
    assert kinds.get("command").spec.model_validate(params).argv == params["argv"]
    dimensions = [tune_program.parse_dimension("lr=1e-4..0.1:log")]  # how a restarted driver finds a trial's job
    assert trial_jobs.trial_part("command", dimensions, params) == {"values": params["values"]}
    assert trial_jobs.searched_values("command", params) == {"lr": 0.0031622776601683794, "layers": 3, "act": "tanh"}
