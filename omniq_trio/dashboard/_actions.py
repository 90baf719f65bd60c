"""The actions: cancel, retry, purge. POST only, each checked before anything changes.

Refused with 403, changing nothing: any action when the dashboard is
read-only; a form without this session's CSRF token (a request authenticated by
``Authorization: Bearer`` needs none: no other site can make a browser send that
header); a request whose ``Origin`` or ``Sec-Fetch-Site`` says another site sent
it. A browser's form is answered by a redirect (303) back to the page it came
from, with a notice; a client that asks for JSON gets ``{"ok": ..., "notice": ...}``.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from ..errors import TaskNotFoundError
from ._context import NOTICES, dashboard_of
from ._guard import session_of
from ._queries import ActionRefused

__all__ = ["cancel_action", "parse_duration", "purge_action", "retry_action"]

#: A form larger than this is not a form of ours.
MAX_FORM_BYTES: Final = 16 * 1024
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float | None:
    """Seconds in ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"`` or ``"30"``; ``None`` if not one."""
    match = _DURATION.match(text.lower())
    if not match:
        return None
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


class _Refused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


async def _checked_form(request: Request) -> dict[str, str]:
    """The posted form, once every check passed (else :class:`_Refused`)."""
    dashboard = dashboard_of(request)
    if dashboard.access.read_only:
        raise _Refused(403, "this dashboard is read-only (--read-only): no actions")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise _Refused(403, "a request sent by another site")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise _Refused(403, "a request sent by another site (Origin does not match Host)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "form too large")
    kind = request.headers.get("content-type", "").partition(";")[0].strip()
    if body and kind != "application/x-www-form-urlencoded":
        raise _Refused(415, "send the form as application/x-www-form-urlencoded")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    presented = form.get("csrf") or request.headers.get("x-csrf-token")
    if not dashboard.access.csrf_ok(session_of(request.scope), presented):
        raise _Refused(403, "missing or wrong CSRF token: reload the page and try again")
    return form


def _done(
    request: Request, form: dict[str, str], default: str, notice: str, n: int = 0
) -> Response:
    ok = NOTICES[notice][0] == "ok"
    if "application/json" in request.headers.get("accept", ""):
        text = NOTICES[notice][1].format(n=n)
        return JSONResponse({"ok": ok, "notice": notice, "message": text, "count": n})
    target = form.get("next", "")
    # only a path of this site: never an open redirect
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = default
    separator = "&" if "?" in target else "?"
    suffix = f"notice={notice}" + (f"&n={n}" if notice == "purged" else "")
    return RedirectResponse(f"{target}{separator}{suffix}", status_code=303)


def _refusal(exc: _Refused) -> Response:
    return PlainTextResponse(f"{exc.status_code}: {exc}\n", exc.status_code)


async def cancel_action(request: Request) -> Response:
    task_id = request.path_params["task_id"]
    try:
        form = await _checked_form(request)
        await dashboard_of(request).queries.cancel(task_id)
    except _Refused as exc:
        return _refusal(exc)
    except TaskNotFoundError:
        return PlainTextResponse(f"404: no task {task_id}\n", 404)
    except ActionRefused as refused:
        return _done(request, form, f"/tasks/{task_id}", refused.code)
    return _done(request, form, f"/tasks/{task_id}", "cancelled")


async def retry_action(request: Request) -> Response:
    task_id = request.path_params["task_id"]
    try:
        form = await _checked_form(request)
        await dashboard_of(request).queries.retry(task_id)
    except _Refused as exc:
        return _refusal(exc)
    except TaskNotFoundError:
        return PlainTextResponse(f"404: no task {task_id}\n", 404)
    except ActionRefused as refused:
        return _done(request, form, f"/tasks/{task_id}", refused.code)
    return _done(request, form, f"/tasks/{task_id}", "retried")


async def purge_action(request: Request) -> Response:
    try:
        form = await _checked_form(request)
    except _Refused as exc:
        return _refusal(exc)
    older_than = parse_duration(form.get("older_than", ""))
    if older_than is None:
        return PlainTextResponse(
            "400: older_than must be a duration such as 90s, 15m, 2h or 7d\n", 400
        )
    include_failed = form.get("include_failed", "") not in ("", "0", "off")
    purged = await dashboard_of(request).queries.purge(older_than, include_failed=include_failed)
    return _done(request, form, "/", "purged", purged)
