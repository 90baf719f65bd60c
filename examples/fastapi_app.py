"""A FastAPI app enqueues from its routes with ``AsyncioOmniQ``; a worker process runs the tasks.

Both processes use the same store (by default the file journal in
./omniq_data; ``OMNIQ_*`` variables choose another), so start them in the
same directory::

    pip install 'omniq-trio[frameworks]'
    python fastapi_app.py worker                 # the worker: runs until Ctrl-C
    uvicorn fastapi_app:app                      # the app, in another terminal

    curl -X POST localhost:8000/signups -H 'content-type: application/json' \\
         -d '{"email": "ada@example.com"}'        # -> {"task_id": "..."}
    curl 'localhost:8000/tasks/<task_id>?wait=5'  # -> {"status": "success", ...}

The lifespan opens the client when the app starts and closes it when it
stops; routes get it with ``Depends(omniq)``. Calls never block the event
loop: the store lives in the client's own background thread.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import trio
from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

import omniq_trio
from omniq_trio import AsyncioOmniQ, Settings, TaskNotFoundError


def send_welcome(email: str) -> str:
    """The task: any module-level function (a sync one runs in a worker thread)."""
    return f"welcome mail sent to {email}"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with AsyncioOmniQ(Settings.from_env()) as client:
        app.state.omniq = client
        yield


app = FastAPI(lifespan=lifespan)


def omniq(request: Request) -> AsyncioOmniQ:
    """The app's client, for ``Depends``."""
    client: AsyncioOmniQ = request.app.state.omniq
    return client


Client = Annotated[AsyncioOmniQ, Depends(omniq)]


class Signup(BaseModel):
    email: str


@app.post("/signups", status_code=202)
async def create_signup(signup: Signup, client: Client) -> dict[str, str]:
    task_id = await client.enqueue(send_welcome, signup.email)
    return {"task_id": task_id}


@app.get("/tasks/{task_id}")
async def task_result(task_id: str, client: Client, wait: float = 0) -> dict[str, Any]:
    """The task's result; ``?wait=S`` waits up to S seconds for it to finish."""
    try:
        if wait > 0:
            result = await client.get_result(task_id, wait=True, timeout=wait)
        else:
            result = await client.get_result(task_id)
    except TaskNotFoundError:
        raise HTTPException(status_code=404, detail=f"no task {task_id}") from None
    except TimeoutError:
        result = None
    if result is None:
        return {"status": (await client.get_task(task_id)).status.value}
    return {"status": result.status.value, "value": result.value}


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}


if __name__ == "__main__":
    if sys.argv[1:] != ["worker"]:
        sys.exit("usage: python fastapi_app.py worker   (and: uvicorn fastapi_app:app)")
    # The tasks the app enqueues name "fastapi_app:send_welcome": the worker
    # runs the functions of that module (this file, imported by its module
    # name). It stops gracefully on SIGINT or SIGTERM.
    settings = Settings.from_env()
    trio.run(omniq_trio.serve, settings.evolve(imports=(*settings.imports, "fastapi_app")))
