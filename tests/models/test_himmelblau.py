"""Himmelblau jobs: the fast engines against torch.optim, the self-check, the grid, the tutorial's answer,
divergence, progress."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from pydantic import ValidationError

from mlpq.api_cli.cli import cli
from mlpq.kinds.himmelblau import MOMENTUM_OPTIMIZERS, OPTIMIZERS, HimmelblauSpec, grid_points, himmelblau
from mlpq.models import himmelblau_fast
from mlpq.models import himmelblau as job_code
from mlpq.models.context import DivergedError, RunContext

TUTORIAL_STARTS = [(0.0, 0.0), (1.0, 0.0), (-4.0, 0.0), (4.0, 0.0)]
STARTS = TUTORIAL_STARTS + grid_points(4)
"""20 starts: the tensor engine takes them all, the scalar engine the first four."""
CASES = [
    ("adam", 0.05, 0.0),
    ("adamw", 0.05, 0.0),
    ("sgd", 1e-3, 0.0),
    ("sgd", 2e-4, 0.9),
    ("rmsprop", 1e-2, 0.0),  # RMSprop and Adam at these rates never settle: any rounding slip would show
    ("rmsprop", 1e-3, 0.9),
    ("adagrad", 0.5, 0.0),
]


def context(log: list[tuple[int, dict[str, Any]]] | None = None) -> RunContext:
    return RunContext("cpu", lambda step, values: log.append((step, dict(values))) if log is not None else None,
                      Path("/nonexistent"))


def ignore(step: int, rows: list[list[float]]) -> None:
    pass


@pytest.fixture(autouse=True)
def fresh_self_check() -> Iterator[None]:
    """Each test sees the self-check of the engines as a new worker process would (and leaves none behind)."""
    job_code.engine_agrees.cache_clear()
    yield
    job_code.engine_agrees.cache_clear()


def test_the_cases_cover_every_optimiser_and_momentum() -> None:
    assert {name for name, _lr, _momentum in CASES} == set(OPTIMIZERS)
    assert {name for name, _lr, momentum in CASES if momentum} == set(MOMENTUM_OPTIMIZERS)


@pytest.mark.parametrize(("optimizer", "lr", "momentum"), CASES)
def test_fast_engines_give_torch_optims_bits(optimizer: str, lr: float, momentum: float) -> None:
    args = (optimizer, lr, momentum, 3000, 1000, ignore)
    reference = job_code.minimise_torch(STARTS, *args)
    assert torch.isfinite(reference).all()
    assert torch.equal(himmelblau_fast.minimise_tensor(STARTS, *args, device="cpu"), reference)
    assert torch.equal(himmelblau_fast.minimise_scalar(TUTORIAL_STARTS, *args), reference[:4])


def test_the_scalar_engine_ends_where_the_tutorial_loop_does_over_20000_steps() -> None:
    x_y = torch.tensor([0.0, 0.0], requires_grad=True)  # the tutorial's code, verbatim but for the prints
    optimizer = torch.optim.Adam([x_y], lr=1e-3)
    for _ in range(20_000):
        pred = (x_y[0] ** 2 + x_y[1] - 11) ** 2 + (x_y[0] + x_y[1] ** 2 - 7) ** 2
        optimizer.zero_grad()
        pred.backward()
        optimizer.step()

    fast = himmelblau_fast.minimise_scalar([(0.0, 0.0)], "adam", 1e-3, 0.0, 20_000, 2_000, ignore)
    assert torch.equal(fast[0], x_y.detach())


def test_the_fast_engines_residuals_give_the_kinds_function_to_the_bit() -> None:
    points = torch.tensor(grid_points(41), dtype=torch.float32) * 1.37
    x, y = points[:, 0], points[:, 1]
    a, b = himmelblau_fast.residuals(x, y)
    assert torch.equal(a * a + b * b, himmelblau(x, y))


def test_both_engines_pass_the_self_check_with_the_installed_torch() -> None:
    assert job_code.engine_agrees("scalar", "cpu") and job_code.engine_agrees("tensor", "cpu")


@pytest.mark.parametrize(("spec", "engine"), [(HimmelblauSpec(steps=300, log_every=100), "scalar"),
                                              (HimmelblauSpec(grid=3, steps=300, log_every=100), "tensor")])
def test_an_engine_that_gives_other_bits_is_replaced_by_torch_optim(
        spec: HimmelblauSpec, engine: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(himmelblau_fast, "BETA2", 0.9989)  # a slip in one rule, as another torch could make
    with caplog.at_level(logging.WARNING, logger=job_code.__name__):
        result = job_code.run(spec, context())
    assert result["engine"] == "torch.optim"
    assert f"the {engine} engine differs from torch.optim's adam on cpu" in caplog.text
    reference = job_code.minimise_torch(spec.start_points(), "adam", spec.lr, 0.0, spec.steps, spec.log_every, ignore)
    assert [[s["x"], s["y"]] for s in result["starts"]] == reference.tolist()


def test_tutorial_defaults_reach_three_two() -> None:
    result = job_code.run(HimmelblauSpec(), context())
    assert result["engine"] == "scalar"
    assert result["nearest_minimum"] == [3.0, 2.0] and result["distance"] < 1e-5 and result["f"] < 1e-6


def test_a_grid_finds_all_four_minima_in_one_tensor_job() -> None:
    log: list[tuple[int, dict[str, Any]]] = []
    result = job_code.run(HimmelblauSpec(grid=8), context(log))
    assert result["engine"] == "tensor" and len(result["starts"]) == 64
    assert result["minima_found"] == 4 and result["headline"].startswith("4/4 minima from 64 starts")
    assert [s["start"] for s in result["starts"]][:2] == [[-6.0, -6.0], [-6.0, -6.0 + 12 / 7]]
    assert [step for step, _ in log] == list(range(0, 20_000, 2_000))
    assert len(log[0][1]["points"]) == 64 and log[-1][1]["f_best"] <= log[0][1]["f_best"]


def test_big_grids_log_only_f_best_and_mean() -> None:
    log: list[tuple[int, dict[str, Any]]] = []
    job_code.run(HimmelblauSpec(grid=9, steps=20, log_every=10), context(log))
    assert [step for step, _ in log] == [0, 10]
    assert set(log[0][1]) == {"f_best", "f_mean"} and log[0][1]["f_best"] <= log[0][1]["f_mean"]


def test_progress_reports_the_points_f_was_evaluated_at() -> None:
    log: list[tuple[int, dict[str, Any]]] = []
    job_code.run(HimmelblauSpec(starts=[(4.0, 0.0)], lr=0.01, steps=3, log_every=2), context(log))
    reference: list[tuple[int, list[list[float]]]] = []
    job_code.minimise_torch([(4.0, 0.0)], "adam", 0.01, 0.0, 3, 2, lambda step, rows: reference.append((step, rows)))
    assert [step for step, _rows in reference] == [0, 2]
    [[x, y, f]] = reference[1][1]
    assert x < 4.0 and f < 34.0
    assert log == [(0, {"f_best": 34.0, "points": [[4.0, 0.0, 34.0]]}), (2, {"f_best": f, "points": [[x, y, f]]})]


@pytest.mark.parametrize("spec", [
    HimmelblauSpec(optimizer="sgd", lr=10, steps=100, log_every=50),
    HimmelblauSpec(optimizer="sgd", lr=10, steps=100, log_every=50, grid=4),
], ids=["scalar", "tensor"])
def test_divergence_raises(spec: HimmelblauSpec) -> None:
    with pytest.raises(DivergedError, match="f is not finite at step 50"):
        job_code.run(spec, context())


def test_divergence_between_log_steps_is_caught_at_the_end() -> None:
    with pytest.raises(DivergedError, match="after 100 steps"):
        job_code.run(HimmelblauSpec(optimizer="sgd", lr=10, steps=100, log_every=1000), context())


def test_grid_spec() -> None:
    assert HimmelblauSpec(grid=2).start_points() == [(-6.0, -6.0), (-6.0, 6.0), (6.0, -6.0), (6.0, 6.0)]
    assert len(HimmelblauSpec(grid=64).start_points()) == 4096
    stored = HimmelblauSpec(grid=3).model_dump(mode="json")
    assert HimmelblauSpec.model_validate(stored).start_points() == grid_points(3)
    for bad in ({"grid": 1}, {"grid": 65}, {"grid": 3, "starts": [(1.0, 0.0)]}):
        with pytest.raises(ValidationError):
            HimmelblauSpec.model_validate(bad)


def test_cli_grid_option_errors_in_one_line() -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["submit", "himmelblau", "--grid", "8", "--start", "1,0"])
    too_big = runner.invoke(cli, ["submit", "himmelblau", "--grid", "65"])
    assert both.exit_code == 2 and both.output.strip().splitlines() == [
        "Error: invalid parameters: give only one of start points, a grid and random starts "
        "(see 'mlpq submit himmelblau --help')"]
    assert too_big.exit_code == 2 and too_big.output.startswith(
        "Error: Invalid value for '--grid': 65 is not in the range 2<=x<=64.")
    assert len(too_big.output.strip().splitlines()) == 1


def test_random_starts_are_drawn_from_the_seed() -> None:
    points = HimmelblauSpec(random_starts=5, seed=7).start_points()
    assert points == HimmelblauSpec(random_starts=5, seed=7).start_points()
    assert points != HimmelblauSpec(random_starts=5, seed=8).start_points()
    assert len(points) == 5 and all(-6 <= v <= 6 for point in points for v in point)
    with pytest.raises(ValidationError):
        HimmelblauSpec(random_starts=5, grid=3)


def test_the_seed_changes_a_random_start_job_result() -> None:
    results = [job_code.run(HimmelblauSpec(random_starts=3, seed=seed, steps=10, log_every=10), context([]))
               for seed in (1, 2)]
    assert [s["start"] for s in results[0]["starts"]] != [s["start"] for s in results[1]["starts"]]


@pytest.mark.parametrize("spec", [HimmelblauSpec(grid=3), HimmelblauSpec(random_starts=3, seed=4)],
                         ids=["grid", "random"])
def test_grid_and_random_start_jobs_store_no_start_points(spec: HimmelblauSpec) -> None:
    stored = spec.model_dump(mode="json")
    assert stored["starts"] is None
    assert HimmelblauSpec.model_validate(stored).start_points() == spec.start_points()


def test_a_grid_job_stored_with_the_old_default_start_drops_it() -> None:
    old = {"seed": 1, "starts": [[0.0, 0.0]], "grid": 3, "optimizer": "adam", "lr": 0.001, "momentum": 0.0,
           "steps": 10, "log_every": 10}
    spec = HimmelblauSpec.model_validate(old)
    assert spec.starts is None and spec.start_points() == grid_points(3)


def test_a_job_without_start_options_starts_at_the_origin() -> None:
    assert HimmelblauSpec().start_points() == [(0.0, 0.0)]
    assert "[default: 0,0]" in CliRunner().invoke(cli, ["submit", "himmelblau", "--help"]).output


def test_show_prints_each_starts_end_point_and_minimum() -> None:
    from tests.api_cli.ledger_rows import add_job

    spec = HimmelblauSpec(starts=TUTORIAL_STARTS, steps=20_000)
    result = job_code.run(spec, context())
    job_id = add_job("himmelblau", spec.model_dump(mode="json"), result=result)
    shown = CliRunner().invoke(cli, ["show", job_id]).output
    assert "  starts: 4\n" in shown
    for start in result["starts"]:
        x0, y0 = start["start"]
        (mx, my), d = start["nearest_minimum"], start["distance"]
        assert (f"    ({x0:g}, {y0:g}) → ({start['x']:.4f}, {start['y']:.4f}) f={start['f']:.3g}, "
                f"nearest minimum ({mx:g}, {my:g}) at {d:.3g}\n") in shown
