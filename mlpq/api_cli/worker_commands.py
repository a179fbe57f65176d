"""``mlpq worker`` runs a device's worker; ``mlpq workers`` lists the live ones."""

from __future__ import annotations

import click

from mlpq.api_cli import output
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import DEVICE
from mlpq.worker.device import Device


@click.command(context_settings=CONTEXT)
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu or cuda:N.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Jobs run at once (pool processes).")
@click.option("--gpu-index", type=click.IntRange(0, 99), envvar="MLPQ_GPU_INDEX",
              help="The GPU's index as this host sees it, if not N (0 in a container that reserved one GPU).")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True)
@click.pass_context
def worker(ctx: click.Context, device: Device, concurrency: int, gpu_index: int | None, loglevel: str) -> None:
    """Run a worker that consumes exactly one device's queue.

    A cuda:N worker sees only that GPU (CUDA_VISIBLE_DEVICES is set before torch
    is imported) and also takes jobs submitted to plain 'cuda'.

    \b
    Example:
      mlpq worker --device cuda:1 --concurrency 1
    """
    if device.type == "cuda" and device.index is None:
        raise click.BadParameter("a worker needs a GPU index: cuda:N", param_hint="--device")
    from mlpq.worker.launch import start_worker

    start_worker(ctx.find_root().obj, device, concurrency=concurrency, gpu_index=gpu_index, loglevel=loglevel)


@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--timeout", type=click.FloatRange(0.1, 30), default=1.0, show_default=True,
              help="Seconds to wait for replies.")
@click.pass_context
def workers(ctx: click.Context, as_json: bool, timeout: float) -> None:
    """List this ledger's live workers: host, device, GPU name and memory, the job each runs, its queue's length.

    Workers on the same broker that serve another ledger are not listed. QUEUED
    counts the jobs waiting in the worker's own device queue (mlpq.<ledger>.cpu,
    mlpq.<ledger>.cuda:N). GPU figures come from NVML on the worker's host.

    \b
    Example:
      mlpq workers --json
    """
    found = client(ctx).workers(timeout=timeout)
    if as_json:
        click.echo(output.to_json([vars(w) for w in found]))
    elif found:
        click.echo(output.workers_table(found))
    else:
        click.echo("no live workers for this ledger: start one with 'mlpq worker --device cpu'", err=True)
