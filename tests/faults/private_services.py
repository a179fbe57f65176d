"""Services that fault tests may stop and restart: their own Redis and PostgreSQL on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout}s")


class PrivateRedis:
    """A redis-server of this test's own, without persistence: a restart loses every key.

    With ``tls`` (a certificate and its key), it listens only for TLS connections; with ``password``,
    it requires that password.
    """

    def __init__(self, tls: tuple[Path, Path] | None = None, password: str | None = None) -> None:
        self.port = free_port()
        self.tls = tls
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"{'rediss' if self.tls else 'redis'}://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls[0]),
                      "--tls-key-file", str(self.tls[1]), "--tls-auth-clients", "no"]
        auth = ["--requirepass", self.password] if self.password else []
        self.process = subprocess.Popen(
            ["redis-server", *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *auth],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._pings, 10, "private redis")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def _pings(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.2,
                                    ssl=bool(self.tls), ssl_cert_reqs="none").ping())
        except redis.ConnectionError:
            return False


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own in a temporary directory (run as ``postgres`` when root)."""

    def __init__(self) -> None:
        versions = sorted(PG_BIN.iterdir(), key=lambda p: int(p.name)) if PG_BIN.exists() else []
        if not versions:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
        self.bin = versions[-1] / "bin"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mlpq-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def require_tls(self, certificate: Path, key: Path) -> None:
        """Accept TCP connections only over TLS, with this certificate (takes effect at the next start)."""
        for source, name in ((certificate, "server.crt"), (key, "server.key")):
            shutil.copyfile(source, self.dir / "data" / name)
            os.chmod(self.dir / "data" / name, 0o600)
            if self.as_postgres:
                shutil.chown(self.dir / "data" / name, "postgres", "postgres")
        with open(self.dir / "data" / "postgresql.conf", "a") as conf:
            conf.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        (self.dir / "data" / "pg_hba.conf").write_text(
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
