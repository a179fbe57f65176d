"""The web UI's charts: the figure ``mlpq plot`` draws (``mlpq.api_cli.figure_of``) as JSON, which
static/mlpq.js draws with Chart.js. No matplotlib here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpq.api_cli import figure_of
from mlpq.api_cli.api import JobView
from mlpq.figures import Figure, as_json


def chart(views: Sequence[JobView]) -> dict[str, Any]:
    """The chart of one job or of a sweep's members (those of the first one's kind); ``done`` once none will
    grow."""
    kind = views[0].job.kind if views else None
    drawn = [view for view in views if view.job.kind == kind]
    return {"kind": kind, "done": all(view.job.status.terminal for view in views),
            "figure": as_json(figure_of.figure(drawn) if drawn else Figure(()))}
