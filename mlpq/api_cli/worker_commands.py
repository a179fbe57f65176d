"""``mlpq worker`` runs a device's worker; ``mlpq workers`` lists the live ones; ``mlpq dead-letters`` what they refused."""

from __future__ import annotations

import click

from mlpq.api_cli import output
from mlpq.api_cli.context import CONTEXT, client
from mlpq.api_cli.params import DEVICE, HOSTNAME, POOL, AsciiFloatRange, AsciiIntRange, default_hostname
from mlpq.devices import Device
from mlpq.redact import one_line

MESSAGE_CHARS = 40
"""How much of each refused message the table shows (``--json`` has what was kept)."""


@click.command(context_settings=CONTEXT)
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="cpu or cuda:N.")
@click.option("--pool", type=POOL,
              help="Serve only jobs submitted with this --pool (a machine, or a group of identical ones).  "
                   "[env: MLPQ_POOL]")
@click.option("--hostname", type=HOSTNAME, default=default_hostname,
              help="The host name shown by 'mlpq workers' and stored on the jobs it runs.  "
                   "[env: MLPQ_HOSTNAME; default: this host's]")
@click.option("--concurrency", type=AsciiIntRange(1, 64), default=1, show_default=True,
              help="Jobs run at once (pool processes).")
@click.option("--threads", type=AsciiIntRange(1, 1024),
              help="Torch threads per job.  [default: OMP_NUM_THREADS if set; on a GPU 2; on the CPU an equal "
                   "share of the CPUs among the pool processes of every CPU worker live on this machine, "
                   "decided as each job starts]")
@click.option("--gpu-index", type=AsciiIntRange(0, 99),
              help="The GPU's index as this host sees it, if not N (0 in a container that reserved one GPU). "
                   "[env: MLPQ_GPU_INDEX]")
@click.option("--allow-commands", is_flag=True,
              help="Also run command jobs (mlpq submit command): any program that anyone who can write to the "
                   "ledger and the broker submits, as this worker's user. Run such a worker as an unprivileged "
                   "user or in a container.  [env: MLPQ_ALLOW_COMMANDS; default: off]")
@click.option("--loglevel", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True)
@click.option("--max-jobs-per-process", type=AsciiIntRange(1, 1_000_000),
              help="Replace each pool process after this many jobs (1: a fresh process per job).  "
                   "[default: keep it while it is healthy]")
@click.pass_context
def worker(ctx: click.Context, device: Device, pool: str | None, hostname: str, concurrency: int,
           threads: int | None, gpu_index: int | None, allow_commands: bool, loglevel: str,
           max_jobs_per_process: int | None) -> None:
    """Run a worker that consumes exactly one device's queue (in its pool, with --pool).

    A cuda:N worker sees only that GPU (CUDA_VISIBLE_DEVICES is set before torch
    is imported, GPUs numbered as nvidia-smi numbers them) and also takes jobs
    submitted to plain 'cuda'. Its processes stay warm between jobs and are
    replaced after a CUDA error or when GPU memory is not freed (see README).
    CPU workers on one machine share its CPUs: two of concurrency 1 on 8 CPUs
    give each job 4 torch threads (--threads N fixes the number).
    A worker with --pool NAME takes only jobs submitted with --pool NAME (queue
    mlpq.NAME.DEVICE); one without takes only jobs submitted without.

    With --allow-commands it also takes command jobs (queue mlpq.DEVICE.commands).

    \b
    Example:
      mlpq worker --device cuda:1 --concurrency 1
      mlpq worker --device cuda:0 --pool a100
      mlpq worker --device cuda:0 --allow-commands
    """
    if device.type == "cuda" and device.index is None:
        raise click.BadParameter("a worker needs a GPU index: cuda:N", param_hint="--device")
    from mlpq.worker.launch import start_worker

    settings = ctx.find_root().obj
    pool = pool if pool is not None else settings.pool
    code = start_worker(settings, Device(device.type, device.index, pool), hostname=hostname,
                        concurrency=concurrency, threads=threads,
                        gpu_index=gpu_index if gpu_index is not None else settings.gpu_index, loglevel=loglevel,
                        max_jobs_per_process=max_jobs_per_process,
                        allow_commands=allow_commands or settings.allow_commands)
    if code:
        raise click.ClickException(f"the worker stopped on an error (exit {code}); its log above says why")


@click.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--timeout", type=AsciiFloatRange(0.1, 30), default=1.0, show_default=True,
              help="Seconds to wait for the broker.")
@click.option("--self", "only_self", is_flag=True,
              help="Only this host's workers (MLPQ_HOSTNAME or the host name); exit 1 if none is live. "
                   "A health probe.")
@click.pass_context
def workers(ctx: click.Context, as_json: bool, timeout: float, only_self: bool) -> None:
    """List this ledger's live workers: host, pool, device, GPU name and memory, the job each runs, its queue's length.

    Each worker rewrites its entry in Redis every 2 s; one that died without
    stopping drops out 15 s after its last. Workers on the same broker that
    serve another ledger are not listed. QUEUED counts the jobs waiting in the
    worker's own device queue (mlpq.<ledger>.cpu, mlpq.<ledger>.cuda:N,
    mlpq.<ledger>.POOL.DEVICE). THREADS: torch threads per job, with the pool
    processes when more than one (2x3: two of 3 threads each). GPU figures
    come from NVML on the worker's host.

    \b
    Example:
      mlpq workers --json
      mlpq workers --self --timeout 5     # a liveness probe inside a worker's container
    """
    found = client(ctx).workers(timeout=timeout)
    if only_self:
        host = default_hostname()
        found = [w for w in found if w.host == host]
        if not found:
            raise click.ClickException(f"no live worker on host {host}")
    if as_json:
        click.echo(output.to_json([vars(w) for w in found]))
    elif found:
        click.echo(output.workers_table(found))
    else:
        click.echo("no live workers for this ledger: start one with 'mlpq worker --device cpu'", err=True)


@click.command("dead-letters", context_settings=CONTEXT)
@click.option("--limit", type=AsciiIntRange(1, 1000), default=20, show_default=True, help="Show at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def dead_letters(ctx: click.Context, limit: int, as_json: bool) -> None:
    """List the malformed messages workers took off the queues, newest first, with why.

    A message on one of this ledger's queues that is not a well-formed job (not
    JSON, a wrong envelope, an unknown task, wrong arguments, not a job id) is
    removed, kept here (the last 1,000, in Redis key mlpq:<ledger>:dead-letters)
    and logged once; the worker goes on. Entries of that list that are not dead
    letters are skipped and counted.

    \b
    Example:
      mlpq dead-letters --limit 5
    """
    found = client(ctx).dead_letters(limit)
    if as_json:
        click.echo(output.to_json([vars(letter) for letter in found.letters]))
    elif found.letters:
        click.echo(output.table([{"at": d.at, "queue": d.queue, "reason": d.reason,
                                  "message": one_line(d.message, MESSAGE_CHARS)} for d in found.letters],
                                ["at", "queue", "reason", "message"]))
    elif not (found.skipped or found.wrong_type):
        click.echo("no dead letters", err=True)
    if found.wrong_type:
        click.echo(f"Warning: {found.key} is a Redis {found.wrong_type}, not a list of dead letters: not read",
                   err=True)
    elif found.skipped:
        entries = "1 entry" if found.skipped == 1 else f"{found.skipped} entries"
        click.echo(f"Warning: skipped {entries} of {found.key} that could not be read as dead letters", err=True)
