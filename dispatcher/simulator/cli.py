"""``python -m dispatcher.simulator``: command-line flags -> SimConfig -> serve."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Sequence
from dataclasses import fields

from ..channels import PACKAGES
from .faults import Faults
from .lifecycle import Lifecycle
from .server import HTTP_CHOICES, serve
from .state import DEFAULT_API_KEY, REPORT_SHAPES, SEND_SHAPES, SimConfig, parse_channel_map
from .variants import Variants, choices
from .variants import parse as parse_variants


def parse_credits(text: str) -> dict[str, int]:
    """``100`` (every package) or ``OTP=10,Promotional=0,Transactional=500``."""
    if "=" not in text:
        return dict.fromkeys(PACKAGES, int(text))
    out: dict[str, int] = {}
    for pair in (p for p in text.split(",") if p.strip()):
        name, _, value = pair.partition("=")
        match = [p for p in PACKAGES if p.lower() == name.strip().lower()]
        if not match:
            raise argparse.ArgumentTypeError(f"unknown package {name!r}; use {', '.join(PACKAGES)}")
        out[match[0]] = int(value)
    return out


def _channel_map(text: str) -> dict[int, str]:
    try:
        return parse_channel_map(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dispatcher.simulator",
                                description="A local stand-in for the TheSMSPoint gateway "
                                "(see docs/simulator.md).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    p.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    p.add_argument("--api-key", default=DEFAULT_API_KEY, help="the one API key the account accepts")
    p.add_argument("--seed", type=int, default=None, help="makes fates, reports and faults repeatable")
    p.add_argument("--catalog", default=None, help="JSON file of sender ids and templates")
    p.add_argument("--channel-map", type=_channel_map, default=None,
                   help="gateway channel numbers, e.g. transactional=1,promotional=2,otp=3")
    p.add_argument("--credits", type=parse_credits, default=None,
                   help="start balances: N for every package, or OTP=N,Promotional=N,Transactional=N")
    p.add_argument("--send-shape", choices=SEND_SHAPES, default="php", help="send answer shape")
    p.add_argument("--report-shape", choices=REPORT_SHAPES, default="mixed", help="delivery report shape")
    p.add_argument("--first-job-id", type=int, default=None, help="first job id (seeded: 123456789)")
    p.add_argument("--first-message-id", type=int, default=None, help="first message id")
    p.add_argument("--http", choices=HTTP_CHOICES, default="auto", help="uvicorn HTTP implementation")
    p.add_argument("--calls-kept", type=int, default=200_000, help="size of the call log")
    life = p.add_argument_group("lifecycle (simulated seconds; rates are probabilities)")
    for f in fields(Lifecycle):
        life.add_argument("--" + f.name.replace("_", "-"), type=float, default=None, dest=f"life_{f.name}",
                          metavar="N", help=f"default {f.default}")
    fault = p.add_argument_group("faults (rates are probabilities per call)")
    for f in fields(Faults):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "commands":
            fault.add_argument("--fault-commands", default=None, dest="fault_commands", metavar="CMD,...",
                               help="comma-separated commands the faults apply to (default: all)")
        elif f.type in ("bool", bool):
            fault.add_argument(flag, action="store_true", default=None, dest=f"fault_{f.name}")
        else:
            fault.add_argument(flag, type=float, default=None, dest=f"fault_{f.name}", metavar="N",
                               help=f"default {f.default}")
    _variant_flags(p)
    return p


def _variants(text: str) -> dict[str, object]:
    try:
        return parse_variants(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _variant_flags(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("answer variants (docs/simulator.md; also POST /_sim/variants)")
    group.add_argument("--variants", type=_variants, default=None, metavar="NAME=VALUE,...",
                       help="several at once, e.g. order=shuffled,omit_rate=0.1 (the flags below win)")
    for f in fields(Variants):
        flag = "--" + f.name.replace("_", "-")
        dest = f"variant_{f.name}"
        if f.name == "text_in_answer":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, dest=dest,
                               help="MessageData entries carry 'message' (default: yes)")
        elif choices(f.name):
            group.add_argument(flag, choices=choices(f.name), default=None, dest=dest,
                               help=f"default {f.default}")
        else:
            group.add_argument(flag, type=float, default=None, dest=dest, metavar="RATE",
                               help=f"in [0, 1], default {f.default}")


def config_from_args(ns: argparse.Namespace) -> SimConfig:
    cfg = SimConfig(api_key=ns.api_key, seed=ns.seed, catalog_path=ns.catalog, send_shape=ns.send_shape,
                    report_shape=ns.report_shape, first_job_id=ns.first_job_id,
                    first_message_id=ns.first_message_id, calls_kept=ns.calls_kept)
    if ns.channel_map:
        cfg.channel_map = ns.channel_map
    if ns.credits:
        cfg.credits.update(ns.credits)
    opts = vars(ns)
    cfg.lifecycle = {f.name: opts[f"life_{f.name}"] for f in fields(Lifecycle)
                     if opts[f"life_{f.name}"] is not None}
    cfg.faults = {f.name: opts[f"fault_{f.name}"] for f in fields(Faults)
                  if opts[f"fault_{f.name}"] is not None}
    cfg.variants = dict(ns.variants or {}) | {f.name: opts[f"variant_{f.name}"] for f in fields(Variants)
                                               if opts[f"variant_{f.name}"] is not None}
    return cfg


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and serve until interrupted."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    cfg = config_from_args(ns)
    try:
        from .state import SimState

        SimState(cfg)  # fail fast on a bad catalog, lifecycle, fault or variant value
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    if ns.http == "httptools" and importlib.util.find_spec("httptools") is None:
        parser.error("--http httptools needs the httptools package (pip install httptools)")
    serve(cfg, ns.host, ns.port, http=ns.http)
