"""The receiver `make run` starts: a real process that checks signatures and prints each message once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

from birthday_pipeline.deliver.messages import Renderer
from birthday_pipeline.deliver.webhooks import request_headers
from birthday_pipeline.settings import Settings
from tests.real_services import free_port

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_receiver_verifies_signatures_and_prints_each_message_once() -> None:
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "tools.receiver", "--port", str(port)],
        cwd=PROJECT_DIR, env={**os.environ, "BIRTHDAY_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.1)
        body = Renderer(Settings()).body(1, 42, "Ada", "Lovelace", "birthday", date(2026, 12, 15), None, None, "wh-1")
        signed = request_headers("wh-1", int(time.time()), body, SECRET)

        assert post(url, body, signed) == 200
        assert post(url, body, signed) == 200  # a re-delivery of the same webhook-id
        assert post(url, body, {**signed, "webhook-signature": "v1,AAAA"}) == 401
        assert post(url, body, request_headers("wh-2", int(time.time()) - 301, body, SECRET)) == 401
        assert post(url, body, request_headers("wh-3", int(time.time()) + 301, body, SECRET)) == 401
        assert post(url, body, request_headers("wh-4", int(time.time()) - 280, body, SECRET)) == 200
        # The Standard Webhooks spec's own vector: a valid signature, but its timestamp is years old.
        spec_body = b'{"test": 2432232314}'
        spec_headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
        assert post(url, spec_body, spec_headers) == 401
    finally:
        receiver.terminate()
        output = receiver.communicate(timeout=10)[0]

    assert output.count("wh-1: Hey, Ada Lovelace it's your birthday") == 1
    assert output.count("wh-4: Hey, Ada Lovelace it's your birthday") == 1
    assert "duplicate wh-1 ignored" in output
    assert "rejected wh-1: bad webhook-signature" in output
    assert "rejected wh-2: stale or missing webhook-timestamp" in output
    assert "rejected wh-3: stale or missing webhook-timestamp" in output
    assert "rejected msg_p5jXN8AQM9LWM0D4loKWxJek: stale or missing webhook-timestamp" in output
