"""A real browser on the dashboard: Debian's chromium, headless, driven by Playwright.

It loads the overview, watches the counts change while a worker runs (the page
refreshes itself; it is never reloaded), opens a task and cancels it. Skipped,
with the reason shown, only where no browser is installed (``.ci/run``
installs Debian's ``chromium``).
"""

from __future__ import annotations

import pytest
import trio

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.dashboard import dash_tasks
from tests.dashboard._server import served_dashboard
from tests.dashboard.browser import launch_browser, missing_browser

MISSING = missing_browser()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"no browser test: {MISSING}")


async def _enqueue(omniq: AsyncOmniQ) -> tuple[list[str], str]:
    gated = [await omniq.enqueue(dash_tasks.gated, n) for n in range(3)]
    later = await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "later", delay=3600)
    return gated, later


async def _open_gate() -> None:
    dash_tasks.gate.set()
    await trio.lowlevel.checkpoint()


def test_a_browser_watches_the_queue_move_opens_a_task_and_cancels_it() -> None:
    from playwright.sync_api import expect

    dash_tasks.reset_gate()
    with served_dashboard(token="browser-token", refresh_interval=0.2) as served:
        _, later = served.call(_enqueue, served.omniq)
        with launch_browser() as browser:
            page = browser.new_page()
            page.on("dialog", lambda dialog: dialog.accept())  # "Cancel this task?"
            # a script error or a CSP refusal shows on the console
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            page.goto(served.url)
            assert "token" not in page.url  # traded for a session cookie
            count = page.locator
            expect(count('[data-count="pending"]')).to_have_text("4")
            expect(count('[data-count="success"]')).to_have_text("0")
            page.evaluate("window.notReloaded = true")

            served.start_worker(concurrency=3)
            expect(count('[data-count="running"]')).to_have_text("3")
            expect(count('[data-count="pending"]')).to_have_text("1")
            served.call(_open_gate)
            expect(count('[data-count="success"]')).to_have_text("3")
            expect(count('[data-count="running"]')).to_have_text("0")
            assert page.evaluate("window.notReloaded") is True
            expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

            page.get_by_role("link", name="Tasks", exact=True).click()
            page.locator(f'a[href="/tasks/{later}"]').click()
            expect(page.locator(".task-head .badge")).to_have_text("pending")
            expect(page.locator("h1")).to_have_text("tests.dashboard.dash_tasks:send_email")
            page.get_by_role("button", name="Cancel task").click()
            expect(page.locator(".notice")).to_have_text("The task was cancelled.")
            expect(page.locator(".task-head .badge")).to_have_text("cancelled")
            expect(page.get_by_role("button", name="Cancel task")).to_have_count(0)
            assert "notice" not in page.url  # shown once, not kept in the address
            assert problems == []
        assert served.call(served.omniq.get_task, later).status is TaskStatus.CANCELLED
