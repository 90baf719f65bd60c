"""Every page of the dashboard, as HTML and JSON, over a memory store."""

from __future__ import annotations

import re
from typing import Any

import pytest
import trio
import trio.testing

from omniq_trio import AsyncOmniQ, StoreError, TaskStatus
from omniq_trio.models import Progress, WorkerInfo
from omniq_trio.testing import drain
from tests.dashboard import dash_tasks
from tests.dashboard.conftest import Site


def count(html: str, status: str) -> int:
    found = re.search(rf'data-count="{status}">([\d,]+)<', html)
    assert found, f"no {status} count on the page"
    return int(found.group(1).replace(",", ""))


async def test_the_overview_counts_tasks_by_status(logged_in: Site, autojump_clock: object) -> None:
    omniq = logged_in.omniq
    await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hello")
    await omniq.enqueue(dash_tasks.charge_card, 7, 1299)
    page = await logged_in.http.get("/")
    assert page.status_code == 200
    assert count(page.text, "pending") == 2
    assert count(page.text, "total") == 2
    assert "nothing waiting" not in page.text

    await drain(omniq)
    page = await logged_in.http.get("/")
    assert (count(page.text, "pending"), count(page.text, "success")) == (0, 1)
    assert count(page.text, "failed") == 1
    assert "nothing waiting" in page.text
    # the chart saw both finish between the two reads
    assert "1 succeeded, 1 failed" in page.text


async def test_the_overview_json_has_counts_workers_and_throughput(
    logged_in: Site, autojump_clock: object
) -> None:
    omniq = logged_in.omniq
    await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hello")
    before = (await logged_in.http.get("/api/overview")).json()
    assert before["counts"]["pending"] == 1 and before["total"] == 1
    assert before["oldest_waiting_age"] >= 0
    assert before["workers"] == []
    await drain(omniq)
    after = (await logged_in.http.get("/api/overview")).json()
    assert after["counts"]["success"] == 1 and after["oldest_waiting_age"] is None
    buckets = after["throughput"]["buckets"]
    assert len(buckets) == 60 and sum(b["succeeded"] for b in buckets) == 1


async def test_the_task_list_filters_by_status_function_and_id(
    logged_in: Site, autojump_clock: object
) -> None:
    omniq = logged_in.omniq
    email = await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hello")
    card = await omniq.enqueue(dash_tasks.charge_card, 7, 1299)
    await drain(omniq)
    later = await omniq.enqueue(dash_tasks.resize_image, "a.jpg", 64, delay=3600)

    everything = (await logged_in.http.get("/tasks")).text
    # newest first
    assert everything.index(later) < everything.index(card) < everything.index(email)

    failed = (await logged_in.http.get("/tasks?status=failed")).text
    assert card in failed and email not in failed and later not in failed
    by_func = (await logged_in.http.get(f"/tasks?func={dash_tasks.__name__}:send_email")).text
    assert email in by_func and card not in by_func
    by_prefix = (await logged_in.http.get(f"/tasks?id={later[:6]}")).text
    assert later in by_prefix and email not in by_prefix

    nothing = (await logged_in.http.get("/tasks?status=cancelled")).text
    assert "No task matches these filters." in nothing


async def test_searching_a_whole_id_opens_its_task(logged_in: Site) -> None:
    task_id = await logged_in.omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi")
    response = await logged_in.http.get(f"/tasks?id={task_id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/tasks/{task_id}"


async def test_an_unknown_status_filter_is_a_bad_request(logged_in: Site) -> None:
    response = await logged_in.http.get("/tasks?status=lost")
    assert response.status_code == 400
    assert "unknown status &#39;lost&#39;" in response.text


async def test_the_task_list_pages_with_a_cursor(logged_in: Site) -> None:
    omniq = logged_in.omniq
    ids = [await omniq.enqueue(dash_tasks.send_email, f"u{i}@example.com", "hi") for i in range(55)]
    first = (await logged_in.http.get("/tasks?status=pending")).text
    shown = [i for i in ids if i in first]
    assert shown == ids[5:]  # the 50 newest
    assert "50 shown of 55" in first
    found = re.search(r'href="(/tasks\?[^"]*cursor=[^"]*)" rel="next"', first)
    assert found, "no link to the next page"
    second = (await logged_in.http.get(found.group(1).replace("&amp;", "&"))).text
    assert [i for i in ids if i in second] == ids[:5]
    assert 'rel="next"' not in second
    assert "status=pending" in found.group(1)  # the filter stays on the next page


async def test_a_failed_task_shows_its_call_error_and_traceback(
    logged_in: Site, autojump_clock: object
) -> None:
    task_id = await logged_in.omniq.enqueue(
        dash_tasks.charge_card, 4001, 2599, currency="<EUR>", max_retries=1
    )
    await drain(logged_in.omniq)
    page = await logged_in.http.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    html = page.text
    assert "tests.dashboard.dash_tasks:charge_card" in html
    assert "4001" in html and "&#34;&lt;EUR&gt;&#34;" in html  # escaped, never raw HTML
    assert "<EUR>" not in html
    assert "card declined for order 4001: insufficient funds" in html
    assert "Traceback (most recent call last)" in html
    assert "2 of 2 allowed" in html and "(1 retry)" in html
    assert "Retry task" in html and "Cancel task" not in html


async def test_a_succeeded_task_shows_its_result(logged_in: Site, autojump_clock: object) -> None:
    task_id = await logged_in.omniq.enqueue(dash_tasks.resize_image, "cat.jpg", 320)
    await drain(logged_in.omniq)
    html = (await logged_in.http.get(f"/tasks/{task_id}")).text
    assert "&#34;cat-320w.jpg&#34;" in html
    assert "badge status-success" in html
    assert "Retry task" not in html and "Cancel task" not in html


async def test_an_unknown_task_is_not_found(logged_in: Site) -> None:
    page = await logged_in.http.get("/tasks/no-such-id")
    assert page.status_code == 404
    assert "No task has the id" in page.text


async def test_the_workers_page_shows_who_runs_what(
    logged_in: Site, autojump_clock: object
) -> None:
    dash_tasks.reset_gate()
    omniq: AsyncOmniQ = logged_in.omniq
    task_id = await omniq.enqueue(dash_tasks.gated, 1)
    empty = (await logged_in.http.get("/workers")).text
    assert "No live worker" in empty
    async with trio.open_nursery() as nursery:
        pool = omniq.worker(concurrency=2)
        await nursery.start(pool.run)
        await trio.testing.wait_all_tasks_blocked()  # the task waits at the gate
        assert (await omniq.get_task(task_id)).status is TaskStatus.RUNNING
        # the registry says what a pool runs as of its last heartbeat
        await trio.sleep(omniq.settings.lease_duration / 3 + 1)
        html = (await logged_in.http.get("/workers")).text
        assert "unregistered" not in html
        worker_id = (await omniq.get_task(task_id)).worker_id
        assert worker_id is not None and worker_id in html
        assert f'href="/tasks/{task_id}"' in html
        dash_tasks.gate.set()
        await pool.stop()


async def test_health_needs_no_token(site: Site) -> None:
    response = await site.http.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok\n")


async def test_static_files_need_no_token(site: Site) -> None:
    css = await site.http.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = await site.http.get("/static/live.js")
    assert js.status_code == 200 and "data-live" in js.text


async def test_a_failing_store_is_a_503_page_not_a_crash(
    logged_in: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise StoreError("connection refused")

    monkeypatch.setattr(logged_in.omniq, "stats", broken)
    page = await logged_in.http.get("/", headers={"accept": "text/html"})
    assert page.status_code == 503
    assert "The store did not answer" in page.text and "connection refused" in page.text
    api = await logged_in.http.get("/api/overview")
    assert (api.status_code, api.json()) == (503, {"error": "connection refused"})
    monkeypatch.undo()
    assert (await logged_in.http.get("/")).status_code == 200


async def test_queues_are_counted_filtered_and_shown(logged_in: Site) -> None:
    omniq = logged_in.omniq
    email = await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi", queue="emails")
    image = await omniq.enqueue(dash_tasks.resize_image, "a.jpg", 64)
    await omniq.pause_queue("emails")
    overview = (await logged_in.http.get("/")).text
    assert 'href="/tasks?queue=emails"' in overview and "paused" in overview
    listed = (await logged_in.http.get("/tasks?queue=emails")).text
    assert email in listed and image not in listed
    assert "1 shown of 1" in listed
    assert '<span class="queue-tag" title="queue">emails</span>' in listed
    queues = (await logged_in.http.get("/api/overview")).json()["queues"]
    assert {q["name"]: (q["counts"]["pending"], q["paused"]) for q in queues} == {
        "emails": (1, True),
        "default": (1, False),
    }


async def test_a_bad_queue_name_or_cursor_is_a_bad_request(logged_in: Site) -> None:
    for query in ("queue=no%20spaces", "cursor=not-a-cursor", "func=no-colon"):
        response = await logged_in.http.get(f"/tasks?{query}")
        assert response.status_code == 400, query
        assert "Bad filter" in response.text


async def test_a_running_task_shows_its_progress_holder_and_lost_runs(
    logged_in: Site, autojump_clock: object
) -> None:
    dash_tasks.reset_gate()
    omniq = logged_in.omniq
    task_id = await omniq.enqueue(dash_tasks.gated, 1, max_lost_runs=5)
    async with trio.open_nursery() as nursery:
        pool = omniq.worker()
        await nursery.start(pool.run)
        await trio.testing.wait_all_tasks_blocked()
        task = await omniq.get_task(task_id)
        assert task.worker_id is not None
        await omniq.store.set_progress(
            task_id,
            worker_id=task.worker_id,
            progress=Progress(0.25, "resizing 3 of 12", omniq.clock.now()),
        )
        html = (await logged_in.http.get(f"/tasks/{task_id}")).text
        assert '<progress max="1" value="0.25">' in html
        assert "25% · resizing 3 of 12" in html
        assert task.worker_id in html and "Lease until" in html
        assert "0 of at most 5" in html  # lost runs
        assert "Cancel task" in html
        dash_tasks.gate.set()
        await pool.stop()


async def test_registered_workers_show_host_pid_and_counters(logged_in: Site) -> None:
    omniq = logged_in.omniq
    now = omniq.clock.now()
    info = WorkerInfo(
        id="web-1:4242:ab12",
        hostname="web-1",
        pid=4242,
        concurrency=8,
        queues=("emails", "default"),
        started_at=now - 3600,
        last_seen=now - 2,
        expires_at=now + 28,
        running=("t1", "t2"),
        succeeded=1234,
        failed=5,
    )
    await omniq.store.register_worker(info)
    html = (await logged_in.http.get("/workers")).text
    for text in ("web-1:4242:ab12", "web-1", "4242", "2 / 8", "emails, default", "1,234", "1h ago"):
        assert text in html, text
    assert 'href="/tasks/t1"' in html and "unregistered" not in html
    (worker,) = (await logged_in.http.get("/api/overview")).json()["workers"]
    assert worker["id"] == info.id and worker["running"] == ["t1", "t2"]


async def test_a_store_without_queues_registry_or_listings_yet(
    logged_in: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    omniq = logged_in.omniq
    await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi", queue="emails")

    def lacking(what: str) -> Any:
        async def refuse(*args: object, **kwargs: object) -> None:
            raise NotImplementedError(f"this store does not support {what} yet")

        return refuse

    monkeypatch.setattr(omniq, "list_queues", lacking("listing queues"))
    monkeypatch.setattr(omniq, "list_workers", lacking("the worker registry"))
    overview = await logged_in.http.get("/")
    assert overview.status_code == 200
    assert 'href="/tasks?queue=emails"' in overview.text  # the counts by queue stay
    assert (await logged_in.http.get("/workers")).status_code == 200
    monkeypatch.setattr(omniq, "query_tasks", lacking("filtered or paginated listings"))
    page = await logged_in.http.get("/tasks", headers={"accept": "text/html"})
    assert page.status_code == 501
    assert "does not support filtered or paginated listings yet" in page.text
