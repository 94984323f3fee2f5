"""The webhook HTTP client: an aiohttp session on the endpoint of an Airflow HTTP connection, as the HTTP provider's
async hook resolves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from birthday_pipeline.deliver.fanout import Post, Reply
from birthday_pipeline.settings import Settings

# The most bytes of a reply body the webhook client reads: the status decides the outcome, the body is read only
# so that a short one leaves its connection free for the next request.
REPLY_BYTES_READ = 4096

# Connection extras the client decides itself (no redirects, our timeout, our own status checks) or that
# aiohttp does not take (the hook drops these too).
_OPTIONS_WE_SET = frozenset({"allow_redirects", "timeout", "check_response", "stream", "cert", "trust_env"})


@asynccontextmanager
async def webhook_client(conn_id: str, settings: Settings) -> AsyncIterator[Post]:
    """POSTs to the endpoint of connection ``conn_id`` as the HTTP provider's async hook resolves it (URL, the
    connection's extra headers and auth): one session, no redirects, a timeout for the whole request, and at
    most ``REPLY_BYTES_READ`` of each reply's body read, never decompressed.

    The hook resolves the connection once; each request then goes straight to the aiohttp session. Sending
    each request through the hook's ``run`` spent more CPU than the request itself (a retrying wrapper per
    call whose retries we never use: retries are this pipeline's own), which capped a send task near half
    of what the endpoint can take (docs/performance.md). The session's connector allows
    ``max_in_flight`` connections, where aiohttp's default would cap every task at 100.
    """
    import aiohttp
    from airflow.providers.http.hooks.http import HttpAsyncHook

    hook = HttpAsyncHook(method="POST", http_conn_id=conn_id, retry_limit=1)
    config = await hook.config()
    timeout = aiohttp.ClientTimeout(total=settings.request_timeout_seconds)
    options = {name: value for name, value in (config.extra_options or {}).items() if name not in _OPTIONS_WE_SET}
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight, socket_factory=_small_receive_buffer_socket)
    # A reply's body is never decompressed and read only up to REPLY_BYTES_READ, so a huge body or a gzip bomb
    # costs each request a few kilobytes; the small read buffer pauses a fast sender before it fills more.
    async with aiohttp.ClientSession(
        connector=connector, headers=config.headers, auth=config.auth, timeout=timeout, auto_decompress=False,
        read_bufsize=REPLY_BYTES_READ,
    ) as session:

        async def post(body: bytes, headers: dict[str, str]) -> Reply:
            async with session.post(config.base_url, data=body, headers=headers, allow_redirects=False,
                                    **options) as response:
                await _read_at_most(response.content, REPLY_BYTES_READ)
                if not response.content.at_eof():
                    response.close()  # the rest of the body is never read: the connection cannot serve another
            return Reply(response.status, response.headers.get("Retry-After"))

        yield post


def _small_receive_buffer_socket(address: Any) -> Any:
    """A socket whose kernel receive buffer holds REPLY_BYTES_READ bytes (Linux doubles it), so one read of it
    hands aiohttp no more than that, where the default buffer let each connection take in 200 KB at once."""
    import socket

    family, kind, protocol, _, _ = address
    sock = socket.socket(family=family, type=kind, proto=protocol)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, REPLY_BYTES_READ)
    return sock


async def _read_at_most(content: Any, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of a reply body (all of a short one, so its connection is reused)."""
    while limit > 0 and (chunk := await content.read(limit)):
        limit -= len(chunk)
