"""examples/entrypoint-env: built with both CLIs, run with env vars and a published port, and the
page its entrypoint rendered fetched over that port."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "entrypoint-env"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=3).read().decode()
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_entrypoint_env_example(sampand):
    tag = f"entrypoint-env-{uuid.uuid4().hex[:8]}"
    out = _ok(sampand.cli("build", "-t", tag, str(EXAMPLE), timeout=120))
    assert f"Successfully tagged {tag}:latest" in out
    # the real docker CLI builds the same Dockerfile to the same image (every step cached)
    again = _ok(sampand.docker("build", "-q", "-t", tag, str(EXAMPLE), timeout=120))
    assert again.strip().startswith("sha256:")
    port, host_port = 18080, _free_port()
    name = f"web-{uuid.uuid4().hex[:8]}"
    _ok(sampand.cli("run", "-d", "--name", name, "-e", f"APP_PORT={port}",
                    "-e", "APP_GREETING=Ahoy <there>", "-e", "APP_NAME=course",
                    "-p", f"{host_port}:{port}", tag))
    try:
        page = _get(f"http://127.0.0.1:{host_port}/")
        assert "<h1>Ahoy &lt;there&gt;, course!</h1>" in page  # rendered and escaped
        assert f"port {port}" in page
        conf = _get(f"http://127.0.0.1:{host_port}/config.txt")
        assert conf == f"port={port}\ngreeting=Ahoy <there>\nname=course\n"
        top = _ok(sampand.cli("exec", name, "ps", "-o", "pid,args"))
        assert "httpd -f -v -p 18080" in top  # the script exec'd the server
    finally:
        sampand.cli("rm", "-f", name)
    # any other command runs after the rendering; a bad port is refused
    assert "I:index.html" in _ok(sampand.cli("run", "--rm", tag, "cat", "/etc/httpd.conf"))
    r = sampand.cli("run", "--rm", "-e", "APP_PORT=eighty", tag)
    assert r.returncode == 64 and "APP_PORT must be a port number" in r.stderr
