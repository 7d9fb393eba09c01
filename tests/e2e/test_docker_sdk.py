"""The Docker SDK for Python (docker-py 7.x) against the session's sampand, unchanged."""

from __future__ import annotations

import time
import uuid

import pytest

docker = pytest.importorskip("docker")
from docker import errors as derr  # noqa: E402


def _name(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_ping_and_version(docker_client):
    assert docker_client.ping() is True
    v = docker_client.version()
    assert v["ApiVersion"] == "1.45"
    assert v["MinAPIVersion"] == "1.24"
    assert v["Os"] == "linux"


def test_run_remove_returns_output(docker_client):
    out = docker_client.containers.run("busybox", ["echo", "hello"], remove=True)
    assert out == b"hello\n"


def test_run_nonzero_exit_raises_container_error(docker_client):
    with pytest.raises(derr.ContainerError) as e:
        docker_client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 4"], remove=True)
    assert e.value.exit_status == 4
    assert b"oops" in e.value.stderr


def test_detached_lifecycle(docker_client):
    name = _name()
    c = docker_client.containers.run(
        "busybox", ["sh", "-c", "echo out; echo err >&2; exec sleep 300"],
        detach=True, name=name, labels={"e2e": "sdk"})
    try:
        c.reload()
        assert c.status == "running"
        assert c.name == name
        assert c.labels == {"e2e": "sdk"}
        assert c.attrs["State"]["Pid"] > 0

        deadline = time.monotonic() + 10
        while b"err" not in c.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert c.logs(stdout=True, stderr=False) == b"out\n"
        assert c.logs(stdout=False, stderr=True) == b"err\n"

        assert any(x.id == c.id for x in docker_client.containers.list(filters={"label": "e2e=sdk"}))

        code, output = c.exec_run(["cat", "/etc/hostname"])
        assert code == 0
        assert output == (c.id[:12] + "\n").encode()
        code, _ = c.exec_run(["sh", "-c", "exit 5"])
        assert code == 5

        c.stop(timeout=1)
        result = c.wait(timeout=15)
        assert result["StatusCode"] == 137
        c.reload()
        assert c.status == "exited"
        assert c.attrs["State"]["ExitCode"] == 137
    finally:
        c.remove(force=True)
    with pytest.raises(derr.NotFound):
        docker_client.containers.get(c.id)


def test_wait_returns_exit_code(docker_client):
    c = docker_client.containers.run("busybox", ["sh", "-c", "sleep 0.3; exit 9"], detach=True)
    try:
        assert c.wait(timeout=15)["StatusCode"] == 9
    finally:
        c.remove(force=True)


def test_images_list_get_tag_remove(docker_client):
    img = docker_client.images.get("busybox")
    assert "busybox:latest" in img.tags
    assert any(i.id == img.id for i in docker_client.images.list())
    assert any(i.id == img.id for i in docker_client.images.list(name="busybox"))

    repo = _name("sdkimg")
    assert img.tag(repo, "v1") is True
    try:
        assert docker_client.images.get(f"{repo}:v1").id == img.id
        docker_client.images.remove(f"{repo}:v1")
        with pytest.raises(derr.ImageNotFound):
            docker_client.images.get(f"{repo}:v1")
        assert docker_client.images.get("busybox").id == img.id
    finally:
        try:
            docker_client.images.remove(f"{repo}:v1")
        except derr.ImageNotFound:
            pass


def test_unknown_container_is_not_found(docker_client):
    with pytest.raises(derr.NotFound) as e:
        docker_client.containers.get("nosuchcontainer")
    assert e.value.status_code == 404
    assert "no such container" in str(e.value).lower()


def test_unknown_image_is_image_not_found(docker_client):
    with pytest.raises(derr.ImageNotFound):
        docker_client.images.get("nosuchimage:latest")
    # create (unlike run) doesn't fall back to a pull, so the 404 surfaces as is.
    with pytest.raises(derr.ImageNotFound):
        docker_client.containers.create("nosuchimage:latest", ["true"])


def test_name_in_use_is_409(docker_client):
    name = _name()
    c = docker_client.containers.create("busybox", ["true"], name=name)
    try:
        with pytest.raises(derr.APIError) as e:
            docker_client.containers.create("busybox", ["true"], name=name)
        assert e.value.status_code == 409
        assert "in use" in str(e.value).lower()
    finally:
        c.remove(force=True)


def test_invalid_name_is_400(docker_client):
    with pytest.raises(derr.APIError) as e:
        docker_client.containers.create("busybox", ["true"], name="bad name/..")
    assert e.value.status_code == 400


# --- the raw API under the SDK: bad input gets a 4xx with a message, and changes nothing -------

def test_bad_json_is_400_and_the_daemon_keeps_answering(sampand):
    status, body = sampand.api("POST", "/containers/create", b"{not json",
                               headers={"Content-Type": "application/json"})
    assert status == 400
    assert b'"message"' in body
    status, body = sampand.api("POST", "/containers/create", {"Image": "busybox", "Cmd": "not-a-list", "Env": 5})
    assert 400 <= status < 500
    assert sampand.api("GET", "/_ping") == (200, b"OK")


def test_import_of_a_non_tarball_is_rejected(sampand):
    before = sorted(p.name for p in sampand.data_root.iterdir())
    status, body = sampand.api("POST", "/images/create?fromSrc=-&repo=garbage&tag=1",
                               b"this is not a tar archive" * 100,
                               headers={"Content-Type": "application/x-tar"})
    # Docker answers 200 and puts the error in the progress stream; a 4xx is as good.
    assert status >= 400 or b"error" in body.lower()
    status, _ = sampand.api("GET", "/images/garbage:1/json")
    assert status == 404
    assert sorted(p.name for p in sampand.data_root.iterdir()) == before
    assert sampand.api("GET", "/_ping") == (200, b"OK")


def test_unknown_ids_are_404(sampand):
    for method, path in (("GET", "/containers/0123456789ab/json"), ("POST", "/containers/nope/start"),
                         ("DELETE", "/containers/nope"), ("GET", "/exec/nope/json"),
                         ("GET", "/images/nope:nope/json"), ("DELETE", "/images/nope:nope")):
        status, body = sampand.api(method, path)
        assert status == 404, (method, path, status, body)
        assert b'"message"' in body


def test_versioned_and_bare_paths(sampand):
    assert sampand.api("GET", "/v1.45/_ping") == (200, b"OK")
    assert sampand.api("GET", "/v1.24/version")[0] == 200
    status, body = sampand.api("GET", "/v1.99/version")
    assert status == 400 and b"too new" in body
