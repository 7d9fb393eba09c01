"""A start that fails before the container's process exists leaves nothing behind and no
client hanging: `docker run --rm` returns, the container is gone, an attached client sees EOF."""

from __future__ import annotations


def test_run_rm_failing_before_spawn_returns_and_removes(sampand):
    before = set(sampand.docker("ps", "-aq", "--no-trunc").stdout.split())
    # Refused while building the spec (a net.* sysctl in the host's network namespace).
    r = sampand.docker("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1",
                       "busybox", "true", timeout=20)
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert "not allowed in host network namespace" in r.stderr
    after = set(sampand.docker("ps", "-aq", "--no-trunc").stdout.split())
    for _ in range(50):
        if after <= before:
            break
        import time
        time.sleep(0.1)
        after = set(sampand.docker("ps", "-aq", "--no-trunc").stdout.split())
    assert after <= before


def test_attached_run_without_rm_failing_before_spawn_returns(sampand):
    r = sampand.docker("run", "--name", "failstart", "--network", "host", "--sysctl",
                       "net.ipv4.ip_forward=1", "busybox", "true", timeout=20)
    try:
        assert r.returncode == 125, (r.returncode, r.stderr)
        state = sampand.docker("inspect", "-f", "{{.State.Status}}", "failstart").stdout.strip()
        assert state == "created"
    finally:
        sampand.docker("rm", "-f", "failstart")
