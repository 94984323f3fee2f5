"""A webhook endpoint with a fixed latency, in its own process: ``python -m benchmarks.receiver PORT LATENCY``.

It answers every POST with 200 after LATENCY seconds and does nothing else, so what a benchmark measures
is the sender. Running in its own process, it does not compete with the sender for one interpreter's lock.
Prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


def main(port: int, latency: float) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # A deep accept queue: thousands of connections open at the same instant.
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
