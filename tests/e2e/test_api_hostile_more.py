"""More hostile input through the raw API (test_api_hostile.py covers container create and
exec): wrong-shaped JSON on every other POST route that takes a body, numbers out of range,
invalid port/ulimit/mount specs, lying Content-Length, bodies over the bound, stalled
(slowloris) clients, and image archives whose members claim more than the disk holds.

Every case: a 4xx with `{"message": ...}` (never a 500, never a hang), the daemon still
answering /_ping, and nothing new left in its data root.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import tarfile
import time
import uuid

import pytest

WRONG_SHAPES = [b"{bad json", b"[1, 2]", b'"a string"', b"12", b"\xff\xfe", b"{" * 5000]


def _4xx(status: int, body: bytes, text: str | None = None) -> str:
    assert 400 <= status < 500, (status, body[:300])
    msg = json.loads(body)["message"]
    assert isinstance(msg, str) and msg
    if text is not None:
        assert text.lower() in msg.lower(), msg
    return msg


def _ping(sampand) -> None:
    assert sampand.api("GET", "/_ping", timeout=10) == (200, b"OK")


def _state(sampand) -> dict:
    """What a refused request must not change: objects through the API, files on disk."""
    def ids(path, key="Id"):
        status, items = sampand.api_json("GET", path)
        assert status == 200, items
        items = items.get("Volumes") or [] if isinstance(items, dict) else items
        return sorted(i.get(key) or i.get("Name") for i in items)
    files = set()
    for top in ("content", "layers", "tmp", "volumes"):
        for dirpath, dirs, names in os.walk(sampand.data_root / top):
            files.update(os.path.join(dirpath, n) for n in dirs + names)
    return {"containers": ids("/containers/json?all=1"), "images": ids("/images/json?all=1"),
            "networks": ids("/networks"), "volumes": ids("/volumes", "Name"), "files": files}


@pytest.fixture
def ctr(sampand):
    status, body = sampand.api_json("POST", "/containers/create",
                                    {"Image": "busybox", "Cmd": ["sleep", "300"]})
    assert status == 201, body
    cid = body["Id"]
    assert sampand.api("POST", f"/containers/{cid}/start")[0] == 204
    yield cid
    sampand.api("DELETE", f"/containers/{cid}?force=1")


def _net(sampand) -> str:
    status, body = sampand.api_json("POST", "/networks/create",
                                    {"Name": "hostile-" + uuid.uuid4().hex[:6]})
    assert status == 201, body
    return body["Id"]


ROUTES = ["/containers/{c}/update", "/containers/{c}/exec", "/networks/create",
          "/networks/{n}/connect", "/networks/{n}/disconnect", "/volumes/create",
          "/commit?container={c}", "/auth", "/containers/create"]


@pytest.mark.parametrize("route", ROUTES)
def test_wrong_shaped_json_on_every_body_route(sampand, ctr, route):
    # A network (an address pool, shared host-wide) only where the route names one.
    net = _net(sampand) if "{n}" in route else "unused"
    try:
        before = _state(sampand)
        path = route.format(c=ctr, n=net)
        for body in WRONG_SHAPES:
            status, data = sampand.api("POST", path, body)
            _4xx(status, data)
        after = _state(sampand)
        assert after == before
        _ping(sampand)
    finally:
        if net != "unused":
            sampand.api("DELETE", f"/networks/{net}")


# (route, body, fragment of the message or None): field types and ranges. Found wrong and
# not fixed here (other owners' files, see docs/security.md "Known gaps"): networks connect
# with a non-string Container and disconnect with a list (500), a 300-character volume name
# (500), commit with repo=UPPER, tag=bad:tag, a Cmd of 5 or port 99999 (all accepted), /auth with non-string fields
# (503 after a registry lookup), Binds [":/x"] (accepted).
BAD_FIELDS = [
    ("/containers/{c}/update", {"Memory": -5}, None),
    ("/containers/{c}/update", {"Memory": 2 ** 70}, None),
    ("/containers/{c}/update", {"Memory": "1g"}, None),
    ("/containers/{c}/update", {"NanoCpus": -1}, None),
    ("/containers/{c}/update", {"NanoCpus": 10 ** 20}, None),
    ("/containers/{c}/update", {"CpuShares": -10}, None),
    ("/containers/{c}/update", {"PidsLimit": 2 ** 64}, None),
    ("/containers/{c}/update", {"CpuQuota": 1.5}, None),
    ("/containers/{c}/update", {"RestartPolicy": {"Name": "bogus"}}, None),
    ("/containers/{c}/update", {"RestartPolicy": "always"}, None),
    ("/containers/{c}/exec", {"Cmd": ["true"], "Env": [5]}, None),
    ("/containers/{c}/exec", {"Cmd": "true" * 10, "User": {}}, None),
    ("/networks/create", {"Name": 5}, None),
    ("/networks/create", {"Name": ""}, None),
    ("/networks/create", {"Name": "x", "Driver": "no-such-driver"}, None),
    ("/networks/create", {"Name": "x", "IPAM": {"Config": [{"Subnet": "300.1.2.0/24"}]}}, None),
    ("/networks/create", {"Name": "x", "IPAM": {"Config": [{"Subnet": "10.9.0.0/99"}]}}, None),
    ("/networks/create", {"Name": "x", "IPAM": "bad"}, None),
    ("/networks/create", {"Name": "x", "Options": {"com.docker.network.driver.mtu": "-1"}}, None),
    ("/networks/create", {"Name": "x", "Labels": {"a": 5}}, None),
    ("/networks/create", {"Name": "../../etc"}, None),
    ("/networks/{n}/connect", {"Container": "no-such-container-x"}, None),
    ("/networks/{n}/connect", {"Container": "{c}", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "999.1.1.1"}}}, None),
    ("/networks/{n}/connect", {"Container": 5}, "cannot unmarshal number"),
    ("/networks/{n}/disconnect", {"Container": ["{c}"]}, "cannot unmarshal array"),
    ("/auth", {"username": 5, "password": ["x"], "serveraddress": "127.0.0.1:1"}, "cannot unmarshal"),
    ("/volumes/create", {"Name": "v" * 300}, "too long"),
    ("/volumes/create", {"Name": 5}, None),
    ("/volumes/create", {"Name": "../../etc"}, None),
    ("/volumes/create", {"Name": "a/b"}, None),
    ("/volumes/create", {"Name": "ok-name", "Driver": "no-such-driver"}, None),
    ("/volumes/create", {"Name": "ok-name", "DriverOpts": {"type": 5}}, None),
    ("/volumes/create", {"Name": "ok-name", "Labels": ["a"]}, None),
    ("/commit?container=no-such-thing", {}, "No such container"),
    ("/commit?container={c}&repo=typed", {"Cmd": 5}, "Config.Cmd"),
    ("/commit?container={c}&repo=typed", {"Env": [1]}, "Config.Env"),
    ("/commit?container={c}&repo=typed", {"ExposedPorts": ["80/tcp"]}, "Config.ExposedPorts"),
]


@pytest.mark.parametrize("route,body,text", BAD_FIELDS,
                         ids=[f"{r.split('/')[1]}-{i}" for i, (r, _, _) in enumerate(BAD_FIELDS)])
def test_out_of_range_and_wrong_typed_fields(sampand, ctr, route, body, text):
    net = _net(sampand) if "{n}" in route else "unused"
    try:
        before = _state(sampand)
        body = json.loads(json.dumps(body).replace("{c}", ctr))
        status, data = sampand.api("POST", route.format(c=ctr, n=net), body, timeout=30)
        _4xx(status, data, text)
        assert _state(sampand) == before
        # The container was not touched.
        status, c = sampand.api_json("GET", f"/containers/{ctr}/json")
        assert c["State"]["Running"] is True
        _ping(sampand)
    finally:
        if net != "unused":
            sampand.api("DELETE", f"/networks/{net}")


CREATE_SPECS = [
    {"PortBindings": {"70000/tcp": [{"HostPort": "80"}]}},
    {"PortBindings": {"80/tcp": [{"HostPort": "70000"}]}},
    {"PortBindings": {"80/tcp": [{"HostPort": "-1"}]}},
    {"PortBindings": {"80/bogus": [{"HostPort": "80"}]}},
    {"PortBindings": {"80/tcp": [{"HostPort": "90-80"}]}},
    {"PortBindings": {"80/tcp": [{"HostIp": "999.0.0.1", "HostPort": "80"}]}},
    {"PortBindings": {"abc/tcp": []}},
    {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]},
    {"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
    {"Ulimits": [{"Name": "nofile", "Soft": "x", "Hard": 5}]},
    {"Mounts": [{"Type": "bogus", "Target": "/x"}]},
    {"Mounts": [{"Type": "bind", "Source": "relative", "Target": "/x"}]},
    {"Mounts": [{"Type": "bind", "Source": "/", "Target": "relative"}]},
    {"Mounts": [{"Type": "bind", "Source": "/nonexistent-" + uuid.uuid4().hex, "Target": "/x"}]},
    {"Mounts": [{"Type": "volume", "Source": "../../etc", "Target": "/x"}]},
    {"Mounts": [{"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"SizeBytes": -1}}]},
    {"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/"}]},
    {"Binds": [":/x"]},
    {"Binds": ["/tmp:relative"]},
    {"Binds": ["/tmp:/x:badmode"]},
    {"Binds": ["/tmp:/x:ro:extra:more"]},
    {"ShmSize": 2 ** 63},
    {"ShmSize": -5},
    {"Memory": -5},
    {"NanoCpus": 10 ** 20},
    {"CpuShares": -10},
    {"MemorySwappiness": 101},
    {"OomScoreAdj": -1001},
    {"IpcMode": "bogus"},
    {"PidMode": "bogus"},
    {"UTSMode": "container:x"},
    {"CgroupnsMode": "bogus"},
    {"SecurityOpt": ["bogus=1"]},
    {"SecurityOpt": ["seccomp={bad"]},
]


@pytest.mark.parametrize("host", CREATE_SPECS, ids=lambda h: json.dumps(h)[:50])
def test_invalid_specs_at_create(sampand, host):
    before = _state(sampand)
    status, data = sampand.api("POST", "/containers/create",
                               {"Image": "busybox", "Cmd": ["true"], "HostConfig": host})
    _4xx(status, data)
    assert _state(sampand) == before
    _ping(sampand)


def _raw(sampand, data: bytes, *, half_close: bool = False, timeout: float = 15.0):
    """Send raw bytes; (status, body) of the first response, or None if the server closed
    without one."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(sampand.socket))
    try:
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
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
        return int(head.split(b" ", 2)[1]), body[:length]
    finally:
        s.close()


def _post(path: str, body: bytes, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode() + body


def test_content_length_longer_than_the_body(sampand):
    before = _state(sampand)
    body = json.dumps({"Name": "lying-" + uuid.uuid4().hex[:6]}).encode()
    # The body ends (the client half-closes) long before the promised length.
    r = _raw(sampand, _post("/volumes/create", body, len(body) + 1000), half_close=True)
    if r is not None:
        _4xx(*r)
    assert _state(sampand) == before
    _ping(sampand)


def test_content_length_shorter_than_the_body(sampand):
    before = _state(sampand)
    name = "short-" + uuid.uuid4().hex[:6]
    body = json.dumps({"Name": name}).encode()
    # Only `{"Na` is the body; the rest arrives where the next request line should be.
    r = _raw(sampand, _post("/volumes/create", body, 4) + b"\r\n\r\n", half_close=True)
    assert r is not None
    _4xx(*r)
    assert _state(sampand) == before
    assert sampand.api("GET", f"/volumes/{name}")[0] == 404
    _ping(sampand)


def test_bad_content_length_values(sampand):
    for cl in ("-1", "abc", "1e3", "99999999999999999999999", " "):
        head = (f"POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n{{}}")
        r = _raw(sampand, head.encode(), half_close=True)
        assert r is not None, cl
        _4xx(*r)
    _ping(sampand)


@pytest.mark.parametrize("route", ["/networks/create", "/volumes/create", "/auth",
                                   "/containers/{c}/update"])
def test_bodies_over_the_bound(sampand, ctr, route):
    before = _state(sampand)
    pad = b" " * (17 * 1024 * 1024)
    body = b'{"Name": "big"' + pad + b"}"
    r = _raw(sampand, _post(route.format(c=ctr), body, len(body)), timeout=60)
    assert r is not None
    _4xx(*r)
    assert _state(sampand) == before
    _ping(sampand)


def test_slowloris_does_not_starve_other_clients(sampand):
    stalled = []
    try:
        for i in range(64):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(sampand.socket))
            # Headers that never end, and a body that never comes.
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2 else
                      _post("/volumes/create", b"{", 100))
            stalled.append(s)
        t0 = time.monotonic()
        for _ in range(5):
            _ping(sampand)
        assert time.monotonic() - t0 < 5
        for s in stalled[::8]:
            s.sendall(b"a")  # trickling a byte changes nothing
        status, _ = sampand.api_json("GET", "/containers/json")
        assert status == 200
    finally:
        for s in stalled:
            s.close()
    _ping(sampand)


# --- image archives with members that claim more than the disk holds ------------------------

def _free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _sparse_member(name: str, realsize: int, data: bytes = b"x" * 512) -> bytes:
    """An old-GNU sparse member: `data` stored, `realsize` claimed (header + data blocks)."""
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    hdr = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    hdr[156:157] = b"S"

    def num(v: int) -> bytes:  # 12-byte numeric field; base-256 when octal cannot hold it
        if v < 8 ** 11:
            return b"%011o\x00" % v
        return b"\x80" + v.to_bytes(11, "big")
    hdr[386:398] = num(realsize - len(data))  # sparse[0].offset: the data sits at the end
    hdr[398:410] = num(len(data))             # sparse[0].numbytes
    hdr[482:483] = b"\x00"                    # no extended sparse headers
    hdr[483:495] = num(realsize)              # realsize
    hdr[148:156] = b" " * 8
    hdr[148:156] = b"%06o\x00 " % sum(hdr)
    return bytes(hdr) + data + b"\x00" * (-len(data) % 512)


def _huge_layer(realsize: int) -> bytes:
    return _sparse_member("huge.bin", realsize) + b"\x00" * 1024


def _load_archive(layer: bytes) -> bytes:
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["true"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": ["hostile-huge:latest"],
                            "Layers": ["layer/layer.tar"]}]).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in (("manifest.json", manifest), (cfg_name, config),
                           ("layer/layer.tar", layer)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("route", ["/images/load", "/images/create?fromSrc=-&repo=hostile-huge"])
def test_image_archive_with_a_member_bigger_than_the_disk(sampand, route):
    realsize = _free_bytes(sampand.data_root) + (64 << 30)  # 64 GiB more than is free
    assert realsize < 1 << 40  # under the 1 TiB "absurd" cap: it is the space check that acts
    layer = _huge_layer(realsize)
    body = _load_archive(layer) if route == "/images/load" else layer
    before = _state(sampand)
    status, data = sampand.api("POST", route, body,
                               headers={"Content-Type": "application/x-tar"}, timeout=120)
    # /images/create reports errors in its progress stream (as dockerd does, after the 200).
    if status == 200:
        lines = [json.loads(x) for x in data.splitlines() if x.strip()]
        assert any("error" in x for x in lines), lines
        assert "does not fit" in lines[-1].get("error", ""), lines
    else:
        _4xx(status, data, "does not fit")
    assert sampand.api("GET", "/images/hostile-huge:latest/json")[0] == 404
    assert _state(sampand) == before
    _ping(sampand)


def test_image_archive_with_a_member_longer_than_its_data(sampand):
    # A plain member that declares 1 TiB - 1 and brings 1 KiB: refused, nothing kept.
    ti = tarfile.TarInfo("liar.bin")
    ti.size = (1 << 40) - 1
    layer = ti.tobuf(format=tarfile.GNU_FORMAT) + b"y" * 1024
    before = _state(sampand)
    status, data = sampand.api("POST", "/images/create?fromSrc=-&repo=hostile-liar", layer,
                               headers={"Content-Type": "application/x-tar"}, timeout=120)
    if status == 200:
        lines = [json.loads(x) for x in data.splitlines() if x.strip()]
        assert any("error" in x for x in lines), lines
    else:
        _4xx(status, data)
    assert _state(sampand) == before
    _ping(sampand)
