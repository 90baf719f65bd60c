"""Settings: validated values, and OMNIQ_* variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from omniq_trio import AsyncOmniQ, ConfigError, Settings
from tests.runtime.conftest import SETTINGS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", -1),
        ("concurrency", 0),
        ("concurrency", 1.5),
        ("concurrency", True),
        ("concurrency", "4"),
        ("poll_interval", 0),
        ("poll_interval", -1.0),
        ("poll_interval", float("nan")),
        ("shutdown_timeout", -1),
        ("shutdown_timeout", float("inf")),
        ("lease_duration", 0),
        ("default_timeout", 0),
        ("default_timeout", -3),
        ("default_max_retries", -1),
        ("retry_backoff", -1),
        ("retry_backoff_max", -0.5),
        ("retry_jitter", 1.5),
        ("result_ttl", 0),
        ("backend", "redis"),
        ("serializer", "yaml"),
        ("sync_tasks", "process"),
        ("fsync", "sometimes"),
        ("log_level", "LOUD"),
        ("postgres_schema", "Bad-Name"),
    ],
)
def test_bad_values_raise_config_error_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"^{field} must"):
        Settings(**{field: value})


def test_settings_are_frozen_and_evolve_validates() -> None:
    settings = Settings(backend="memory")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.concurrency = 3  # type: ignore[misc]
    assert settings.evolve(concurrency=3).concurrency == 3
    with pytest.raises(ConfigError, match="concurrency"):
        settings.evolve(concurrency=-3)


def test_postgres_needs_a_dsn() -> None:
    with pytest.raises(ConfigError, match="dsn"):
        Settings(backend="postgres")


def test_from_env_parses_omniq_variables() -> None:
    settings = Settings.from_env(
        {
            "OMNIQ_BACKEND": "Memory",
            "OMNIQ_CONCURRENCY": "4",
            "OMNIQ_POLL_INTERVAL": "0.5",
            "OMNIQ_DEFAULT_TIMEOUT": "none",
            "OMNIQ_DEFAULT_MAX_RETRIES": "2",
            "OMNIQ_BASE_DIR": "/tmp/omniq-test",
            "OMNIQ_IMPORTS": "app.tasks, app.jobs,",
            "OMNIQ_LOG_LEVEL": "debug",
            "OMNIQ_TEST_POSTGRES_DSN": "not a setting, but known",
            "PATH": "/usr/bin",
        },
        shutdown_timeout=7,
    )
    assert settings == Settings(
        backend="memory",
        concurrency=4,
        poll_interval=0.5,
        default_timeout=None,
        default_max_retries=2,
        base_dir=Path("/tmp/omniq-test"),
        imports=("app.tasks", "app.jobs"),
        log_level="DEBUG",
        shutdown_timeout=7,
    )


def test_overrides_beat_the_environment() -> None:
    env = {"OMNIQ_CONCURRENCY": "4", "OMNIQ_BACKEND": "memory"}
    assert Settings.from_env(env, concurrency=2).concurrency == 2


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNIQ_BACKEND", "memory")
    monkeypatch.setenv("OMNIQ_CONCURRENCY", "3")
    assert Settings.from_env().concurrency == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OMNIQ_CONCURRENCY", "four"),
        ("OMNIQ_CONCURRENCY", "2.5"),
        ("OMNIQ_CONCURRENCY", "-2"),
        ("OMNIQ_CONCURRENCY", "0"),
        ("OMNIQ_POLL_INTERVAL", "soon"),
        ("OMNIQ_POLL_INTERVAL", "-1"),
        ("OMNIQ_SHUTDOWN_TIMEOUT", "nan"),
        ("OMNIQ_BACKEND", "redis"),
        ("OMNIQ_LOG_LEVEL", "loud"),
    ],
)
def test_from_env_names_the_variable_of_a_bad_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name) as info:
        Settings.from_env({"OMNIQ_BACKEND": "memory", name: value})
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("OMNIQ_CONCURENCY", "OMNIQ_CONCURRENCY"),  # a letter missing
        ("OMNIQ_CONCRUENCY", "OMNIQ_CONCURRENCY"),  # two swapped
        ("OMNIQ_POLL_INTERVALS", "OMNIQ_POLL_INTERVAL"),
        ("OMNIQ_BASEDIR", "OMNIQ_BASE_DIR"),
        ("OMNIQ_DNS", "OMNIQ_DSN"),
    ],
)
def test_from_env_names_the_setting_a_typo_meant(name: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} is not an omniq_trio setting") as info:
        Settings.from_env({name: "4"})
    assert f"did you mean {meant}?" in str(info.value)


@pytest.mark.parametrize(
    "name", ["OMNIQ_UNRELATED", "OMNIQ_TASK_QUEUE_TYPE", "OMNIQ_HOST", "OMNIQ_X", "OMNIQ_"]
)
def test_from_env_warns_about_other_omniq_variables_and_carries_on(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({name: "1", "OMNIQ_BACKEND": "memory", "OMNIQ_CONCURRENCY": "3"})
    assert (settings.backend, settings.concurrency) == ("memory", 3)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("omniq_trio.config", "WARNING", f"{name} is not an omniq_trio setting; ignored")
    ]


def test_from_env_ignores_the_variables_of_its_own_tools_silently(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Settings.from_env({"OMNIQ_TEST_POSTGRES_DSN": "postgresql://db/test", "OMNIQ_BACKEND": "file"})
    assert caplog.records == []


@pytest.mark.parametrize(
    ("environ", "overrides", "backend"),
    [
        ({"OMNIQ_DSN": "postgresql://db/app"}, {}, "postgres"),
        ({"OMNIQ_DSN": "postgresql://db/app", "OMNIQ_BACKEND": "file"}, {}, "file"),
        ({"OMNIQ_DSN": "postgresql://db/app"}, {"backend": "file"}, "file"),
        ({}, {"dsn": "postgresql://db/app"}, "postgres"),
        # an override wins over the variable: dsn= alone means backend="postgres"
        ({"OMNIQ_BACKEND": "file"}, {"dsn": "postgresql://db/app"}, "postgres"),
        ({"OMNIQ_BACKEND": "file"}, {"dsn": "postgresql://db/app", "backend": "file"}, "file"),
        ({"OMNIQ_BACKEND": "memory"}, {"dsn": None}, "memory"),
    ],
)
def test_a_dsn_with_no_backend_beside_it_selects_postgres(
    environ: dict[str, str], overrides: dict[str, Any], backend: str
) -> None:
    assert Settings.from_env(environ, **overrides).backend == backend


async def test_worker_options_are_validated(
    autojump_clock: trio.abc.Clock, omniq: AsyncOmniQ
) -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        omniq.worker(concurrency=0)
    with pytest.raises(ConfigError, match="poll_interval"):
        omniq.worker(poll_interval=-1)
    pool = omniq.worker(concurrency=3, poll_interval=0.25)
    assert (pool.concurrency, pool.poll_interval) == (3, 0.25)
    assert (pool.settings.concurrency, pool.settings.poll_interval) == (3, 0.25)
    assert omniq.settings == SETTINGS


def test_client_takes_settings() -> None:
    with pytest.raises(ConfigError, match="takes a Settings"):
        AsyncOmniQ({"backend": "memory"})  # type: ignore[arg-type]
