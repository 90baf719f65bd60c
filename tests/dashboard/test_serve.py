"""``serve_dashboard`` over a real socket: port 0, the reported URL, the token exchange."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
import trio

from omniq_trio import ConfigError
from omniq_trio.dashboard import serve_dashboard
from omniq_trio.testing import open_test_omniq
from tests.dashboard import dash_tasks


async def test_it_reports_the_bound_url_with_its_token_and_serves_it() -> None:
    async with open_test_omniq() as omniq, trio.open_nursery() as nursery:
        await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi")
        url = await nursery.start(
            lambda task_status: serve_dashboard(
                omniq.settings, port=0, token="t0k", omniq=omniq, task_status=task_status
            )
        )
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port and parts.port != 8765
        assert parts.query == "token=t0k"
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://{parts.netloc}/healthz")).text == "ok\n"
            assert (await client.get(f"http://{parts.netloc}/")).status_code == 401
            page = await client.get(url, follow_redirects=True)
            assert page.status_code == 200 and str(page.url) == f"http://{parts.netloc}/"
            assert 'data-count="pending">1<' in page.text
            server = (await client.get(f"http://{parts.netloc}/healthz")).headers
            assert "server" not in server  # says nothing of what it runs
        nursery.cancel_scope.cancel()


async def test_a_random_token_is_made_when_none_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMNIQ_DASHBOARD_TOKEN", raising=False)
    async with open_test_omniq() as omniq, trio.open_nursery() as nursery:
        url = await nursery.start(
            lambda task_status: serve_dashboard(port=0, omniq=omniq, task_status=task_status)
        )
        token = urlsplit(url).query.removeprefix("token=")
        assert len(token) >= 24
        async with httpx.AsyncClient() as client:
            response = await client.get(
                url.partition("?")[0] + "api/overview",
                headers={"authorization": f"Bearer {token}"},
            )
            assert response.json()["total"] == 0
        nursery.cancel_scope.cancel()


async def test_no_token_off_loopback_is_refused_before_binding() -> None:
    async with open_test_omniq() as omniq:
        with pytest.raises(ConfigError, match="loopback"):
            await serve_dashboard(host="0.0.0.0", port=0, no_token=True, omniq=omniq)


async def test_metrics_serves_the_stores_gauges_behind_the_token() -> None:
    pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
    async with open_test_omniq() as omniq, trio.open_nursery() as nursery:
        await omniq.enqueue(dash_tasks.send_email, "ada@example.com", "hi", queue="emails")
        url = await nursery.start(
            lambda task_status: serve_dashboard(
                port=0, token="m3trics", omniq=omniq, task_status=task_status
            )
        )
        metrics = url.partition("?")[0] + "metrics"
        async with httpx.AsyncClient() as client:
            assert (await client.get(metrics)).status_code == 401
            scrape = await client.get(metrics, headers={"authorization": "Bearer m3trics"})
            assert scrape.status_code == 200
            assert 'queue="emails"' in scrape.text and "omniq_" in scrape.text
        nursery.cancel_scope.cancel()
