"""A sweep seen as a search: its objective, its searched parameters and its trials, for the figure the UI's
sweep page draws (``mlpq.figures.search_figure``).

A study's settings are read from its storage with plain SQL (``study_user_attributes``, the one table of
Optuna's this reads; no optuna import): its objective, and a log axis where its search is log. A grid sweep's
objective is its kind's ``best``, its parameters the swept ones, on a log axis where the values are all positive
and span a factor of 100 or more (0.001,0.01,0.1).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from mlpq import kinds
from mlpq.api_cli.api import Client
from mlpq.api_cli.compare import differing_params
from mlpq.api_cli.study_store import storage_for
from mlpq.api_cli.trial_jobs import searched_values
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.figures import Figure, Trial, is_number, search_figure

LOG_SPAN = 100
STUDY_CONFIG = text("SELECT a.value_json FROM study_user_attributes a JOIN studies s ON s.study_id = a.study_id "
                    "WHERE s.study_name = :name AND a.key = 'mlpq'")


@functools.lru_cache(maxsize=256)
def study_config(database_url: str, study_id: str) -> dict[str, Any] | None:
    """The settings ``mlpq tune`` stored with study ``study_id`` (written once, when it is created: kept here);
    ``None`` for a grid sweep."""
    storage = storage_for(database_url)
    if storage.sqlite_file is not None and not storage.sqlite_file.exists():
        return None
    engine = create_engine(storage.url, **storage.engine_kwargs)
    try:
        with engine.connect() as connection:
            found = connection.scalar(STUDY_CONFIG, {"name": study_id})
    except SQLAlchemyError:  # no study storage in this database: no study was ever run here
        return None
    finally:
        engine.dispose()
    return json.loads(found) if found else None


def spans_decades(values: Sequence[Any]) -> bool:
    numbers = [v for v in values if is_number(v)]
    return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) >= LOG_SPAN


def trial_value(client: Client, job: JobRecord, objective: str) -> float | None:
    """A succeeded job's objective from its result; a pruned one's from its last step that has it."""
    value = (job.result or {}).get(objective)
    if job.status is JobStatus.SUCCEEDED and is_number(value):
        return float(value)
    if job.status is JobStatus.PRUNED:
        for metric in reversed(client.get(job.id).metrics):
            found = metric.values.get(objective, metric.values.get(f"{objective}_best"))
            if is_number(found):
                return float(found)
    return None


def search_of(client: Client, sweep_id: str, members: Sequence[JobRecord]) -> Figure:
    """The search figure of a sweep's members (oldest first); ``sweep_id`` may be a prefix of the study's id."""
    config = study_config(client.settings.database_url, members[0].sweep_id or sweep_id) if members else None
    if config is not None:
        objective, direction = config["objective"]
        params = [(d["name"], bool(d.get("log"))) for d in config["search"]]
    else:
        kind = kinds.find(members[0].kind) if members else None
        if kind is None or kind.best is None:
            return Figure(())
        objective, direction = kind.best
        params = [(name, spans_decades([job.params.get(name) for job in members]))
                  for name in differing_params(members) if name != "seed"]
    trials = [Trial(number, searched_values(job.kind, job.params), trial_value(client, job, objective),
                    job.status is JobStatus.PRUNED) for number, job in enumerate(members)]
    return search_figure(trials, objective, direction, params)
