"""Figures as data (``mlpq.figures``): each kind's one function, JSON for the UI, drawn by both renderers;
kinds and descriptions load neither torch nor matplotlib, and the browser's renderer knows no kind."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from starlette.testclient import TestClient

from mlpq import figures, kinds
from mlpq.api_cli import figure_of
from mlpq.api_cli.api import Client
from mlpq.api_cli.plot import render
from mlpq.config import Settings
from mlpq.ui.app import create_app
from tests.api_cli.ledger_rows import add_job

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "rosenbrock"


def job(label: str, metrics: list[tuple[int, dict[str, float]]]) -> figures.Plotted:
    return figures.Plotted(label, label, {}, None, tuple(metrics))


def test_the_default_figure_draws_each_numeric_metric_against_the_step() -> None:
    drawn = kinds.Kind("k", object, "m:r", "help", step_name="round").describe(  # type: ignore[arg-type]
        [job("a", [(1, {"f": 2.0, "note": "x", "ok": True}), (2, {"f": 1.0, "g": 3})]), job("b", [(1, {"f": 5})])])
    assert [(panel.title, panel.x.label) for panel in drawn.panels] == [("f", "round"), ("g", "round")]
    assert [(s.label, s.group, s.points) for s in drawn.panels[0].series] == [
        ("a", 0, ((1, 2.0), (2, 1.0))), ("b", 1, ((1, 5),))]


def test_json_has_lists_and_null_for_numbers_that_are_not_finite() -> None:
    figure = figures.Figure((figures.Panel("p", figures.Axis("x", (0, 1)), figures.Axis("y", scale="log"),
                                           (figures.Series("s", ((0, math.nan), (1, math.inf), (2, 1.5))),)),),
                            caption="c")
    data = json.loads(json.dumps(figures.as_json(figure), allow_nan=False))
    assert data["panels"][0]["series"][0]["points"] == [[0, None], [1, None], [2, 1.5]]
    assert data["panels"][0]["x"] == {"label": "x", "limits": [0, 1], "scale": "linear", "ticks": "auto"}
    assert data["caption"] == "c" and data["columns"] == 3


def test_kinds_and_figure_descriptions_load_neither_torch_nor_matplotlib() -> None:
    probe = """
import sys
from mlpq import kinds
from mlpq.api_cli import figure_of
from mlpq.figures import Plotted, as_json
from mlpq.ui import charts
steps = tuple((s, {"train_loss": 1.0 / s, "test_loss": 1.1 / s, "test_accuracy": 0.9, "f_best": 1.0}) for s in (1, 2))
for name in ("himmelblau", "mnist"):
    as_json(kinds.get(name).describe([Plotted("a", "a", {}, {"starts": []}, steps)]))
print(sorted({"torch", "matplotlib"} & set(sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_kinds_name_no_front_end() -> None:
    for path in (ROOT / "mlpq" / "kinds").glob("*.py"):
        assert not re.search(r"mlpq\.(api_cli|ui)\b", path.read_text()), path


def test_the_browsers_renderer_knows_no_kind_and_computes_no_function() -> None:
    script = (ROOT / "mlpq" / "ui" / "static" / "mlpq.js").read_text().lower()
    for word in ("himmelblau", "minima", "epoch", "accuracy", "loss", "- 11", "- 7"):
        assert word not in script, word


@pytest.fixture
def rosenbrock_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The example kind found through its entry point, as if installed (nothing is written to the venv)."""
    info = tmp_path / "mlpq_rosenbrock-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlpq-rosenbrock\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[mlpq.kinds]\nrosenbrock = mlpq_rosenbrock.kind:KIND\n")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds.forget()
    yield
    kinds.forget()


def test_a_third_party_kinds_one_function_gives_the_plot_and_the_chart(rosenbrock_installed: None) -> None:
    metrics = [(step, {"f": 10.0 / step, "x": step / 10, "y": step / 20}) for step in (1, 2, 3)]
    job_id = add_job("rosenbrock", {"seed": 0, "lr": 0.01}, result={"f": 0.1, "x": 0.3, "y": 0.15}, metrics=metrics)
    view = Client(Settings.from_env()).get(job_id)

    app = create_app(Client(Settings.from_env()), allowed_hosts=("testserver",))
    chart = TestClient(app).get(f"/api/jobs/{job_id}/chart").json()
    values, path = chart["figure"]["panels"]
    assert values["y"]["scale"] == "log" and values["series"][0]["points"] == [[1, 10.0], [2, 5.0], [3, 10.0 / 3]]
    assert path["series"][0]["points"] == [[0.1, 0.05], [0.2, 0.1], [0.3, 0.15]] and path["contours"]["z"]

    canvas = render(figure_of.figure([view]))
    FigureCanvasAgg(canvas).draw()
    plain, square, _bar = canvas.axes
    assert plain.get_yscale() == "log" and square.get_title() == "path to the minimum"
    assert [list(line.get_xydata()[:, 0]) for line in square.get_lines()] == [[0.1, 0.2, 0.3], [1.0]]
