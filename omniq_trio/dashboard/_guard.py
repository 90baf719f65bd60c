"""The ASGI middleware in front of every page: Host check, token, session cookie, headers.

Order of the checks: a Host that does not name this server is refused (403)
before anything else; ``/healthz`` and ``/static/`` need no token; then the
request needs a session (cookie or ``Authorization: Bearer``), else 401. A
``GET ?token=TOKEN`` trades the token for a session cookie and redirects to the
same page without it, so the token does not stay in the address bar or history.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._access import Access, Session

__all__ = ["Guard", "cookie_name"]

#: Paths anyone who can reach the port may fetch.
PUBLIC_PATHS: Final = frozenset({"/healthz"})
PUBLIC_PREFIX: Final = "/static/"

# Scripts and styles come from this server only; nothing may frame the pages
# (clickjacking an action button); forms post here only.
_SECURITY_HEADERS: Final = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    # not no-referrer: with it, browsers send "Origin: null" on form posts
    "referrer-policy": "same-origin",
}

_UNAUTHORIZED: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Token needed · omniq-trio</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body class="bare"><main class="notice-page"><h1>This dashboard needs its token</h1>
<p>Open the address <code>omniq-trio dashboard</code> printed when it started
(it ends in <code>?token=&hellip;</code>), or send the header
<code>Authorization: Bearer TOKEN</code>.</p></main></body></html>
"""


def cookie_name(scope: Scope) -> str:
    """The session cookie's name: one per port, as cookies do not tell ports apart."""
    server = scope.get("server")
    port = server[1] if server and server[1] is not None else ""
    return f"omniq_dashboard{port and '_'}{port}"


class Guard:
    """Pure ASGI middleware applying :class:`Access` to every HTTP request."""

    def __init__(self, app: ASGIApp, *, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        headers = Headers(scope=scope)
        if not self.access.host_allowed(headers.get("host")):
            refusal = PlainTextResponse(
                "403: the Host header does not name this server (see --allow-host)\n", 403
            )
            await _secured(refusal)(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIX):
            await self.app(scope, receive, _with_headers(send))
            return

        name = cookie_name(scope)
        cookies = cookie_parser(headers.get("cookie", ""))
        session = self.access.bearer(headers.get("authorization")) or self.access.cookie_session(
            cookies.get(name)
        )
        query = QueryParams(scope["query_string"])
        presented = query.get("token")
        if presented is not None and scope["method"] in ("GET", "HEAD"):
            if not self.access.token_matches(presented):
                await self._unauthorized(scope, receive, send, headers)
                return
            # the token in the address becomes a cookie, and leaves the address
            _, cookie = self.access.new_session()
            rest = [(k, v) for k, v in query.multi_items() if k != "token"]
            target = path + ("?" + urlencode(rest) if rest else "")
            redirect = RedirectResponse(target, status_code=303)
            _set_cookie(redirect, name, cookie)
            await _secured(redirect)(scope, receive, send)
            return

        new_cookie: tuple[str, str] | None = None
        if session is None:
            if self.access.token is not None:
                await self._unauthorized(scope, receive, send, headers)
                return
            # no token asked (loopback only): a session still carries the CSRF token
            session, value = self.access.new_session()
            new_cookie = (name, value)
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, _with_headers(send, new_cookie))

    async def _unauthorized(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers
    ) -> None:
        response: Response
        if "text/html" in headers.get("accept", ""):
            response = HTMLResponse(_UNAUTHORIZED, 401)
        else:
            response = PlainTextResponse(
                "401: send Authorization: Bearer TOKEN, or open the address with ?token=TOKEN\n",
                401,
            )
        response.headers["www-authenticate"] = 'Bearer realm="omniq-trio dashboard"'
        await _secured(response)(scope, receive, send)


def session_of(scope: Scope) -> Session:
    """The session :class:`Guard` found for this request."""
    session: Session = scope["state"]["session"]
    return session


def _set_cookie(response: Response, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="strict", path="/")


def _secured(response: Response) -> Response:
    response.headers.update(_SECURITY_HEADERS)
    return response


def _with_headers(send: Send, cookie: tuple[str, str] | None = None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for key, header in _SECURITY_HEADERS.items():
                headers.setdefault(key, header)
            if cookie is not None:
                name, value = cookie
                headers.append("set-cookie", f"{name}={value}; HttpOnly; Path=/; SameSite=Strict")
        await send(message)

    return wrapped
