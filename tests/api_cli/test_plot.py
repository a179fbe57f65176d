"""``mlpq plot``: real PNG files for both kinds and for overlays, short labels and axes of one size whatever the
parameters; bad ids and mixed kinds are refused."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mlpq.api_cli import figure_of
from mlpq.api_cli.api import Client, JobView
from mlpq.api_cli.plot import render
from mlpq.config import Settings
from mlpq.db.status import JobStatus
from mlpq.kinds.himmelblau import MINIMA
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
    assert size == (740, 655)


def test_mnist_jobs_overlay_into_one_file(tmp_path: Path) -> None:
    first, second = mnist_job(lr=0.01), mnist_job(lr=0.1, epochs=5)
    path, size = plotted(first, second, "-o", str(tmp_path / "mnist.png"))
    assert path == tmp_path / "mnist.png" and size == (1210, 495)


def test_himmelblau_jobs_overlay_with_and_without_points(tmp_path: Path) -> None:
    path, _size = plotted(himmelblau_job(lr=0.01), himmelblau_job(lr=0.1, with_points=False),
                          "--output", str(tmp_path / "both.png"))
    assert path.stat().st_size > 10_000


def views(*job_ids: str) -> list[JobView]:
    api = Client(Settings.from_env())
    return [api.get(job_id) for job_id in job_ids]


def test_paths_come_from_the_points_and_only_end_points_without_them() -> None:
    with_points, without = views(himmelblau_job(), himmelblau_job(with_points=False))
    (panel,) = figure_of.figure([with_points, without]).panels
    names = {with_points.job.id[:8]: "A", without.job.id[:8]: "B"}  # the same parameters: labelled by id alone
    drawn = [(" ".join(names.get(word, word) for word in series.label.split()), series.group, series.line,
              series.marker, series.legend, [list(point) for point in series.points]) for series in panel.series]
    assert drawn == [
        ("A", 0, "solid", "none", True, [[4.0, 0.0], [3.5, 1.0], [3.0, 2.0]]),
        ("A", 0, "solid", "none", False, [[-4.0, 0.0], [-3.4, 2.0], [-2.805118, 3.131312]]),
        ("A starts", 0, "none", "open-circle", False, [[4.0, 0.0], [-4.0, 0.0]]),
        ("A end points", 0, "none", "cross", False, [[3.0, 2.0], [-2.805118, 3.131312]]),
        ("B", 1, "none", "cross", True, [[3.0, 2.0], [-2.805118, 3.131312]]),
        ("minima", None, "none", "star", True, [list(m) for m in MINIMA])]
    assert panel.contours and len(panel.contours.z) == len(panel.contours.y) and panel.square


def long_and_short(params: dict[str, Any]) -> list[str]:
    """Two Himmelblau jobs: the first with the test's other parameters, the second as ``params`` has them."""
    return [himmelblau_job(), add_job("himmelblau", params, result={"starts": [{"start": [1.0, 1.0], "x": 3.0,
                                                                                 "y": 2.0, "f": 0.0}]})]


LONG = {"seed": 12, "random_starts": 50, "optimizer": "rmsprop", "lr": 0.123456, "momentum": 0.875,
        "steps": 20000, "log_every": 2000, "grid": None, "starts": [[-5.5, 5.25], [1.125, -3.375], [2.0, 2.5]]}
SHORT = {"seed": 1, "starts": [[4.0, 0.0], [-4.0, 0.0]], "optimizer": "adam", "lr": 0.1, "momentum": 0.0,
         "steps": 200, "log_every": 100}


def test_labels_stay_short_and_what_they_leave_out_goes_to_the_caption() -> None:
    first, second = views(*long_and_short(LONG))
    figure = figure_of.figure([first, second])
    labels = [series.label for series in figure.panels[0].series if series.legend][:2]
    assert labels == [f"{first.job.id[:8]} optimizer=adam lr=0.01",
                      f"{second.job.id[:8]} optimizer=rmsprop lr=0.123456"]
    assert figure.caption.splitlines() == [
        f"{first.job.id[:8]}: starts=[[4, 0], [-4, 0]], momentum=0, steps=200, log_every=100, seed=1",
        f"{second.job.id[:8]}: starts=[[-5.5, 5.25], [1.125, -3.375], [2, 2.5]], momentum=0.875, steps=20000, "
        "log_every=2000, random_starts=50, seed=12"]


def geometry(job_ids: list[str]) -> tuple[tuple[float, ...], tuple[float, ...], tuple[int, int]]:
    """The axes' and the title's bounding boxes (pixels from the bottom left) and the image size, as drawn."""
    canvas = render(figure_of.figure(views(*job_ids)))
    FigureCanvasAgg(canvas).draw()
    axes = canvas.axes[0]
    width, height = (round(v) for v in canvas.get_size_inches() * canvas.dpi)
    top = height - axes.get_window_extent().y1  # measured from the top: the caption grows the image downwards
    box = axes.get_window_extent()
    return (round(box.x0), round(top), round(box.width), round(box.height)), tuple(
        round(v) for v in axes.title.get_window_extent().extents), (width, height)


def test_the_axes_keep_their_size_and_place_whatever_the_parameters(tmp_path: Path) -> None:
    alone, _, alone_size = geometry([himmelblau_job()])
    short, _, short_size = geometry(long_and_short(SHORT))
    long, title, long_size = geometry(long_and_short(LONG))
    assert alone == short == long == (90, 45, 500, 500)
    assert alone_size[0] == short_size[0] == long_size[0]
    x0, y0, x1, y1 = title
    assert 0 <= x0 and x1 <= long_size[0] and y1 <= long_size[1]  # the title is whole
    path, size = plotted(*long_and_short(LONG), "-o", str(tmp_path / "long.png"))
    assert size == long_size


def test_dollar_signs_in_parameters_are_printed_not_read_as_mathtext(tmp_path: Path) -> None:
    jobs = [add_job("mnist", {"seed": 7, "epochs": 1, "data_dir": data_dir}, metrics=[(1, {"train_loss": 1.0})])
            for data_dir in ("/d/$\\x{$", "/d/b")]
    plotted(*jobs, "-o", str(tmp_path / "dollars.png"))
    canvas = render(figure_of.figure(views(*jobs)))
    FigureCanvasAgg(canvas).draw()
    texts = [text.get_text() for text in canvas.legends[0].get_texts()]
    assert texts == [f"{jobs[0][:8]} data_dir=/d/\\$\\x{{\\$", f"{jobs[1][:8]} data_dir=/d/b"]


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
