"""``max_requests_per_second`` holds for an endpoint across send tasks running at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from tests.webhook_receiver import paced_ceiling

RATE = 40
ROWS_PER_TASK = 120


def test_two_concurrent_send_tasks_share_one_endpoint_rate(db, webhook, app_database_url, processes) -> None:
    instant = (datetime.now(UTC) - timedelta(seconds=1)).replace(microsecond=0)
    born = instant.date().replace(year=1990)
    with db.cursor() as cursor:
        cursor.execute(
            "INSERT INTO users (id, first_name, last_name, birthday, timezone)"
            " SELECT id, 'F', 'L', %s, 'UTC' FROM generate_series(1, %s) AS id",
            (born, 2 * ROWS_PER_TASK),
        )
        cursor.execute("INSERT INTO notifications (user_id, occasion_date, send_at) SELECT id, %s, %s FROM users",
                       (instant.date(), instant))
    db.commit()
    start_at = str(time.time() + 10)  # both processes are up and claim together
    settings = json.dumps({"send_local_time": instant.strftime("%H:%M:%S"), "max_requests_per_second": str(RATE)})

    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.concurrent_sender", app_database_url, webhook.url, str(first_id),
             str(first_id + ROWS_PER_TASK - 1), "sweep", start_at, settings],
            stdout=subprocess.PIPE, text=True,
        )
        for first_id in (1, ROWS_PER_TASK + 1)
    ]
    processes.extend(senders)
    claimed = [int(sender.communicate(timeout=120)[0].split()[-1]) for sender in senders]

    assert claimed == [ROWS_PER_TASK, ROWS_PER_TASK]
    times = sorted(request.received_at for request in webhook.requests)
    assert len(times) == 2 * ROWS_PER_TASK
    # Slots are 1/RATE apart across both tasks, so no second holds more than the receiver's paced ceiling; without
    # the shared rate two tasks send 240 in well under 1 s.
    busiest = max(sum(1 for t in times[i:] if t < start + 1) for i, start in enumerate(times))
    assert busiest <= paced_ceiling(RATE), f"{busiest} requests within one second"
    assert times[-1] - times[0] >= (len(times) - 1) / RATE * 0.95
    # The tasks sent at the same time, interleaved, not one after the other.
    spans = [[request.received_at for request in webhook.requests
              if (request.json["user_id"] <= ROWS_PER_TASK) == first] for first in (True, False)]
    overlap = min(max(span) for span in spans) - max(min(span) for span in spans)
    assert overlap >= 0.8 * (times[-1] - times[0]), f"the tasks overlapped for {overlap:.1f} s only"
