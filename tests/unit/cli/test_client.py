"""The tiny HTTP client over a real unix socket."""

import json
import socket
import threading

import pytest

from sampan.cli.client import (APIError, Client, ConnectError, ProtocolError, encode_query, quote,
                               resolve_host)


def test_resolve_host_order():
    env = {"SAMPAN_HOST": "unix:///s", "DOCKER_HOST": "unix:///d"}
    assert resolve_host("unix:///flag", env) == "unix:///flag"
    assert resolve_host(None, env) == "unix:///s"
    assert resolve_host(None, {"DOCKER_HOST": "tcp://1.2.3.4:2375"}) == "tcp://1.2.3.4:2375"
    assert resolve_host(None, {}) == "unix:///run/sampan/sampan.sock"
    with pytest.raises(ValueError):
        resolve_host("ssh://host", {})


def test_quote_and_query():
    assert quote("a b/c") == "a%20b%2Fc"
    assert quote("é") == "%C3%A9"
    assert encode_query({"a": True, "b": None, "c": ["x", "y"], "d": 0}) == "?a=1&c=x&c=y&d=0"
    assert encode_query([("changes", "CMD [\"x\"]")]) == "?changes=CMD%20%5B%22x%22%5D"


def test_json_and_keep_alive(fake):
    fake.route("GET", "/version", fake.json({"Version": "1"}))
    c = Client(fake.host)
    for _ in range(3):
        assert c.get("/version") == {"Version": "1"}
    assert fake.connections == 1  # one connection reused
    assert fake.requests[0].path == "/v1.45/version"


def test_chunked_and_json_stream(fake):
    msgs = [b'{"status":"a"}\n{"sta', b'tus":"b"}', b'\n', "{\"stream\":\"\u00e9".encode()[:-1],
            "{\"stream\":\"\u00e9".encode()[-1:] + b'"}']
    fake.route("POST", "/images/load", fake.chunked(msgs))
    c = Client(fake.host)
    resp = c.request("POST", "/images/load", body=b"tar", stream=True)
    assert list(resp.json_stream()) == [{"status": "a"}, {"status": "b"}, {"stream": "é"}]
    # the connection is reusable after a chunked body
    fake.route("GET", "/_ping", fake.raw(b"OK", content_type="text/plain"))
    assert c.request("GET", "/_ping").read() == b"OK"
    assert fake.connections == 1


def test_api_error_message(fake):
    fake.route("GET", "/containers/nope/json", fake.error(404, "No such container: nope"))
    with pytest.raises(APIError) as e:
        Client(fake.host).get("/containers/nope/json")
    assert e.value.status == 404 and e.value.message == "No such container: nope"


def test_non_json_error_body(fake):
    fake.route("GET", "/x", fake.raw(b"plain failure", status=500, content_type="text/plain"))
    with pytest.raises(APIError, match="plain failure"):
        Client(fake.host).get("/x")


def test_streamed_request_body_is_chunked(fake, tmp_path):
    fake.route("POST", "/images/create", fake.json({}))
    p = tmp_path / "blob"
    p.write_bytes(b"x" * 3_000_000)
    with open(p, "rb") as f:
        Client(fake.host).request("POST", "/images/create", {"fromSrc": "-"}, f)
    r = fake.requests[-1]
    assert r.headers["transfer-encoding"] == "chunked" and r.body == b"x" * 3_000_000
    assert r.q("fromSrc") == "-"


def test_connect_error(tmp_path):
    with pytest.raises(ConnectError):
        Client(f"unix://{tmp_path}/none.sock").get("/version")


def test_hijack(fake):
    def echo(sock, req, f):
        data = b""
        while True:
            b = f.read1(100) if hasattr(f, "read1") else sock.recv(100)
            if not b:
                break
            data += b
        sock.sendall(b"got:" + data)
        sock.close()

    fake.route("POST", "/containers/x/attach", fake.hijack(echo))
    sock, leftover, ctype = Client(fake.host).hijack("POST", "/containers/x/attach", {"stream": 1})
    assert ctype == "application/vnd.docker.raw-stream"
    sock.sendall(b"hello")
    sock.shutdown(socket.SHUT_WR)
    got = leftover
    while True:
        b = sock.recv(100)
        if not b:
            break
        got += b
    assert got == b"got:hello"
    r = fake.requests[-1]
    assert r.headers["upgrade"] == "tcp" and r.headers["connection"] == "Upgrade"


def test_hijack_error_status(fake):
    fake.route("POST", "/containers/x/attach", fake.error(409, "container is not running"))
    with pytest.raises(APIError, match="not running"):
        Client(fake.host).hijack("POST", "/containers/x/attach")


def _serve_once(path, payload: bytes):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)

    def run():
        c, _ = s.accept()
        c.recv(65536)
        c.sendall(payload)
        c.close()
        s.close()
    threading.Thread(target=run, daemon=True).start()


@pytest.mark.parametrize("payload", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000 + b"\r\n\r\n",
    b"",
])
def test_hostile_responses_raise_protocol_error(tmp_path, payload):
    path = str(tmp_path / "bad.sock")
    _serve_once(path, payload)
    with pytest.raises(ProtocolError):
        Client(f"unix://{path}").get("/version")


def test_close_delimited_body(tmp_path):
    path = str(tmp_path / "c.sock")
    _serve_once(path, b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + json.dumps([1, 2]).encode())
    assert Client(f"unix://{path}").get("/x") == [1, 2]


def test_stale_keep_alive_connection_is_retried(tmp_path):
    """The daemon closed our idle connection while we waited: the next request still works."""
    path = str(tmp_path / "s.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    body = b'{"ok":true}'
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    def run():
        c1, _ = s.accept()
        c1.recv(65536)
        c1.sendall(resp)
        c1.recv(65536)   # the second request arrives on the old connection...
        c1.close()       # ...which the server drops unanswered
        c2, _ = s.accept()
        c2.recv(65536)
        c2.sendall(resp)
        c2.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    c = Client(f"unix://{path}")
    assert c.get("/a") == {"ok": True}
    assert c.get("/b") == {"ok": True}
    s.close()
