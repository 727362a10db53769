"""Group commit of single-message POSTs: the requests one API process has in flight share a transaction.

Each ``POST /v1/messages`` is validated on the event loop (``Dispatcher.prepare_sms``: nothing written),
then handed to this process's committer thread and awaited. The thread takes every request waiting (at
most ``API_COMMIT_GROUP_MAX``), takes their keys' rate-limit budgets in one Redis round trip, writes the
admitted ones with ``Dispatcher.commit_sms`` (one transaction, one push of the new ids), and answers
each request with its own outcome. Nothing waits on a timer: while one group is being written the next
one gathers, so a lone request is written at once and a busy process writes many per transaction.

Guarantees are those of ``send_sms``: a request is answered ``202`` only after its row is committed;
a database failure fails the group's requests with 503 and writes none of them; one request's unexpected
database error does not fail the others (the group is retried one request at a time).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from ..api import Dispatcher, PendingSms, Submitted
from ..errors import StorageUnavailable
from ..store.api_keys import ApiKeyRecord
from .auth import Authenticator

log = logging.getLogger(__name__)

Outcome = Submitted | BaseException


@dataclass(frozen=True)
class _Request:
    pending: PendingSms
    key: ApiKeyRecord
    future: asyncio.Future[Submitted]
    loop: asyncio.AbstractEventLoop


def _settle(answers: list[tuple[asyncio.Future[Submitted], Outcome]]) -> None:
    """On the request's event loop: give each future its outcome (unless the request went away)."""
    for future, outcome in answers:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class Committer:
    """One per API process; its thread starts with the first request (after any fork)."""

    def __init__(self, dispatcher: Dispatcher, authenticator: Authenticator, *, group_max: int) -> None:
        self.dispatcher = dispatcher
        self.authenticator = authenticator
        self.group_max = group_max
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    async def submit(self, pending: PendingSms, key: ApiKeyRecord) -> Submitted:
        """Commit one validated request (after its key's rate limit); what ``submit_sms`` returns or
        raises for it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Submitted] = loop.create_future()
        self._start()
        self._queue.put(_Request(pending, key, future, loop))
        return await future

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="api-committer", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self.group_max:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                outcomes = self.commit(group)
            except BaseException as exc:  # noqa: BLE001 - the thread must live on; each request gets 500
                log.exception("api: committing %d request(s) failed", len(group))
                outcomes = [exc] * len(group)
            self._answer(group, outcomes)

    def commit(self, group: list[_Request]) -> list[Outcome]:
        """Per request of ``group``: its rate-limit refusal, or its commit outcome."""
        outcomes: list[Outcome | None] = list(self.authenticator.rate_limit([r.key for r in group]))
        admitted = [i for i, o in enumerate(outcomes) if o is None]
        for i, done in zip(admitted, self._write([group[i].pending for i in admitted]), strict=True):
            outcomes[i] = done
        return [o for o in outcomes if o is not None]

    def _write(self, items: list[PendingSms]) -> list[Outcome]:
        if not items:
            return []
        try:
            return list(self.dispatcher.commit_sms(items))
        except StorageUnavailable as exc:  # nothing was written: every request of the group is a 503
            return [exc] * len(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            # A database error only one request can cause must not fail the others: each one alone.
            log.warning("api: a group of %d request(s) failed (%s); committing them one at a time",
                        len(items), exc.__class__.__name__)
            return [self._write([item])[0] for item in items]

    @staticmethod
    def _answer(group: list[_Request], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Submitted], Outcome]]] = {}
        for r, outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(r.loop, []).append((r.future, outcome))
        for loop, answers in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:  # that loop closed (the process is stopping): nobody waits any more
                pass
