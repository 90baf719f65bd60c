"""How the pages write durations, times and stored values."""

from __future__ import annotations

from omniq_trio.dashboard._format import MAX_VALUE_CHARS, age, call, pretty, relative, timestamp


def test_durations() -> None:
    assert [age(s) for s in (0, 0.0004, 0.012, 4.25, 45, 192, 7500, 277_200)] == [
        "0s",
        "1 ms",
        "12 ms",
        "4.2s",
        "45s",
        "3m 12s",
        "2h 5m",
        "3d 5h",
    ]
    assert age(None) == "-"


def test_relative_times() -> None:
    assert relative(100.0, 145.0) == "45s ago"
    assert relative(200.0, 145.0) == "in 55s"
    assert relative(None, 1.0) == "" and timestamp(None) == "-"


def test_stored_values() -> None:
    assert pretty({"a": [1, "é"]}) == '{\n  "a": [\n    1,\n    "é"\n  ]\n}'
    assert pretty(object()).startswith('"<object object at')  # what JSON cannot say: repr
    long = pretty("x" * (MAX_VALUE_CHARS + 50))
    assert long.endswith("(52 more characters)") and len(long) < MAX_VALUE_CHARS + 40


def test_a_call_on_one_line() -> None:
    assert call("app.tasks:send", (1, "a"), {"to": "ada"}) == 'send(1, "a", to="ada")'
    cut = call("app.tasks:send", ("x" * 200,), {})
    assert len(cut) == 120 and cut.endswith("\u2026")
