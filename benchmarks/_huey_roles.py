"""The huey side of ``benchmarks/compare.py``, role for role as ``_omniq_roles``.

    python -m benchmarks._huey_roles produce --n N [--producers P]
    python -m benchmarks._huey_roles worker [--n N]
    python -m benchmarks._huey_roles monitor
    python -m benchmarks._huey_roles latency --samples S

The worker is huey's thread consumer with 4 workers and its default polling
(``huey_consumer -w 4 -k thread``). It counts completions with huey's
``SIGNAL_COMPLETE`` and says when the ``n``-th finished: a no-op stores no
result to look for.
"""

from __future__ import annotations

import argparse
import threading
import time

from huey.consumer import Consumer
from huey.signals import SIGNAL_COMPLETE

from ._huey_app import huey, noop_sync, since
from ._procs import say, wait_for_go


def produce(n: int, producers: int) -> None:
    say("ready")
    wait_for_go()

    def producer(count: int) -> None:
        for _ in range(count):
            noop_sync()

    threads = [
        threading.Thread(target=producer, args=(n // producers + (i < n % producers),))
        for i in range(producers)
    ]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end = time.time()
    say("result", {"n": n, "start": start, "end": end})


def work(n: int) -> None:
    lock = threading.Lock()
    done = 0

    @huey.signal(SIGNAL_COMPLETE)
    def completed(signal: str, task: object) -> None:
        nonlocal done
        with lock:
            done += 1
            if done == n:
                say("result", {"last_finish": time.time()})

    consumer = Consumer(huey, workers=4, worker_type="thread")
    say("ready", {"at": time.time()})
    consumer.run()  # until SIGINT (graceful)


def monitor(interval: float) -> None:
    say("ready")
    try:
        while True:
            huey.pending_count()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass


def latency(samples: int, gap: float) -> None:
    say("ready")
    wait_for_go()
    since(time.time()).get(blocking=True, timeout=60)
    results = []
    for _ in range(samples):
        results.append(since(time.time()))
        time.sleep(gap)
    say("result", {"latencies_ms": [r.get(blocking=True, timeout=60) * 1000 for r in results]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["produce", "worker", "monitor", "latency"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--func", default="noop_sync")  # the only no-op huey has here
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.005)
    args = parser.parse_args()
    if args.role == "produce":
        produce(args.n, args.producers)
    elif args.role == "worker":
        work(args.n)
    elif args.role == "monitor":
        monitor(args.interval)
    else:
        latency(args.samples, args.gap)


if __name__ == "__main__":
    main()
