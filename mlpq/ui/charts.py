"""The web UI's charts: the figure ``mlpq plot`` draws (``mlpq.api_cli.figure_of``) as JSON, which
static/mlpq.js draws with Chart.js. No matplotlib here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlpq.api_cli import figure_of, search_view
from mlpq.api_cli.api import Client, JobView
from mlpq.db.records import JobRecord
from mlpq.figures import Figure, as_json


def chart(views: Sequence[JobView]) -> dict[str, Any]:
    """The chart of one job or of a sweep's members (those of the first one's kind); ``done`` once none will
    grow."""
    kind = views[0].job.kind if views else None
    drawn = [view for view in views if view.job.kind == kind]
    return {"kind": kind, "done": all(view.job.status.terminal for view in views),
            "figure": as_json(figure_of.figure(drawn) if drawn else Figure(()))}


def search_chart(client: Client, sweep_id: str, members: Sequence[JobRecord]) -> dict[str, Any]:
    """The sweep as a search (``mlpq.api_cli.search_view``): the best value so far against the trial number and
    the objective against each searched parameter, pruned trials marked; ``done`` once every member ended."""
    return {"kind": members[0].kind if members else None, "done": all(job.status.terminal for job in members),
            "figure": as_json(search_view.search_of(client, sweep_id, members))}
