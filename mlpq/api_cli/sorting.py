"""``mlpq results --sort FIELD``: the fields a listing sorts by (its ``--format json`` columns), and how.

``FIELD`` sorts ascending, ``-FIELD`` descending. The ledger's own columns are
sorted by the database; a job's duration, parameters (``param.NAME``) and
result figures (``result.NAME``) here, after the filters and before the limit.
Jobs without the value come last either way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mlpq import kinds
from mlpq.db.records import JobRecord
from mlpq.redact import shown

COLUMNS = {"id": "id", "kind": "kind", "status": "status", "device": "device", "pool": "pool",
           "created": "created_at", "sweep_id": "sweep_id"}
"""Fields the database sorts by, and their ledger column."""
DURATION = "duration_s"
PARAM_PREFIX, RESULT_PREFIX = "param.", "result."
"""The listing's columns of a job's parameters and result figures: ``param.lr``, ``result.test_accuracy``."""


class SortFieldError(ValueError):
    """A field that no column of the listing has."""


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> Sort:
        """``result.f`` (ascending) or ``-result.f`` (descending)."""
        return cls(text.removeprefix("-"), text.startswith("-"))

    @property
    def column(self) -> str | None:
        """The ledger column the database sorts by, or ``None`` where the jobs are sorted here."""
        return COLUMNS.get(self.field)

    def check(self, kind_names: Iterable[str]) -> None:
        """Raise ``SortFieldError`` unless the listing of jobs of these kinds has this field."""
        known = sort_fields(kind_names)
        if self.field in known:
            return
        prefix = next((p for p in (PARAM_PREFIX, RESULT_PREFIX) if self.field.startswith(p)), None)
        choices = [field for field in known if prefix and field.startswith(prefix)] or [
            *COLUMNS, DURATION, f"{PARAM_PREFIX}NAME", f"{RESULT_PREFIX}NAME"]
        raise SortFieldError(f"no field {shown(self.field)} to sort by: use {', '.join(choices)}")

    def apply(self, jobs: Sequence[JobRecord]) -> list[JobRecord]:
        """``jobs`` sorted by this field (a stable sort: ties keep their order), those without it last."""
        valued = [(order_key(self.value(job)), job) for job in jobs]
        present = sorted((pair for pair in valued if pair[0] is not None), key=lambda pair: pair[0],
                         reverse=self.descending)
        return [job for _, job in present] + [job for key, job in valued if key is None]

    def value(self, job: JobRecord) -> Any:
        if self.field == DURATION:
            return job.duration_seconds
        if self.field.startswith(PARAM_PREFIX):
            return job.params.get(self.field.removeprefix(PARAM_PREFIX))
        return (job.result or {}).get(self.field.removeprefix(RESULT_PREFIX))


def sort_fields(kind_names: Iterable[str]) -> list[str]:
    """The fields of a listing of jobs of these kinds: the ledger's columns, the duration, each kind's
    parameters and result figures (its ``result_fields``)."""
    found = [*COLUMNS, DURATION]
    for kind in filter(None, map(kinds.find, kind_names)):
        found += [PARAM_PREFIX + name for name in kind.spec.model_fields]
        found += [RESULT_PREFIX + name for name in kind.result_fields]
    return list(dict.fromkeys(found))


def order_key(value: Any) -> tuple[int, Any] | None:
    """Numbers (by value) before text before anything else (by its JSON); ``None`` for no value (or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))
