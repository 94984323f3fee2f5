"""One send task in its own process, for tests of senders racing on the same rows or the same endpoint.

    python -m tests.concurrent_sender DATABASE_URL WEBHOOK_URL FIRST_ID LAST_ID SEND_AT|sweep START_AT SETTINGS_JSON

Every sender sleeps until START_AT (a Unix time) so they claim at the same moment; SETTINGS_JSON holds
the text of ``birthday_settings`` (``{"send_local_time": "09:00:00"}``). Prints the rows it claimed.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime

import psycopg2

from birthday_pipeline.deliver.delivery import Sender, deliver_batch
from birthday_pipeline.plan.planning import ReleaseBatch
from birthday_pipeline.settings import Settings
from tests.integration.test_delivery import aiohttp_client


def main(database_url: str, webhook_url: str, first_id: str, last_id: str, send_at: str, start_at: str,
         settings_json: str) -> None:
    batch = ReleaseBatch(None if send_at == "sweep" else datetime.fromisoformat(send_at), int(first_id),
                         int(last_id), 0)
    settings = Settings.from_variable_text(settings_json)
    sender = Sender(connect=lambda: psycopg2.connect(database_url), open_client=aiohttp_client(webhook_url),
                    settings=settings, endpoint=webhook_url)
    conn = sender.connect()
    time.sleep(max(0.0, float(start_at) - time.time()))
    summary = deliver_batch(conn, batch, sender)
    print(summary.claimed)


if __name__ == "__main__":
    main(*sys.argv[1:])
