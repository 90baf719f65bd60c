"""The actions: cancel, retry, purge; POST only, CSRF-checked, refused when read-only."""

from __future__ import annotations

import pytest

from omniq_trio import AsyncOmniQ, TaskStatus
from omniq_trio.testing import drain
from tests.dashboard import dash_tasks
from tests.dashboard.conftest import TOKEN, Site, open_site


async def pending_task(omniq: AsyncOmniQ) -> str:
    return await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi", delay=3600)


async def test_cancel_with_the_sessions_csrf_token(logged_in: Site) -> None:
    task_id = await pending_task(logged_in.omniq)
    csrf = await logged_in.csrf(f"/tasks/{task_id}")
    response = await logged_in.post(f"/tasks/{task_id}/cancel", csrf=csrf, next=f"/tasks/{task_id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/tasks/{task_id}?notice=cancelled"
    assert (await logged_in.omniq.get_task(task_id)).status is TaskStatus.CANCELLED
    page = await logged_in.http.get(response.headers["location"])
    assert "The task was cancelled." in page.text


@pytest.mark.parametrize("csrf", [None, "", "0" * 40])
async def test_a_post_without_the_right_csrf_token_changes_nothing(
    logged_in: Site, csrf: str | None
) -> None:
    task_id = await pending_task(logged_in.omniq)
    form = {} if csrf is None else {"csrf": csrf}
    for path in (f"/tasks/{task_id}/cancel", "/purge"):
        response = await logged_in.post(path, **form, older_than="0s")
        assert response.status_code == 403, path
        assert "CSRF" in response.text
    assert (await logged_in.omniq.get_task(task_id)).status is TaskStatus.PENDING


async def test_another_sessions_csrf_token_is_refused(omniq: AsyncOmniQ) -> None:
    task_id = await pending_task(omniq)
    one, first = await open_site(omniq)
    other, second = await open_site(omniq)
    async with first, second:
        await one.login()
        await other.login()
        stolen = await other.csrf("/")
        response = await one.post(f"/tasks/{task_id}/cancel", csrf=stolen)
        assert response.status_code == 403
    assert (await omniq.get_task(task_id)).status is TaskStatus.PENDING


async def test_a_post_from_another_site_is_refused(logged_in: Site) -> None:
    task_id = await pending_task(logged_in.omniq)
    csrf = await logged_in.csrf("/")
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        response = await logged_in.http.post(
            f"/tasks/{task_id}/cancel", data={"csrf": csrf}, headers=headers
        )
        assert response.status_code == 403, headers
    same_origin = await logged_in.http.post(
        f"/tasks/{task_id}/cancel", data={"csrf": csrf}, headers={"origin": "http://127.0.0.1:8765"}
    )
    assert same_origin.status_code == 303


async def test_actions_are_post_only(logged_in: Site) -> None:
    task_id = await pending_task(logged_in.omniq)
    for path in (f"/tasks/{task_id}/cancel", f"/tasks/{task_id}/retry", "/purge"):
        assert (await logged_in.http.get(path)).status_code == 405, path
    assert (await logged_in.omniq.get_task(task_id)).status is TaskStatus.PENDING


async def test_actions_need_the_token_too(site: Site) -> None:
    task_id = await pending_task(site.omniq)
    assert (await site.post(f"/tasks/{task_id}/cancel", csrf="x")).status_code == 401
    assert (await site.omniq.get_task(task_id)).status is TaskStatus.PENDING


async def test_a_bearer_client_needs_no_csrf_token_and_may_ask_for_json(site: Site) -> None:
    task_id = await pending_task(site.omniq)
    response = await site.http.post(
        f"/tasks/{task_id}/cancel",
        headers={"authorization": f"Bearer {TOKEN}", "accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["notice"] == "cancelled"
    again = await site.http.post(
        f"/tasks/{task_id}/cancel",
        headers={"authorization": f"Bearer {TOKEN}", "accept": "application/json"},
    )
    assert again.json()["ok"] is False and again.json()["notice"] == "not-cancelled"


async def test_retry_a_failed_task_and_refuse_any_other(
    logged_in: Site, autojump_clock: object
) -> None:
    omniq = logged_in.omniq
    failed = await omniq.enqueue(dash_tasks.charge_card, 1, 100)
    done = await omniq.enqueue(dash_tasks.resize_image, "a.jpg", 10)
    await drain(omniq)
    csrf = await logged_in.csrf(f"/tasks/{failed}")
    response = await logged_in.post(f"/tasks/{failed}/retry", csrf=csrf)
    assert response.headers["location"] == f"/tasks/{failed}?notice=retried"
    assert (await omniq.get_task(failed)).status is TaskStatus.PENDING
    refused = await logged_in.post(f"/tasks/{done}/retry", csrf=csrf)
    assert refused.headers["location"] == f"/tasks/{done}?notice=not-retried"
    assert (await omniq.get_task(done)).status is TaskStatus.SUCCESS


async def test_cancel_a_finished_task_says_so(logged_in: Site, autojump_clock: object) -> None:
    done = await logged_in.omniq.enqueue(dash_tasks.resize_image, "a.jpg", 10)
    await drain(logged_in.omniq)
    csrf = await logged_in.csrf("/")
    response = await logged_in.post(f"/tasks/{done}/cancel", csrf=csrf, next="/tasks")
    assert response.headers["location"] == "/tasks?notice=not-cancelled"
    page = await logged_in.http.get(response.headers["location"])
    assert "nothing was cancelled" in page.text


async def test_an_unknown_task_is_not_found(logged_in: Site) -> None:
    csrf = await logged_in.csrf("/")
    assert (await logged_in.post("/tasks/nope/cancel", csrf=csrf)).status_code == 404
    assert (await logged_in.post("/tasks/nope/retry", csrf=csrf)).status_code == 404


async def test_purge_forgets_tasks_finished_long_enough_ago(
    logged_in: Site, autojump_clock: object
) -> None:
    import trio

    omniq = logged_in.omniq
    old = await omniq.enqueue(dash_tasks.resize_image, "a.jpg", 10)
    await drain(omniq)
    await trio.sleep(7200)
    recent = await omniq.enqueue(dash_tasks.resize_image, "b.jpg", 10)
    await drain(omniq)
    csrf = await logged_in.csrf("/")
    response = await logged_in.post("/purge", csrf=csrf, older_than="1h", next="/")
    assert response.headers["location"] == "/?notice=purged&n=1"
    remaining = {t.id for t in await omniq.list_tasks()}
    assert remaining == {recent} and old not in remaining
    page = await logged_in.http.get(response.headers["location"])
    assert "Purged 1 finished task(s)." in page.text
    bad = await logged_in.post("/purge", csrf=csrf, older_than="a while")
    assert bad.status_code == 400


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", ""])
async def test_the_redirect_after_an_action_stays_on_this_site(
    logged_in: Site, target: str
) -> None:
    task_id = await pending_task(logged_in.omniq)
    csrf = await logged_in.csrf("/")
    response = await logged_in.post(f"/tasks/{task_id}/cancel", csrf=csrf, next=target)
    assert response.headers["location"] == f"/tasks/{task_id}?notice=cancelled"


async def test_read_only_hides_and_refuses_every_action(
    omniq: AsyncOmniQ, autojump_clock: object
) -> None:
    pending = await pending_task(omniq)
    failed = await omniq.enqueue(dash_tasks.charge_card, 1, 100)
    await drain(omniq, within=1)
    site, client = await open_site(omniq, read_only=True)
    async with client:
        await site.login()
        for path in ("/", "/tasks", f"/tasks/{pending}", f"/tasks/{failed}"):
            html = (await client.get(path)).text
            assert "<form" not in html.replace('<form class="filters', ""), path
            assert 'name="csrf"' not in html
        assert "read-only" in (await client.get("/")).text
        headers = {"authorization": f"Bearer {TOKEN}"}
        for path in (f"/tasks/{pending}/cancel", f"/tasks/{failed}/retry", "/purge"):
            response = await client.post(path, data={"older_than": "0s"}, headers=headers)
            assert response.status_code == 403, path
            assert "read-only" in response.text
    assert (await omniq.get_task(pending)).status is TaskStatus.PENDING
    assert (await omniq.get_task(failed)).status is TaskStatus.FAILED


async def test_purge_keeps_recent_failures_unless_asked(
    logged_in: Site, autojump_clock: object
) -> None:
    import trio

    omniq = logged_in.omniq
    failed = await omniq.enqueue(dash_tasks.charge_card, 1, 100)
    await drain(omniq)
    await trio.sleep(7200)
    csrf = await logged_in.csrf("/")
    kept = await logged_in.post("/purge", csrf=csrf, older_than="1h")
    assert kept.headers["location"] == "/?notice=purged&n=0"
    assert (await omniq.get_task(failed)).status is TaskStatus.FAILED
    gone = await logged_in.post("/purge", csrf=csrf, older_than="1h", include_failed="1")
    assert gone.headers["location"] == "/?notice=purged&n=1"
    assert await omniq.list_tasks() == []
