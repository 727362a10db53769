"""Scenario 11, encoding: what each documented send-bulk-sms request encoding costs us and the simulator.

The documentation shows two: form fields (the PHP example) and a JSON body (the C# example); both carry
``recipient`` as a JSON string. The same calls of 2,000 recipients (the end-to-end mix cut into batches)
are made with ``SmsPointClient`` in each encoding, alternating, against the simulator at 0 ms latency, one
call at a time: the client's CPU per call (``time.process_time``: building and encoding the body, sending,
parsing the answer), the simulator's CPU per call (its process's CPU time from /proc) and calls per second.
``SEND_BULK_ENCODING`` chooses; the default is the cheaper one.
"""

from __future__ import annotations

import time
from typing import Any

from dispatcher.channels import Channel
from dispatcher.gateway import Recipient, SmsPointClient
from dispatcher.segments import measure

from . import report
from .harness import Run, simulator
from .procs import cpu_s
from .report import Result
from .workload import rows, split_mix

SCENARIO = "encoding"
TITLE = "send-bulk-sms request encodings: form fields (PHP example) vs JSON body (C# example)"
BATCH = 2000
ENCODINGS = ("form", "json")
# The simulator's CPU is read from /proc in clock ticks (10 ms): the calls are repeated until each encoding
# has run this long, so a small run (the smoke size) still measures more than a few ticks.
MIN_WALL_S = 1.0


def calls_of(n: int) -> list[tuple[dict[str, Any], list[Recipient]]]:
    """The end-to-end mix as bulk calls of at most BATCH recipients: (params, recipients)."""
    out = []
    for group, indexes in split_mix(n):
        recips = [Recipient(num, text) for num, text in rows(group, indexes)]
        for k in range(0, len(recips), BATCH):
            chunk = recips[k:k + BATCH]
            out.append((group.params, chunk))
    return out


def measure_calls(run: Run) -> dict[str, Any]:
    opts = run.opts
    calls = calls_of(opts.size)
    spent = {e: {"client_cpu_s": 0.0, "sim_cpu_s": 0.0, "wall_s": 0.0, "calls": 0, "messages": 0}
             for e in ENCODINGS}
    with simulator(opts.__class__(**{**opts.__dict__, "latency_ms": 0.0})) as sim:
        clients = {e: SmsPointClient(sim.base_url, sim.api_key, bulk_encoding=e) for e in ENCODINGS}
        pid = sim.proc.pid
        try:
            for params, recips in calls[:2]:  # warm-up: connections, the simulator's caches
                for e in ENCODINGS:
                    _send(clients[e], params, recips)
            i = 0
            while i < len(calls) or min(s["wall_s"] for s in spent.values()) < MIN_WALL_S:
                params, recips = calls[i % len(calls)]
                order = ENCODINGS if i % 2 == 0 else ENCODINGS[::-1]
                i += 1
                for e in order:
                    sim0, cpu0, wall0 = cpu_s(pid), time.process_time(), time.perf_counter()
                    accepted = _send(clients[e], params, recips)
                    s = spent[e]
                    s["wall_s"] += time.perf_counter() - wall0
                    s["client_cpu_s"] += time.process_time() - cpu0
                    s["sim_cpu_s"] += cpu_s(pid) - sim0
                    s["calls"] += 1
                    s["messages"] += len(recips)
                    assert accepted == len(recips), (e, accepted, len(recips))
        finally:
            for c in clients.values():
                c.close()
    return spent


def _send(client: SmsPointClient, params: dict[str, Any], recips: list[Recipient]) -> int:
    unicode = any(measure(r.text).is_unicode for r in recips[:1])
    result = client.send_bulk(recips, sender_id=params["sender_id"], template_id=params["template_id"],
                              channel=Channel.parse(params["channel"]), is_unicode=unicode)
    return len(result.messages)


def run(run: Run) -> Result:
    spent = measure_calls(run)
    rows_out = []
    per_msg: dict[str, dict[str, float]] = {}
    for e, s in spent.items():
        m = max(s["messages"], 1)
        per_msg[e] = {"client_us": s["client_cpu_s"] * 1e6 / m, "sim_us": s["sim_cpu_s"] * 1e6 / m,
                      "calls_per_s": s["calls"] / max(s["wall_s"], 1e-9)}
        rows_out.append([e, s["calls"], s["messages"], f"{per_msg[e]['client_us']:.1f}",
                         f"{per_msg[e]['sim_us']:.1f}", f"{per_msg[e]['calls_per_s']:.1f}"])
    res = Result(SCENARIO, TITLE,
                 {"messages": run.opts.size, "batch": BATCH, "latency_ms": 0, "order": "alternating"},
                 {"spent": spent, "per_message": per_msg},
                 ["encoding", "calls", "messages", "client CPU us/msg", "simulator CPU us/msg", "calls/s"],
                 rows_out)
    form, js = per_msg["form"], per_msg["json"]
    res.ratios["client CPU, json / form"] = js["client_us"] / max(form["client_us"], 1e-9)
    res.ratios["simulator CPU, json / form"] = js["sim_us"] / max(form["sim_us"], 1e-9)
    res.ratios["calls/s, json / form"] = js["calls_per_s"] / max(form["calls_per_s"], 1e-9)
    res.plots.append(report.bars(
        run.opts.out / "encoding_cpu.png", "send-bulk-sms: CPU per message by request encoding",
        [f"{e}: {side}" for e in ENCODINGS for side in ("client", "simulator")],
        [per_msg[e][k] for e in ENCODINGS for k in ("client_us", "sim_us")], "microseconds per message"))
    return res
