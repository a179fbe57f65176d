"""No password from any URL appears in any output, log line, JSON field or error, whichever way a command fails."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from click.testing import CliRunner

from mlpq.api_cli.cli import cli
from tests import services
from tests.faults.private_services import PrivateRedis

pytestmark = pytest.mark.integration

BROKER_PW, WRONG_PW, DB_PW = (f"{name}-{secrets.token_hex(6)}" for name in ("BrokerPw", "WrongPw", "DbPw"))
SECRETS = (BROKER_PW, WRONG_PW, DB_PW)


@pytest.fixture
def passworded_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis(password=BROKER_PW)
    server.start()
    yield server
    server.stop()


def with_password(url: str, password: str) -> str:
    return make_url(url).set(password=password).render_as_string(hide_password=False)


def test_no_password_is_ever_printed(passworded_redis: PrivateRedis, postgresql_url: str, tmp_path: Path) -> None:
    good_broker = passworded_redis.url
    good_db = with_password(postgresql_url, DB_PW)  # the test cluster trusts local users: the password is unused
    brokers = {
        "good": good_broker,
        "wrong password": good_broker.replace(BROKER_PW, WRONG_PW),
        "refused": f"redis://:{BROKER_PW}@127.0.0.1:1/0",
        "unknown host": f"redis://:{BROKER_PW}@no-such-host.invalid:6379/0",
        "bad port": f"redis://:{BROKER_PW}@127.0.0.1:port/0",
        "password in the query": f"redis://127.0.0.1:1/0?password={BROKER_PW}",
    }
    databases = {
        "good": good_db,
        "refused": f"postgresql://postgres:{DB_PW}@127.0.0.1:1/none",
        "bad port": f"postgresql://postgres:{DB_PW}@127.0.0.1:port/none",
        "malformed": f"postgresql://postgres:{DB_PW}@@/:/",
    }
    env = {**os.environ, "MLPQ_DATA_DIR": str(tmp_path / "data")}
    outputs: dict[str, str] = {}
    codes: dict[str, int] = {}

    def run(label: str, *args: str, **variables: str) -> None:
        """In this process, as the CLI tests do: starting an interpreter per case would take minutes."""
        done = CliRunner().invoke(cli, list(args), env={**env, **variables})
        outputs[label], codes[label] = done.output + repr(done.exception or ""), done.exit_code

    submitted = services.run_mlpq("submit", "himmelblau", "--steps", "10", "--json",
                                  env={**env, "MLPQ_BROKER_URL": good_broker, "MLPQ_DATABASE_URL": good_db})
    assert submitted.returncode == 0, submitted.stderr
    for broker_case, broker in brokers.items():
        for command in (["submit", "himmelblau", "--steps", "10"], ["workers", "--json", "--timeout", "0.2"],
                        ["dead-letters"]):
            run(f"{command} with broker {broker_case} (env)", *command,
                MLPQ_BROKER_URL=broker, MLPQ_DATABASE_URL=good_db)
            run(f"{command} with broker {broker_case} (option)", "--broker-url", broker, *command,
                MLPQ_DATABASE_URL=good_db)
    for db_case, database in databases.items():
        for command in (["results", "--format", "json"], ["db", "current"], ["db", "upgrade"],
                        ["submit", "himmelblau", "--json"]):
            run(f"{command} with database {db_case} (env)", *command,
                MLPQ_BROKER_URL=good_broker, MLPQ_DATABASE_URL=database)
            run(f"{command} with database {db_case} (option)", "--database-url", database, *command,
                MLPQ_BROKER_URL=good_broker)
    run("debug-free traceback path", "show", "0000", MLPQ_BROKER_URL=good_broker, MLPQ_DATABASE_URL=good_db)

    worker_env = {**env, "MLPQ_BROKER_URL": good_broker, "MLPQ_DATABASE_URL": good_db}
    worker = services.start_worker(worker_env, tmp_path / "worker.log", "--device", "cpu")
    try:
        waited = services.run_mlpq("submit", "himmelblau", "--steps", "10", "--wait", env=worker_env)
        outputs["submit --wait with the good URLs"] = waited.stdout + waited.stderr
        codes["submit --wait with the good URLs"] = waited.returncode
        run("workers with a live worker", "workers", "--json", MLPQ_BROKER_URL=good_broker, MLPQ_DATABASE_URL=good_db)
    finally:
        worker.stop()
    outputs["worker log"] = worker.log()

    assert codes["submit --wait with the good URLs"] == 0, outputs["submit --wait with the good URLs"]
    assert codes["['submit', 'himmelblau', '--steps', '10'] with broker bad port (option)"] == 2
    assert codes["['submit', 'himmelblau', '--steps', '10'] with broker refused (env)"] == 1
    assert codes["['results', '--format', 'json'] with database bad port (env)"] == 2
    assert "***" in outputs["['db', 'current'] with database good (env)"]
    leaks = {label: secret for label, text in outputs.items() for secret in SECRETS if secret in text}
    assert not leaks, leaks
    assert len(outputs) > 50
