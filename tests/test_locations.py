"""A broker URL's TLS options: read once, as redis-py takes them, by the CLI's clients and the workers alike."""

from __future__ import annotations

import pytest

from mlpq.config import Settings
from mlpq.locations import LocationError, broker_tls
from mlpq import messages
from mlpq.worker.app import create_app
from mlpq.worker.screening import consume_screened

TLS_QUERIES = [
    ("", {"ssl_cert_reqs": "required"}),
    ("?ssl_ca_certs=/certs/ca.pem", {"ssl_cert_reqs": "required", "ssl_ca_certs": "/certs/ca.pem"}),
    ("?ssl_cert_reqs=none", {"ssl_cert_reqs": "none"}),
    ("?ssl_check_hostname=false&ssl_ca_certs=/ca.pem",
     {"ssl_cert_reqs": "required", "ssl_check_hostname": False, "ssl_ca_certs": "/ca.pem"}),
]


@pytest.mark.parametrize(("query", "options"), TLS_QUERIES)
def test_a_rediss_broker_is_verified_unless_its_url_says_otherwise(query: str, options: dict) -> None:
    assert broker_tls(f"rediss://:pw@broker:6380/1{query}") == ("rediss://:pw@broker:6380/1", options)


def test_the_rest_of_the_query_is_kept() -> None:
    assert broker_tls("rediss://broker:6380/1?ssl_cert_reqs=none&socket_timeout=4") == (
        "rediss://broker:6380/1?socket_timeout=4", {"ssl_cert_reqs": "none"})


def test_a_plain_broker_has_no_tls_options() -> None:
    assert broker_tls("redis://broker:6379/0?socket_timeout=4") == ("redis://broker:6379/0?socket_timeout=4", None)
    assert broker_tls("unix:///run/redis.sock?db=2") == ("unix:///run/redis.sock?db=2", None)


@pytest.mark.parametrize(("url", "problem"), [
    ("rediss://broker:6380/0?ssl_ca_cert=/ca.pem", "unknown TLS option ssl_ca_cert; did you mean ssl_ca_certs?"),
    ("rediss://broker:6380/0?ssl_cert_reqs=requird", "Invalid SSL Certificate Requirements Flag: requird"),
    ("redis://broker:6379/0?ssl_cert_reqs=required", "TLS options (ssl_cert_reqs) need rediss://"),
])
def test_a_tls_option_redis_py_refuses_is_one_line(url: str, problem: str) -> None:
    with pytest.raises(LocationError) as refused:
        broker_tls(url)
    assert str(refused.value).endswith(problem) and "\n" not in str(refused.value)


@pytest.mark.parametrize(("query", "options"), TLS_QUERIES)
def test_the_cli_and_a_worker_connect_with_the_same_tls_options(query: str, options: dict) -> None:
    url = f"rediss://:pw@broker:6380/1{query}"
    pool = messages.connect(url).connection_pool
    cli_options = {key: value for key, value in pool.connection_kwargs.items() if key.startswith("ssl_")}
    app = create_app(Settings(broker_url=url))
    consume_screened(app, "ledger1")
    with app.connection_for_write() as connection:  # kombu's; nothing connects yet
        assert cli_options == connection.ssl == options
        assert connection.transport_cls == "mlpq-redis" and connection.hostname == "broker"
