"""Hostile input through the raw API, on the container and exec routes.

Every case must be answered with a 4xx and Docker's `{"message": ...}` body (never a 500, never
a hang), leave no container behind, and leave the daemon answering `/_ping`.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import uuid

import pytest

NO_SUCH = "no-such-" + uuid.uuid4().hex[:6]


def _ids(sampand) -> set[str]:
    status, items = sampand.api_json("GET", "/containers/json?all=1")
    assert status == 200
    return {c["Id"] for c in items}


def _assert_4xx(status: int, body: bytes, want: int | None = None, text: str | None = None) -> str:
    assert 400 <= status < 500, (status, body[:300])
    if want is not None:
        assert status == want, (status, body[:300])
    msg = json.loads(body)["message"]
    assert isinstance(msg, str) and msg
    if text is not None:
        assert text.lower() in msg.lower(), msg
    return msg


def _ping(sampand) -> None:
    status, body = sampand.api("GET", "/_ping")
    assert (status, body) == (200, b"OK")


@pytest.fixture
def running(sampand):
    """A running busybox container (and its id), removed afterwards."""
    status, body = sampand.api_json("POST", "/containers/create",
                                    {"Image": "busybox", "Cmd": ["sleep", "300"], "OpenStdin": True})
    assert status == 201, body
    cid = body["Id"]
    assert sampand.api("POST", f"/containers/{cid}/start")[0] == 204
    yield cid
    sampand.api("DELETE", f"/containers/{cid}?force=1")


BAD_CREATE_BODIES = [
    b"{bad json", b"[1, 2]", b"null", b"", b'"a string"', b"\xff\xfe",
    {"Image": 5},
    {"Image": "busybox", "Cmd": 5},
    {"Image": "busybox", "Cmd": [1]},
    {"Image": "busybox", "Entrypoint": {"a": 1}},
    {"Image": "busybox", "Env": "x"},
    {"Image": "busybox", "Env": [1]},
    {"Image": "busybox", "Env": ["=x"]},
    {"Image": "busybox", "Labels": {"a": 1}},
    {"Image": "busybox", "Labels": ["a"]},
    {"Image": "busybox", "Tty": "yes"},
    {"Image": "busybox", "StopTimeout": 10 ** 30},
    {"Image": "busybox", "StopTimeout": 1.5},
    {"Image": "busybox", "Volumes": {"/x": 5}},
    {"Image": "busybox", "ExposedPorts": ["80/tcp"]},
    {"Image": "busybox", "Healthcheck": {"Test": 5}},
    {"Image": "busybox", "WorkingDir": "relative/dir"},
    {"Image": "busybox", "HostConfig": []},
    {"Image": "busybox", "HostConfig": "x"},
    {"Image": "busybox", "HostConfig": {"Memory": 10 ** 30}},
    {"Image": "busybox", "HostConfig": {"Memory": True}},
    {"Image": "busybox", "HostConfig": {"Memory": 1024}},
    {"Image": "busybox", "HostConfig": {"ShmSize": -1}},
    {"Image": "busybox", "HostConfig": {"PidsLimit": 2 ** 63}},
    {"Image": "busybox", "HostConfig": {"BlkioWeight": 70000}},
    {"Image": "busybox", "HostConfig": {"OomScoreAdj": 5000}},
    {"Image": "busybox", "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 10 ** 30, "Hard": 1}]}},
    {"Image": "busybox", "HostConfig": {"Ulimits": ["nofile=1"]}},
    {"Image": "busybox", "HostConfig": {"CapAdd": [5]}},
    {"Image": "busybox", "HostConfig": {"CapAdd": ["NOT_A_CAP"]}},
    {"Image": "busybox", "HostConfig": {"CapDrop": ["CAP_NOPE"]}},
    {"Image": "busybox", "HostConfig": {"Binds": [5]}},
    {"Image": "busybox", "HostConfig": {"Binds": "/:/host"}},
    {"Image": "busybox", "HostConfig": {"Tmpfs": {"/x": 5}}},
    {"Image": "busybox", "HostConfig": {"Sysctls": {"a": 1}}},
    {"Image": "busybox", "HostConfig": {"Devices": [5]}},
    {"Image": "busybox", "HostConfig": {"Mounts": [5]}},
    {"Image": "busybox", "HostConfig": {"Mounts": [{"Target": 5}]}},
    {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}},
    {"Image": "busybox", "HostConfig": {"ConsoleSize": ["a", "b"]}},
    {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": 5}}},
    {"Image": "busybox", "HostConfig": {"RestartPolicy": []}},
    {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
    {"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}},
    {"Image": "busybox", "HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
    {"Image": "busybox", "HostConfig": {"Runtime": "../../bin/sh"}},
    {"Image": "busybox", "HostConfig": {"NetworkMode": "no-such-network"}},
    {"Image": "../../etc"},
    {"Image": "nosuchimage:nope"},
    {"Cmd": ["true"]},
]


@pytest.mark.parametrize("body", BAD_CREATE_BODIES, ids=lambda b: repr(b)[:60])
def test_bad_create_bodies_are_4xx_and_create_nothing(sampand, body):
    if isinstance(body, dict) and "Cmd" not in body and "Image" in body:
        body = dict(body, Cmd=["true"])
    before = _ids(sampand)
    name = "hostile-" + uuid.uuid4().hex[:8]
    status, data = sampand.api("POST", f"/containers/create?name={name}", body)
    _assert_4xx(status, data)
    assert _ids(sampand) == before
    assert sampand.api("GET", f"/containers/{name}/json")[0] == 404
    _ping(sampand)


@pytest.mark.parametrize("name", ["bad/name", "..", "-x", "a", "with space", "%2e%2e%2fx", "/x/y",
                                  "名前"])
def test_invalid_container_names_are_400(sampand, name):
    before = _ids(sampand)
    status, data = sampand.api("POST", "/containers/create?name=" + urllib.parse.quote(name, safe=""),
                               {"Image": "busybox", "Cmd": ["true"]})
    _assert_4xx(status, data, 400, "Invalid container name")
    assert _ids(sampand) == before


CONTAINER_ROUTES = [
    ("GET", "/containers/{}/json"), ("POST", "/containers/{}/start"), ("POST", "/containers/{}/stop"),
    ("POST", "/containers/{}/restart"), ("POST", "/containers/{}/kill"), ("POST", "/containers/{}/wait"),
    ("DELETE", "/containers/{}"), ("POST", "/containers/{}/rename?name=fresh-name"),
    ("POST", "/containers/{}/resize?h=10&w=10"), ("GET", "/containers/{}/logs?stdout=1"),
    ("POST", "/containers/{}/attach?stream=1&stdout=1"), ("POST", "/containers/{}/exec"),
]


@pytest.mark.parametrize("method,path", CONTAINER_ROUTES)
def test_unknown_container_is_404_with_dockers_message(sampand, method, path):
    body = {"Cmd": ["true"]} if path.endswith("/exec") else None
    status, data = sampand.api(method, path.format(NO_SUCH), body)
    msg = _assert_4xx(status, data, 404)
    assert msg == f"No such container: {NO_SUCH}"


@pytest.mark.parametrize("method,path", [("POST", "/exec/{}/start"), ("POST", "/exec/{}/resize?h=1&w=1"),
                                         ("GET", "/exec/{}/json")])
def test_unknown_exec_is_404(sampand, method, path):
    status, data = sampand.api(method, path.format(NO_SUCH), {} if method == "POST" else None)
    assert _assert_4xx(status, data, 404) == f"No such exec instance: {NO_SUCH}"


def test_bad_query_parameters_on_a_running_container(sampand, running):
    cid = running
    cases = [
        ("POST", f"/containers/{cid}/kill?signal=NOPE", "Invalid signal"),
        ("POST", f"/containers/{cid}/kill?signal=99", "Invalid signal"),
        ("POST", f"/containers/{cid}/kill?signal=-1", "Invalid signal"),
        ("POST", f"/containers/{cid}/stop?signal=SIGBOGUS", "Invalid signal"),
        ("POST", f"/containers/{cid}/stop?t=abc", "t"),
        ("POST", f"/containers/{cid}/stop?t=99999999999999999999999", "t"),
        ("POST", f"/containers/{cid}/restart?t=1.5", "t"),
        ("GET", f"/containers/{cid}/logs?stdout=1&tail=abc", "tail"),
        ("GET", f"/containers/{cid}/logs?stdout=1&since=abc", "since"),
        ("GET", f"/containers/{cid}/logs?stdout=1&since=nan", "since"),
        ("GET", f"/containers/{cid}/logs?stdout=1&since=1e400", "since"),
        ("GET", f"/containers/{cid}/logs?stdout=1&until=yesterday", "until"),
        ("GET", f"/containers/{cid}/logs", "stream"),
        ("POST", f"/containers/{cid}/wait?condition=bogus", "condition"),
        ("POST", f"/containers/{cid}/resize?h=abc&w=1", "h"),
        ("POST", f"/containers/{cid}/resize?h=-1&w=1", "h"),
        ("POST", f"/containers/{cid}/resize?h=10&w=99999999", "w"),
        ("POST", f"/containers/{cid}/rename?name=", "name"),
        ("POST", f"/containers/{cid}/rename?name=a%2Fb", "Invalid container name"),
        ("POST", f"/containers/{cid}/attach?stream=1&stdout=1&detachKeys=ctrl-%C3%A9", "detach"),
        ("POST", f"/containers/{cid}/attach?stream=1&stdout=1&detachKeys=ctrl-ab", "detach"),
        ("GET", "/containers/json?filters=%7Bbad", "filters"),
        ("GET", "/containers/json?filters=%5B1%5D", "filters"),
        ("GET", "/containers/json?filters=" + urllib.parse.quote('{"status": 5}'), "filter"),
        ("GET", "/containers/json?filters=" + urllib.parse.quote('{"status": ["bogus"]}'), "status"),
        ("GET", "/containers/json?filters=" + urllib.parse.quote('{"exited": ["x"]}'), "exited"),
        ("GET", "/containers/json?filters=" + urllib.parse.quote('{"nosuch": ["x"]}'), "nosuch"),
        ("GET", "/containers/json?limit=abc", "limit"),
    ]
    for method, path, text in cases:
        status, data = sampand.api(method, path, timeout=10)
        _assert_4xx(status, data, text=text)
    # None of that touched the container.
    status, c = sampand.api_json("GET", f"/containers/{cid}/json")
    assert status == 200 and c["State"]["Running"] is True
    _ping(sampand)


def test_bad_exec_bodies(sampand, running):
    cid = running
    bodies = [b"{bad", b"[1]", {"Cmd": 5}, {"Cmd": []}, {"Cmd": [1]}, {"Cmd": ["true"], "Env": "x"},
              {"Cmd": ["true"], "User": 5}, {"Cmd": ["true"], "WorkingDir": ["/"]},
              {"Cmd": ["true"], "Tty": "yes"}, {"Cmd": ["true"], "Privileged": 1},
              {"Cmd": ["true"], "ConsoleSize": [1]}, {"Cmd": ["true"], "DetachKeys": "ctrl-nope"}]
    for body in bodies:
        status, data = sampand.api("POST", f"/containers/{cid}/exec", body)
        _assert_4xx(status, data, 400)
    status, c = sampand.api_json("GET", f"/containers/{cid}/json")
    assert c["ExecIDs"] is None  # no exec was recorded by a rejected request

    status, ex = sampand.api_json("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
    assert status == 201
    status, data = sampand.api("POST", f"/exec/{ex['Id']}/start", b"{bad")
    _assert_4xx(status, data, 400)
    status, data = sampand.api("POST", f"/exec/{ex['Id']}/start", b"[1]")
    _assert_4xx(status, data, 400)
    status, data = sampand.api("POST", f"/exec/{ex['Id']}/start", {"Detach": True})
    assert status == 200
    status, data = sampand.api("POST", f"/exec/{ex['Id']}/start", {"Detach": True})
    _assert_4xx(status, data, 409, "already")


def test_exec_into_a_stopped_container_is_409(sampand):
    status, body = sampand.api_json("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
    cid = body["Id"]
    try:
        status, data = sampand.api("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        _assert_4xx(status, data, 409, "is not running")
    finally:
        sampand.api("DELETE", f"/containers/{cid}")


@pytest.mark.parametrize("path", ["/containers/../../etc/passwd/json", "/containers/..%2F..%2Fetc/json",
                                  "/containers/%2e%2e/json", "/../../etc/passwd",
                                  "/containers/%2e%2e%2f%2e%2e%2fetc%2fpasswd/json"])
def test_dot_dot_paths_are_404(sampand, path):
    status, data = sampand.api("GET", path)
    _assert_4xx(status, data, 404)
    status, data = sampand.api("DELETE", path.replace("/json", ""))
    assert 400 <= status < 500


def _raw(sampand, data: bytes, timeout: float = 15.0) -> tuple[int, bytes]:
    """Send raw bytes; parse one HTTP response (status, body) by its Content-Length."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sampand.socket))
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body[:length]
    finally:
        s.close()


def test_body_over_the_size_bound_is_rejected(sampand):
    before = _ids(sampand)
    pad = b" " * (17 * 1024 * 1024)
    body = b'{"Image": "busybox", "Cmd": ["true"]' + pad + b"}"
    head = (f"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    status, data = _raw(sampand, head + body, timeout=60)
    _assert_4xx(status, data)
    assert _ids(sampand) == before
    _ping(sampand)


@pytest.mark.parametrize("chunks", [
    b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\n{\"Ima\r\n0\r\n\r\n", b"3\r\n{}}}}}\r\n0\r\n\r\n",
    b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",  # a chunk beyond the body bound: refused at once
])
def test_broken_chunked_encoding_is_400(sampand, chunks):
    before = _ids(sampand)
    head = (b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, data = _raw(sampand, head + chunks, timeout=5)
    _assert_4xx(status, data)
    assert _ids(sampand) == before
    _ping(sampand)


def test_client_vanishing_mid_attach_and_mid_logs(sampand, running):
    cid = running
    for path in (f"/containers/{cid}/attach?stream=1&stdin=1&stdout=1&stderr=1",
                 f"/containers/{cid}/logs?follow=1&stdout=1&stderr=1"):
        for _ in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(str(sampand.socket))
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                      .replace("POST", "GET" if "/logs" in path else "POST").encode())
            head = s.recv(4096)
            assert head.startswith(b"HTTP/1.1 101") or head.startswith(b"HTTP/1.1 200"), head[:100]
            s.sendall(b"partial input")
            s.close()  # gone without a word
    time.sleep(0.3)
    _ping(sampand)
    status, c = sampand.api_json("GET", f"/containers/{cid}/json")
    assert c["State"]["Running"] is True
    # The container still serves a new client.
    status, ex = sampand.api_json("POST", f"/containers/{cid}/exec",
                                  {"Cmd": ["echo", "still-here"], "AttachStdout": True})
    assert status == 201
    status, data = sampand.api("POST", f"/exec/{ex['Id']}/start", {"Detach": False})
    assert status == 200 and b"still-here" in data
