"""Job kinds: each one ``Kind`` declaration, found by name (no torch, no pydantic until a kind is loaded).

mlpq's own kinds live in this package. An installed package adds one through the
``mlpq.kinds`` entry-point group, naming a ``Kind`` object::

    [project.entry-points."mlpq.kinds"]
    rosenbrock = "mlpq_rosenbrock.kind:KIND"

The CLI and the worker find it by name; only the job id crosses the wire.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlpq.figures import Figure, Plotted, metrics_figure

if TYPE_CHECKING:
    from pydantic import BaseModel

ENTRY_POINT_GROUP = "mlpq.kinds"
BUILTIN = {"command": "mlpq.kinds.command:KIND", "himmelblau": "mlpq.kinds.himmelblau:KIND",
           "mnist": "mlpq.kinds.mnist:KIND"}
MAX_TIMEOUT_S = 24 * 3600
SEED_BOUND = 2**32
"""Seeds are below this: the spec's bound (``mlpq.kinds.spec.Seed``), and drawn seeds too."""


class UnknownKindError(LookupError):
    """No kind of that name is installed here, or its package cannot be loaded."""


def load_object(path: str) -> Any:
    """The object a ``module:attribute`` path names, imported on demand."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class StartFrom:
    """How a job of a kind starts from another job's trained model: the artifact it loads (named by the spec
    fields ``init_from``, the source job, and ``init_sha256``, its SHA-256) and the spec fields both must share."""

    artifact: str
    same: tuple[str, ...]


@dataclass(frozen=True)
class Kind:
    """Everything mlpq knows about one job kind.

    ``spec`` is a pydantic model: its fields become the options of ``mlpq submit NAME``
    (types, bounds, choices, defaults and help all come from it). ``runner`` names the
    ``module:function`` a worker calls with the validated spec and a ``RunContext``;
    only it may import torch.
    """

    name: str
    spec: type[BaseModel]
    runner: str
    help: str
    """The ``mlpq submit NAME`` help: a summary line, details, and an ``Example:`` block."""
    step_name: str = "step"
    steps_field: str | None = None
    """The spec field that says how many steps a job takes (for progress bars)."""
    default_timeout_s: int = 600
    result_fields: tuple[str, ...] = ()
    """The result values ``results`` and ``compare`` show."""
    progress_fields: tuple[tuple[str, str], ...] = ()
    """(metric, format) pairs the progress bar shows, e.g. ``("f_best", "f {:.4g}")``."""
    result_formats: tuple[tuple[str, Callable[[Any], str]], ...] = ()
    """(result key, formatter) pairs for values ``mlpq show`` would otherwise print raw,
    e.g. ``("dataset_sizes", ...)`` printing ``60,000/10,000``."""
    headline: Callable[[Mapping[str, Any]], str] | None = None
    """The result in a few words; by default the result's own ``headline``, else its ``result_fields``."""
    figure: Callable[[Sequence[Plotted]], Figure] | None = None
    """Turns jobs of this kind into the figure ``mlpq plot`` and the web UI draw (see ``mlpq.figures``); by
    default each numeric metric against the step. It must not import torch or matplotlib."""
    best: tuple[str, Literal["min", "max"]] | None = None
    """The result figure that makes a job the best of its sweep, and whether the least or the most wins."""
    result_figures: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = None
    """For a kind whose jobs' results name their own figures (a command job's ``mlpq.job.result`` values): the
    figures of one result, shown and compared after ``result_fields``."""
    shown_params: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    """The parameters as people read them (``results``, ``show``, ``compare``, the UI), e.g. a command shortened
    and the values swept into it; by default the parameters themselves."""
    start_from: StartFrom | None = None
    """Whether (and how) ``mlpq submit KIND --init-from JOB`` starts from another job's model."""

    def describe(self, jobs: Sequence[Plotted]) -> Figure:
        """The figure of ``jobs`` (all of this kind)."""
        if self.figure is not None:
            return self.figure(jobs)
        return metrics_figure(jobs, self.step_name)

    def figure_names(self, result: Mapping[str, Any] | None) -> tuple[str, ...]:
        """The result figures ``results`` and ``compare`` show for a job with ``result``."""
        if self.result_figures is None or not result:
            return self.result_fields
        return tuple(dict.fromkeys([*self.result_fields, *self.result_figures(result)]))

    def params_shown(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` as ``shown_params`` words them."""
        return self.shown_params(params) if self.shown_params is not None else dict(params)

    def load_runner(self) -> Callable[[Any, Any], dict[str, Any]]:
        return load_object(self.runner)

    def summary(self, result: Mapping[str, Any]) -> str:
        """The headline of a result."""
        if self.headline is not None:
            return self.headline(result)
        if "headline" in result:
            return str(result["headline"])
        return " ".join(f"{name}={result[name]:.4g}" if isinstance(result.get(name), float)
                        else f"{name}={result.get(name)}" for name in self.result_fields if name in result)

    def result_text(self, key: str, value: Any) -> str | None:
        """One result value as this kind words it, or ``None`` where it has no formatter that fits the value."""
        form = dict(self.result_formats).get(key)
        if form is None:
            return None
        try:
            return form(value)
        except (KeyError, TypeError, ValueError):  # a result written by another version of the kind
            return None

    def progress_text(self, values: Mapping[str, Any]) -> str:
        """The figures a progress bar shows for one step's metrics."""
        return " ".join(form.format(values[key]) for key, form in self.progress_fields if key in values)

    def total_steps(self, params: Mapping[str, Any]) -> int | None:
        value = params.get(self.steps_field) if self.steps_field else None
        return int(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Declarations:
    """The kinds declared here, and the state of ``sys.path`` when they were read."""

    kinds: dict[str, str]
    """Each kind's name and the ``module:attribute`` of its ``Kind``."""
    seen: tuple[tuple[str, int], ...]


def search_path_state() -> tuple[tuple[str, int], ...]:
    """Each ``sys.path`` entry with its modification time: installing a package into a directory, or adding
    one, changes it (a few ``stat`` calls, far cheaper than reading the entry points again)."""
    def mtime(entry: str) -> int:
        try:
            return os.stat(entry or ".").st_mtime_ns
        except OSError:
            return -1

    return tuple((entry, mtime(entry)) for entry in sys.path)


@functools.cache
def read_declarations() -> Declarations:
    """mlpq's own kinds, then installed packages' entry points."""
    from importlib.metadata import entry_points

    seen = search_path_state()
    found = dict(BUILTIN)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return Declarations(found, seen)


def declared() -> dict[str, str]:
    """Every kind's name and the ``module:attribute`` of its ``Kind``: mlpq's own, then installed packages'.

    The entry points are read again when ``sys.path`` has changed since they were read, so a package installed
    after this process (a worker, ``mlpq ui``) started is found.
    """
    read = read_declarations()
    if read.seen != search_path_state():
        importlib.invalidate_caches()
        read_declarations.cache_clear()
        read = read_declarations()
    return read.kinds


def forget() -> None:
    """Drop the entry points read and the kinds loaded: the next look-up reads them again."""
    read_declarations.cache_clear()
    get.cache_clear()


def names() -> list[str]:
    return sorted(declared())


@functools.cache
def get(name: str) -> Kind:
    """The kind called ``name``; raises ``UnknownKindError`` if none is installed or it cannot be loaded."""
    path = declared().get(name)
    if path is None:
        raise UnknownKindError(f"unknown kind {name!r}")
    try:
        kind = load_object(path)
    except Exception as exc:  # a broken package must not take the CLI or the worker down
        raise UnknownKindError(f"kind {name!r} cannot be loaded from {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(kind, Kind) or kind.name != name:
        raise UnknownKindError(f"{path} is not a Kind named {name!r}")
    return kind


def find(name: str) -> Kind | None:
    """The kind called ``name``, or ``None`` where it is not installed (a job submitted elsewhere)."""
    try:
        return get(name)
    except UnknownKindError:
        return None
