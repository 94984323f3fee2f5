"""The test webhook receiver answers as programmed and records what it received."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.webhook_receiver import WebhookReceiver

def _post(url: str, body: bytes) -> int:
    """POST ``body`` as JSON and return the HTTP status the client saw."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def test_receiver_answers_queued_statuses_then_200() -> None:
    with WebhookReceiver() as receiver:
        receiver.respond_with(500, 503)
        bodies = [json.dumps({"attempt": attempt}).encode() for attempt in range(3)]

        statuses = [_post(f"{receiver.url}/hooks/birthday", body) for body in bodies]

        assert statuses == [500, 503, 200]
        recorded = receiver.requests
        assert [request.status for request in recorded] == [500, 503, 200]
        assert [request.body for request in recorded] == bodies
        assert [request.json for request in recorded] == [{"attempt": attempt} for attempt in range(3)]
        assert {request.path for request in recorded} == {"/hooks/birthday"}
        assert recorded[0].headers["content-type"] == "application/json"
