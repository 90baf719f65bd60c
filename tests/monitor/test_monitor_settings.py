"""The monitoring settings: parsed from the environment, refused when wrong."""

from __future__ import annotations

import pytest

from omniq_trio import AsyncOmniQ, ConfigError, Settings
from omniq_trio._cli._main import parser as _parser
from omniq_trio._cli._main import settings as _settings


def test_metrics_and_tracing_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {"OMNIQ_METRICS_PORT": "0", "OMNIQ_METRICS_HOST": "0.0.0.0", "OMNIQ_TRACING": "yes"}
    )
    assert (settings.metrics_port, settings.metrics_host, settings.tracing) == (0, "0.0.0.0", True)
    defaults = Settings.from_env({})
    assert (defaults.metrics_port, defaults.metrics_host, defaults.tracing) == (
        None,
        "127.0.0.1",
        False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OMNIQ_METRICS_PORT", "70000"),
        ("OMNIQ_METRICS_PORT", "-1"),
        ("OMNIQ_METRICS_PORT", "http"),
        ("OMNIQ_METRICS_HOST", " "),
        ("OMNIQ_TRACING", "perhaps"),
    ],
)
def test_bad_values_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_the_worker_options_are_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OMNIQ_METRICS_PORT", "OMNIQ_METRICS_HOST"):
        monkeypatch.delenv(name, raising=False)
    args = _parser().parse_args(["worker", "--metrics-port", "9809", "--metrics-host", "::1"])
    settings = _settings(args)
    assert (settings.metrics_port, settings.metrics_host) == (9809, "::1")


def test_tracing_without_opentelemetry_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"omniq-trio\[otel\]"):
        AsyncOmniQ(Settings(backend="memory", tracing=True))
