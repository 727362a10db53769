"""The demo's steps: set up, enqueue while watching, report, stop."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.prompt import Confirm

from .. import operators
from ..api import Dispatcher
from ..context import Context, set_context
from ..db import dispose_all, upgrade
from ..errors import ConfigurationError, ValidationError
from ..numbers import mask
from ..settings import Settings
from ..simulator.admin import AdminClient
from ..simulator.state import DEFAULT_API_KEY
from ..simulator.variants import parse as parse_variants
from . import infra, mix, view
from .procs import Children, free_port

if TYPE_CHECKING:
    from . import DemoOptions

STALL_S = 45.0
ROOT = Path(__file__).resolve().parents[2]


class Demo:
    def __init__(self, opts: DemoOptions, base: Settings, run_dir: Path, children: Children, console: Console,
                 *, flower_password: str, sync: bool) -> None:
        self.opts, self.base, self.run_dir = opts, base, run_dir
        self.children, self.console = children, console
        self.flower_password = flower_password
        self.sync = sync
        self.prefix = f"smspoint-demo-{secrets.token_hex(4)}"
        self.flower_url: str | None = None
        self.curl: str | None = None
        self.shared_redis: str | None = None
        self.ctx: Context | None = None
        self.finished = False
        self.rejects: list[tuple[str, int, str, str]] = []
        self.timings: dict[str, float] = {}
        self.simulated = True

    def say(self, text: str, markup: bool = True) -> None:
        """One line; plain text (markup off) is never wrapped, so a printed command can be copied."""
        self.console.print(text, markup=markup, soft_wrap=not markup)

    # ------------------------------------------------------------------ set-up

    def setup(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            (self.run_dir / f"demo.db{suffix}").unlink(missing_ok=True)
        self.say(f"[bold]smspoint-dispatcher demo[/] (run folder: {self.run_dir})")
        redis_url = self._redis()  # first, so it is stopped last
        gateway = self._gateway()
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{self.run_dir / 'demo.db'}", "redis_url": redis_url,
            "broker_url": redis_url, "redis_prefix": self.prefix,
            "broker_key_prefix": f"{self.prefix}:celery:",
            "smspoint_base_url": gateway.base_url, "smspoint_api_key": gateway.api_key,
            "sync_interval_s": 2.0, "release_interval_s": 2.0, "sweep_interval_s": 10.0,
            "hooks_interval_s": 2.0,
        }
        self.simulated = gateway.simulator
        if gateway.simulator:
            values.update(promo_window_start="00:00", promo_window_end="23:59:59.999999",
                          rate_limit_calls_per_s=200.0)
        settings = Settings(**values)
        env = self._env(settings)
        upgrade(settings.database_url)
        self.ctx = ctx = Context(settings)
        set_context(ctx)
        self.dispatcher = Dispatcher(ctx)
        self.catalog = ctx.catalog.refresh(ctx.client)
        self.say(f"  database   SQLite {self.run_dir / 'demo.db'}")
        self._start_workers(env)
        if self.opts.flower:
            self._start_flower(env)
        self._start_api(env)
        if not self.sync:
            self.say("  reports    [yellow]dispatcher.sync is not in this checkout: messages stop at 'sent' "
                     "(no delivery reports)[/]")
        elif self.simulated:
            self.say("  reports    the sync task polls delivery reports every 2 s (the demo makes open jobs "
                     "due every 2 s, as the simulator's statuses arrive within seconds)")
        else:
            self.say("  reports    the sync task polls delivery reports after 1, 2, 5, 10, 30 min...: the "
                     "live view ends when all are sent; the system keeps running until Ctrl-C")
        if gateway.simulator:
            self.say("  window     promotional messages allowed all day: the simulator is not bound by DLT "
                     "hours (the real gateway is: 09:00-21:00 IST)")

    def _gateway(self) -> infra.Gateway:
        base = self.base
        variants = self.opts.sim_variants
        changes = parse_variants(variants)  # a bad value stops the demo before anything starts
        if "smspoint_base_url" in base.model_fields_set:
            url, key = base.smspoint_base_url, base.smspoint_api_key.get_secret_value()
            if infra.is_simulator(url):
                self.say(f"  gateway    the simulator at {url} (from SMSPOINT_BASE_URL)")
                if changes:
                    admin = AdminClient(url.rstrip("/").removesuffix("/api/v1"))
                    try:
                        admin.variants(**changes)
                    finally:
                        admin.close()
                    self.say(f"  variants   {escape(variants)} (set on that simulator until its next reset)")
                return infra.Gateway(url, key or DEFAULT_API_KEY, simulator=True, started=False)
            if changes:
                raise ConfigurationError("--sim-variants needs the simulator, not a real gateway")
            return self._real_gateway(url, key)
        gw = infra.start_simulator(self.children, DEFAULT_API_KEY, variants)
        self.say(f"  gateway    simulator at {gw.base_url} (final statuses within seconds; "
                 "set SMSPOINT_BASE_URL to use the real gateway)")
        if changes:
            self.say(f"  variants   {escape(variants)} (the simulator's answers; docs/simulator.md)")
        return gw

    def _real_gateway(self, url: str, key: str) -> infra.Gateway:
        if not self.opts.to:
            raise ConfigurationError(f"SMSPOINT_BASE_URL points at a real gateway ({url}): pass --to with "
                                     "your own test number(s); the demo never invents recipients for a "
                                     "real gateway")
        if not key:
            raise ConfigurationError("SMSPOINT_API_KEY is empty")
        who = ", ".join(mask(n) for n in self.opts.to)
        self.say(f"  gateway    [bold red]REAL[/] gateway at {url}: {self.opts.messages} real SMS to {who}")
        if not self.opts.yes and not Confirm.ask("Send them (this spends credits)?", default=False):
            raise ConfigurationError("not confirmed; nothing was sent")
        return infra.Gateway(url, key, simulator=False, started=False)

    def _redis(self) -> str:
        url = self.base.redis_url
        if infra.redis_answers(url):
            self.shared_redis = url
            self.say(f"  redis      {_safe_url(url)} (REDIS_URL; demo keys under {self.prefix}:, "
                     "removed at exit)")
            return url
        binary = infra.ensure_redis_server(self.children.logs, self.say, url)
        own, _ = infra.start_private_redis(self.children, self.run_dir, binary)
        self.say(f"  redis      private redis-server at {own} (AOF in {self.run_dir / 'redis'}); "
                 f"{_safe_url(url)} did not answer")
        return own

    def _env(self, settings: Settings) -> dict[str, str]:
        env = dict(os.environ)
        for name in Settings.model_fields:  # unset optional settings must not leak in from outside
            if getattr(settings, name) is None:
                env.pop(name.upper(), None)
        env.update(settings.to_env())
        env.pop("CHANNEL_MAP", None)
        if (ROOT / "workers").is_dir():
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start_workers(self, env: dict[str, str]) -> None:
        from ..cli.launch import beat_argv, worker_argv

        tag = self.prefix.rsplit("-", 1)[-1]
        workers = [self.children.start(f"worker-{role}", worker_argv(role, n, f"{role}-demo-{tag}@%h",
                                                                     extra=("--without-mingle",)), env)
                   for role, n in (("otp", 2), ("bulk", 3))]
        beat = self.children.start("beat", beat_argv(str(self.run_dir / "celerybeat-schedule")), env)
        for w in workers:
            w.wait_for(r"ready\.", 60.0)
        beat.wait_for(r"beat: Starting", 30.0)
        self.say("  workers    otp (2 processes, queue otp), bulk (3 processes: transactional, promotional, "
                 "sync, maintenance), beat")

    def _start_flower(self, env: dict[str, str]) -> None:
        import requests

        from ..cli.launch import flower_argv, flower_env

        port = free_port()
        child = self.children.start("flower", flower_argv("127.0.0.1", port),
                                    {**env, **flower_env("127.0.0.1", "demo", self.flower_password)})

        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=1).ok
            except requests.RequestException:
                return False

        child.wait_for(up, 60.0)
        self.flower_url = f"http://127.0.0.1:{port}/"
        self.say(f"  flower     {self.flower_url}  user [bold]demo[/]  "
                 f"password [bold]{self.flower_password}[/]")

    def _start_api(self, env: dict[str, str]) -> None:
        import sys

        import requests

        from ..httpapi import keyring
        from ..httpapi.keys import Scope

        assert self.ctx is not None
        port = free_port()
        argv = [sys.executable, "-m", "dispatcher.cli", "api", "--port", str(port)]
        child = self.children.start("api", argv, env)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{url}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        child.wait_for(up, 60.0)
        _, key = keyring.create(self.ctx, "demo", frozenset(Scope), None)
        self.say(f"  http api   {url}/docs  key [bold]{key}[/]")
        if self.simulated:  # a real gateway: the demo never invents a recipient
            self.curl = curl_line(url, key)
            self.say("  try it     " + self.curl, markup=False)

    # ------------------------------------------------------------------ enqueue and watch

    def enqueue_and_watch(self) -> None:
        assert self.ctx is not None
        for bad in mix.bad_requests(self.catalog):
            try:
                self.dispatcher.send_sms(bad.to, bad.text, channel=bad.channel, sender_id=bad.sender_id,
                                         template_id=bad.template_id)
            except ValidationError as exc:
                self.say(f"  refused at enqueue, {bad.what}: [yellow]{escape(str(exc))}[/]")
        campaigns = mix.plan(self.catalog, self.opts.messages, self.opts.to)
        await_reports = self.sync and self.simulated  # a real gateway reports over minutes
        prog = view.Progress(sum(len(c.rows) for c in campaigns), await_reports=await_reports)
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._enqueue, args=(campaigns, prog, failure), daemon=True)
        t0 = time.monotonic()
        thread.start()
        deadline = t0 + self.opts.timeout_s
        hurried = 0.0
        with Live(console=self.console, refresh_per_second=4, transient=False) as live:
            while True:
                if self.sync and self.simulated and time.monotonic() - hurried > 2.0:
                    view.hurry_reports(self.ctx)
                    hurried = time.monotonic()
                snap = view.snapshot(self.ctx)
                prog.observe(snap)
                live.update(view.render(snap, prog))
                if failure:
                    raise failure[0]
                if prog.enqueue_done and "sent" not in self.timings and snap.pending(False) == 0:
                    self.timings["sent"] = time.monotonic() - t0
                if prog.settled(snap) or prog.stalled(STALL_S) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        self.timings["settled"] = time.monotonic() - t0
        if not prog.settled(snap):
            why = f"no change for {STALL_S:.0f} s" if prog.stalled(STALL_S) else "timeout"
            self.say(f"[yellow]stopped waiting: {snap.pending(await_reports):,} message(s) still moving "
                     f"({why})[/]")
        self._print_rejects()

    def _enqueue(self, campaigns: list[mix.Campaign], prog: view.Progress,
                 failure: list[BaseException]) -> None:
        t0 = time.monotonic()
        try:
            for c in campaigns:
                if c.one_by_one:
                    for i, (to, text) in enumerate(c.rows):
                        try:
                            self.dispatcher.send_sms(to, text, channel=c.channel, sender_id=c.sender_id,
                                                     template_id=c.template_id)
                            prog.enqueued += 1
                        except ValidationError as exc:
                            self.rejects.append((c.name, i, exc.field, exc.reason))
                            prog.rejected += 1
                    continue
                res = self.dispatcher.send_bulk(c.rows, channel=c.channel, sender_id=c.sender_id,
                                                template_id=c.template_id, skip_invalid=True)
                prog.enqueued += len(res)
                prog.rejected += len(res.rejects)
                self.rejects += [(c.name, r.index, r.field, r.reason) for r in res.rejects]
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
        finally:
            self.timings["enqueue"] = time.monotonic() - t0
            prog.enqueue_done = True

    def _print_rejects(self) -> None:
        if not self.rejects:
            return
        self.say(f"\n{len(self.rejects)} row(s) refused at enqueue (nothing was written for them), e.g.:")
        for name, index, fld, reason in self.rejects[:6]:
            self.say(f"  {name}, row {index}: {fld}: {escape(reason)}")
        reasons = Counter(reason.split(";")[0] for _, _, _, reason in self.rejects)
        self.say("  by reason: " + "; ".join(f"{n} x {escape(r)}" for r, n in reasons.most_common(4)))

    # ------------------------------------------------------------------ report and stop

    def finish(self) -> None:
        from ..cli.ops import render_report

        assert self.ctx is not None
        self.say("")
        render_report(self.console, operators.report(self.ctx), self.ctx.settings.timezone)
        t = self.timings
        sent = f"; all sent after {t['sent']:.1f} s" if "sent" in t else ""
        self.say(f"\nenqueue took {t.get('enqueue', 0):.1f} s{sent}; "
                 f"settled after {t.get('settled', 0):.1f} s; logs in {self.children.logs}")
        if self.flower_url:
            self.say(f"Flower: {self.flower_url} (user demo, password {self.flower_password})")
        if self.curl and self.opts.keep_running:
            self.say("HTTP API: " + self.curl, markup=False)
        self.finished = True

    def stop(self) -> None:
        if not self.children.started and self.ctx is None:
            return
        self.say("stopping: " + ", ".join(c.name for c in reversed(self.children.started)))
        left = self.children.stop_all()
        if self.ctx is not None:
            self.ctx.redis.close()
        dispose_all()
        if self.shared_redis:
            try:
                infra.delete_keys(self.shared_redis, self.prefix)
            except Exception as exc:  # noqa: BLE001
                self.say(f"[yellow]could not remove the demo's Redis keys ({exc.__class__.__name__})[/]")
        if left:
            self.say(f"[red]still running after stop: pids {left}[/]")
        else:
            self.say(f"stopped {len(self.children.started)} process group(s); nothing left running")


def curl_line(url: str, key: str) -> str:
    """A curl command that enqueues one message matching the simulator's default catalogue."""
    from ..simulator.samples import TXN, number, txn_text

    body = json.dumps({"to": number(4242), "text": txn_text(4242), **TXN})
    return (f"curl -sS -X POST {url}/v1/messages -H 'Authorization: Bearer {key}' "
            f"-H 'Content-Type: application/json' -d '{body}'")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url.split("@")[-1]
