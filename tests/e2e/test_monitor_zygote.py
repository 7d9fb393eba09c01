"""Monitors are forked by a small zygote process the daemon starts (sampan/monitor/zygote.py),
not by the daemon itself; without the zygote the daemon forks them, and either way they
outlive the daemon."""

from __future__ import annotations

import os
import signal
import time

import pytest

pytestmark = pytest.mark.e2e


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rpartition(")")[2].split()[1])


def _children(pid: int) -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _safe_ppid(int(p)) == pid]


def _safe_ppid(pid: int) -> int:
    try:
        return _ppid(pid)
    except OSError:
        return -1


def _monitor_of(d, name: str) -> int:
    init = int(d.docker("inspect", "-f", "{{.State.Pid}}", name).stdout)
    return _ppid(init)


def _run(d, name: str) -> None:
    r = d.docker("run", "-d", "--name", name, "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr


def test_monitors_come_from_the_zygote_and_outlive_the_daemon(sampand_factory):
    d = sampand_factory()
    tag = f"sampan-monitors:{d.exec_root / 'monitors'}"
    zygotes = [p for p in _children(d.pid) if tag in _cmdline(p)]
    assert len(zygotes) == 1, [(p, _cmdline(p)) for p in _children(d.pid)]
    zygote = zygotes[0]
    _run(d, "z1")
    mon = _monitor_of(d, "z1")
    assert tag in _cmdline(mon) and mon != zygote
    assert _ppid(mon) not in (d.pid, zygote)           # detached: nobody's child
    assert d.docker("exec", "z1", "echo", "ok").stdout == "ok\n"

    # Without its zygote (killed here), the daemon forks monitors itself.
    os.kill(zygote, signal.SIGKILL)
    for _ in range(50):
        if not os.path.exists(f"/proc/{zygote}") or _cmdline(zygote) == "":
            break
        time.sleep(0.05)
    _run(d, "z2")
    mon2 = _monitor_of(d, "z2")
    assert "sampan.daemon.main" in _cmdline(mon2), _cmdline(mon2)
    assert d.docker("exec", "z2", "echo", "ok").stdout == "ok\n"

    # A restart brings a new zygote; kill -9 of the daemon ends it, never the monitors.
    d.restart()
    zygote = next(p for p in _children(d.pid) if tag in _cmdline(p))
    _run(d, "z3")
    monitors = [_monitor_of(d, n) for n in ("z1", "z2", "z3")]
    d.kill9()
    for _ in range(100):
        if not os.path.exists(f"/proc/{zygote}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{zygote}") or _cmdline(zygote) == ""
    assert all(os.path.exists(f"/proc/{m}") for m in monitors)
    d.start()
    for n in ("z1", "z2", "z3"):
        assert d.docker("inspect", "-f", "{{.State.Running}}", n).stdout.strip() == "true"
        assert d.docker("exec", n, "echo", "ok").stdout == "ok\n"
    d.destroy()
