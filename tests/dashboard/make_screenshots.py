"""Screenshots of every dashboard page for the docs (``docs/images/dashboard-*.png``).

Run it by hand after changing how a page looks::

    .venv/bin/python -m tests.dashboard.make_screenshots [--seconds 150]

It runs real work for ``--seconds`` (two worker pools on a memory store, a
varying stream of tasks, some failing), so the throughput chart shows what it
measured, then opens each page in Debian's chromium.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Final

import trio
from playwright.sync_api import FloatRect

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.dashboard import dash_tasks
from tests.dashboard._server import served_dashboard
from tests.dashboard.browser import launch_browser

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
_TOP_OF_PAGE: Final = FloatRect(x=0, y=0, width=1280, height=820)
PEOPLE = ["ada", "grace", "alan", "edsger", "barbara", "donald", "margaret", "ken"]


async def _steady_stream(omniq: AsyncOmniQ, seconds: float) -> None:
    """Tasks at a rate that rises and falls, a few failing, for ``seconds``."""
    start = trio.current_time()
    tick = 0
    while (elapsed := trio.current_time() - start) < seconds:
        rate = int(6 + 5 * math.sin(elapsed / 25))
        for i in range(rate):
            person = PEOPLE[(tick + i) % len(PEOPLE)]
            await omniq.enqueue(
                dash_tasks.send_email, f"{person}@example.com", "Your weekly report", queue="emails"
            )
        await omniq.enqueue(dash_tasks.resize_image, f"uploads/{tick:04d}.jpg", 640)
        if tick % 9 == 4:
            await omniq.enqueue(dash_tasks.charge_card, 4000 + tick, 1299, queue="payments")
        tick += 1
        await trio.sleep(1)


async def _final_states(omniq: AsyncOmniQ) -> dict[str, str]:
    """Tasks in every state, and the ids worth a screenshot."""
    waiting = [
        await omniq.enqueue(
            dash_tasks.send_email, f"{p}@example.com", "Reminder", delay=3600, queue="emails"
        )
        for p in PEOPLE[:5]
    ]
    await omniq.cancel(waiting[0])
    await omniq.enqueue(dash_tasks.charge_card, 5011, 4999, max_retries=8, queue="payments")
    for warehouse in ("berlin", "lyon"):
        await omniq.enqueue(dash_tasks.sync_inventory, warehouse)
    failed = await omniq.enqueue(
        dash_tasks.charge_card, 5012, 2599, currency="EUR", queue="payments"
    )
    await omniq.get_result(failed, wait=True, timeout=10)
    emails = await omniq.list_tasks(status=TaskStatus.SUCCESS)
    while len(await omniq.list_tasks(status=TaskStatus.RUNNING)) < 2:  # noqa: ASYNC110
        await trio.sleep(0.05)
    # the registry says what a pool runs as of its next heartbeat
    while not any(w.running for w in await omniq.list_workers()):  # noqa: ASYNC110
        await trio.sleep(0.2)
    return {"failed": failed, "success": emails[-1].id}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=150.0, help="of work before the shots")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    dash_tasks.reset_gate()
    with served_dashboard(token="screenshots", refresh_interval=600.0) as served:
        served.start_worker(concurrency=4)
        served.start_worker(concurrency=4)
        began = time.monotonic()
        served.call(_steady_stream, served.omniq, args.seconds)
        ids = served.call(_final_states, served.omniq)
        print(f"ran {time.monotonic() - began:.0f}s of work")
        base = served.url.partition("?")[0]
        with launch_browser() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 640})
            page.goto(served.url)  # trades the token for the session cookie
            shots = {
                "dashboard-overview.png": "",
                "dashboard-tasks.png": "tasks",
                "dashboard-task-failed.png": f"tasks/{ids['failed']}",
                "dashboard-task.png": f"tasks/{ids['success']}",
                "dashboard-workers.png": "workers",
            }
            for name, path in shots.items():
                page.goto(base + path)
                page.wait_for_selector("main")
                if name == "dashboard-tasks.png":  # the first rows, as a reader sees them
                    page.screenshot(path=IMAGES / name, full_page=True, clip=_TOP_OF_PAGE)
                else:
                    page.screenshot(path=IMAGES / name, full_page=True)
                print(f"saved docs/images/{name}")
        served.call(_open_gate)


async def _open_gate() -> None:
    dash_tasks.gate.set()
    await trio.lowlevel.checkpoint()


if __name__ == "__main__":
    main()
