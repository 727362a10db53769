"""A private ``redis-server`` per test: restartable, flushable and killable without touching the shared Redis.

It runs with AOF (``appendfsync always``) in the test's own directory, so a SIGKILL followed by a restart
loses nothing that was acknowledged; ``flushall()`` is the "Redis lost everything" fault. Optionally it
requires a password, or serves TLS only (with a throw-away CA made by the ``openssl`` command line).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1 / localhost (openssl CLI); raises OSError without it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OSError("the openssl command is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "server.key", "server.csr",
                                                          "server.crt"))
    ext = directory / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=smspoint-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return TlsFiles(ca, cert, key)


class RedisServer:
    """One redis-server process on a fixed free loopback port; ``kill``/``start`` keep port and data dir."""

    def __init__(self, directory: Path, *, password: str | None = None, tls: TlsFiles | None = None,
                 db: int = 0) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.tls = tls
        self.db = db
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "redis.log"
        self.restarts = 0

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        query = f"?ssl_ca_certs={quote(str(self.tls.ca), safe='')}" if self.tls else ""
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{self.db}{query}"

    def _argv(self) -> list[str]:
        argv = ["redis-server", "--bind", "127.0.0.1", "--dir", str(self.dir), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction",
                "--logfile", str(self.log), "--daemonize", "no"]
        if self.tls:
            argv += ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                     "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                     "--tls-auth-clients", "no"]
        else:
            argv += ["--port", str(self.port)]
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=2, socket_timeout=10)

    def start(self, timeout: float = 20.0) -> None:
        """Start (or start again, replaying the AOF) and wait until it answers PING with its data loaded."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-2000:] if self.log.exists() else ""
                raise RuntimeError(f"redis-server exited: {tail}")
            try:
                c = self.client()
                try:
                    if c.ping() and int(c.info("persistence").get("loading", 0)) == 0:
                        return
                finally:
                    c.close()
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.05)
        raise TimeoutError(f"redis-server on port {self.port} did not answer: {last}")

    def kill(self) -> None:
        """SIGKILL: a crash (with appendfsync always, every acknowledged write is in the AOF)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self, down_s: float = 0.0) -> None:
        """Crash it, stay down ``down_s`` seconds (clients see connections refused), start it again."""
        self.kill()
        time.sleep(down_s)
        self.start()
        self.restarts += 1

    def flushall(self) -> None:
        """Lose every key (lanes, Celery queues, credits, leases, the epoch marker)."""
        c = self.client()
        try:
            c.flushall()
        finally:
            c.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def redis_server_available() -> str | None:
    """None when a redis-server binary is installed, else why not."""
    return None if shutil.which("redis-server") else "redis-server is not installed (see .ci/system-deps.sh)"


def require_redis_server() -> None:
    """Skip the test (fail it in CI, where the set-up installs it) when redis-server is missing."""
    why = redis_server_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)


def tls_supported() -> str | None:
    """None when this redis-server build serves TLS (``--tls-port``), else why not."""
    exe = shutil.which("redis-server")
    if exe is None:
        return "redis-server is not installed"
    try:
        out = subprocess.run([exe, "--tls-port", "0", "--port", "0", "--test-memory-dummy"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run redis-server: {exc}"
    text = (out.stdout + out.stderr).lower()
    if "tls" in text and ("not supported" in text or "bad directive" in text and "tls-port" in text):
        return "this redis-server build has no TLS support"
    return None
