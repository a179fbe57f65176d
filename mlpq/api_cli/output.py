"""Turn jobs and workers into rows, tables, JSON and CSV for the CLI."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mlpq.api_cli.api import JobView, WorkerInfo
from mlpq.db.schema import Job, Metric
from mlpq.models.registry import KINDS

SHORT_ID = 12
JOB_COLUMNS = ("id", "kind", "status", "device", "created", "duration_s", "headline")


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def local_time(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def headline(job: Job) -> str:
    """The figure that sums the job up: its result's headline, or its error."""
    if job.result and "headline" in job.result:
        return str(job.result["headline"])
    return job.error or ""


def job_row(job: Job) -> dict[str, Any]:
    """One line of ``mlpq results``."""
    return {
        "id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device,
        "created": iso(job.created_at), "duration_s": job.duration_seconds, "headline": headline(job),
    }


def metric_row(metric: Metric) -> dict[str, Any]:
    return {"step": metric.step, **metric.values}


def job_detail(view: JobView) -> dict[str, Any]:
    """Everything ``mlpq show`` knows about a job."""
    job = view.job
    return {
        "id": job.id, "kind": job.kind, "status": job.status.value, "device": job.device,
        "params": job.params, "attempts": job.attempts, "worker_host": job.worker_host,
        "created": iso(job.created_at), "started": iso(job.started_at), "finished": iso(job.finished_at),
        "duration_s": job.duration_seconds, "result": job.result, "error": job.error,
        "metrics": [metric_row(m) for m in view.metrics],
    }


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns with a header, like ``docker ps``."""
    cells = [[str(c).upper() for c in columns]]
    cells += [["-" if row.get(c) is None else str(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in cells)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().rstrip("\n")


def results_table(jobs: Sequence[Job]) -> str:
    rows = [
        {**job_row(job), "id": job.id[:SHORT_ID], "created": local_time(job.created_at),
         "duration": seconds(job.duration_seconds)}
        for job in jobs
    ]
    return table(rows, ["id", "kind", "status", "device", "created", "duration", "headline"])


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def metrics_table(metrics: Sequence[Metric], step_name: str = "step") -> str:
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


def show_text(view: JobView) -> str:
    """``mlpq show`` for people."""
    detail = job_detail(view)
    job = view.job
    lines = [
        f"job       {job.id}",
        f"kind      {job.kind}",
        f"status    {job.status.value}" + (f" (attempt {job.attempts})" if job.attempts > 1 else ""),
        f"device    {job.device}",
        f"worker    {job.worker_host or '-'}",
        f"created   {local_time(job.created_at)}",
        f"started   {local_time(job.started_at)}",
        f"finished  {local_time(job.finished_at)}",
        f"duration  {seconds(job.duration_seconds)}",
        "params    " + ", ".join(f"{k}={format_value(v)}" for k, v in detail["params"].items()),
    ]
    if job.error:
        lines.append(f"error     {job.error}")
    if job.result:
        lines.append(f"result    {job.result.get('headline', '')}")
        for key, value in job.result.items():
            if key not in ("headline", "starts") and value is not None:
                lines.append(f"  {key}: {format_value(value)}")
    if view.metrics:
        kind = KINDS.get(job.kind)
        lines += ["", metrics_table(view.metrics, kind.step_name if kind else "step")]
    return "\n".join(lines)


def workers_table(workers: Sequence[WorkerInfo]) -> str:
    rows = [{"name": w.name, "device": w.device, "host": w.host, "queues": ",".join(w.queues)} for w in workers]
    return table(rows, ["name", "device", "host", "queues"])
