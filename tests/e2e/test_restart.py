"""Live restore: `kill -9` of sampand loses nothing.

Runs on a daemon of its own (side by side with the session's, on other roots and another
socket), so killing it can't disturb the other e2e tests — and that the two don't touch each
other is itself part of the check. Talks plain Engine API, the contract every client uses.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

LOOP = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"


def _create_and_start(d, cmd: list[str], name: str) -> str:
    status, body = d.api_json("POST", f"/containers/create?name={name}",
                              {"Image": "busybox", "Cmd": cmd})
    assert status == 201, body
    cid = body["Id"]
    status, body = d.api("POST", f"/containers/{cid}/start")
    assert status == 204, body
    return cid


def _inspect(d, cid: str) -> dict:
    status, body = d.api_json("GET", f"/containers/{cid}/json")
    assert status == 200, body
    return body


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not running; nor is a pid that was reused by something else.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _log_lines(d, cid: str) -> int:
    status, body = d.api("GET", f"/containers/{cid}/logs?stdout=1&stderr=1")
    assert status == 200, body
    return body.count(b"line ")


@pytest.fixture
def restartable(sampand_factory):
    return sampand_factory()


def test_kill9_and_restart_keeps_containers(restartable, sampand):
    d = restartable
    runner = _create_and_start(d, ["sh", "-c", LOOP], "runner")
    quitter = _create_and_start(d, ["sh", "-c", "sleep 1.5; exit 7"], "quitter")

    st = _inspect(d, runner)
    assert st["State"]["Running"] is True
    pid = st["State"]["Pid"]
    assert pid > 0 and _alive(pid)
    log_path = st.get("LogPath") or ""
    time.sleep(0.6)
    before = _log_lines(d, runner)
    assert before >= 2

    old_daemon = d.pid
    d.kill9()
    assert not _alive(old_daemon)
    size_at_kill = os.path.getsize(log_path) if log_path and os.path.exists(log_path) else None

    # While the daemon is down: the container keeps running and logging, the other one exits.
    time.sleep(2.5)
    assert _alive(pid), "container died with the daemon"
    if size_at_kill is not None:
        assert os.path.getsize(log_path) > size_at_kill, "log stopped growing while sampand was down"

    d.start()
    assert d.pid != old_daemon

    st = _inspect(d, runner)
    assert st["State"]["Running"] is True
    assert st["State"]["Status"] == "running"
    assert st["State"]["Pid"] == pid
    after = _log_lines(d, runner)
    assert after >= before + 8  # ~2.5 s at 5 lines/s, with slack

    # Still growing after the restart: the daemon reads the same live log.
    time.sleep(0.8)
    assert _log_lines(d, runner) > after

    q = _inspect(d, quitter)["State"]
    assert q["Running"] is False
    assert q["Status"] == "exited"
    assert q["ExitCode"] == 7
    assert q["FinishedAt"] and not q["FinishedAt"].startswith("0001-")

    status, listing = d.api_json("GET", "/containers/json")
    assert status == 200
    assert [c["Id"] for c in listing] == [runner]

    # The restored container can still be controlled.
    status, body = d.api("POST", f"/containers/{runner}/stop?t=1")
    assert status == 204, body
    status, body = d.api_json("POST", f"/containers/{runner}/wait", timeout=15)
    assert status == 200 and body["StatusCode"] == 137
    assert not _alive(pid)
    for cid in (runner, quitter):
        status, body = d.api("DELETE", f"/containers/{cid}")
        assert status == 204, body

    # The session's daemon, on other roots, never saw any of this.
    status, names = sampand.api_json("GET", "/containers/json?all=1")
    assert status == 200
    assert not any("/runner" in c.get("Names", []) or "/quitter" in c.get("Names", []) for c in names)


def test_restart_twice_in_a_row(restartable):
    """A crash right after a restart (nothing changed in between) is harmless too."""
    d = restartable
    cid = _create_and_start(d, ["sleep", "300"], "sleeper")
    pid = _inspect(d, cid)["State"]["Pid"]
    d.restart()
    d.restart()
    st = _inspect(d, cid)["State"]
    assert st["Running"] is True and st["Pid"] == pid
    status, _ = d.api("DELETE", f"/containers/{cid}?force=1")
    assert status == 204
    assert not _alive(pid) or _wait_dead(pid)


def _wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False
