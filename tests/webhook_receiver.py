"""A real HTTP webhook receiver for integration tests and its ``receiver`` fixture.

The receiver is an aiohttp server on ``127.0.0.1`` (a free port) running its own event loop in a
background thread, so synchronous test code can send it requests and inspect what it recorded. Its port stays
reserved from the first ``start()`` to the end of the ``with`` block, while stopped too: under pytest-xdist
another worker's server could otherwise take the freed port and answer during a test's outage.
Every setter and getter takes a lock: the test thread programs answers while the server thread serves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

DEFAULT_STATUS = 200
# How much later than the others a request sent on its slot may reach the receiver, its handler stamping
# ``received_at``: on a loaded machine (the suite's workers on 2 cores, the sender and this receiver's thread
# waiting for the CPU or the GIL) a request can be held back this long while the next ones arrive on time.
RECEIVER_JITTER_SECONDS = 0.1
_START_STOP_TIMEOUT_SECONDS = 10.0
_SHUTDOWN_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it.

    ``headers`` has lower-cased names (the last value wins for a repeated header); ``json`` is the parsed
    body, or ``None`` when the body is empty or not JSON; ``received_at`` is ``time.time()`` taken when
    the handler started; ``status`` is the status the receiver answered (or was answering, if a delayed
    answer was still pending); ``answered_at`` is ``time.time()`` when the handler returned its answer
    (``None`` while a delayed answer is pending).
    """

    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    received_at: float
    status: int
    answered_at: float | None = None


@dataclass(frozen=True)
class Answer:
    """How ``answer_with``'s policy answers one request: a status, extra headers and a delay."""

    status: int = DEFAULT_STATUS
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0


class WebhookReceiver:
    """An HTTP server that accepts ``POST`` on any path, records each request and answers as programmed.

    Answers default to ``200`` with ``{"ok": true}``. ``respond_with`` queues statuses for the next
    requests, ``always`` fixes the status for everything after the queue, and ``delay_seconds`` delays
    every answer; ``answer_with`` replaces all three with a policy that sees each request. Use
    ``start()``/``stop()`` or ``with WebhookReceiver() as receiver: ...``; a receiver started again after
    ``stop()`` listens on the same port, as a webhook endpoint back from an outage.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: deque[int] = deque()
        self._fallback_status = DEFAULT_STATUS
        self._delay_seconds = 0.0
        self._requests: list[ReceivedRequest] = []
        self._policy: Callable[[ReceivedRequest], Answer] | None = None
        self._reserved: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``; any path below it is accepted."""
        if self._port is None:
            raise RuntimeError("the webhook receiver is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def delay_seconds(self) -> float:
        """Seconds every handler sleeps before answering (0 by default)."""
        with self._lock:
            return self._delay_seconds

    @delay_seconds.setter
    def delay_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        with self._lock:
            self._delay_seconds = float(seconds)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A copy of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def respond_with(self, *statuses: int) -> None:
        """Queue ``statuses`` to answer the next requests in order; afterwards the fallback status applies."""
        with self._lock:
            self._queued.extend(statuses)

    def always(self, status: int) -> None:
        """Answer ``status`` to every request from now on, dropping any queued statuses."""
        with self._lock:
            self._queued.clear()
            self._fallback_status = status

    def answer_with(self, policy: Callable[[ReceivedRequest], Answer] | None) -> None:
        """Answer every request with ``policy(request)`` (called under the lock; None: back to the queue)."""
        with self._lock:
            self._policy = policy

    def clear(self) -> None:
        """Forget the requests received so far (programmed answers are kept)."""
        with self._lock:
            self._requests.clear()

    def start(self) -> WebhookReceiver:
        """Start serving in a background thread; returns ``self`` once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("the webhook receiver is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="webhook-receiver", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), loop).result(_START_STOP_TIMEOUT_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server and its thread; requests in flight get at most a short grace period."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_shut_down(runner), loop).result(
                _START_STOP_TIMEOUT_SECONDS + _SHUTDOWN_TIMEOUT_SECONDS
            )
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_START_STOP_TIMEOUT_SECONDS)
            loop.close()
            self._loop = self._thread = self._runner = None
            self._port = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def _serve(self) -> None:
        """Serve on the receiver's reserved port on 127.0.0.1 (runs on the receiver's loop)."""
        if self._reserved is None:
            self._reserved = reserved_port()
        port = self._reserved.getsockname()[1]
        app = web.Application()
        app.router.add_route("POST", "/{path:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
        self._port = port

    async def _handle(self, request: web.Request) -> web.Response:
        """Record the request, then answer the next programmed status after the configured delay."""
        received_at = time.time()
        body = await request.read()
        received = ReceivedRequest(
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            json=_parse_json(body),
            received_at=received_at,
            status=DEFAULT_STATUS,
        )
        with self._lock:
            if self._policy is not None:
                answer = self._policy(received)
            else:
                status = self._queued.popleft() if self._queued else self._fallback_status
                answer = Answer(status, {}, self._delay_seconds)
            recorded = dataclasses.replace(received, status=answer.status)
            position = len(self._requests)
            self._requests.append(recorded)
        if answer.delay_seconds:
            await asyncio.sleep(answer.delay_seconds)
        with self._lock:
            if position < len(self._requests) and self._requests[position] is recorded:  # not cleared meanwhile
                self._requests[position] = dataclasses.replace(recorded, answered_at=time.time())
        return web.json_response({"ok": 200 <= answer.status < 300}, status=answer.status, headers=answer.headers)


def reserved_port() -> socket.socket:
    """A socket bound to a free port on 127.0.0.1 and not listening: connecting to the port is refused, no server
    picks it as a free port, and one of this process binds it beside the reservation with ``SO_REUSEPORT``
    (the kernel hands connections only to listening sockets). Close it to give the port back."""
    reservation = socket.socket()
    try:
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reservation.bind(("127.0.0.1", 0))
    except BaseException:
        reservation.close()
        raise
    return reservation


async def _shut_down(runner: web.AppRunner | None) -> None:
    """Close the server, then cancel what is still pending, such as handlers whose client went away."""
    if runner is not None:
        await runner.cleanup()
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def paced_ceiling(rate: float) -> int:
    """The most requests sent at most ``rate`` per second, one slot every 1/``rate`` s, that this receiver may
    stamp within one second: the second's own slots and the one on its boundary, plus those of the
    RECEIVER_JITTER_SECONDS before it that arrived late."""
    return math.floor(rate * (1 + RECEIVER_JITTER_SECONDS)) + 1


def _parse_json(body: bytes) -> Any:
    """The parsed JSON body, or ``None`` when it is empty or not valid UTF-8 JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return None


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A started ``WebhookReceiver``, stopped when the test ends."""
    with WebhookReceiver() as started:
        yield started
