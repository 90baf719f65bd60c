"""Schedules defined at module level, for a pool that imports this module (test_cron.py)."""

from omniq_trio import Schedule
from tests.tasks import rt_sleep

hourly = Schedule(rt_sleep, "@hourly", args=("module",), name="module-hourly")
half_hourly = Schedule(rt_sleep, "*/30 * * * *", args=("half",))
also_hourly = hourly  # the same schedule under two names counts once
