"""Turn jobs and workers into rows, tables, JSON and CSV for the CLI.

Tables and ``show``'s text escape the control characters of what they print
(``printable``): a job's parameters, result and error, a worker's name, a dead
letter are anyone's text who can write to the ledger or to Redis.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlpq import kinds
from mlpq.api_cli.sorting import PARAM_PREFIX, RESULT_PREFIX
from mlpq.redact import printable

if TYPE_CHECKING:
    from mlpq.api_cli.api import JobView, WorkerInfo
    from mlpq.db.artifacts import ArtifactRecord
    from mlpq.db.job_logs import LogLine
    from mlpq.db.records import AttemptRecord, JobRecord, MetricRecord

SHORT_ID = 12
JOB_COLUMNS = ("id", "kind", "status", "device", "pool", "created", "duration_s", "headline", "sweep_id")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def local_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def headline(job: JobRecord) -> str:
    """The figure that sums the job up, as its kind words it (see ``Kind.summary``), or its error."""
    kind = kinds.find(job.kind)
    if job.result and kind:
        return kind.summary(job.result)
    if job.result:
        return str(job.result.get("headline", ""))
    return job.error or ""


def placement(job: JobRecord) -> str:
    """Where a job runs: ``cuda:0``, or ``cuda:0 in pool a100``."""
    return f"{job.device} in pool {job.pool}" if job.pool else job.device


def step_name(kind_name: str) -> str:
    """What the kind calls its steps (``epoch``); ``step`` for a kind not installed here."""
    kind = kinds.find(kind_name)
    return kind.step_name if kind else "step"


def attempt_text(attempt: AttemptRecord, step: str) -> str:
    """``attempt 1: epochs 1–4 on host-a (worker lost)``, ``attempt 2: resumed at epoch 5 on host-b (succeeded)``."""
    if attempt.resumed_at_step is not None:
        ran = f"resumed at {step} {attempt.resumed_at_step}"
    elif attempt.first_step is None or attempt.last_step is None:
        ran = f"no {step}s"
    elif attempt.first_step == attempt.last_step:
        ran = f"{step} {attempt.first_step}"
    else:
        ran = f"{step}s {attempt.first_step}–{attempt.last_step}"
    where = f" on {attempt.worker_host}" if attempt.worker_host else ""
    ended = f" ({attempt.outcome})" if attempt.outcome else ""
    return f"attempt {attempt.attempt}: {ran}{where}{ended}"


def attempt_lines(view: JobView) -> list[str]:
    """Each attempt in a line (``attempt_text``), when there is more than one or one resumed; else none."""
    if len(view.attempts) < 2 and all(a.resumed_at_step is None for a in view.attempts):
        return []
    return [attempt_text(a, step_name(view.job.kind)) for a in view.attempts]


def attempt_row(attempt: AttemptRecord) -> dict[str, Any]:
    return {"attempt": attempt.attempt, "worker_host": attempt.worker_host, "started": iso(attempt.started_at),
            "ended": iso(attempt.ended_at), "outcome": attempt.outcome, "resumed_at_step": attempt.resumed_at_step,
            "first_step": attempt.first_step, "last_step": attempt.last_step}


def job_row(job: JobRecord) -> dict[str, Any]:
    """One line of ``mlpq results``."""
    return {
        "id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device, "pool": job.pool,
        "created": iso(job.created_at), "duration_s": job.duration_seconds, "headline": headline(job),
        "sweep_id": job.sweep_id,
    }


def shown_params(job: JobRecord) -> dict[str, Any]:
    """The job's parameters as its kind words them for people (a command shortened, its swept values)."""
    kind = kinds.find(job.kind)
    return kind.params_shown(job.params) if kind else dict(job.params)


def worded_params(job: JobRecord) -> str | None:
    """``python train.py --lr 0.01 (lr=0.01)``: the command and its swept values, for a kind that words its
    parameters (``Kind.shown_params``); ``None`` for others."""
    kind = kinds.find(job.kind)
    if kind is None or kind.shown_params is None:
        return None
    shown = kind.params_shown(job.params)
    command = shown.pop("command", "")
    values = ", ".join(f"{name}={format_value(value)}" for name, value in shown.items()
                       if name not in ("workdir", "env"))
    return f"{command} ({values})" if values else str(command)


def flat_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as columns: ``{"lr": 0.1}`` → ``{"param.lr": 0.1}``."""
    return {PARAM_PREFIX + name: value for name, value in params.items()}


def result_fields(job: JobRecord) -> tuple[str, ...]:
    """The result figures listed and compared for a job (its kind's ``figure_names``); none for a kind not
    installed here."""
    kind = kinds.find(job.kind)
    return kind.figure_names(job.result) if kind else ()


def figures(job: JobRecord) -> dict[str, Any]:
    """The job's result figures, ``None`` where it has none (not finished, failed)."""
    result = job.result or {}
    return {name: result.get(name) for name in result_fields(job)}


def flat_figures(job: JobRecord) -> dict[str, Any]:
    """Result figures as columns: ``{"result.test_accuracy": 0.97, ...}``."""
    return {RESULT_PREFIX + name: value for name, value in figures(job).items()}


def columns_of(rows: Sequence[Mapping[str, Any]], first: Sequence[str]) -> list[str]:
    """``first``, then the keys of ``rows``: parameters, result figures, any other, each in the order they first
    appear (jobs of several kinds have different ones)."""
    def group(key: str) -> int:
        return 0 if key in first else 1 if key.startswith(PARAM_PREFIX) else 2 if key.startswith(RESULT_PREFIX) else 3

    return sorted(dict.fromkeys([*first, *(key for row in rows for key in row)]), key=group)


def listing(jobs: Sequence[JobRecord]) -> tuple[list[dict[str, Any]], list[str]]:
    """``mlpq results --format json|csv``: each job's row with its parameters (``param.NAME``) and its kind's
    result figures (``result.NAME``) flattened, and the columns."""
    rows = [{**job_row(job), **flat_params(job.params), **flat_figures(job)} for job in jobs]
    return rows, columns_of(rows, JOB_COLUMNS)


def metric_row(metric: MetricRecord) -> dict[str, Any]:
    return {"step": metric.step, **metric.values}


def job_detail(view: JobView) -> dict[str, Any]:
    """Everything ``mlpq show`` knows about a job."""
    job = view.job
    return {
        "id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device, "pool": job.pool,
        "params": job.params, "attempts": job.attempts, "worker_host": job.worker_host,
        "created": iso(job.created_at), "started": iso(job.started_at), "finished": iso(job.finished_at),
        "duration_s": job.duration_seconds, "timeout_s": job.timeout_s, "sweep_id": job.sweep_id,
        "rerun_of": job.rerun_of, "result": job.result, "error": job.error, "provenance": job.provenance,
        "metrics": [metric_row(m) for m in view.metrics],
        "attempt_history": [attempt_row(a) for a in view.attempts],
    }


def log_text(line: LogLine) -> str:
    """``2026-12-06 21:42:21.123 #1 job    WARNING text``: local time, attempt, source, the level unless
    INFO, the text with control characters escaped (``mlpq logs``, the UI's job page)."""
    moment = line.at.astimezone()
    level = "" if line.level == "INFO" else f"{line.level} "
    return printable(f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} #{line.attempt} "
                     f"{line.source:<6} {level}{line.line}")


def log_row(line: LogLine) -> dict[str, Any]:
    """A log line as ``mlpq logs --json`` gives it: the text as stored."""
    return {"id": line.id, "attempt": line.attempt, "at": line.at.isoformat(), "source": line.source,
            "level": line.level, "line": line.line}


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns with a header, like ``docker ps``; control characters escaped."""
    cells = [[printable(str(c).upper()) for c in columns]]
    cells += [["-" if row.get(c) is None else printable(str(row[c])) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in cells)


def csv_cell(value: Any) -> Any:
    """Lists and mappings as JSON, so a CSV reader can parse them back."""
    return json.dumps(value) if isinstance(value, list | tuple | dict) else value


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue().rstrip("\n")


def results_table(jobs: Sequence[JobRecord]) -> str:
    rows = [
        {**job_row(job), "id": job.id[:SHORT_ID], "created": local_time(job.created_at),
         "duration": seconds(job.duration_seconds)}
        for job in jobs
    ]
    for row, job in zip(rows, jobs):
        row["command"] = worded_params(job)
    pool = ["pool"] if any(job.pool for job in jobs) else []
    command = ["command"] if any(row["command"] for row in rows) else []
    return table(rows, ["id", "kind", "status", "device", *pool, "created", "duration", *command, "headline"])


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def metrics_table(metrics: Sequence[MetricRecord], step_name: str = "step") -> str:
    """Per-step metrics; Himmelblau's point lists are shown for up to four starts."""
    rows = []
    for metric in metrics:
        row: dict[str, Any] = {step_name: metric.step}
        for key, value in metric.values.items():
            if key == "points":
                if len(value) <= 4:
                    row["x, y, f"] = "; ".join(format_value(point) for point in value)
            else:
                row[key] = format_value(value)
        rows.append(row)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return table(rows, columns)


def result_items(job: JobRecord) -> list[tuple[str, str]]:
    """The result's values for people (``show`` and the UI's job page), each as its kind's ``result_formats``
    word it (``dataset_sizes: 60,000/10,000``), else as ``format_value`` does; the headline apart."""
    kind = kinds.find(job.kind)
    items = []
    for key, value in (job.result or {}).items():
        if key == "headline" or value is None:
            continue
        text = kind.result_text(key, value) if kind else None
        if text is not None or key != "starts":  # each start's end point only as its kind words it
            items.append((key, format_value(value) if text is None else text))
    return items


def show_text(view: JobView) -> str:
    """``mlpq show`` for people, control characters escaped."""
    job = view.job
    lines = [
        f"job       {job.id}",
        f"kind      {job.kind}",
        f"status    {job.status.value}" + (f" (attempt {job.attempts})" if job.attempts > 1 else ""),
        f"device    {placement(job)}",
        f"worker    {job.worker_host or '-'}",
        f"created   {local_time(job.created_at)}",
        f"started   {local_time(job.started_at)}",
        f"finished  {local_time(job.finished_at)}",
        f"duration  {seconds(job.duration_seconds)}",
        "params    " + ", ".join(f"{k}={format_value(v)}" for k, v in shown_params(job).items() if v is not None),
    ]
    if attempts := attempt_lines(view):
        lines.append("attempts  " + "; ".join(attempts))
    if job.sweep_id:
        lines.append(f"sweep     {job.sweep_id}")
    if job.rerun_of:
        lines.append(f"rerun of  {job.rerun_of}")
    if job.error:
        lines.append(f"error     {job.error}")
    if job.result:
        lines.append(f"result    {headline(job)}")
        for key, text in result_items(job):  # a kind may word a value in several lines (a Himmelblau job's starts)
            lines += f"  {key}: {text}".splitlines()
    if job.provenance:
        lines.append("ran with  " + provenance_text(job.provenance))
    lines = [printable(line) for line in lines]
    if view.metrics:
        lines += ["", metrics_table(view.metrics, step_name(job.kind))]
    return "\n".join(lines)


def provenance_text(about: Mapping[str, Any]) -> str:
    """``mlpq 0.1.0, torch 2.5.1, CUDA 12.4, Python 3.11.7 on cuda:1: NVIDIA H200 #1 GPU-5fd2c6a4 (host gpu-box),
    git 71e7a70c2f``, or ``… on cpu (scalar engine) on a cuda:1 worker: Intel Xeon …``."""
    versions = [f"{label} {about[key]}" for key, label in
                (("mlpq", "mlpq"), ("torch", "torch"), ("cuda", "CUDA"), ("python", "Python")) if about.get(key)]
    text = ", ".join(versions)
    where = [about["computed_on"]] if about.get("computed_on") else []
    gpu = about.get("gpu")
    if gpu:
        where.append(gpu_identity(gpu["name"], gpu["index"], gpu["uuid"]))
    elif about.get("device_name") and not (where and about["device_name"] == "cpu"):  # don't say cpu twice
        where.append(about["device_name"])
    if where:
        text = f"{text} on {': '.join(where)}".strip()
    if about.get("host"):
        text += f" (host {about['host']})"
    if about.get("git_commit"):
        text += f", git {str(about['git_commit'])[:10]}"
    return text


def gpu_text(worker: WorkerInfo) -> str | None:
    """``NVIDIA H200 #0 GPU-5fd2c6a4 1,024/143,771 MiB``, or ``None`` for a CPU worker or when NVML cannot say."""
    if worker.gpu_name is None:
        return None
    name = gpu_identity(worker.gpu_name, worker.gpu_index, worker.gpu_uuid)
    if worker.gpu_memory_used_mib is None or worker.gpu_memory_total_mib is None:
        return name
    return f"{name} {worker.gpu_memory_used_mib:,}/{worker.gpu_memory_total_mib:,} MiB"


def gpu_identity(name: str, index: int | None, uuid: str | None) -> str:
    """``NVIDIA H200 #1 GPU-5fd2c6a4``: the name, nvidia-smi's index and the UUID's start, as workers and show say it."""
    return " ".join([name, *([f"#{index}"] if index is not None else []), *([uuid[:12]] if uuid else [])])


def threads_text(worker: WorkerInfo) -> str | None:
    """``4`` torch threads per job, or ``2x3`` for two pool processes of 3 threads each."""
    if worker.threads is None:
        return None
    return f"{worker.concurrency}x{worker.threads}" if worker.concurrency > 1 else str(worker.threads)


def workers_table(workers: Sequence[WorkerInfo]) -> str:
    rows = [{"host": w.host, "pool": w.pool, "device": w.device, "gpu": gpu_text(w),
             "running": ",".join(job_id[:SHORT_ID] for job_id in w.active_jobs) or "idle", "queued": w.queued,
             "threads": threads_text(w), "commands": "yes" if w.commands else "no",
             "name": w.name if w.state == "running" else f"{w.name} ({w.state})"}
            for w in workers]
    return table(rows, ["host", "pool", "device", "gpu", "running", "queued", "threads", "commands", "name"])


def size_text(size: int) -> str:
    """Bytes as people read them: ``812 B``, ``4.3 KiB``, ``1.2 GiB``."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def artifact_row(record: ArtifactRecord) -> dict[str, Any]:
    """One row of ``mlpq artifacts --json``."""
    return {"name": record.name, "size": record.size, "sha256": record.sha256, "attempt": record.attempt,
            "store": record.store, "created_at": iso(record.created_at)}
