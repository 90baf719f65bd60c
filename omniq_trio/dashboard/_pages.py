"""The HTML pages: overview, tasks, one task, workers (GET only)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..models import TaskStatus
from ._chart import throughput_chart
from ._context import dashboard_of
from ._queries import BadQuery, TaskFilter

__all__ = ["overview_page", "task_page", "tasks_page", "workers_page"]

_FILTER_PARAMS = ("status", "func", "queue", "id")


async def overview_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    overview = await dashboard.queries.overview()
    throughput = dashboard.throughput
    throughput.record(overview.at, overview.counts)
    return dashboard.render(
        request,
        "overview.html",
        page="overview",
        overview=overview,
        chart=throughput_chart(throughput.series(overview.at)),
        per_minute=throughput.per_minute(overview.at),
        bucket_seconds=throughput.bucket_seconds,
        window_minutes=round(throughput.bucket_seconds * throughput.buckets / 60),
        sampling_since=throughput.since,
        running=TaskStatus.RUNNING,
        failed_ttl=dashboard.queries.failed_ttl,
        waiting=overview.counts[TaskStatus.PENDING] + overview.counts[TaskStatus.RETRYING],
    )


def parse_filter(request: Request) -> TaskFilter | str:
    """The task filter of the query string, or what is wrong with it."""
    params = request.query_params
    status_text = params.get("status") or None
    status = None
    if status_text is not None:
        try:
            status = TaskStatus(status_text)
        except ValueError:
            return f"unknown status {status_text!r}"
    return TaskFilter(
        status=status,
        queue=(params.get("queue") or "").strip() or None,
        func=(params.get("func") or "").strip() or None,
        id_prefix=(params.get("id") or "").strip() or None,
    )


async def tasks_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    where = parse_filter(request)
    if isinstance(where, str):
        return dashboard.error(request, 400, "Bad filter", where)
    queries = dashboard.queries
    # a whole id goes straight to its task
    if (
        where.id_prefix is not None
        and request.query_params.get("cursor") is None
        and await queries.task(where.id_prefix) is not None
    ):
        return RedirectResponse(f"/tasks/{where.id_prefix}", status_code=303)
    cursor = request.query_params.get("cursor") or None
    try:
        rows = await queries.tasks(where, cursor=cursor)
    except BadQuery as exc:
        return dashboard.error(request, 400, "Bad filter", str(exc))
    kept = [(k, v) for k in _FILTER_PARAMS for v in request.query_params.getlist(k) if v]
    first_url = "/tasks" + ("?" + urlencode(kept) if kept else "")
    next_url = None
    if rows.next_cursor is not None:
        next_url = "/tasks?" + urlencode([*kept, ("cursor", rows.next_cursor)])
    return dashboard.render(
        request,
        "tasks.html",
        page="tasks",
        where=where,
        rows=rows,
        filtered=bool(kept),
        matching=await queries.count(where),
        cursor=cursor,
        first_url=first_url,
        next_url=next_url,
    )


async def task_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    task_id = request.path_params["task_id"]
    detail = await dashboard.queries.task(task_id)
    if detail is None:
        return dashboard.error(request, 404, "No such task", f"No task has the id {task_id!r}.")
    task, result = detail.task, detail.result
    return dashboard.render(
        request,
        "task.html",
        page="task",
        task=task,
        result=result,
        error=task.error or (result.error if result is not None else None),
        progress=detail.progress,
        lost_runs=detail.lost_runs,
        max_lost_runs=detail.max_lost_runs,
        queue=detail.queue,
    )


async def workers_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    workers = await dashboard.queries.workers()
    return dashboard.render(
        request,
        "workers.html",
        page="workers",
        workers=workers,
    )
