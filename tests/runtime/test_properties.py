"""Random workloads, stopped at a random time: the lifecycle always holds.

Each example runs a whole pool under ``MockClock(autojump_threshold=0)``:
tasks of random durations that fail a random number of times, with random
retry budgets, timeouts, delays, priorities and enqueue times, on 1-5
executors, stopped at a random virtual time with a random deadline. Then:

* every enqueued task is still there (none lost), none is RUNNING;
* a task is finished (SUCCESS/FAILED) with exactly the attempts its failures,
  budget and timeout call for, or else waiting (PENDING/RETRYING) with fewer;
* attempts match the executions seen inside the tasks: each start is either
  a charged attempt or the one interruption by the stop;
* no task started before its eta, and never more than ``concurrency`` ran at once.
"""

from __future__ import annotations

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniq_trio import AsyncOmniQ, TaskStatus
from tests.runtime.conftest import SETTINGS
from tests.tasks import RuntimeProbe, fresh_probe, rt_flaky

# Times are multiples of 1/4 s so that virtual times compare exactly.
quarters = st.integers(min_value=0, max_value=80).map(lambda q: q / 4)


@attrs.frozen
class Job:
    duration: float
    failures: int
    max_retries: int
    timeout: float | None
    delay: float
    priority: int
    enqueue_at: float

    def expected(self) -> tuple[TaskStatus, int]:
        """Status and attempts once it has finished."""
        if self.timeout is not None and self.duration > self.timeout:
            return TaskStatus.FAILED, 1
        if self.failures <= self.max_retries:
            return TaskStatus.SUCCESS, self.failures + 1
        return TaskStatus.FAILED, self.max_retries + 1


@st.composite
def jobs(draw: st.DrawFn) -> Job:
    duration = draw(quarters.map(lambda d: d / 4))  # 0 to 5 s
    timeout = draw(st.none() | st.sampled_from([0.5, 1.5, 3.5, 10.0]))
    if timeout is not None and duration == timeout:
        duration += 0.25  # a tie between timeout and end would be a race
    return Job(
        duration=duration,
        failures=draw(st.integers(0, 4)),
        max_retries=draw(st.integers(0, 3)),
        timeout=timeout,
        delay=draw(st.sampled_from([0.0, 0.0, 0.5, 3.0, 12.25])),
        priority=draw(st.integers(-2, 2)),
        enqueue_at=draw(st.sampled_from([0.0, 0.0, 1.0, 2.75, 9.5])),
    )


@attrs.frozen
class Workload:
    jobs: list[Job]
    concurrency: int
    poll_interval: float
    stop_at: float
    stop_timeout: float
    #: a second, immediate stop this long after the first, if any
    stop_now_after: float | None


workloads = st.builds(
    Workload,
    jobs=st.lists(jobs(), min_size=1, max_size=12),
    concurrency=st.integers(1, 5),
    poll_interval=st.sampled_from([0.5, 1.0, 60.0]),
    stop_at=quarters,
    stop_timeout=st.sampled_from([0.0, 0.75, 2.0, 30.0]),
    stop_now_after=st.none() | st.sampled_from([0.0, 0.5, 1.25]),
)


async def run_workload(w: Workload, probe: RuntimeProbe) -> dict[str, tuple[Job, str]]:
    enqueued: dict[str, tuple[Job, str]] = {}  # task id -> (job, label)
    async with AsyncOmniQ(SETTINGS) as omniq:

        async def enqueue(label: str, job: Job) -> None:
            await trio.sleep(job.enqueue_at)
            task_id = await omniq.enqueue(
                rt_flaky,
                label,
                job.failures,
                job.duration,
                max_retries=job.max_retries,
                timeout=job.timeout,
                delay=job.delay,
                priority=job.priority,
            )
            enqueued[task_id] = (job, label)

        async with trio.open_nursery() as nursery:
            pool = omniq.worker(concurrency=w.concurrency, poll_interval=w.poll_interval)
            await nursery.start(pool.run)
            for i, job in enumerate(w.jobs):
                nursery.start_soon(enqueue, f"job{i}", job)
            await trio.sleep(w.stop_at)
            if w.stop_now_after is None:
                await pool.stop(timeout=w.stop_timeout)
            else:
                nursery.start_soon(pool.stop, w.stop_timeout)
                await trio.sleep(w.stop_now_after)
                await pool.stop(timeout=0)
            assert not pool.running
        # run() returned by the deadline (the pool started at 0)
        deadline = w.stop_timeout if w.stop_now_after is None else w.stop_now_after
        assert pool.uptime <= w.stop_at + min(w.stop_timeout, deadline)
        tasks = {t.id: t for t in await omniq.list_tasks()}

    # none lost (tasks enqueued after the stop included)
    assert set(tasks) == set(enqueued)
    assert probe.max_running <= w.concurrency
    assert probe.running == 0
    for task_id, (job, label) in enqueued.items():
        task = tasks[task_id]
        runs = probe.runs[label]
        starts = probe.started(label)
        ends = [t for name, t in probe.ends if name == label]
        assert task.status is not TaskStatus.RUNNING, task
        assert task.worker_id is None
        if task.status in (TaskStatus.SUCCESS, TaskStatus.FAILED):
            assert (task.status, task.attempts) == job.expected(), (job, task)
            assert runs == task.attempts
        else:
            assert task.status in (TaskStatus.PENDING, TaskStatus.RETRYING), task
            # all attempts so far failed, and more were due
            assert task.attempts < job.expected()[1] or job.expected()[0] is TaskStatus.SUCCESS
            assert task.attempts <= min(job.failures, job.max_retries)
            # each start was charged, except one interrupted by the stop
            assert runs - task.attempts in (0, 1)
            if runs - task.attempts == 1:
                assert task.status is TaskStatus.PENDING
        # only executions that ran to their end (not cancelled) report an end
        assert len(ends) <= task.attempts
        if starts:
            assert starts[0] is not None
            assert starts[0] >= job.enqueue_at + job.delay
    return enqueued


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(workloads)
def test_random_workloads_keep_the_lifecycle(w: Workload) -> None:
    trio.run(run_workload, w, fresh_probe(), clock=trio.testing.MockClock(autojump_threshold=0))


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(jobs(), min_size=1, max_size=8), st.integers(1, 5))
def test_without_a_stop_every_task_finishes_as_expected(jobs: list[Job], concurrency: int) -> None:
    probe = fresh_probe()
    # long enough for the worst case (9.5 + 12.25 before the last start, eight
    # jobs of at most 5 runs of 5 s and 7 s of backoff each, one at a time);
    # a slow poll, since etas wake the poller anyway
    w = Workload(jobs, concurrency, 60.0, stop_at=300.0, stop_timeout=0.0, stop_now_after=None)
    enqueued = trio.run(run_workload, w, probe, clock=trio.testing.MockClock(autojump_threshold=0))
    # run_workload checked each finished task; here all of them must be
    assert len(enqueued) == len(jobs)
    assert probe.runs.total() == sum(job.expected()[1] for job in jobs)
