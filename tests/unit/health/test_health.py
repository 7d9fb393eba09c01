"""Health-check logic: dockerd's probe-result rules, timing, commands, status text."""

from __future__ import annotations

import pytest

from sampan.health import (HEALTHY, STARTING, UNHEALTHY, SECOND, Timing, go_duration, new_health,
                           next_interval, probe_command, record, status_suffix, timing, _demux)


def T(**kw):
    base = dict(interval=30 * SECOND, timeout=30 * SECOND, start_period=0,
                start_interval=5 * SECOND, retries=3)
    base.update(kw)
    return Timing(**base)


def ok(code=0):
    return {"Start": "s", "End": "e", "ExitCode": code, "Output": ""}


def test_defaults_and_overrides():
    assert timing({}) == T()
    assert timing({"Interval": 2 * SECOND, "Retries": 1, "StartPeriod": SECOND,
                   "StartInterval": SECOND // 2, "Timeout": SECOND}) == Timing(
        2 * SECOND, SECOND, SECOND, SECOND // 2, 1)
    assert timing({"Interval": 0, "Retries": 0}).retries == 3


@pytest.mark.parametrize("test,argv", [
    (["CMD-SHELL", "wget -qO- x || exit 1"], ["/bin/sh", "-c", "wget -qO- x || exit 1"]),
    (["CMD", "true", "a b"], ["true", "a b"]),
    (["NONE"], None), ([], None), (None, None), (["CMD"], None), (["BOGUS", "x"], None),
])
def test_probe_command(test, argv):
    assert probe_command({"Test": test}) == argv


def test_retries_failures_make_unhealthy_and_one_success_heals():
    h = new_health(None)
    t = T(retries=3)
    assert record(h, ok(1), 100, 0, t) == (STARTING, STARTING)
    assert h["FailingStreak"] == 1
    record(h, ok(1), 100, 0, t)
    assert record(h, ok(2), 100, 0, t) == (STARTING, UNHEALTHY)
    assert h["FailingStreak"] == 3
    assert record(h, ok(0), 100, 0, t) == (UNHEALTHY, HEALTHY)
    assert h["FailingStreak"] == 0


def test_failures_in_start_period_do_not_count():
    h = new_health(None)
    t = T(retries=1, start_period=10 * SECOND)
    assert record(h, ok(1), 5 * SECOND, 0, t) == (STARTING, STARTING)
    assert h["FailingStreak"] == 0
    assert record(h, ok(1), 11 * SECOND, 0, t) == (STARTING, UNHEALTHY)


def test_failures_count_in_start_period_once_healthy():
    h = new_health(None)
    t = T(retries=1, start_period=10 * SECOND)
    record(h, ok(0), SECOND, 0, t)
    assert record(h, ok(1), 2 * SECOND, 0, t) == (HEALTHY, UNHEALTHY)


def test_log_keeps_last_five_and_survives_a_restart():
    h = new_health(None)
    for i in range(8):
        record(h, dict(ok(0), Output=str(i)), 0, 0, T())
    assert [e["Output"] for e in h["Log"]] == ["3", "4", "5", "6", "7"]
    again = new_health(h)
    assert again["Status"] == STARTING and again["FailingStreak"] == 0 and len(again["Log"]) == 5


def test_next_interval_uses_start_interval_while_starting_in_start_period():
    t = T(interval=30 * SECOND, start_interval=SECOND, start_period=60 * SECOND)
    assert next_interval(STARTING, 10 * SECOND, 0, t) == SECOND
    assert next_interval(HEALTHY, 10 * SECOND, 0, t) == 30 * SECOND
    assert next_interval(STARTING, 61 * SECOND, 0, t) == 30 * SECOND
    assert next_interval(STARTING, 1, 0, T()) == 30 * SECOND  # no start period


def test_go_duration():
    assert go_duration(30 * SECOND) == "30s"
    assert go_duration(SECOND // 2) == "500ms"
    assert go_duration(90 * SECOND) == "1m30s"
    assert go_duration(3600 * SECOND) == "1h0m0s"
    assert go_duration(1500 * 1_000_000) == "1.5s"


def test_status_suffix():
    assert status_suffix(None) == ""
    assert status_suffix({"Status": STARTING}) == " (health: starting)"
    assert status_suffix({"Status": HEALTHY}) == " (healthy)"
    assert status_suffix({"Status": UNHEALTHY}) == " (unhealthy)"


def test_demux():
    frames = b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x03err"
    assert _demux(frames) == b"outerr"
    assert _demux(frames + b"\x01\x00") == b"outerr"  # a cut frame header is ignored
