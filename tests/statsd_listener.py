"""A real StatsD listener for tests: a UDP socket on 127.0.0.1 that keeps every metric line it receives."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from types import TracebackType


@dataclasses.dataclass(frozen=True)
class Metric:
    """One StatsD line, ``name:value|type``: ``c`` counter, ``ms`` timer, ``g`` gauge."""

    name: str
    value: float
    kind: str


class StatsdListener:
    """Receives StatsD datagrams in a background thread; ``metrics`` are the lines received so far."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="statsd-listener", daemon=True)

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._socket.close()

    def _receive(self) -> None:
        while not self._stopped.is_set():
            try:
                datagram = self._socket.recv(65535)
            except TimeoutError:
                continue
            with self._lock:
                self._lines.extend(line for line in datagram.decode().split("\n") if line)

    def metrics(self, settle_seconds: float = 0.5) -> list[Metric]:
        """Every metric received, after ``settle_seconds`` for datagrams still on their way."""
        time.sleep(settle_seconds)
        with self._lock:
            lines = list(self._lines)
        parsed = []
        for line in lines:
            name, rest = line.split(":", 1)
            value, kind = rest.split("|")[:2]
            parsed.append(Metric(name, float(value), kind))
        return parsed
