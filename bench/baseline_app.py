"""The baseline of scenario 3: what a user would write without this project. A tiny Celery app of its
own, one task per message, each calling send-single-sms with requests; no database, no batching.

It is given the best of the obvious choices (a keep-alive ``requests.Session`` per pool process, JSON
serialisation, results ignored) so the comparison is not against a straw man. Configured through the
environment, as its worker is a separate process:

    BENCH_BASELINE_BROKER=redis://... BENCH_BASELINE_KEYPREFIX=... BENCH_BASELINE_GATEWAY=http://.../api/v1 \
    BENCH_BASELINE_API_KEY=... python -m celery -A bench.baseline_app worker -Q bench-baseline -c 4
"""

from __future__ import annotations

import os
from typing import Any

import requests
from celery import Celery

QUEUE = "bench-baseline"
TASK = "bench.baseline.send_one"


def make_app(broker: str, keyprefix: str = "") -> Celery:
    """The baseline's Celery app (also used by the harness to publish its tasks)."""
    app = Celery("bench-baseline", broker=broker, set_as_current=False)
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                    task_default_queue=QUEUE, worker_hijack_root_logger=False,
                    broker_connection_retry_on_startup=True,
                    broker_transport_options={"global_keyprefix": keyprefix} if keyprefix else {})
    return app


app = make_app(os.environ.get("BENCH_BASELINE_BROKER", "redis://127.0.0.1:6379/13"),
               os.environ.get("BENCH_BASELINE_KEYPREFIX", ""))
GATEWAY = os.environ.get("BENCH_BASELINE_GATEWAY", "http://127.0.0.1:8765/api/v1")
API_KEY = os.environ.get("BENCH_BASELINE_API_KEY", "simulator-key")
_session = requests.Session()  # no request is made before the pool forks: each child opens its own


@app.task(name=TASK, bind=True, max_retries=3)
def send_one(self: Any, number: str, text: str, sender_id: str, template_id: str, channel: int,
             is_unicode: int) -> None:
    """Send one SMS with send-single-sms; retry a failed connection a few times."""
    fields = {"recipient": number, "message": text, "sender_id": sender_id, "template_id": template_id,
              "channel": str(channel), "is_unicode": str(is_unicode)}
    try:
        resp = _session.post(f"{GATEWAY}/send-single-sms", data=fields, headers={"key": API_KEY},
                             timeout=(3.05, 30))
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise self.retry(exc=exc, countdown=1) from exc
    body = resp.json()
    if body.get("status") != "success":
        raise RuntimeError(f"send-single-sms refused: {body.get('message')}")
