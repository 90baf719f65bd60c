"""The names of every metric and label omniq_trio exports (docs/reference/metrics.md).

Metric and label names all start with ``omniq_``, so that they never collide
with the labels Prometheus adds to a target (``job``, ``instance``) or with
another exporter's.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "DURATION_BUCKETS",
    "LABEL_FUNCTION",
    "LABEL_HOSTNAME",
    "LABEL_OUTCOME",
    "LABEL_QUEUE",
    "LABEL_STATUS",
    "LABEL_WORKER_ID",
    "WAIT_BUCKETS",
]

LABEL_FUNCTION: Final = "omniq_function"
LABEL_QUEUE: Final = "omniq_queue"
LABEL_OUTCOME: Final = "omniq_outcome"
LABEL_STATUS: Final = "omniq_status"
LABEL_WORKER_ID: Final = "omniq_worker_id"
LABEL_HOSTNAME: Final = "omniq_hostname"

#: Seconds, for run durations: from a no-op (milliseconds) to an hour-long job.
DURATION_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)  # fmt: skip
#: Seconds, for waits from due to start: an idle pool starts a task within
#: milliseconds; a backlog makes tasks wait minutes or hours.
WAIT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 4 * 3600.0,
)  # fmt: skip
