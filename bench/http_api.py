"""Scenario 8, the HTTP API against the library, side by side in one run on the first database.

Single messages: ``CLIENTS`` concurrent clients each POST /v1/messages one after another (keep-alive
connections, ``http.client``) to a real ``smsdispatch api --workers 2`` process; then the same number of
``send_sms`` calls from ``CLIENTS`` threads of this process. Bulk: POST /v1/messages/bulk in bodies of
``API_MAX_BULK_ROWS`` messages, then ``send_bulk`` calls of the same size. No workers run (as scenario 1):
both sides commit the rows and push the ids into the Redis lane before answering.

The clients run on the same machine as the server, the database and Redis, so they take CPU from them:
the HTTP figures are a floor for what a separate client machine would see.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from dispatcher.httpapi import keyring
from dispatcher.httpapi.keys import Scope
from dispatcher.httpapi.server import start_background

from . import report
from .harness import Run, percentiles, rate, settings_env, simulator, stack
from .report import Result
from .workload import TXN, number, txn_text

SCENARIO = "http_api"
TITLE = "HTTP API (POST /v1/messages, /v1/messages/bulk) against send_sms / send_bulk in one process"
CLIENTS = 16
SERVER_WORKERS = 2


def _spread(n: int, clients: int) -> list[range]:
    """Message indexes per client: ``n`` in all, as even as can be."""
    per, extra = divmod(n, clients)
    out, start = [], 0
    for k in range(clients):
        size = per + (1 if k < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out


def _connect(base_url: str, timeout: float) -> http.client.HTTPConnection:
    """A keep-alive connection with TCP_NODELAY. http.client writes a request's headers and body in two
    send() calls; with Nagle's algorithm on, the body waits for the server's delayed ACK of the headers
    (40 ms on Linux), which measured the client, not the server (curl and most clients write once)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    conn.connect()
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _post_many(base_url: str, key: str, indexes: range, offset: int) -> list[float]:
    """One client: POST each message in turn on one keep-alive connection; seconds per request."""
    conn = _connect(base_url, 60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    out: list[float] = []
    try:
        for i in indexes:
            body = json.dumps({"to": number(offset + i), "text": txn_text(offset + i), **TXN})
            t = time.perf_counter()
            conn.request("POST", "/v1/messages", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            out.append(time.perf_counter() - t)
            if resp.status != 202:
                raise RuntimeError(f"POST /v1/messages answered {resp.status}: {data[:300]!r}")
    finally:
        conn.close()
    return out


def _concurrently(work: list[range], call: Any) -> tuple[float, list[float]]:
    """Run ``call(indexes)`` for each range on its own thread; (wall seconds, every latency)."""
    start = threading.Barrier(len(work) + 1)

    def one(indexes: range) -> list[float]:
        start.wait()
        return call(indexes)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(len(work)) as pool:
        futures = [pool.submit(one, r) for r in work]
        start.wait()
        t0 = time.perf_counter()
        lat = [x for f in futures for x in f.result()]
        return time.perf_counter() - t0, lat


def _post_bulk(base_url: str, key: str, n: int, chunk: int, offset: int) -> float:
    """POST ``n`` messages in bodies of ``chunk``, one after another; seconds."""
    conn = _connect(base_url, 300)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [json.dumps({**TXN, "messages": [{"to": number(offset + i), "text": txn_text(offset + i)}
                                               for i in range(s, min(s + chunk, n))]})
              for s in range(0, n, chunk)]
    t0 = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/v1/messages/bulk", body, headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 202:
            raise RuntimeError(f"POST /v1/messages/bulk answered {resp.status}: {data[:300]!r}")
    seconds = time.perf_counter() - t0
    conn.close()
    return seconds


def measure(run: Run, db: str, sim: Any) -> dict[str, Any]:
    n = run.opts.size
    with stack(run, db, sim) as s:
        d = s.dispatcher
        chunk = s.settings.api_max_bulk_rows
        _, key = keyring.create(s.ctx, "bench", frozenset(Scope), 1e9)
        api = start_background(settings_env(s.settings), workers=SERVER_WORKERS, log=run.logs / "api.log")
        try:
            _post_many(api.base_url, key, range(20), 9 * 10**7)  # warm-up: connections, key cache
            http_s, http_lat = _concurrently(_spread(n, CLIENTS),
                                             lambda r: _post_many(api.base_url, key, r, 0))
            http_bulk_s = _post_bulk(api.base_url, key, n, chunk, 2 * n)
        finally:
            api.stop()
        d.send_sms(number(9 * 10**7 + 99), txn_text(9 * 10**7 + 99), **TXN)  # warm-up

        def lib_many(indexes: range) -> list[float]:
            out = []
            for i in indexes:
                t = time.perf_counter()
                d.send_sms(number(n + i), txn_text(n + i), **TXN)
                out.append(time.perf_counter() - t)
            return out

        lib_s, lib_lat = _concurrently(_spread(n, CLIENTS), lib_many)
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            d.send_bulk(((number(3 * n + i), txn_text(3 * n + i)) for i in range(start, stop)), **TXN)
        lib_bulk_s = time.perf_counter() - t0
        queued = s.state_counts().get("queued", 0)
        config = s.described()
    assert queued == 4 * n + 21, (queued, 4 * n + 21)
    return {"db": db, "messages": n, "bulk_chunk": chunk,
            "http_single": {"seconds": http_s, "rate": rate(n, http_s), **percentiles(http_lat)},
            "lib_single": {"seconds": lib_s, "rate": rate(n, lib_s), **percentiles(lib_lat)},
            "http_bulk": {"seconds": http_bulk_s, "rate": rate(n, http_bulk_s)},
            "lib_bulk": {"seconds": lib_bulk_s, "rate": rate(n, lib_bulk_s)},
            "latencies_ms": {"POST /v1/messages": [x * 1000 for x in http_lat],
                             "send_sms": [x * 1000 for x in lib_lat]},
            "settings": config}


def run(run: Run) -> Result:
    opts = run.opts
    db = opts.main_db
    with simulator(opts) as sim:
        m = measure(run, db, sim)
    hs, ls, hb, lb = m["http_single"], m["lib_single"], m["http_bulk"], m["lib_bulk"]
    rows: list[list[Any]] = [
        [f"POST /v1/messages, {CLIENTS} clients", m["messages"], hs["seconds"], hs["rate"], hs["p50_ms"],
         hs["p99_ms"]],
        [f"send_sms, {CLIENTS} threads", m["messages"], ls["seconds"], ls["rate"], ls["p50_ms"],
         ls["p99_ms"]],
        [f"POST /v1/messages/bulk x{m['bulk_chunk']:,}", m["messages"], hb["seconds"], hb["rate"], "-", "-"],
        [f"send_bulk x{m['bulk_chunk']:,}", m["messages"], lb["seconds"], lb["rate"], "-", "-"],
    ]
    res = Result(SCENARIO, TITLE,
                 {"messages": opts.size, "database": db, "clients": CLIENTS, "server_workers": SERVER_WORKERS,
                  "bulk_chunk": m["bulk_chunk"], **m["settings"]},
                 {k: v for k, v in m.items() if k not in ("latencies_ms", "settings")},
                 ["what", "messages", "seconds", "per s", "p50 ms", "p99 ms"], rows)
    res.ratios["POST /v1/messages req/s / send_sms msgs/s"] = hs["rate"] / max(ls["rate"], 1e-9)
    res.ratios["POST /v1/messages p99 / send_sms p99"] = hs["p99_ms"] / max(ls["p99_ms"], 1e-9)
    res.ratios[f"{db}: bulk POST msgs/s / send_bulk msgs/s"] = hb["rate"] / max(lb["rate"], 1e-9)
    res.target("POST /v1/messages p99 ms", hs["p99_ms"], 25.0, at_most=True)
    res.target("POST /v1/messages requests/s", hs["rate"], 1000.0)
    bulk_ratio = res.ratios[f"{db}: bulk POST msgs/s / send_bulk msgs/s"]
    if db == "postgresql":
        res.target("postgresql: bulk POST / send_bulk", bulk_ratio, 0.6)
    res.notes.append("clients, API server, database and Redis share the machine's cores")
    res.plots.append(report.bars(opts.out / "http_api_rates.png", "HTTP API against the library (per second)",
                                 [str(r[0]) for r in rows], [float(r[3]) for r in rows], "per second",
                                 log=True))
    res.plots.append(report.cdf(opts.out / "http_api_latency.png", "One message: POST against send_sms",
                                m["latencies_ms"]))
    return res
