"""Docker compatibility through docker-py 7.x, unchanged, against sampand.

docker-py reads Docker's JSON shapes, stream framing and error messages directly (its
NotFound / ImageNotFound split is made from the message text), so each test here is also a
check of those shapes.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

docker = pytest.importorskip("docker")


def _name(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def made(docker_client):
    """Containers a test makes; force-removed afterwards."""
    items: list = []
    yield items
    for c in items:
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass


def _run(client, made, *args, **kw):
    c = client.containers.run(*args, detach=True, **kw)
    made.append(c)
    return c


def _waiter(c, **kw):
    """c.wait(**kw) in a thread: (thread, result dict)."""
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(c.wait(timeout=30, **kw)), daemon=True)
    t.start()
    return t, out


def test_system_calls(docker_client):
    assert docker_client.ping() is True
    v = docker_client.version()
    assert v["ApiVersion"] == "1.45" and v["Os"] == "linux"
    info = docker_client.info()
    assert info["Containers"] >= 0 and info["Images"] >= 1 and info["NCPU"] >= 1


def test_run_detach_and_logs_stream_follow(docker_client, made):
    c = _run(docker_client, made, "busybox",
             ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done; echo bad >&2"])
    lines = list(c.logs(stream=True, follow=True))
    assert b"".join(lines) == b"line1\nline2\nline3\nbad\n"
    assert c.logs(stdout=True, stderr=False) == b"line1\nline2\nline3\n"
    assert c.logs(stdout=False, stderr=True) == b"bad\n"
    assert c.logs(tail=1) == b"bad\n"
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 0


def test_attach_stream_sees_output_while_running(docker_client, made):
    c = _run(docker_client, made, "busybox", ["sh", "-c", "sleep 0.5; for i in 1 2 3; do echo a$i; done"])
    assert b"".join(c.attach(stream=True, logs=True)) == b"a1\na2\na3\n"
    # logs=False: only what is written after attaching.
    c = _run(docker_client, made, "busybox", ["sh", "-c", "echo early; sleep 0.8; echo late"])
    time.sleep(0.3)
    assert b"".join(c.attach(stream=True, logs=False)) == b"late\n"


def test_exec_run_demux_stream_and_exit_codes(docker_client, made):
    c = _run(docker_client, made, "busybox", ["sleep", "300"])
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 3"], demux=True)
    assert r.exit_code == 3
    assert r.output == (b"out\n", b"err\n")
    r = c.exec_run(["sh", "-c", "echo a; sleep 0.2; echo b"], stream=True)
    assert b"".join(r.output) == b"a\nb\n"
    r = c.exec_run("sh -c 'echo $X $(pwd) $(id -u)'", environment={"X": "y"}, workdir="/tmp", user="1000")
    assert (r.exit_code, r.output) == (0, b"y /tmp 1000\n")
    r = c.exec_run("sh -c 'echo ok; exit 0'", tty=True)
    assert (r.exit_code, r.output) == (0, b"ok\r\n")
    r = c.exec_run("grep CapEff /proc/self/status", privileged=True)
    assert int(r.output.split()[1], 16) & (1 << 21)  # CAP_SYS_ADMIN
    r = c.exec_run(["nosuchcmd"])
    assert r.exit_code == 127
    ex = docker_client.api.exec_create(c.id, ["sh", "-c", "exit 4"])
    docker_client.api.exec_start(ex["Id"])
    info = docker_client.api.exec_inspect(ex["Id"])
    assert (info["ExitCode"], info["Running"], info["ContainerID"]) == (4, False, c.id)


def test_exec_detach_and_stopped_container(docker_client, made):
    c = _run(docker_client, made, "busybox", ["sleep", "300"])
    r = c.exec_run(["sh", "-c", "sleep 0.3; echo x > /tmp/detached"], detach=True)
    assert not r.output  # docker-py returns the (empty) body of a detached start
    deadline = time.monotonic() + 10
    while c.exec_run(["cat", "/tmp/detached"]).output != b"x\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    c.kill()
    c.wait()
    with pytest.raises(docker.errors.APIError) as e:
        c.exec_run(["true"])
    assert e.value.status_code == 409 and "is not running" in str(e.value)


def test_wait_conditions(docker_client, made):
    # not-running (the default): an exited container answers at once with its code.
    c = _run(docker_client, made, "busybox", ["sh", "-c", "exit 5"])
    assert c.wait(timeout=30)["StatusCode"] == 5
    assert c.wait(condition="not-running", timeout=30)["StatusCode"] == 5

    # next-exit: waits for the next exit, even of a container that is stopped now.
    t, out = _waiter(c, condition="next-exit")
    time.sleep(0.3)
    assert t.is_alive()
    c.start()
    t.join(30)
    assert out == {"StatusCode": 5}

    # removed: waits until the container is gone, not just stopped.
    s = _run(docker_client, made, "busybox", ["sleep", "300"])
    t, out = _waiter(s, condition="removed")
    s.kill()
    time.sleep(0.5)
    assert t.is_alive()
    s.remove()
    t.join(30)
    assert out["StatusCode"] == 137

    with pytest.raises(docker.errors.APIError) as e:
        c.wait(condition="bogus")
    assert e.value.status_code == 400


def test_kill_with_signal_rename_reload(docker_client, made):
    c = _run(docker_client, made, "busybox",
             ["sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done"], name=_name())
    time.sleep(0.3)
    new = _name("renamed")
    c.rename(new)
    c.reload()
    assert c.name == new and c.status == "running"
    assert docker_client.containers.get(new).id == c.id
    c.kill(signal="SIGUSR1")
    assert c.wait(timeout=30)["StatusCode"] == 42
    c.reload()
    assert c.status == "exited"
    with pytest.raises(docker.errors.APIError) as e:
        c.kill(signal="NOPE")
    assert e.value.status_code in (400, 409)


def test_stop_restart_and_attrs(docker_client, made):
    c = _run(docker_client, made, "busybox", ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"])
    pid = c.attrs["State"]["Pid"]
    c.restart(timeout=5)
    c.reload()
    assert c.status == "running" and c.attrs["State"]["Pid"] != pid
    c.stop(timeout=5)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 0


def test_list_with_filters(docker_client, made):
    tag = uuid.uuid4().hex[:8]
    a = _run(docker_client, made, "busybox", ["sh", "-c", "exit 2"], labels={"suite": tag})
    a.wait()
    b = _run(docker_client, made, "busybox", ["sleep", "300"], labels={"suite": tag, "role": "b"})
    mine = {"label": f"suite={tag}"}
    assert [c.id for c in docker_client.containers.list(filters=mine)] == [b.id]
    assert [c.id for c in docker_client.containers.list(all=True, filters=mine)] == [b.id, a.id]
    assert [c.id for c in docker_client.containers.list(
        all=True, filters={**mine, "status": "exited"})] == [a.id]
    assert [c.id for c in docker_client.containers.list(
        all=True, filters={**mine, "exited": 2})] == [a.id]
    assert [c.id for c in docker_client.containers.list(
        all=True, filters={"label": [f"suite={tag}", "role=b"]})] == [b.id]
    assert [c.id for c in docker_client.containers.list(all=True, filters={**mine, "id": a.id[:10]})] == [a.id]
    assert [c.id for c in docker_client.containers.list(limit=1, filters=mine)] == [b.id]
    with pytest.raises(docker.errors.APIError) as e:
        docker_client.containers.list(filters={"status": "bogus"})
    assert e.value.status_code == 400


def test_errors_have_docker_types(docker_client, made):
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get("no-such-container-" + uuid.uuid4().hex[:6])
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.containers.create("nosuchimage:nope", "true")
    name = _name("dup")
    made.append(docker_client.containers.create("busybox", "true", name=name))
    with pytest.raises(docker.errors.APIError) as e:
        docker_client.containers.create("busybox", "true", name=name)
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.APIError) as e:
        docker_client.containers.create("busybox", "true", name="bad name")
    assert e.value.status_code == 400
    c = _run(docker_client, made, "busybox", ["sleep", "300"])
    with pytest.raises(docker.errors.APIError) as e:
        c.remove()
    assert e.value.status_code == 409
    with pytest.raises(docker.errors.APIError) as e:
        docker_client.containers.create("busybox", "true", cap_add=["NOT_A_CAP"])
    assert e.value.status_code == 400 and "unknown capability" in str(e.value)
