"""Blob transfer against a misbehaving loopback HTTP server: resume after a broken
connection, digest mismatch, registries that ignore ranges, 429 with Retry-After, redirects;
threaded decompression (gzip, concatenated members, plain, garbage)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sampan.distribution.inflate import ThreadedDecompressor
from sampan.distribution.spool import Transfers, download
from sampan.distribution.transport import Registry, RegistryNotFound, RegistryUnavailable
from sampan.errors import InvalidParameter, Unavailable

BLOB = os.urandom(3 * 1024 * 1024 + 123)
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class _Peer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "ok"
    hits: list[str] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        cls = type(self)
        cls.hits.append(self.path + " " + (self.headers.get("Range") or ""))
        if self.path == "/v2/":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/redirect"):
            self.send_response(307)
            self.send_header("Location", "/v2/a/blobs/" + DIGEST)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if cls.mode == "429" and sum(1 for h in cls.hits if "blobs" in h) == 1:
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if cls.mode == "404":
            body = b'{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}'
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = BLOB if cls.mode != "corrupt" else BLOB[:-1] + b"\x00"
        start = 0
        rng = self.headers.get("Range")
        if rng and cls.mode != "norange":
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if cls.mode in ("break", "norange") and len([h for h in cls.hits if "blobs" in h]) == 1:
            self.wfile.write(data[start:start + 1024 * 1024])
            self.wfile.flush()
            self.connection.shutdown(2)  # the registry goes away mid-transfer
            return
        self.wfile.write(data[start:])


@pytest.fixture
def peer():
    handler = type("P", (_Peer,), {"hits": [], "mode": "ok"})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield handler, Registry("", base_url=f"http://127.0.0.1:{srv.server_address[1]}")
    srv.shutdown()
    srv.server_close()


def _fetch(reg, tmp_path, path="/v2/a/blobs/" + DIGEST):
    tr = Transfers(tmp_path)
    spool, mine = tr.claim(DIGEST, len(BLOB))
    assert mine

    def open_blob(offset):
        h = {"Range": f"bytes={offset}-"} if offset else {}
        return reg.request("GET", path, [], h, ok=(200, 206))

    try:
        download(open_blob, spool)
        return spool.path.read_bytes(), spool
    finally:
        tr.release(spool)


@pytest.mark.parametrize("mode", ["ok", "break", "norange", "429"])
def test_download_verifies_and_resumes(peer, tmp_path, mode):
    handler, reg = peer
    handler.mode = mode
    data, spool = _fetch(reg, tmp_path)
    assert data == BLOB
    assert not spool.path.exists()  # released: the temp file is gone
    if mode == "break":
        assert any(h.endswith(f"bytes={1024 * 1024}-") for h in handler.hits)


def test_redirect_is_followed(peer, tmp_path):
    handler, reg = peer
    data, _ = _fetch(reg, tmp_path, "/redirect")
    assert data == BLOB


def test_digest_mismatch_fails_and_reader_sees_it(peer, tmp_path):
    handler, reg = peer
    handler.mode = "corrupt"
    tr = Transfers(tmp_path)
    spool, _ = tr.claim(DIGEST, len(BLOB))
    reader = spool.reader()
    with pytest.raises(InvalidParameter, match="digest mismatch"):
        download(lambda off: reg.request("GET", "/v2/a/blobs/" + DIGEST, [], ok=(200,)), spool)
    with pytest.raises(InvalidParameter, match="digest mismatch"):
        while reader.read(1 << 20):
            pass
    reader.close()
    tr.release(spool)
    assert list(tmp_path.iterdir()) == []


def test_registry_errors_are_typed(peer, tmp_path):
    handler, reg = peer
    handler.mode = "404"
    with pytest.raises(RegistryNotFound) as e:
        reg.request("GET", "/v2/a/blobs/" + DIGEST, [])
    assert e.value.code == "BLOB_UNKNOWN"


def test_unreachable_registry():
    reg = Registry("127.0.0.1:1")
    with pytest.raises(Unavailable, match="connection refused"):
        reg.ping()


def test_shared_transfer_is_claimed_once(tmp_path):
    tr = Transfers(tmp_path)
    a, mine_a = tr.claim(DIGEST, 10)
    b, mine_b = tr.claim(DIGEST, 10)
    assert a is b and mine_a and not mine_b
    tr.release(a)
    assert a.path.exists()
    tr.release(b)
    assert not a.path.exists()


@pytest.mark.parametrize("kind", ["gzip", "multi", "none"])
def test_threaded_decompressor(kind):
    data = os.urandom(2_000_000) + b"x" * 3_000_000
    if kind == "gzip":
        src = gzip.compress(data)
    elif kind == "multi":
        src = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    else:
        src = data
    d = ThreadedDecompressor(io.BytesIO(src), "auto")
    out = b""
    while True:
        b = d.read(65536)
        if not b:
            break
        out += b
    d.close()
    assert out == data


def test_threaded_decompressor_bad_gzip():
    bad = gzip.compress(b"a" * 100000)[:-20]
    d = ThreadedDecompressor(io.BytesIO(bad), "auto")
    with pytest.raises(InvalidParameter):
        while d.read(1 << 16):
            pass
    d.close()
