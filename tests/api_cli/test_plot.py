"""``mlpq plot``: real PNG files for both kinds and for overlays; bad ids and mixed kinds are refused."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection

from mlpq.api_cli.api import Client
from mlpq.api_cli.plot import himmelblau_figure
from mlpq.kinds.himmelblau import MINIMA
from mlpq.config import Settings
from mlpq.db.status import JobStatus
from tests.api_cli.ledger_rows import add_job, himmelblau_job, mlpq, mnist_job

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def plotted(*args: str) -> tuple[Path, tuple[int, int]]:
    """Run ``mlpq plot``; the path and size it printed, checked against the file."""
    result = mlpq("plot", *args)
    assert result.exit_code == 0, result.output
    path_text, size_text = result.output.strip().rsplit(" (", 1)
    width, height = (int(n) for n in size_text.removesuffix(" px)").split("x"))
    assert png_size(Path(path_text)) == (width, height)
    return Path(path_text), (width, height)


def test_a_himmelblau_job_is_drawn_to_the_default_path_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = himmelblau_job()
    monkeypatch.chdir(tmp_path)
    path, size = plotted(job_id[:6])
    assert path == Path(f"mlpq-{job_id[:8]}.png") and (tmp_path / path).is_file()
    assert size == (750, 600)


def test_mnist_jobs_overlay_into_one_file(tmp_path: Path) -> None:
    first, second = mnist_job(lr=0.01), mnist_job(lr=0.1, epochs=5)
    path, size = plotted(first, second, "-o", str(tmp_path / "mnist.png"))
    assert path == tmp_path / "mnist.png" and size == (1100, 450)


def test_himmelblau_jobs_overlay_with_and_without_points(tmp_path: Path) -> None:
    path, _size = plotted(himmelblau_job(lr=0.01), himmelblau_job(lr=0.1, with_points=False),
                          "--output", str(tmp_path / "both.png"))
    assert path.stat().st_size > 10_000


def views(*job_ids: str) -> list:
    api = Client(Settings.from_env())
    return [api.get(job_id) for job_id in job_ids]


def test_paths_come_from_the_points_and_only_end_points_without_them() -> None:
    with_points, without = views(himmelblau_job(), himmelblau_job(with_points=False))
    [paths] = [c for c in himmelblau_figure([with_points]).axes[0].collections if isinstance(c, LineCollection)]
    assert [segment.tolist() for segment in paths.get_segments()] == [
        [[4.0, 0.0], [3.5, 1.0], [3.0, 2.0]], [[-4.0, 0.0], [-3.4, 2.0], [-2.805118, 3.131312]]]
    axes = himmelblau_figure([without]).axes[0]
    assert not [c for c in axes.collections if isinstance(c, LineCollection)]
    assert [offsets.tolist() for offsets in (c.get_offsets() for c in axes.collections[1:])] == [
        [[3.0, 2.0], [-2.805118, 3.131312]], [list(m) for m in MINIMA]]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["plot", "xyz"], 2, "is not a job id"),
    (["plot", "abcdef"], 1, "no job abcdef"),
    (["plot"], 2, "Missing argument"),
])
def test_bad_ids_are_one_line_errors(args: list[str], code: int, message: str) -> None:
    result = mlpq(*args)
    assert result.exit_code == code and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_mixing_kinds_is_a_usage_error_and_writes_no_file(tmp_path: Path) -> None:
    result = mlpq("plot", himmelblau_job(), mnist_job(), "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "cannot draw himmelblau and mnist jobs together" in result.output
    assert not (tmp_path / "x.png").exists()


def test_a_queued_job_has_nothing_to_plot(tmp_path: Path) -> None:
    job_id = add_job("mnist", {"epochs": 2}, status=JobStatus.QUEUED)
    result = mlpq("plot", job_id, "-o", str(tmp_path / "q.png"))
    assert result.exit_code == 1 and result.output.strip() == f"Error: job {job_id} has nothing to plot yet (queued)"


@pytest.mark.parametrize("name", ["plot.txt", "missing-dir/plot.png"])
def test_an_unusable_output_path_is_a_usage_error(tmp_path: Path, name: str) -> None:
    result = mlpq("plot", mnist_job(), "-o", str(tmp_path / name))
    assert result.exit_code == 2 and "--output" in result.output and len(result.output.strip().splitlines()) == 1
    assert not [name for name in os.listdir(tmp_path) if not name.startswith("default.db")]


def test_a_directory_that_refuses_files_is_a_usage_error() -> None:
    result = mlpq("plot", mnist_job(), "-o", "/proc/x.png")
    assert result.exit_code == 2, result.output
    assert "--output: cannot write /proc/x.png: No such file or directory" in result.output.strip().splitlines()[-1]


def test_only_plot_imports_matplotlib() -> None:
    probe = ("import sys\nfrom mlpq.api_cli.cli import cli\ncli.main(sys.argv[1:], standalone_mode=False)\n"
             "print('MPL' if 'matplotlib' in sys.modules else 'NO-MPL')")
    done = subprocess.run([sys.executable, "-c", probe, "results"], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "NO-MPL", done.stderr
