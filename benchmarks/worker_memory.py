"""Worker memory: peak RSS (VmHWM from /proc) of each process of an ``mlpq worker`` that ran one MNIST job.

The worker (``--device cpu``, one pool process) runs ``mnist --dataset
mnist-sample --epochs 3`` once; resident memory is read before and after from
/proc/PID/status and smaps_rollup of the worker's main process and its pool child (a
fork: RSS counts the pages they share twice, PSS splits them).

    .venv/bin/python benchmarks/worker_memory.py [--epochs 3] [--dataset mnist-sample]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and Pss (shared pages divided among their users) of a process, in KiB."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    lines += Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM", "Pss")}


def group_members(pgid: int) -> dict[int, str]:
    """Processes in a process group, by pid, with their command line."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                pid = int(stat.parent.name)
                members[pid] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):  # a process that ended while we looked
            continue
    return members


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="mnist-sample", choices=["auto", "mnist", "mnist-sample"])
    args = parser.parse_args()
    with _common.redis_database() as broker_url, _common.mlpq_worker(broker_url) as (env, worker):
        pids = group_members(worker.process.pid)
        before = {pid: memory_kib(pid) for pid in pids}
        client = _common.client_for(env)
        job = client.submit("mnist", {"dataset": args.dataset, "epochs": args.epochs})
        while not (view := client.get(job.id)).job.status.terminal:
            time.sleep(0.2)
        after = {pid: memory_kib(pid) for pid in pids}
    if view.job.result is None:
        raise SystemExit(f"the job failed: {view.job.error}")
    print(f"Worker memory: one MNIST job ({args.dataset}, {args.epochs} epochs: {view.job.result['headline']})")
    print(_common.machine())
    print()
    print(_common.table([
        {"process": "main (consumer)" if pid == worker.process.pid else "pool child (runs the job)",
         "RSS before job, MiB": before[pid]["VmRSS"] / 1024, "RSS after, MiB": after[pid]["VmRSS"] / 1024,
         "peak RSS, MiB": after[pid]["VmHWM"] / 1024, "PSS after, MiB": after[pid]["Pss"] / 1024}
        for pid in sorted(pids)
    ], ["process", "RSS before job, MiB", "RSS after, MiB", "peak RSS, MiB", "PSS after, MiB"]))


if __name__ == "__main__":
    main()
