"""Messages as kombu's Redis transport stores them on a queue: mlpq's own, and the malformed kinds a worker refuses;
entries of a dead-letter list that are not dead letters."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any


def task_message(job_id: str, *, task: str = "mlpq.run_job", args: Any = None, body: str | None = None,
                 **changes: Any) -> dict[str, Any]:
    """A ``mlpq.run_job`` message for ``job_id`` as ``mlpq submit`` publishes it; ``changes`` replace top-level keys."""
    encoded = body if body is not None else base64.b64encode(json.dumps(
        [[job_id] if args is None else args, {}, {"callbacks": None, "errbacks": None, "chain": None,
                                                  "chord": None}]).encode()).decode()
    message = {
        "body": encoded, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": job_id, "retries": 0, "timelimit": [630, 600]},
        "properties": {"delivery_tag": str(uuid.uuid4()), "body_encoding": "base64",
                       "delivery_info": {"exchange": "", "routing_key": "mlpq.cpu"}, "priority": 0},
    }
    return {**message, **changes}


def raw(message: dict[str, Any]) -> str:
    return json.dumps(message)


def malformed() -> dict[str, str]:
    """One message of each kind a worker must dead-letter, by name, with a word its reason contains."""
    job_id = uuid.uuid4().hex
    return {
        "not JSON": "not json at all",
        "a JSON list": "[1, 2]",
        "no properties": raw({"body": "eA=="}),
        "pickle": raw(task_message(job_id, **{"content-type": "application/x-python-serialize"})),
        "unknown task": raw(task_message(job_id, task="os.system")),
        "wrong arguments": raw(task_message(job_id, args=[1, 2, 3])),
        "arguments not a list": raw(task_message(job_id, args="abc")),
        "not a job id": raw(task_message("zz", args=["zz"])),
        "body not base64": raw(task_message(job_id, body="!!!")),
        "task id is not the job id": raw(task_message(job_id, headers={"task": "mlpq.run_job", "id": "x"})),
    }


REASONS = {
    "not JSON": "not JSON", "a JSON list": "a JSON list", "no properties": "no properties",
    "pickle": "application/x-python-serialize", "unknown task": "unknown task name 'os.system'",
    "wrong arguments": "wrong arguments", "arguments not a list": "wrong arguments",
    "not a job id": "not a job id: 'zz'", "body not base64": "not base64", "task id is not the job id": "task id 'x'",
}


UNREADABLE_LETTERS = [
    b"not json", b"\xff\xfe", b"[1, 2]", b"null",
    json.dumps({"at": "t", "queue": "q", "reason": "r", "message": "m", "extra": 1}).encode(),
    json.dumps({"at": "t", "queue": "q", "reason": "r"}).encode(),
    json.dumps({"at": "t", "queue": "q", "reason": "r", "message": 5}).encode(),
]
"""Not JSON, not UTF-8, not an object, a key too many or too few, a value not text."""
