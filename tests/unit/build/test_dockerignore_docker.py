"""Differential test against Docker's own .dockerignore code: the real docker CLI (which
filters the context with moby's patternmatcher before sending it) builds against a tiny fake
daemon that only records the context tar; the files it sent must be exactly those our
IgnoreMatcher.walk includes (plus the Dockerfile and .dockerignore, which the CLI always
sends), and BuildContext must keep the same set when it applies the file itself."""

from __future__ import annotations

import http.server
import io
import os
import shutil
import socketserver
import subprocess
import tarfile
import threading

import pytest

from sampan.build.context import BuildContext
from sampan.build.dockerignore import IgnoreMatcher

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
pytestmark = pytest.mark.skipif(not os.access(DOCKER, os.X_OK), reason="no docker CLI")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    bodies: list[bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):  # unix sockets have no client address
        return "local"

    def log_message(self, *a):
        pass

    def _reply(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Api-Version", "1.45")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self._reply(200)

    def do_GET(self):  # noqa: N802
        if self.path.endswith("/_ping"):
            self._reply(200, b"OK", "text/plain")
        else:
            self._reply(200, b'{"ApiVersion":"1.45","Version":"26.0.0","MinAPIVersion":"1.24"}')

    def do_POST(self):  # noqa: N802
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self._reply(200, b'{"stream":"Successfully built 0123456789ab\\n"}\r\n'
                         b'{"aux":{"ID":"sha256:' + b"0" * 64 + b'"}}\r\n')


@pytest.fixture
def fake_daemon(tmp_path):
    sock = str(tmp_path / "d.sock")
    srv = _Server(sock, _Handler)
    srv.bodies = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield sock, srv.bodies
    srv.shutdown()
    srv.server_close()


TREE = ["Dockerfile", "a.txt", "a.log", "b.md", "README.md", "keep.log",
        "docs/x.md", "docs/keep.txt", "docs/sub/y.md", "docs/sub/z.txt",
        "node_modules/m/i.js", "node_modules/keep/k.js", "src/main.c", "src/x.pyc",
        "src/deep/er/f.pyc", "src/deep/er/g.c", "build/out.o", "build/keep",
        "tmp1/a", "tmp2/b", "tmpx/c", ".git/HEAD", ".env", "dir.with.dots/f", "x/y/z/w.txt"]

CASES = [
    "*.log\n!keep.log\n",
    "docs\n!docs/keep.txt\n",
    "**/*.pyc\nnode_modules\n!node_modules/keep\n",
    "*\n!src\n!Dockerfile\n",
    "build/**\n!build/keep\ntmp?\n.git\n.env\n",
    "**/*.md\n!README.md\n",
    "/docs/sub\n./src/deep\n",
    "docs/*/*.md\nx/**/w.txt\n*.with.*\n",
    "docs\n!**/keep.txt\n",
    "# comment\n\n  *.txt  \n!a.txt\n  **/z.txt\n",
    "**\n!src/**\n!Dockerfile\n",
    "docs/\n!docs/sub/\n",
    "[a-b].*\n?EADME.md\n",
    "src/*/er\n!src/deep/er/g.c\n",
    "!a.txt\n*.txt\n",
    "node_modules/**/*.js\n!node_modules/keep/*.js\n",
]


def _sent_names(body: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        return {m.name.rstrip("/") for m in t if not m.isdir()}


@pytest.mark.parametrize("ignore", CASES)
def test_same_files_as_the_docker_cli(tmp_path, fake_daemon, ignore):
    sock, bodies = fake_daemon
    ctx = tmp_path / "ctx"
    for rel in TREE:
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    (ctx / ".dockerignore").write_text(ignore)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_BUILDKIT="0",
               DOCKER_CONFIG=str(tmp_path / "cfg"))
    r = subprocess.run([DOCKER, "build", "-q", str(ctx)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert bodies, r.stderr
    sent = _sent_names(bodies[-1])

    m = IgnoreMatcher.from_text(ignore)
    ours = {rel for rel, e, inc in m.walk(ctx) if inc and not e.is_dir(follow_symlinks=False)}
    ours |= {"Dockerfile", ".dockerignore"}  # the CLI always sends these two
    assert sent == ours, ignore
    assert sent != set(TREE) | {".dockerignore"}  # each case filters something

    # the daemon side applied to what the CLI sent keeps the same files, minus the two the
    # ignore file names (Docker's daemon removes those after reading them)
    with BuildContext.from_tar(io.BytesIO(bodies[-1]), tmp_path / "work") as bc:
        kept = {str(p.relative_to(bc.root)) for p in bc.root.rglob("*") if not p.is_dir()}
    walked = {rel for rel, e, inc in m.walk(ctx) if inc and not e.is_dir(follow_symlinks=False)}
    assert kept == walked, ignore


_POOL = ["*.log", "!keep.log", "docs", "!docs/keep.txt", "**/*.pyc", "node_modules",
         "!node_modules/keep", "*", "!src", "!Dockerfile", "build/**", "!build/keep", "tmp?",
         ".git", "**/*.md", "!README.md", "/docs/sub", "./src/deep", "docs/*/*.md",
         "x/**/w.txt", "*.with.*", "!**/keep.txt", "*.txt", "!a.txt", "**/z.txt", "**",
         "!src/**", "docs/", "!docs/sub/", "[a-b].*", "?EADME.md", "src/*/er",
         "!src/deep/er/g.c", "node_modules/**/*.js", "!*/keep", "src/deep/**/f.pyc",
         "x/y", "!x/y/z", "**/er/**", "!**/g.c", "[!a]*", "docs/**/*.txt"]


def test_random_pattern_sets_match_the_docker_cli(tmp_path, fake_daemon):
    import random
    rnd = random.Random(8)  # fixed: the same 25 sets every run
    sock, bodies = fake_daemon
    ctx = tmp_path / "ctx"
    for rel in TREE:
        p = ctx / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_BUILDKIT="0",
               DOCKER_CONFIG=str(tmp_path / "cfg"))
    for _ in range(25):
        ignore = "\n".join(rnd.sample(_POOL, rnd.randint(1, 6))) + "\n"
        (ctx / ".dockerignore").write_text(ignore)
        before = len(bodies)
        subprocess.run([DOCKER, "build", "-q", str(ctx)], env=env, capture_output=True,
                       timeout=60)
        assert len(bodies) == before + 1, ignore
        m = IgnoreMatcher.from_text(ignore)
        ours = {rel for rel, e, inc in m.walk(ctx) if inc and not e.is_dir(follow_symlinks=False)}
        assert _sent_names(bodies[-1]) == ours | {"Dockerfile", ".dockerignore"}, ignore
