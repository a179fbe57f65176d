"""``mlpq dead-letters`` on real Redis: its own ledger's list only, unreadable entries skipped and counted, and
nothing a Redis writer stored reaching the terminal as a control character."""

from __future__ import annotations

import json

import pytest
import redis
from click.testing import CliRunner, Result

from mlpq.api_cli.api import Client
from mlpq.api_cli.cli import cli
from mlpq.config import Settings
from mlpq.worker import dead_letters
from tests.messages import UNREADABLE_LETTERS

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b1m\u202e"
"""A terminal title, a screen clear, a C1 CSI and a right-to-left override."""


def dead_letters_command(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["dead-letters", *args], env=env)


def ledger_of(env: dict[str, str]) -> str:
    return Client(Settings.from_env(env)).ledger


def broker(env: dict[str, str]) -> redis.Redis:
    return redis.Redis.from_url(env["MLPQ_BROKER_URL"])


def test_unreadable_entries_are_skipped_and_counted_in_one_line(service_env: dict[str, str]) -> None:
    ledger = ledger_of(service_env)
    client = broker(service_env)
    client.lpush(dead_letters.dead_letters_key(ledger), *UNREADABLE_LETTERS)
    dead_letters.record(client, ledger, dead_letters.letter("mlpq.cpu", "not JSON: 'x'", b"x"))
    for args in ([], ["--json"]):
        done = dead_letters_command(service_env, *args)
        assert done.exit_code == 0, done.output
        assert "not JSON: 'x'" in done.stdout
        assert done.stderr.splitlines() == [f"Warning: skipped {len(UNREADABLE_LETTERS)} entries of "
                                            f"mlpq:{ledger}:dead-letters that could not be read as dead letters"]
    assert [letter["reason"] for letter in json.loads(dead_letters_command(service_env, "--json").stdout)] == \
        ["not JSON: 'x'"]


@pytest.mark.parametrize("kind", ["string", "hash"])
def test_a_key_of_another_type_is_said_in_one_line(service_env: dict[str, str], kind: str) -> None:
    key = dead_letters.dead_letters_key(ledger_of(service_env))
    broker(service_env).set(key, "x") if kind == "string" else broker(service_env).hset(key, "a", "b")
    done = dead_letters_command(service_env)
    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"Warning: {key} is a Redis {kind}, not a list of dead letters: not read"]


def test_another_ledgers_dead_letters_are_not_listed(service_env: dict[str, str]) -> None:
    dead_letters.record(broker(service_env), "0123456789ab", dead_letters.letter("mlpq.x.cpu", "theirs", b"x"))
    done = dead_letters_command(service_env, "--json")
    assert (done.exit_code, done.stdout.strip(), done.stderr) == (0, "[]", "")


def test_control_characters_a_redis_writer_stored_are_escaped(service_env: dict[str, str]) -> None:
    ledger = ledger_of(service_env)
    letter = dead_letters.DeadLetter(f"2026{ESCAPES}", f"mlpq.cpu{ESCAPES}", f"reason{ESCAPES}",
                                     f"message{ESCAPES}\nnext line")
    broker(service_env).lpush(dead_letters.dead_letters_key(ledger), json.dumps(vars(letter)))
    done = dead_letters_command(service_env)
    assert done.exit_code == 0, done.output
    assert not any(char in done.stdout for char in "\x1b\x07\x9b\u202e"), repr(done.stdout)
    assert len(done.stdout.splitlines()) == 2  # the header and one letter
    assert "reason\\x1b]0;owned\\x07\\x1b[2J\\x9b1m\\u202e" in done.stdout
    as_json = dead_letters_command(service_env, "--json")
    assert json.loads(as_json.stdout)[0]["message"] == letter.message  # the machine-readable output keeps it all
    assert "\x1b" not in as_json.stdout
