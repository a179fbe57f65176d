"""GPU check: identity, correctness, throughput and the queue path of a real ``cuda:0`` worker, in one run.

Run through ``scripts/gpu-check.sh``, which installs the bundle's wheels, starts
a private redis-server and writes MNIST from the bundle. Writes ``gpu-check.json``
and ``gpu-check.md`` to ``--out``, prints the tables, and exits 1 if any
correctness item fails. ``--device cpu --size small`` is the rehearsal CI runs.

    python benchmarks/gpu_check.py --device cuda --broker redis://127.0.0.1:PORT/0 --data-dir DIR --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common

from tests.jobkinds import fault_kind
from tests.services import WorkerProcess, mlpq_command, start_worker

JOB_TIMEOUT_S = 240
SIZES: dict[str, dict[str, Any]] = {
    "full": {"dataset": "mnist", "epochs": 10, "check_epochs": 3, "tutorial_epochs": 1, "queue_jobs": 16,
             "himmelblau_grid": 64, "himmelblau_steps": 20_000, "compare_grid": 8, "compare_steps": 2_000},
    "small": {"dataset": "mnist-sample", "epochs": 1, "check_epochs": 1, "tutorial_epochs": 1, "queue_jobs": 2,
              "himmelblau_grid": 8, "himmelblau_steps": 200, "compare_grid": 3, "compare_steps": 200},
}
ACCURACY_POINTS = 0.5
LOSS_REL = 0.02
HIMMELBLAU_ABS = 1e-3
RESUME_EPOCHS, KILL_AFTER = 3, 1
FAST_LEASES = {"MLPQ_LEASE_SECONDS": "3", "MLPQ_HEARTBEAT_SECONDS": "0.5", "MLPQ_MAINTENANCE_SECONDS": "1"}
"""The kill-and-resume item's worker: a lost job is requeued within seconds."""
RUNTIME_OOM = "CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported at some other API call"


@dataclass
class Report:
    """Tables by section and the correctness items, written as JSON and Markdown."""

    device: str
    size: str
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)

    def add(self, section: str, **row: Any) -> None:
        self.sections.setdefault(section, []).append(row)

    def check(self, name: str, passed: bool | None, detail: str) -> None:
        """``passed=None``: not applicable here (said in ``detail``), neither passed nor failed."""
        self.checks.append({"check": name, "result": {True: "pass", False: "FAIL", None: "n/a"}[passed],
                            "detail": detail})
        print(f"[{self.checks[-1]['result']}] {name}: {detail}", flush=True)

    @property
    def passed(self) -> bool:
        return all(c["result"] != "FAIL" for c in self.checks)

    def markdown(self) -> str:
        lines = [f"# GPU check ({self.device}, {self.size} sizes): {'passed' if self.passed else 'FAILED'}", "",
                 _common.machine(), ""]
        for title, rows in [("correctness", self.checks), *self.sections.items()]:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines += [f"## {title}", "", _common.table(rows, columns), ""]
        return "\n".join(lines)


class Check:
    """One run of the check: its settings, its report, its ledger and the device it targets."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.size = args, SIZES[args.size]
        self.gpu = args.device == "cuda"
        self.worker_device = "cuda:0" if self.gpu else "cpu"
        self.torch_device = "cuda:0" if self.gpu else "cpu"
        self.report = Report(args.device, args.size)
        self.scratch = Path(tempfile.mkdtemp(prefix="mlpq-gpu-check-"))
        self.env = fault_kind.worker_env({
            **os.environ, "MLPQ_BROKER_URL": args.broker, "MLPQ_DATABASE_URL": f"sqlite:///{self.scratch}/ledger.db",
            "MLPQ_DATA_DIR": str(args.data_dir)})
        subprocess.run(mlpq_command("db", "upgrade"), env=self.env, check=True, capture_output=True)
        self.client = _common.client_for(self.env)
        self.smi: list[dict[str, str]] = []

    # ----- helpers -----------------------------------------------------------------------------------------
    @contextmanager
    def worker(self, *args: str, env: dict[str, str] | None = None) -> Iterator[WorkerProcess]:
        name = "-".join(a.strip("-") for a in args) or "default"
        process = start_worker({**self.env, **(env or {})}, self.scratch / f"worker-{name}.log", "--device",
                               self.worker_device, *args)
        try:
            yield process
        finally:
            process.stop()

    def submit(self, kind: str, **params: Any) -> str:
        return self.client.submit(kind, params, self.worker_device).id

    def wait(self, job_id: str) -> Any:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while not (job := self.client.get(job_id).job).status.terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} did not end within {JOB_TIMEOUT_S} s")
            time.sleep(0.1)
        return job

    def run_here(self, kind: str, spec: Any, device: str | None = None) -> tuple[float, dict[str, Any]]:
        """Seconds and result of one job's code run in this process on ``device`` (default: the check's)."""
        from mlpq import kinds
        from mlpq.models.context import RunContext

        ctx = RunContext(device or self.torch_device, lambda *_: None, self.args.data_dir)
        return _common.timed(lambda: kinds.get(kind).load_runner()(spec, ctx))

    def synchronize(self) -> None:
        if self.gpu:
            import torch

            torch.cuda.synchronize()

    # ----- sections ----------------------------------------------------------------------------------------
    def identity(self) -> None:
        import torch

        if self.gpu:
            done = subprocess.run(["nvidia-smi", "--query-gpu=index,name,uuid,driver_version,memory.total",
                                   "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
            for line in done.stdout.strip().splitlines():
                index, name, uuid, driver, memory = (part.strip() for part in line.split(","))
                self.smi.append({"index": index, "name": name, "uuid": uuid})
                self.report.add("identity", source="nvidia-smi", index=index, name=name, uuid=uuid, driver=driver,
                                memory=memory)
            self.report.add("identity", source="torch", index=0, name=torch.cuda.get_device_name(0),
                            uuid=str(torch.cuda.get_device_properties(0).uuid), driver=f"CUDA {torch.version.cuda}",
                            memory=f"{torch.cuda.get_device_properties(0).total_memory // 2**20} MiB")
        else:
            self.report.add("identity", source="nvidia-smi", name="not run: cpu rehearsal")
        self.report.add("identity", source="python", name=f"torch {torch.__version__}, Python {sys.version.split()[0]}")

    def refusal(self) -> None:
        if len(self.smi) > 1:
            self.report.check("cuda:1 refused on a one-GPU host", None, f"this host has {len(self.smi)} GPUs")
            return
        done = subprocess.run(mlpq_command("worker", "--device", "cuda:1"), env=self.env, capture_output=True,
                              text=True, timeout=180)
        lines = done.stderr.strip().splitlines()
        ok = done.returncode != 0 and len(lines) == 1 and lines[0].startswith("Error: no GPU for cuda:1")
        self.report.check("cuda:1 refused on a one-GPU host", ok, f"exit {done.returncode}: {done.stderr.strip()!r}")

    def same_gpu_everywhere(self) -> None:
        """``mlpq workers`` and a job's provenance name the GPU nvidia-smi lists as 0."""
        job = self.wait(self.submit("mnist", dataset=self.size["dataset"], epochs=1, seed=0))
        about = job.provenance or {}
        [worker] = self.client.workers(timeout=5)
        if not self.gpu:
            ok = about.get("computed_on") == "cpu" and worker.gpu_uuid is None
            self.report.check("workers and show name the GPU nvidia-smi lists", None if ok else False,
                              f"cpu rehearsal: computed_on {about.get('computed_on')!r}, no GPU listed")
            return
        smi = self.smi[0]["uuid"] if self.smi else None
        shown = (about.get("gpu") or {}).get("uuid")
        ok = smi is not None and worker.gpu_uuid == smi and shown == smi and about.get("computed_on") == "cuda:0"
        self.report.check("workers and show name the GPU nvidia-smi lists", ok,
                          f"nvidia-smi {smi}, workers {worker.gpu_uuid}, show {shown} ({about.get('computed_on')})")

    def scalar_engine_provenance(self) -> None:
        job = self.wait(self.submit("himmelblau", starts=[[1.0, 1.0]], steps=1000, log_every=500))
        said = (job.provenance or {}).get("computed_on")
        expected = "cpu (scalar engine) on a cuda:0 worker" if self.gpu else "cpu (scalar engine)"
        self.report.check("a scalar-engine job records the CPU", said == expected, f"computed_on {said!r}")

    def mnist_cpu_vs_device(self) -> None:
        from mlpq.kinds.mnist import MnistSpec

        params = {"dataset": self.size["dataset"], "epochs": self.size["check_epochs"], "seed": 0}
        job_id = self.submit("mnist", **params)
        _, cpu = self.run_here("mnist", MnistSpec(**params), device="cpu")
        job = self.wait(job_id)
        if job.status.value != "succeeded":
            self.report.check("MNIST: same seeded job on CPU and GPU", False, f"the worker's job {job.error}")
            return
        gap = abs(job.result["test_accuracy"] - cpu["test_accuracy"]) * 100
        loss_gap = abs(job.result["train_loss"] - cpu["train_loss"]) / cpu["train_loss"]
        self.report.check("MNIST: same seeded job on CPU and GPU", gap <= ACCURACY_POINTS and loss_gap <= LOSS_REL,
                          f"accuracy {cpu['test_accuracy']:.4f} (cpu) vs {job.result['test_accuracy']:.4f} "
                          f"({self.worker_device}), {gap:.2f} points; final train loss {cpu['train_loss']:.5f} vs "
                          f"{job.result['train_loss']:.5f} ({loss_gap:.2%}), {params['epochs']} epochs")

    def himmelblau_engines(self) -> None:
        import torch

        from mlpq.models import himmelblau
        from mlpq.models.context import RunContext
        from mlpq.kinds.himmelblau import HimmelblauSpec

        spec = HimmelblauSpec(grid=self.size["compare_grid"], steps=self.size["compare_steps"],
                              log_every=self.size["compare_steps"], lr=0.01)
        ctx = RunContext(self.torch_device, lambda *_: None, self.args.data_dir)
        fast = himmelblau.optimise(spec, ctx, "tensor")
        reference = himmelblau.minimise_torch(spec.start_points(), spec.optimizer, spec.lr, spec.momentum, spec.steps,
                                              spec.log_every, himmelblau.ignore, device=ctx.device)
        worst = float((fast - reference).abs().max())
        self.report.check(f"Himmelblau: tensor engine vs torch.optim on {self.torch_device}",
                          worst <= HIMMELBLAU_ABS and bool(torch.isfinite(fast).all()),
                          f"{len(spec.start_points())} starts x {spec.steps} Adam steps, largest difference {worst:.2e}")

    def throughput(self) -> None:
        import mnist_throughput
        import torch

        from mlpq.models import mnist_data
        from mlpq.kinds.himmelblau import HimmelblauSpec
        from mlpq.kinds.mnist import MnistSpec

        data = mnist_data.load(self.size["dataset"], self.args.data_dir)
        images = torch.clamp(torch.round((data.train_x * mnist_data.STD + mnist_data.MEAN) * 255), 0, 255)
        train_set = mnist_throughput.Digits(images.to(torch.uint8).reshape(-1, 28, 28), data.train_y)
        test_images = torch.clamp(torch.round((data.test_x * mnist_data.STD + mnist_data.MEAN) * 255), 0, 255)
        test_set = mnist_throughput.Digits(test_images.to(torch.uint8).reshape(-1, 28, 28), data.test_y)
        epochs, n = self.size["tutorial_epochs"], len(data.train_y)
        seconds, accuracy = _common.timed(lambda: (mnist_throughput.tutorial(
            train_set, test_set, epochs, 0, self.torch_device), self.synchronize())[0])
        base = epochs * n / seconds
        self.report.add("throughput", pipeline="tutorial GPU variant: DataLoader, .to(device) per batch, batch 200",
                        epochs=epochs, seconds=seconds, **{"samples/s": base, "speed-up": 1.0,
                                                           "test accuracy": accuracy})
        self.run_here("mnist", MnistSpec(dataset=self.size["dataset"], epochs=1))  # data resident, CUDA warm
        for batch, graph in [(200, False), (200, True), (1000, False), (1000, True)]:
            spec = MnistSpec(dataset=self.size["dataset"], epochs=self.size["epochs"], batch_size=batch,
                             cuda_graph=graph, seed=0)
            _, result = self.run_here("mnist", spec)
            self.report.add("throughput", pipeline=f"mlpq job, batch {batch}" + (", CUDA graph" if graph else ""),
                            epochs=spec.epochs, seconds=result["train_seconds"],
                            **{"samples/s": result["samples_per_second"],
                               "speed-up": result["samples_per_second"] / base,
                               "test accuracy": result["test_accuracy"], "graph used": result["cuda_graph"]})
        spec = HimmelblauSpec(grid=self.size["himmelblau_grid"], steps=self.size["himmelblau_steps"],
                              log_every=self.size["himmelblau_steps"])
        seconds, result = self.run_here("himmelblau", spec)
        self.report.add("throughput", pipeline=f"Himmelblau {len(spec.start_points())} starts x {spec.steps} Adam "
                        f"steps ({result['engine']} engine)", seconds=seconds,
                        **{"test accuracy": f"{result['minima_found']}/4 minima"})

    def queue(self) -> None:
        n = self.size["queue_jobs"]
        for label, args in [("warm, concurrency 1", ["--concurrency", "1"]),
                            ("warm, concurrency 4", ["--concurrency", "4"]),
                            ("fresh process per job, concurrency 1", ["--concurrency", "1",
                                                                      "--max-jobs-per-process", "1"])]:
            with self.worker(*args) as process:
                idle = self.gpu_memory_mib()
                began = time.perf_counter()
                ids = [self.submit("mnist", dataset=self.size["dataset"], epochs=1, seed=i) for i in range(n)]
                ended = [self.wait(job_id) for job_id in ids]
                makespan = time.perf_counter() - began
                after = self.gpu_memory_mib()
                replaced = process.log().count("replacing worker process")
            ok = all(job.status.value == "succeeded" for job in ended)
            self.report.add("queue", worker=label, jobs=n, succeeded=sum(j.status.value == "succeeded" for j in ended),
                            makespan_s=makespan, **{"jobs/s": n / makespan, "GPU MiB before": idle,
                                                    "GPU MiB after": after, "processes replaced": replaced})
            if not ok:
                failed = next(j for j in ended if j.status.value != "succeeded")
                self.report.check(f"queue: {n} MNIST jobs, {label}", False, f"job {failed.id}: {failed.error}")
            if label.startswith("warm"):
                self.report.check(f"queue: GPU memory back to baseline after each job ({label})", replaced == 0,
                                  f"{replaced} processes replaced by the memory rule; NVML {idle} -> {after} MiB")
        rows = self.report.sections["queue"]
        warm, fresh = rows[0]["makespan_s"], rows[2]["makespan_s"]
        self.report.add("queue", worker="warm / fresh makespan", makespan_s=warm / fresh)

    def out_of_memory(self) -> None:
        import torch

        with self.worker("--concurrency", "1") as process:
            before = self.wait(self.submit("fault", action="pid")).result["pid"]
            if self.gpu:
                too_much = 1.5 * torch.cuda.get_device_properties(0).total_memory / 2**30
                failed = self.wait(self.submit("fault", action="allocate", gib=round(too_much, 1)))
            else:  # a CPU cannot run out of CUDA memory: raise CUDA's runtime form from inside the job instead
                failed = self.wait(self.submit("fault", action="raise", message=RUNTIME_OOM))
            error = failed.error or ""
            self.report.check("out of memory: classified in one clean line",
                              error.startswith("CUDA out of memory: ") and "\n" not in error, repr(error))
            after = self.wait(self.submit("fault", action="pid"))
            self.report.check("out of memory: the process is replaced", after.result["pid"] != before,
                              f"pid {before} -> {after.result['pid']}; "
                              f"{process.log().count('replacing worker process')} replaced")
            job = self.wait(self.submit("mnist", dataset=self.size["dataset"], epochs=1))
            self.report.check("out of memory: the next MNIST job on that worker succeeds",
                              job.status.value == "succeeded", job.error or job.result["headline"])

    def kill_and_resume(self) -> None:
        """An MNIST job (CUDA graph on a GPU, momentum) whose pool process is killed after epoch 1 resumes at
        epoch 2 on its second attempt and ends with the model.pt of an uninterrupted run of the same spec."""
        import signal

        name = "kill and resume: attempt 2 resumes at epoch 2 with an uninterrupted run's model.pt"
        params = {"dataset": self.size["dataset"], "epochs": RESUME_EPOCHS, "seed": 0, "momentum": 0.9,
                  "cuda_graph": self.gpu}
        gate = fault_kind.Gate(Path(tempfile.mkdtemp(prefix="gate-", dir=self.scratch)))
        with self.worker("--concurrency", "1", "--hostname", "resume", env=FAST_LEASES):
            whole = self.wait(self.submit("mnist", **params))
            job_id = self.submit("held-mnist", **params, hold_after=KILL_AFTER, until=str(gate.release),
                                 running=str(gate.running))
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while (pid := gate.pid()) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job_id} did not reach epoch {KILL_AFTER}")
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
            job = self.wait(job_id)
        view = self.client.get(job_id)
        resumed = [(a.attempt, a.resumed_at_step, a.first_step, a.last_step, a.outcome) for a in view.attempts]
        same = job.status.value == "succeeded" and (job.result or {}).get("model_sha256") == whole.result["model_sha256"]
        ok = same and job.attempts == 2 and resumed[-1][:4] == (2, KILL_AFTER + 1, KILL_AFTER + 1, RESUME_EPOCHS)
        self.report.check(name, ok, f"{job.status.value}, attempts {resumed}; model.pt "
                          f"{((job.result or {}).get('model_sha256') or '-')[:12]} vs uninterrupted "
                          f"{whole.result['model_sha256'][:12]}" + (f"; {job.error}" if job.error else ""))

    def gpu_memory_mib(self) -> int | None:
        from mlpq.worker.nvml import gpu_info

        info = gpu_info(0) if self.gpu else None
        return info["memory_used_mib"] if info else None

    # ----- the run -----------------------------------------------------------------------------------------
    def run(self) -> int:
        steps: list[tuple[str, Callable[[], None]]] = [
            ("identity", self.identity), ("refusal", self.refusal), ("himmelblau engines", self.himmelblau_engines),
            ("throughput", self.throughput)]
        for name, step in steps:
            self.guarded(name, step)
        with self.worker("--concurrency", "1"):
            for name, step in [("same GPU", self.same_gpu_everywhere), ("scalar engine", self.scalar_engine_provenance),
                               ("MNIST cpu vs device", self.mnist_cpu_vs_device)]:
                self.guarded(name, step)
        self.guarded("out of memory", self.out_of_memory)
        self.guarded("kill and resume", self.kill_and_resume)
        self.guarded("queue", self.queue)
        self.guarded("targets", self.targets)
        print(self.report.markdown())
        return 0 if self.report.passed else 1

    def targets(self) -> None:
        """The issue's targets for one H200, read off the tables (reported, not pass/fail: they are speed)."""
        rows = {row["pipeline"]: row for row in self.report.sections.get("throughput", [])}
        queue = {row["worker"]: row for row in self.report.sections.get("queue", [])}
        graph = rows.get("mlpq job, batch 200, CUDA graph", {})
        eager = rows.get("mlpq job, batch 200", {})
        best = max((r for r in (graph, eager) if r), key=lambda r: r["samples/s"], default=None)
        if best:
            self.report.add("targets", target="MNIST batch 200: >= 100x the tutorial GPU variant's samples/s",
                            measured=f"{best['speed-up']:,.0f}x ({best['pipeline']})")
            self.report.add("targets", target=f"MNIST batch 200, {best['epochs']} epochs: training <= 1 s",
                            measured=f"{best['seconds']:.3f} s")
        himmelblau = next((r for name, r in rows.items() if name.startswith("Himmelblau")), None)
        if himmelblau:
            self.report.add("targets", target="Himmelblau 4,096 starts x 20,000 Adam steps <= 2 s",
                            measured=f"{himmelblau['seconds']:.3f} s ({himmelblau['pipeline']})")
        if "warm / fresh makespan" in queue:
            self.report.add("targets", target="warm worker: 16 jobs in < half a fresh process per job's time",
                            measured=f"{queue['warm / fresh makespan']['makespan_s']:.2f} of the fresh makespan")

    def guarded(self, name: str, step: Callable[[], None]) -> None:
        """Run one part; an exception fails it (and the check) without stopping the others."""
        print(f"== {name}", flush=True)
        try:
            step()
        except Exception as exc:
            self.report.check(name, False, f"{type(exc).__name__}: {exc}"[:500])
        self.write()  # after every part, so a run cut short still leaves what it measured

    def write(self) -> None:
        out = self.args.out
        out.mkdir(parents=True, exist_ok=True)
        document = {"device": self.report.device, "size": self.report.size, "passed": self.report.passed,
                    "machine": _common.machine(), "checks": self.report.checks, "sections": self.report.sections}
        (out / "gpu-check.json").write_text(json.dumps(document, indent=2, default=str))
        (out / "gpu-check.md").write_text(self.report.markdown())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--broker", required=True, help="A Redis URL with an empty database.")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("gpu-out"))
    args = parser.parse_args()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(f"no CUDA GPU here (torch {torch.__version__}, CUDA {torch.version.cuda}): use DEV=cpu to rehearse",
                  file=sys.stderr)
            return 1
    with fault_kind.visible_here():
        return Check(args).run()


if __name__ == "__main__":
    sys.exit(main())
