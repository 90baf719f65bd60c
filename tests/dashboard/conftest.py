"""The dashboard app in-process: a memory store, the ASGI app, an HTTP client of it.

Requests go through httpx's ASGI transport, with no socket: every check the
server makes (Host, token, cookie, CSRF) runs as it does behind Hypercorn.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest

from omniq_trio import AsyncOmniQ, Settings
from omniq_trio.dashboard import Access, create_app
from omniq_trio.testing import open_test_omniq

TOKEN = "s3cret-token"
#: The address the app believes it serves (the Host check reads it).
BASE = "http://127.0.0.1:8765"
#: Results outlive the virtual days the tests may run.
SETTINGS = Settings(
    backend="memory", sync_tasks="inline", retry_jitter=0, result_ttl=365 * 86_400.0
)


def make_access(**options: Any) -> Access:
    values: dict[str, Any] = {
        "token": TOKEN,
        "no_token": False,
        "bind_host": "127.0.0.1",
        "environ": {},
    }
    values.update(options)
    return Access.create(**values)


@attrs.define
class Site:
    """One dashboard app over a fresh memory store, and a client with no credentials yet."""

    omniq: AsyncOmniQ
    access: Access
    http: httpx.AsyncClient

    async def login(self) -> None:
        """Trade the token for a session cookie, as a browser does with the printed URL."""
        response = await self.http.get(f"/?token={TOKEN}")
        assert response.status_code == 303, response.text

    async def csrf(self, path: str = "/") -> str:
        """The CSRF token in the forms of the page at ``path``."""
        page = await self.http.get(path)
        found = re.search(r'name="csrf" value="([^"]*)"', page.text)
        assert found, f"no form on {path}"
        return found.group(1)

    async def post(self, path: str, **form: str) -> httpx.Response:
        return await self.http.post(path, data=form)


async def open_site(
    omniq: AsyncOmniQ, *, base: str = BASE, **access: Any
) -> tuple[Site, httpx.AsyncClient]:
    guard = make_access(**access)
    app = create_app(omniq, access=guard)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)
    return Site(omniq, guard, client), client


@pytest.fixture
async def omniq() -> AsyncIterator[AsyncOmniQ]:
    async with open_test_omniq(SETTINGS) as omniq:
        yield omniq


@pytest.fixture
async def site(omniq: AsyncOmniQ) -> AsyncIterator[Site]:
    """A dashboard not yet logged in to."""
    made, client = await open_site(omniq)
    async with client:
        yield made


@pytest.fixture
async def logged_in(site: Site) -> Site:
    await site.login()
    return site
