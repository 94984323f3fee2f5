"""A hostile HTTP endpoint on 127.0.0.1 for tests of what a reply may cost: raw asyncio streams, so it can send
what no well-behaved server would (a 200 MB body, a gzip bomb, a trickle, a broken reply, a reset, no answer).

It runs its own event loop in a background thread. ``answer`` maps each request's path to a ``Reply`` name;
every request's path and body are kept (``requests``). Nothing it sends is held in memory whole: the huge body
is one 64 KiB chunk written again and again, the bomb is compressed once, in chunks.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from tests.webhook_receiver import reserved_port

HUGE = "huge"  # 200 OK with a 200 MB body
GZIP_BOMB = "gzip_bomb"  # 200 OK, Content-Encoding: gzip, about 200 KB that inflate to 200 MB
TRICKLE = "trickle"  # 200 OK, then its 100 KB body one byte every 50 ms
MALFORMED = "malformed"  # not HTTP at all, then the connection closes
RESET = "reset"  # the connection reset (RST) without a byte of answer
HANG = "hang"  # no answer, the connection held open
Reply = str | int  # one of the names above, or a status answered with a short JSON body

HUGE_BYTES = 200 * 1024 * 1024
_CHUNK = bytes(64 * 1024)
_TRICKLE_BYTES = 100_000
_TRICKLE_INTERVAL_SECONDS = 0.05
_START_STOP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes


def gzip_bomb(inflated_bytes: int = HUGE_BYTES) -> bytes:
    """A gzip stream of ``inflated_bytes`` zero bytes, compressed chunk by chunk (about 1/1000 of its size)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [compressor.compress(_CHUNK) for _ in range(inflated_bytes // len(_CHUNK))]
    parts.append(compressor.flush())
    return b"".join(parts)


class HostileEndpoint:
    """Use ``with HostileEndpoint(answer) as endpoint: ...``; ``endpoint.url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self, answer: Callable[[str], Reply]) -> None:
        self._answer = answer
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self._bomb: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hostile-endpoint", daemon=True)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def __enter__(self) -> HostileEndpoint:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(_START_STOP_TIMEOUT_SECONDS)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(_START_STOP_TIMEOUT_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_START_STOP_TIMEOUT_SECONDS)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on the connection
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode("latin-1")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length)
                with self._lock:
                    self._requests.append(Request(path, body))
                if not await self._reply(self._answer(path), writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away, as it should once it has read enough
        finally:
            writer.close()

    async def _reply(self, reply: Reply, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; whether the connection may carry another."""
        if isinstance(reply, int):
            body = b'{"ok": true}'
            writer.write(_head(reply, len(body)) + body)
            await writer.drain()
            return True
        if reply == HUGE:
            writer.write(_head(200, HUGE_BYTES))
            for _ in range(HUGE_BYTES // len(_CHUNK)):
                writer.write(_CHUNK)
                await writer.drain()
        elif reply == GZIP_BOMB:
            if self._bomb is None:
                self._bomb = gzip_bomb()
            writer.write(_head(200, len(self._bomb), "Content-Encoding: gzip\r\n") + self._bomb)
            await writer.drain()
        elif reply == TRICKLE:
            writer.write(_head(200, _TRICKLE_BYTES))
            for _ in range(_TRICKLE_BYTES):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(_TRICKLE_INTERVAL_SECONDS)
        elif reply == MALFORMED:
            writer.write(b"\x00\x01 this is not HTTP\r\n\r\n")
            await writer.drain()
        elif reply == RESET:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif reply == HANG:
            await asyncio.sleep(3600)
        else:
            raise ValueError(f"unknown reply {reply!r}")
        return False


def _head(status: int, length: int, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            f"{extra}\r\n").encode("latin-1")


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 nobody listens on, for the ``with`` block: connecting is refused. It stays bound
    meanwhile, so no other process's server (another pytest-xdist worker's) takes it and answers."""
    with reserved_port() as reservation:
        yield reservation.getsockname()[1]
