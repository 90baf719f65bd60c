"""What every page handler shares: the queries, the access rules, the templates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, final
from urllib.parse import urlencode

import attrs
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .. import __version__
from ..models import TaskStatus
from ._access import Access
from ._format import FILTERS, call, utc_offset
from ._guard import session_of
from ._queries import Queries
from ._throughput import Throughput

__all__ = ["Dashboard", "dashboard_of"]

#: The order statuses are shown in: the life of a task, left to right.
STATUSES: Final = (
    TaskStatus.PENDING,
    TaskStatus.RUNNING,
    TaskStatus.RETRYING,
    TaskStatus.SUCCESS,
    TaskStatus.FAILED,
    TaskStatus.CANCELLED,
)

#: What an action's redirect says: ``?notice=CODE`` (``n``: a count).
NOTICES: Final[Mapping[str, tuple[str, str]]] = {
    "cancelled": ("ok", "The task was cancelled."),
    "not-cancelled": ("warn", "The task had already finished: nothing was cancelled."),
    "retried": ("ok", "The task is pending again, with a fresh retry budget."),
    "not-retried": ("warn", "Only a failed task can be retried."),
    "retry-held": (
        "warn",
        "Not retried: another live task holds its unique key; retry it once that one finishes.",
    ),
    "purged": ("ok", "Purged {n} finished task(s)."),
}
#: Query parameters that belong to a notice, not to the page.
NOTICE_PARAMS: Final = ("notice", "n")


@attrs.frozen
class Notice:
    kind: str
    text: str


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("omniq_trio.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


@final
@attrs.define(eq=False)
class Dashboard:
    """The state of one dashboard app (``request.app.state.dashboard``)."""

    queries: Queries
    access: Access
    throughput: Throughput
    #: seconds between a page's refreshes of its live parts
    refresh_interval: float
    _env: jinja2.Environment = attrs.field(factory=_environment, alias="env")

    def render(
        self, request: Request, template: str, *, page: str, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        """The page ``template`` with what every page shows (header, notice, CSRF token)."""
        session = session_of(request.scope)
        html = self._env.get_template(template).render(
            version=__version__,
            page=page,
            refresh_ms=round(self.refresh_interval * 1000),
            store=self.queries.describe_store(),
            read_only=self.access.read_only,
            csrf=self.access.csrf_token(session),
            notice=_notice(request),
            utc_offset=utc_offset(),
            now=self.queries.now(),
            statuses=STATUSES,
            call=call,
            here=here(request),
            **values,
        )
        return HTMLResponse(html, status_code, headers={"cache-control": "no-store"})

    def error(self, request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            page="error",
            status_code=status_code,
            title=title,
            message=message,
            back_url="/tasks",
            back_label="All tasks",
        )


def dashboard_of(request: Request) -> Dashboard:
    """The :class:`Dashboard` of the app serving ``request``."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def here(request: Request) -> str:
    """This page's path and query, without a notice: where an action comes back to."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in NOTICE_PARAMS]
    return request.url.path + ("?" + urlencode(kept) if kept else "")


def _notice(request: Request) -> Notice | None:
    code = request.query_params.get("notice", "")
    if code not in NOTICES:
        return None
    kind, text = NOTICES[code]
    count = request.query_params.get("n", "")
    return Notice(kind, text.format(n=int(count) if count.isdigit() else "some"))
