"""Embedding omniq_trio in an existing trio app: a TCP service that queues work.

The app already has a nursery; the worker pool is one more child of it, and
request handlers enqueue through the same ``AsyncOmniQ``. A client in the same
program sends three jobs and waits for their results, then the app shuts
down: the pool stops gracefully before the server is cancelled.

    python examples/embedding.py
"""

from __future__ import annotations

import functools
from pathlib import Path

import trio

from omniq_trio import AsyncOmniQ, Settings


async def make_thumbnail(image: str) -> str:
    """The task the service queues for each request."""
    await trio.sleep(0.2)  # pretend to resize
    return f"thumbs/{image}"


async def handle(stream: trio.SocketStream, omniq: AsyncOmniQ) -> None:
    """One request: a file name in, a task id out."""
    async with stream:
        image = (await stream.receive_some(1024)).decode().strip()
        task_id = await omniq.enqueue(make_thumbnail, image, max_retries=2)
        await stream.send_all(task_id.encode())


async def client(port: int, omniq: AsyncOmniQ, image: str) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(image.encode())
        task_id = (await stream.receive_some(1024)).decode()
    print(f"client: {image} queued as {task_id[:8]}")
    result = await omniq.get_result(task_id, wait=True, timeout=10)
    assert result is not None
    print(f"client: {image} -> {result.value}")


async def main() -> None:
    settings = Settings(backend="file", base_dir=Path("./omniq_data"))
    async with AsyncOmniQ(settings) as omniq, trio.open_nursery() as app:
        # the app's own service...
        serve = functools.partial(trio.serve_tcp, host="127.0.0.1")  # port 0: any free port
        listeners = await app.start(serve, functools.partial(handle, omniq=omniq), 0)
        port = listeners[0].socket.getsockname()[1]
        print("app: listening")
        # ...and the worker pool, started the same way
        workers = omniq.worker(concurrency=4)
        await app.start(workers.run)
        print("app: workers running")

        async with trio.open_nursery() as clients:
            for i in range(3):
                clients.start_soon(client, port, omniq, f"photo-{i}.png")

        # shut down: the pool first (running tasks finish), then the rest of the app
        await workers.stop(timeout=5)
        app.cancel_scope.cancel()
    print(f"app: stopped after {workers.statistics().tasks_succeeded} tasks")


if __name__ == "__main__":
    trio.run(main)
