"""The driver of a tuning study, after Optuna's ask-and-tell interface: trials are ordinary mlpq jobs.

Each round the driver renews its lock, reads the study's trials from Optuna's storage and the jobs of its
running ones from the ledger, reports each newly stored step's objective as an intermediate value, stops a
job the pruner gives up on (it ends ``pruned``), tells Optuna how ended jobs came out, and asks for new trials
while fewer than ``parallel`` run and the budget is not spent.

Every trial names its job in the user attribute ``job_id``. A running trial with no job named (its driver was
killed between submitting and naming) takes the unnamed job of the study's sweep with its parameters, and
only where there is none is its job submitted: so a job never runs twice for one trial, and a restarted
driver (``--resume``) picks up where the last one stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from mlpq import interrupts, kinds
from mlpq.api_cli import output, trial_jobs
from mlpq.api_cli.api import Client, JobRequest, JobView
from mlpq.api_cli.batches import SubmitAborted
from mlpq.api_cli.search import Choices, Dimension, Objective, dimension_of
from mlpq.api_cli.study_store import DriverLock
from mlpq.db.lookup import JobLookupError
from mlpq.db.records import JobRecord
from mlpq.db.status import JobStatus
from mlpq.errors import UnavailableError
from mlpq.redact import one_line

STUDY_ATTR = "mlpq"
JOB_ATTR = "job_id"
POLL_S = 0.25
"""How often the driver reads its running trials' metrics: well within a heartbeat."""
UNREACHABLE = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, ConnectionError,
               optuna.exceptions.StorageInternalError)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
WAIT_POLL_S = 0.25

optuna.logging.set_verbosity(optuna.logging.WARNING)


class StudyUnreachableError(UnavailableError):
    """The ledger or the broker stayed unreachable for ``MLPQ_DB_RETRY_SECONDS``."""


@dataclass(frozen=True)
class StudyConfig:
    """What a study searches and how, stored with it (so ``--resume`` needs nothing else)."""

    kind: str
    dimensions: tuple[Dimension, ...]
    fixed: dict[str, Any]
    trials: int
    objective: Objective
    sampler: str
    pruner: str
    seed: int
    device: str
    pool: str | None
    timeout_s: int | None
    parallel: int

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "search": [d.as_json() for d in self.dimensions], "fixed": self.fixed,
                "trials": self.trials, "objective": [self.objective.field, self.objective.direction],
                "sampler": self.sampler, "pruner": self.pruner, "seed": self.seed, "device": self.device,
                "pool": self.pool, "timeout_s": self.timeout_s, "parallel": self.parallel}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> StudyConfig:
        return cls(stored["kind"], tuple(dimension_of(d) for d in stored["search"]), dict(stored["fixed"]),
                   stored["trials"], Objective(*stored["objective"]), stored["sampler"], stored["pruner"],
                   stored["seed"], stored["device"], stored["pool"], stored["timeout_s"], stored["parallel"])


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def create_study(storage: optuna.storages.BaseStorage, study_id: str, config: StudyConfig,
                 pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=study_id, sampler=make_sampler(config.sampler, config.seed),
                                pruner=pruner or make_pruner(config.pruner),
                                direction="maximize" if config.objective.direction == "max" else "minimize")
    study.set_user_attr(STUDY_ATTR, config.as_json())
    return study


def load_config(storage: optuna.storages.BaseStorage, study_id: str) -> StudyConfig | None:
    """The stored config of study ``study_id``; ``None`` if there is no such study."""
    try:
        study_key = storage.get_study_id_from_name(study_id)
    except KeyError:
        return None
    stored = storage.get_study_user_attrs(study_key).get(STUDY_ATTR)
    return StudyConfig.from_json(stored) if stored else None


def load_study(storage: optuna.storages.BaseStorage, study_id: str, config: StudyConfig,
               pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    """The study, its sampler seeded anew from the seed and the trials asked so far (a resumed random search
    does not draw the same values again)."""
    asked = len(storage.get_all_trials(storage.get_study_id_from_name(study_id), deepcopy=False))
    return optuna.load_study(study_name=study_id, storage=storage, pruner=pruner or make_pruner(config.pruner),
                             sampler=make_sampler(config.sampler, config.seed + asked))


@dataclass
class Flight:
    """A running trial and its job."""

    trial: optuna.Trial
    job_id: str
    reported: set[int] = field(default_factory=set)
    last: float | None = None
    """The latest value reported."""


@dataclass
class Tally:
    """What the driver saw, for its summary."""

    told: dict[str, int] = field(default_factory=dict)
    missed: int = 0


def objective_values(view: JobView, objective: Objective) -> list[tuple[int, float]]:
    """Each stored step's value of the objective (or of ``<field>_best``, as Himmelblau reports ``f_best``)."""
    found = []
    for metric in view.metrics:
        value = metric.values.get(objective.field, metric.values.get(f"{objective.field}_best"))
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            found.append((metric.step, float(value)))
    return found


def final_value(view: JobView, objective: Objective) -> float | None:
    """The objective of an ended job: its result's, else its last step's."""
    value = (view.job.result or {}).get(objective.field)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    steps = objective_values(view, objective)
    return steps[-1][1] if steps else None


class Driver:
    """Drives study ``study`` to its budget; ``say`` prints one progress line."""

    def __init__(self, client: Client, study: optuna.Study, config: StudyConfig, lock: DriverLock,
                 say: Callable[[str], None], retry_s: float) -> None:
        self.client, self.study, self.config, self.lock, self.say = client, study, config, lock, say
        self.retry_s = retry_s
        self.flights: dict[int, Flight] = {}
        self.tally = Tally()
        self.kind = kinds.get(config.kind)
        self.first_round = True

    @property
    def study_id(self) -> str:
        return self.study.study_name

    def run(self) -> None:
        """Rounds until every trial of the budget is told; Ctrl-C is acted on between rounds."""
        while True:
            with interrupts.held() as hold:
                done = self.with_retries(self.round)
            if hold.interrupted:
                raise KeyboardInterrupt
            if done:
                return
            time.sleep(POLL_S)

    def with_retries(self, step: Callable[[], bool]) -> bool:
        """Run ``step``, retrying with backoff while the ledger or the broker is unreachable."""
        give_up = time.monotonic() + self.retry_s
        delay = 0.5
        while True:
            try:
                return step()
            except UNREACHABLE as exc:
                if time.monotonic() + delay > give_up:
                    raise StudyUnreachableError(
                        f"cannot reach the ledger or the broker: {one_line(str(exc) or type(exc).__name__)}; "
                        f"its trials go on: mlpq tune --resume {self.study_id}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def round(self) -> bool:
        self.lock.refresh(self.study_id)
        trials = self.study.get_trials(deepcopy=False)
        for frozen in trials:
            if frozen.state is TrialState.RUNNING and frozen.number not in self.flights:
                self.adopt(frozen, trials)
        for number in list(self.flights):
            self.follow(self.flights[number])
        self.first_round = False
        asked = len(trials)
        while len(self.flights) < self.config.parallel and asked < self.config.trials:
            self.launch(self.study.ask())
            asked += 1
        return not self.flights and asked >= self.config.trials

    def adopt(self, frozen: FrozenTrial, trials: list[FrozenTrial]) -> None:
        """Follow a running trial this driver did not start: by its job, the unnamed job with its parameters,
        or a job submitted now."""
        trial = optuna.Trial(self.study, frozen._trial_id)
        job_id = frozen.user_attrs.get(JOB_ATTR)
        if job_id is None:
            named = {t.user_attrs.get(JOB_ATTR) for t in trials}
            expected = self.trial_part(self.job_params(frozen.params))
            for job in self.client.list(sweep=self.study_id, limit=10_000):
                if job.id not in named and self.trial_part(job.params) == expected:
                    job_id = job.id
                    trial.set_user_attr(JOB_ATTR, job_id)
                    break
        if job_id is None:
            self.launch(trial)
            return
        reported = frozen.intermediate_values
        self.flights[frozen.number] = Flight(trial, job_id, set(reported), reported[max(reported)] if reported else None)

    def job_params(self, chosen: Mapping[str, Any]) -> dict[str, Any]:
        return trial_jobs.job_params(self.config.kind, self.config.fixed, chosen)

    def trial_part(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return trial_jobs.trial_part(self.config.kind, self.config.dimensions, params)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's searched values, asked of the sampler (or as the trial already has them)."""
        values: dict[str, Any] = {}
        for dimension in self.config.dimensions:
            if isinstance(dimension, Choices):
                values[dimension.name] = trial.suggest_categorical(dimension.name, list(dimension.values))
            elif dimension.integer:
                values[dimension.name] = trial.suggest_int(dimension.name, int(dimension.low), int(dimension.high),
                                                           log=dimension.log)
            else:
                values[dimension.name] = trial.suggest_float(dimension.name, dimension.low, dimension.high,
                                                             log=dimension.log)
        return values

    def launch(self, trial: optuna.Trial) -> None:
        """Submit the trial's job into the study's sweep and name it on the trial."""
        chosen = self.suggest(trial)
        request = JobRequest(self.config.kind, self.job_params(chosen), self.config.device, self.config.timeout_s,
                             pool=self.config.pool)
        try:
            (job,) = self.client.submit_many([request], sweep_id=self.study_id)
        except ValidationError as exc:
            problem = "; ".join(e["msg"] for e in exc.errors())
            self.tell(trial, TrialState.FAIL, f"trial {trial.number} failed: {problem}")
            return
        except SubmitAborted as exc:  # nothing was submitted: the next round adopts the trial and tries again
            if isinstance(exc.__cause__, UNREACHABLE):
                raise exc.__cause__ from exc
            raise
        self.flights[trial.number] = Flight(trial, job.id)
        trial.set_user_attr(JOB_ATTR, job.id)
        self.say(f"trial {trial.number} (job {job.id[:output.SHORT_ID]}): "
                 + " ".join(f"{name}={output.format_value(value)}" for name, value in chosen.items()))

    def follow(self, flight: Flight) -> None:
        """Report the job's new steps; prune it, or tell how it ended."""
        try:
            view = self.client.get(flight.job_id)
        except JobLookupError:  # deleted from the ledger meanwhile
            self.tell(flight.trial, TrialState.FAIL, f"trial {flight.trial.number} failed: its job is gone")
            return
        missed = "while no driver ran: " if self.first_round and view.job.status.terminal else ""
        for step, value in objective_values(view, self.config.objective):
            if step not in flight.reported:
                flight.trial.report(value, step)
                flight.reported.add(step)
                flight.last = value
        if view.job.status.terminal:
            self.finish(flight, view, missed)
        elif flight.reported and view.job.status is JobStatus.RUNNING and flight.trial.should_prune():
            self.client.cancel(flight.job_id, stop_as=JobStatus.PRUNED)
            self.tell(flight.trial, TrialState.PRUNED,
                      f"trial {flight.trial.number} pruned at {self.kind.step_name} {max(flight.reported)} "
                      f"({self.config.objective.field} {output.format_value(flight.last)})")

    def finish(self, flight: Flight, view: JobView, missed: str) -> None:
        job, number = view.job, flight.trial.number
        self.tally.missed += bool(missed)
        if job.status is JobStatus.SUCCEEDED:
            value = final_value(view, self.config.objective)
            if value is None:
                self.tell(flight.trial, TrialState.FAIL,
                          f"{missed}trial {number} failed: its job has no {self.config.objective.field}")
            else:
                self.tell(flight.trial, TrialState.COMPLETE, f"{missed}trial {number} succeeded: "
                          f"{self.config.objective.field}={value:.4g}{self.best_note(number, value)}", value)
        elif job.status is JobStatus.PRUNED:
            self.tell(flight.trial, TrialState.PRUNED, f"{missed}trial {number} pruned")
        else:
            self.tell(flight.trial, TrialState.FAIL, f"{missed}trial {number} {job.status.value}: "
                      f"{one_line(job.error or '', 200)}")

    def best_note(self, number: int, value: float) -> str:
        try:
            best = self.study.best_value
        except ValueError:  # no trial completed yet
            return " (the best so far)"
        better = value > best if self.config.objective.direction == "max" else value < best
        return " (the best so far)" if better else ""

    def tell(self, trial: optuna.Trial, state: TrialState, line: str, value: float | None = None) -> None:
        self.study.tell(trial, value, state=state, skip_if_finished=True)
        self.flights.pop(trial.number, None)
        self.tally.told[state.name.lower()] = self.tally.told.get(state.name.lower(), 0) + 1
        self.say(line)


def summary(client: Client, study: optuna.Study, config: StudyConfig) -> dict[str, Any]:
    """The study as JSON: its trials with their jobs, the best one, and the steps its jobs trained."""
    jobs = {job.id: job for job in client.list(sweep=study.study_name, limit=10_000)}
    trials = []
    steps = 0
    for frozen in study.get_trials(deepcopy=False):
        job: JobRecord | None = jobs.get(frozen.user_attrs.get(JOB_ATTR, ""))
        trained = len(client.get(job.id).metrics) if job else 0
        steps += trained
        trials.append({"number": frozen.number, "state": frozen.state.name.lower(), "value": frozen.value,
                       "params": frozen.params, "job_id": job.id if job else None,
                       "job_status": job.status.value if job else None, "steps": trained})
    completed = [t for t in trials if t["state"] == "complete"]
    best = None
    if completed:
        best = (max if config.objective.direction == "max" else min)(completed, key=lambda t: t["value"])
    return {"study_id": study.study_name, "kind": config.kind, "objective": config.objective.field,
            "direction": config.objective.direction, "trials": trials, "best": best, "steps_trained": steps}


def wait_for_jobs(client: Client, study_id: str) -> None:
    """Block until every job of the study has ended (a pruned trial's job stops within a heartbeat)."""
    while any(not job.status.terminal for job in client.list(sweep=study_id, limit=10_000)):
        time.sleep(WAIT_POLL_S)
