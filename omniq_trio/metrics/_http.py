"""Serving metrics over HTTP: a small trio server, and the same as an ASGI app.

The server answers ``GET /metrics`` (and ``HEAD``), one request per
connection, which is all Prometheus needs; each request has a few seconds to
arrive and a bounded size, so a slow or odd client costs little.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final, final

import trio

from ..logging import logger

__all__ = ["Render", "metrics_asgi_app", "serve_metrics"]

#: Makes a scrape's answer: given the request's Accept header, the body and
#: its content type.
Render = Callable[[str], Awaitable[tuple[bytes, str]]]

#: Seconds a client has to send its request and take the answer.
REQUEST_TIMEOUT: Final = 10.0
#: Bytes of request line and headers accepted (Prometheus sends a few hundred).
MAX_REQUEST_HEAD: Final = 16 * 1024
PATH: Final = "/metrics"


async def serve_metrics(
    render: Render,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``render``'s answer at ``http://host:port/metrics`` until cancelled.

    With ``nursery.start``, returns the URL once it listens (port 0: a free
    one, which the URL names).
    """
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{bound}{PATH}"
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, functools.partial(_serve_one, render), listeners)
        task_status.started(url)


async def _serve_one(render: Render, stream: trio.SocketStream) -> None:
    try:
        async with stream:
            with trio.move_on_after(REQUEST_TIMEOUT):
                head = await _read_head(stream)
                if head is not None:
                    await stream.send_all(await _answer(render, head))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away
    except Exception:  # never let one request end the server
        logger.exception("serving a metrics request failed")


async def _read_head(stream: trio.SocketStream) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) <= MAX_REQUEST_HEAD:
        chunk = await stream.receive_some(4096)
        if not chunk:
            return None
        data += chunk
    if len(data) > MAX_REQUEST_HEAD:
        await stream.send_all(_response(431, "text/plain", b"request too large\n"))
        return None
    return data


async def _answer(render: Render, head: bytes) -> bytes:
    lines = head.decode("latin-1").splitlines()
    parts = lines[0].split() if lines else []
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return _response(400, "text/plain", b"bad request\n")
    method, target = parts[0], parts[1]
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if target.partition("?")[0] != PATH:
        return _response(404, "text/plain", b"not found; the metrics are at /metrics\n")
    if method not in ("GET", "HEAD"):
        return _response(405, "text/plain", b"GET only\n", extra="Allow: GET, HEAD\r\n")
    try:
        body, content_type = await render(headers.get("accept", ""))
    except Exception:
        logger.exception("making the metrics failed")
        return _response(500, "text/plain", b"could not make the metrics; see the log\n")
    return _response(200, content_type, body, head_only=method == "HEAD")


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
}


def _response(
    status: int, content_type: str, body: bytes, *, extra: str = "", head_only: bool = False
) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (b"" if head_only else body)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def metrics_asgi_app(render: Render) -> ASGIApp:
    """``render``'s answer as an ASGI application (at any path), for a server that
    runs trio: the dashboard serves one at ``/metrics``. An object, not a function,
    so that Starlette's ``Route`` as well as its ``Mount`` takes it as an ASGI app."""
    return _MetricsApp(render)


@final
class _MetricsApp:
    def __init__(self, render: Render) -> None:
        self._render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # served on its own: nothing to set up
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            status, content_type, body = 405, "text/plain", b"GET only\n"
        else:
            accept = next(
                (v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"accept"), ""
            )
            body, content_type = await self._render(accept)
            status = 200
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode("latin-1")),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        if scope["method"] == "HEAD":
            body = b""
        await send({"type": "http.response.body", "body": body})
