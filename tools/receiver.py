"""A local webhook receiver for `make run` and docker compose: prints each birthday message as it arrives.

It verifies the Standard Webhooks signature when ``BIRTHDAY_WEBHOOK_SECRET`` is set (401 for a bad
signature or a timestamp more than five minutes off), and de-duplicates by ``webhook-id``: a repeated
delivery is answered 200 and reported as a duplicate, never printed as a new message.

    python -m tools.receiver --host 127.0.0.1 --port 8000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import unicodedata
from datetime import UTC, datetime
from typing import TextIO

from aiohttp import web

from birthday_pipeline.deliver.webhooks import verify

SECRET_ENV = "BIRTHDAY_WEBHOOK_SECRET"  # noqa: S105 - the name of the variable holding it
TOLERANCE_SECONDS = 5 * 60


def make_app(secret: str | None, out: TextIO) -> web.Application:
    seen: set[str] = set()

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        timestamp = request.headers.get("webhook-timestamp", "")
        if secret:
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
                return _refuse(out, webhook_id, "stale or missing webhook-timestamp")
            if not verify(secret, webhook_id, timestamp, body, request.headers.get("webhook-signature", "")):
                return _refuse(out, webhook_id, "bad webhook-signature")
        arrived = datetime.now(UTC).isoformat(timespec="milliseconds")
        if webhook_id in seen:
            print(f"{arrived} duplicate {webhook_id} ignored", file=out, flush=True)
            return web.json_response({"ok": True, "duplicate": True})
        seen.add(webhook_id)
        message = json.loads(body).get("message", "") if body else ""
        print(f"{arrived} #{len(seen)} {webhook_id}: {printable(str(message))}", file=out, flush=True)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


def printable(text: str) -> str:
    """``text`` for a terminal: control and format characters (ESC sequences, BEL, U+202E, ...) as escapes."""
    return "".join(character.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(character) in ("Cc", "Cf") else character for character in text)


def _refuse(out: TextIO, webhook_id: str, reason: str) -> web.Response:
    print(f"rejected {webhook_id or '(no webhook-id)'}: {reason}", file=out, flush=True)
    return web.json_response({"ok": False, "error": reason}, status=401)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print birthday webhooks as they arrive.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    arguments = parser.parse_args()
    secret = os.environ.get(SECRET_ENV) or None
    print(f"Receiver on http://{arguments.host}:{arguments.port} (signatures "
          f"{'checked' if secret else 'not checked: no ' + SECRET_ENV})", flush=True)
    web.run_app(make_app(secret, sys.stdout), host=arguments.host, port=arguments.port, print=None)


if __name__ == "__main__":
    main()
