"""Health checks of a paused container: none runs (the check's own side effect, a line
appended to a file on a bind mount per run, stops growing), the status is kept, no
health_status event; after unpause the checks run again."""

from __future__ import annotations

import json
import time

import pytest

pytestmark = pytest.mark.e2e


def _health(d, ref: str) -> dict:
    return json.loads(d.docker("inspect", "-f", "{{json .State.Health}}", ref).stdout)


def _runs(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_no_checks_while_paused_and_they_resume(sampand, tmp_path):
    d = sampand
    probes = tmp_path / "probes"
    probes.mkdir()
    count = probes / "runs"
    r = d.docker("run", "-d", "--name", "hp1", "-v", f"{probes}:/p",
                 "--health-cmd", "echo run >> /p/runs", "--health-interval", "300ms",
                 "--health-retries", "1", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.time() + 20
        while time.time() < deadline and (_health(d, "hp1")["Status"] != "healthy" or _runs(count) < 2):
            time.sleep(0.1)
        assert _health(d, "hp1")["Status"] == "healthy"
        assert d.docker("pause", "hp1").returncode == 0
        paused_at = time.time()
        time.sleep(0.5)  # a probe in flight at the pause may still land; none starts after
        before = _runs(count)
        log_before = _health(d, "hp1")["Log"]
        time.sleep(2.0)  # more than six intervals
        assert _runs(count) == before, "a check ran in the paused container"
        h = _health(d, "hp1")
        assert h["Status"] == "healthy" and h["FailingStreak"] == 0
        assert h["Log"] == log_before  # nothing recorded while paused
        evs = d.docker("events", "--since", str(paused_at), "--until", str(time.time()),
                       "--filter", "container=hp1", "--filter", "event=health_status",
                       "--format", "{{.Action}}")
        assert evs.returncode == 0 and evs.stdout.strip() == ""
        assert d.docker("unpause", "hp1").returncode == 0
        deadline = time.time() + 10
        while time.time() < deadline and _runs(count) < before + 2:
            time.sleep(0.1)
        assert _runs(count) >= before + 2  # checks resumed
        assert _health(d, "hp1")["Status"] == "healthy"
    finally:
        d.docker("rm", "-f", "hp1")
