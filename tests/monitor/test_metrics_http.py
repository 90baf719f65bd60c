"""The metrics server and ASGI app answer what Prometheus asks and nothing else; the
store's gauges say when the store cannot be read."""

from __future__ import annotations

import functools
import time
from typing import Any

import trio
from prometheus_client.parser import text_string_to_metric_families

from omniq_trio import AsyncOmniQ, Settings, WorkerInfo
from omniq_trio.metrics import StoreMetrics, metrics_asgi_app, serve_metrics, store_metrics_app
from omniq_trio.models import QueueInfo
from omniq_trio.store import MemoryStore, StoreStats

MEMORY = Settings(backend="memory")


async def _fixed(accept: str) -> tuple[bytes, str]:
    return f"omniq_answer 42\n# accept={accept}\n".encode(), "text/plain; version=0.0.4"


async def _request(port: int, raw: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        received = b""
        while chunk := await stream.receive_some(65536):
            received += chunk
    return received


async def test_the_server_answers_get_and_head_at_metrics_and_refuses_the_rest() -> None:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(functools.partial(serve_metrics, _fixed, port=0))
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert url == f"http://127.0.0.1:{port}/metrics"
        got = await _request(
            port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
        )
        head, _, body = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Type: text/plain; version=0.0.4" in head
        assert body == b"omniq_answer 42\n# accept=text/plain\n"
        assert f"Content-Length: {len(body)}".encode() in head
        got = await _request(port, b"HEAD /metrics?x=1 HTTP/1.1\r\n\r\n")
        assert got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"\r\n\r\n")
        assert (await _request(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
        refused = await _request(port, b"POST /metrics HTTP/1.1\r\n\r\n")
        assert refused.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in refused
        assert (await _request(port, b"nonsense\r\n\r\n")).startswith(b"HTTP/1.1 400")
        huge = b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"y" * 20_000 + b"\r\n\r\n"
        assert (await _request(port, huge)).startswith(b"HTTP/1.1 431")
        # a client that connects and says nothing is dropped after a while, and
        # nobody else waits for it meanwhile
        silent = await trio.open_tcp_stream("127.0.0.1", port)
        assert (await _request(port, b"GET /metrics HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await silent.aclose()
        nursery.cancel_scope.cancel()


async def test_a_render_that_fails_is_a_500_and_the_server_goes_on() -> None:
    calls = 0

    async def flaky(accept: str) -> tuple[bytes, str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("collector bug")
        return await _fixed(accept)

    async with trio.open_nursery() as nursery:
        url = await nursery.start(functools.partial(serve_metrics, flaky, port=0))
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        request = b"GET /metrics HTTP/1.1\r\n\r\n"
        assert (await _request(port, request)).startswith(b"HTTP/1.1 500")
        assert (await _request(port, request)).startswith(b"HTTP/1.1 200")
        nursery.cancel_scope.cancel()


async def _asgi(
    app: Any, method: str = "GET", accept: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/", "headers": [(b"accept", accept)]}
    await app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), body["body"]


async def test_the_asgi_app_serves_the_same_answer() -> None:
    app = metrics_asgi_app(_fixed)
    status, headers, body = await _asgi(app, accept=b"text/plain")
    assert (status, headers[b"content-type"]) == (200, b"text/plain; version=0.0.4")
    assert body == b"omniq_answer 42\n# accept=text/plain\n"
    assert (await _asgi(app, "HEAD"))[2] == b""
    assert (await _asgi(app, "POST"))[0] == 405


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_the_store_gauges_count_tasks_by_queue_and_status_and_live_workers() -> None:
    async with AsyncOmniQ(MEMORY) as omniq:
        await omniq.enqueue("app.tasks:a", queue="mail")
        await omniq.enqueue("app.tasks:a", queue="mail", delay=3600)
        await omniq.enqueue("app.tasks:b")
        await omniq.pause_queue("mail")
        now = time.time()
        info = WorkerInfo("w1", "host", 1, 4, None, now, now, now + 60, ("t1", "t2"))
        await omniq.store.register_worker(info)
        status, headers, body = await _asgi(store_metrics_app(omniq))
        assert status == 200 and headers[b"content-type"].startswith(b"text/plain")
        samples = _samples(body.decode())
    mail, default = ("omniq_queue", "mail"), ("omniq_queue", "default")
    assert samples[("omniq_tasks", (mail, ("omniq_status", "pending")))] == 2
    assert samples[("omniq_tasks", (mail, ("omniq_status", "failed")))] == 0
    assert samples[("omniq_tasks", (default, ("omniq_status", "pending")))] == 1
    assert samples[("omniq_queue_paused", (mail,))] == 1
    assert samples[("omniq_queue_paused", (default,))] == 0
    assert samples[("omniq_workers_live", ())] == 1
    assert samples[("omniq_workers_concurrency", ())] == 4
    assert samples[("omniq_workers_running_tasks", ())] == 2
    assert samples[("omniq_store_up", ())] == 1
    assert 0 <= samples[("omniq_oldest_waiting_task_age_seconds", ())] < 60


class _Broken(MemoryStore):  # type: ignore[misc]  # final to users, not to tests
    async def stats(self, *, now: float) -> StoreStats:
        raise OSError("disk gone")


class _Partial(MemoryStore):  # type: ignore[misc]
    async def list_workers(self, *, now: float) -> list[WorkerInfo]:
        raise NotImplementedError

    async def list_queues(self) -> list[QueueInfo]:
        raise NotImplementedError


async def test_a_store_that_fails_is_down_and_missing_parts_are_left_out() -> None:
    async with AsyncOmniQ(MEMORY, store=_Broken()) as omniq:
        body, _ = await StoreMetrics(omniq).render()
    assert _samples(body.decode()).keys() == {
        ("omniq_store_up", ()),
        ("omniq_store_read_seconds", ()),
    }
    assert _samples(body.decode())[("omniq_store_up", ())] == 0
    async with AsyncOmniQ(MEMORY, store=_Partial()) as omniq:
        await omniq.enqueue("app.tasks:a")
        body, _ = await StoreMetrics(omniq).render()
    names = {name for name, _ in _samples(body.decode())}
    assert "omniq_tasks" in names and "omniq_store_up" in names
    assert not names & {"omniq_workers_live", "omniq_queue_paused"}


async def test_openmetrics_when_the_scraper_asks_for_it() -> None:
    async with AsyncOmniQ(MEMORY) as omniq:
        body, content_type = await StoreMetrics(omniq).render(
            "application/openmetrics-text; version=1.0.0"
        )
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_starlette_serves_the_app_at_a_route_or_a_mount() -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route

    app = metrics_asgi_app(_fixed)
    for route in (Route("/metrics", app), Mount("/metrics", app)):
        web = Starlette(routes=[route])
        transport = httpx.ASGITransport(app=web)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            got = await client.get("/metrics", follow_redirects=True)
        assert got.status_code == 200
        assert got.text.startswith("omniq_answer 42")
