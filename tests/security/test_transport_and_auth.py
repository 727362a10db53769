"""Transport and access: a wrong Redis password is a typed error that does not repeat it; Flower refuses
to listen off loopback without basic auth; the simulator binds loopback by default; the API key never
reaches an exception, a repr or a settings error, even when a gateway echoes it back."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest
from pydantic import ValidationError as SettingsError
from typer.testing import CliRunner

from dispatcher.channels import Channel
from dispatcher.cli import app as cli_app
from dispatcher.cli.launch import flower_env
from dispatcher.context import Context
from dispatcher.errors import ConfigurationError, DispatcherError, QueueUnavailable
from dispatcher.gateway import Recipient, SmsPointClient
from dispatcher.settings import Settings
from dispatcher.simulator.cli import build_parser
from dispatcher.simulator.server import start_background

from ..chaos.redis_server import RedisServer
from ..integration.pipeline_helpers import TXN
from .conftest import API_KEY, REDIS_PASSWORD


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Transport tests: the database does not matter, one leg (SQLite) is enough."""
    return sqlite_url


def test_wrong_redis_password_is_a_typed_error(private_redis: RedisServer):
    """A wrong password: pushing into the lanes raises QueueUnavailable, without either password in it."""
    wrong = private_redis.url.replace(REDIS_PASSWORD, "not-the-password")
    ctx = Context(Settings(redis_url=wrong, redis_prefix="sec", smspoint_api_key="x"))
    with pytest.raises(QueueUnavailable) as info:
        ctx.lanes.push([("01", "transactional|SMSPNT|1|0")])
    assert REDIS_PASSWORD not in str(info.value) and "not-the-password" not in str(info.value)


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.10", "::", "example.org"])
def test_flower_refuses_non_loopback_without_auth(address):
    """Flower on any non-loopback address without FLOWER_USER/FLOWER_PASSWORD is refused."""
    with pytest.raises(ConfigurationError, match="basic auth"):
        flower_env(address, "", "")
    with pytest.raises(ConfigurationError):
        flower_env(address, "ops", "")  # half the credentials is no credentials
    assert flower_env(address, "ops", "s3cret") == {"FLOWER_BASIC_AUTH": "ops:s3cret"}


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_flower_on_loopback_may_run_without_auth(address):
    """Loopback-only Flower needs no credentials."""
    assert flower_env(address, "", "") == {}


def test_flower_command_refuses_before_starting(tmp_path: Path):
    """`smsdispatch flower --address 0.0.0.0` without credentials exits 1 with one line and starts nothing."""
    env = {"FLOWER_USER": "", "FLOWER_PASSWORD": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = CliRunner().invoke(cli_app, ["flower", "--address", "0.0.0.0"], env=env)
    assert result.exit_code == 1
    assert "refusing to start Flower on 0.0.0.0 without basic auth" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_simulator_binds_loopback_by_default():
    """The simulator's command line and start_background listen on 127.0.0.1 unless told otherwise."""
    assert build_parser().parse_args([]).host == "127.0.0.1"
    sim = start_background(quiet=True)
    try:
        assert sim.root_url.startswith("http://127.0.0.1:")
    finally:
        sim.stop()


class EchoGateway:
    """A gateway that puts the key it was sent into every answer (the worst case for leaks)."""

    def __init__(self, status: int, template: str, ctype: str = "application/json") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = template.replace("KEY", self.headers.get("key", "")).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"
        Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


ECHOES = [
    (200, '{"status":"error","message":"API Key Does Not Exists: KEY"}', "application/json"),
    (401, '{"status":"error","message":"bad key KEY"}', "application/json"),
    (400, "key KEY rejected", "text/plain"),
    (502, "<html><body>upstream said KEY</body></html>", "text/html"),
    (200, '{"status":"success","data":{"KEY":', "application/json"),
    (200, '{"status":"weird","message":"KEY"}', "application/json"),
]


ECHO_IDS = ["auth-200", "auth-401", "400-text", "502-html", "truncated", "undocumented"]


@pytest.fixture(params=ECHOES, ids=ECHO_IDS)
def echo(request) -> Iterator[EchoGateway]:  # type: ignore[no-untyped-def]
    gw = EchoGateway(*request.param)
    yield gw
    gw.close()


def test_api_key_echoed_by_the_gateway_is_scrubbed_from_errors(echo: EchoGateway):
    """A key echoed by the gateway is in no raised error, chained cause, traceback or client repr."""
    client = SmsPointClient(echo.url, API_KEY, connect_timeout=2, read_timeout=5)
    assert API_KEY not in repr(client)
    calls = [lambda: client.balance(), lambda: client.delivery_status("1"),
             lambda: client.send_bulk([Recipient("919995012345", "hi")], channel=Channel.TRANSACTIONAL,
                                       is_unicode=False, sender_id="SMSPNT", template_id=TXN["template_id"])]
    for call in calls:
        with pytest.raises(DispatcherError) as info:
            call()
        exc: BaseException | None = info.value
        text = "".join(traceback.format_exception(info.value))
        while exc is not None:
            text += f"{exc!s} {exc!r} {exc.args!r} {getattr(exc, 'body', '')}"
            exc = exc.__cause__ or exc.__context__
        assert API_KEY not in text, text[:500]
    client.close()


def test_settings_never_show_the_key():
    """repr, model_dump and a validation error of Settings keep the key and passwords hidden."""
    s = Settings(smspoint_api_key=API_KEY, webhook_secret="whsec-x1", flower_password="fp-x1")
    shown = repr(s) + str(s) + s.model_dump_json()
    assert API_KEY not in shown and "whsec-x1" not in shown and "fp-x1" not in shown
    with pytest.raises(SettingsError) as info:
        Settings(smspoint_api_key=API_KEY, batch_size=API_KEY)  # type: ignore[arg-type]
    assert API_KEY not in str(info.value)
