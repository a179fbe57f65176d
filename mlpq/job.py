"""For a plain script run by ``mlpq submit command``: report metrics and results, ask for a checkpoint.

::

    from mlpq import job

    for epoch in range(1, epochs + 1):
        ...
        job.report(epoch, loss=loss, test_accuracy=accuracy)
        torch.save(state, os.path.join(os.environ.get("MLPQ_CHECKPOINT_DIR", "."), "last.pt"))
        job.checkpoint()
    job.result(test_accuracy=accuracy)

Each call writes one JSON line to a socket the worker opened for the script (its descriptor in
``MLPQ_REPORT_FD``), so the script's stdout stays its own. Run by hand, outside mlpq, each call does nothing.
A closed socket (the worker gone) turns every later call into nothing too. Imports only the standard library.
"""

from __future__ import annotations

import json
import math
import os
import typing

if typing.TYPE_CHECKING:
    import socket

REPORT_FD_VARIABLE = "MLPQ_REPORT_FD"
ACK = b"ok\n"

_channel: socket.socket | None = None
_closed = False


def _connection() -> socket.socket | None:
    """The socket to the worker, opened on first use; ``None`` outside mlpq or once it is closed."""
    global _channel, _closed
    if _channel is None and not _closed:
        fd = os.environ.get(REPORT_FD_VARIABLE, "")
        if not fd.isdigit():
            _closed = True
            return None
        import socket  # only inside mlpq

        try:
            _channel = socket.socket(fileno=int(fd))
        except OSError:
            _closed = True
    return _channel


def _finite(value: object) -> object:
    """``value`` with NaN and infinities (a diverged loss) as ``None``, which JSON can carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _send(message: dict[str, object]) -> bool:
    """Write one line; ``False`` (and nothing more from now on) if the worker's end is gone. A message JSON
    cannot carry (a value that refers to itself) is dropped alone."""
    global _closed
    channel = _connection()
    if channel is None:
        return False
    try:
        line = json.dumps(_finite(message), allow_nan=False, default=str).encode() + b"\n"
    except ValueError:
        return True
    try:
        channel.sendall(line)
        return True
    except OSError:
        _closed = True
        return False


def report(step: int, **metrics: object) -> None:
    """Record ``metrics`` (numbers, or other JSON values) for ``step`` (an epoch, an iteration): they appear in
    ``mlpq show``, ``watch``, ``compare`` and the charts."""
    _send({"report": int(step), "metrics": metrics})


def result(**values: object) -> None:
    """Add ``values`` to the job's result (later calls add to or replace earlier ones)."""
    _send({"result": values})


def checkpoint() -> None:
    """Have the worker keep ``$MLPQ_CHECKPOINT_DIR`` as it is now; returns once it is kept. A later attempt of
    the job (after a worker was lost) finds those files there before the script starts."""
    global _closed
    if not _send({"checkpoint": True}):
        return
    assert _channel is not None
    try:
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = _channel.recv(16)
            if not chunk:
                _closed = True
                return
            answer += chunk
    except OSError:
        _closed = True
