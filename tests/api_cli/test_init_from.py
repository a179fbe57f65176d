"""``mlpq submit mnist --init-from JOB``: the source is checked (a succeeded mnist job that kept model.pt, of the
same architecture) and pinned in the spec by its full id and the model's SHA-256; anything else is one line."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from mlpq.db.artifacts import ArtifactStore
from mlpq.db.engine import make_engine
from mlpq.db.status import JobStatus
from tests.api_cli.ledger_rows import add_job, mlpq, mnist_job

MODEL = b"a model.pt's bytes"


def keep_model(job_id: str) -> None:
    engine = make_engine(os.environ["MLPQ_DATABASE_URL"])
    ArtifactStore(engine, None, 1 << 20).put(job_id, 1, "model.pt", MODEL)
    engine.dispose()


def test_a_job_starts_from_another_jobs_model(broker_url: str) -> None:
    source = mnist_job()
    keep_model(source)
    result = mlpq("--broker-url", broker_url, "submit", "mnist", "--init-from", source[:8], "--json")
    assert result.exit_code == 0, result.output
    params = json.loads(mlpq("show", json.loads(result.output)["id"], "--json").output)["params"]
    assert params["init_from"] == source and params["init_sha256"] == hashlib.sha256(MODEL).hexdigest()


@pytest.mark.parametrize(("option", "difference"), [
    (["--variant", "functional"], "variant functional here, module there"),
    (["--activation", "tanh"], "activation tanh here, relu there"),
    (["--logits-relu"], "logits_relu True here, False there"),
])
def test_another_architecture_is_refused_naming_the_difference(option: list[str], difference: str) -> None:
    source = mnist_job()
    keep_model(source)
    result = mlpq("submit", "mnist", "--init-from", source, *option)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"Error: --init-from {source[:12]}: another architecture: {difference}"]


def test_only_a_succeeded_mnist_job_with_a_model_will_do() -> None:
    failed = add_job("mnist", {"epochs": 1}, status=JobStatus.FAILED)
    other_kind = add_job("himmelblau", {"steps": 10})
    bare = mnist_job()  # succeeded, but kept no model.pt (e.g. from before models were kept)
    for job_id, code, line in [
        (failed, 2, f"--init-from {failed[:12]}: not a succeeded mnist job (mnist, failed)"),
        (other_kind, 2, f"--init-from {other_kind[:12]}: not a succeeded mnist job (himmelblau, succeeded)"),
        (bare, 1, f"--init-from {bare[:12]}: the job kept no model.pt"),
        ("0123456789ab", 1, "no job 0123456789ab"),
        ("not-hex", 2, "--init-from 'not-hex': not a job id"),
    ]:
        result = mlpq("submit", "mnist", "--init-from", job_id)
        assert (result.exit_code, result.output.strip().splitlines()) == (code, [f"Error: {line}"]), job_id


def test_init_sha256_is_not_an_option() -> None:
    assert "--init-sha256" not in mlpq("submit", "mnist", "--help").output
