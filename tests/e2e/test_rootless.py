"""Rootless mode end to end (issue 9): `sampand` started by an ordinary user re-executes itself
in a user namespace (newuidmap/newgidmap), keeps its data under $XDG_DATA_HOME/sampan and its
socket under $XDG_RUNTIME_DIR/sampan, and reaches the host through slirp4netns — driven with
the real docker CLI.

Host set-up the test makes (and undoes): a user `sampanrl` (useradd, which on Debian also
gives it /etc/subuid and /etc/subgid ranges); /dev/net/tun opened to mode 0666 while the daemon
starts (Debian's default; this machine ships it 0600, which slirp4netns cannot open); and, when
the suite's Python lives where that user cannot read (root's pyenv), Debian's python3 of the
same version with copies of sampan's three dependencies.
"""

from __future__ import annotations

import http.server
import json
import os
import pwd
import shutil
import signal
import socketserver
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .conftest import DOCKER, REPO, api_request

USER = "sampanrl"
TOOLS = ("newuidmap", "newgidmap", "slirp4netns")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create the test user")


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", USER], check=True, capture_output=True)
    pw = pwd.getpwnam(USER)
    for path in ("/etc/subuid", "/etc/subgid"):
        text = Path(path).read_text() if os.path.exists(path) else ""
        if not any(line.startswith(USER + ":") for line in text.splitlines()):
            from sampan.userns.idmap import free_range
            start = free_range([Path(p).read_text() if os.path.exists(p) else ""
                                for p in ("/etc/subuid", "/etc/subgid")])
            with open(path, "a") as f:
                f.write(f"{USER}:{start}:65536\n")
    return pw


def _python_for(user: str, base: Path) -> tuple[str, str]:
    """(interpreter, extra PYTHONPATH) the user can run sampan with."""
    probe = "import pyroute2, isal, bcrypt"
    r = subprocess.run(["runuser", "-u", user, "--", sys.executable, "-c", probe],
                       capture_output=True, timeout=60)
    if r.returncode == 0:
        return sys.executable, ""
    deb = "/usr/bin/python3"
    r = subprocess.run([deb, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0 or r.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.skip("no Python with sampan's dependencies that the test user can run")
    site = base / "site"
    site.mkdir()
    import bcrypt
    import isal
    import pyroute2
    for mod in (pyroute2, isal, bcrypt):
        src = Path(mod.__file__).parent
        shutil.copytree(src, site / src.name)
    return deb, str(site)


class RootlessDaemon:
    def __init__(self) -> None:
        for t in TOOLS:
            if not shutil.which(t):
                pytest.skip(f"{t} missing: apt-get install uidmap slirp4netns (scripts/install.sh)")
        self.pw = _ensure_user()
        self.base = Path(tempfile.mkdtemp(prefix="srl-", dir="/tmp"))
        os.chmod(self.base, 0o755)
        self.home = self.base / "home"
        self.runtime = self.base / "run"
        for d in (self.home, self.runtime):
            d.mkdir(mode=0o700)
            os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
        self.python, site = _python_for(USER, self.base)
        self.sock = self.runtime / "sampan" / "sampan.sock"
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=str(self.base / "docker-config"), DOCKER_CLI_HINTS="false")
        self.user_env = {"HOME": str(self.home), "XDG_RUNTIME_DIR": str(self.runtime),
                         "PYTHONPATH": f"{REPO}:{site}" if site else str(REPO),
                         "PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        self.log = self.base / "sampand.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> subprocess.Popen:
        cmd = ["runuser", "-u", USER, "--", "env", "-i",
               *[f"{k}={v}" for k, v in self.user_env.items()],
               self.python, "-m", "sampan.daemon.main", *args]
        tun = os.stat("/dev/net/tun").st_mode if os.path.exists("/dev/net/tun") else None
        if tun is not None:
            os.chmod("/dev/net/tun", 0o666)
        try:
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(cmd, cwd=self.base, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return self.proc
                try:
                    status, _, body = api_request(self.sock, "GET", "/_ping", timeout=2)
                    if status == 200:
                        return self.proc
                except OSError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(f"rootless sampand did not come up:\n{self.log.read_text()[-3000:]}")
        finally:
            if tun is not None:
                os.chmod("/dev/net/tun", stat.S_IMODE(tun))

    def docker(self, *args: str, input: bytes | None = None, timeout: float = 60):
        if not os.access(DOCKER, os.X_OK):
            pytest.skip(f"docker CLI not installed at {DOCKER}")
        return subprocess.run([DOCKER, *args], env=self.env, capture_output=True, timeout=timeout,
                              input=input, **({} if input else {"stdin": subprocess.DEVNULL}))

    def stop(self) -> None:
        pidfile = self.runtime / "sampan" / "sampand.pid"
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        # Anything of the test user's still there (a container's monitor): by pid.
        out = subprocess.run(["ps", "-u", USER, "-o", "pid="], capture_output=True, text=True).stdout
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(f"/tmp/sampan-{self.pw.pw_uid}", ignore_errors=True)


def _ok(r) -> str:
    out = r.stdout.decode(errors="replace") if isinstance(r.stdout, bytes) else r.stdout
    err = r.stderr.decode(errors="replace") if isinstance(r.stderr, bytes) else r.stderr
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {out!r}\nstderr: {err!r}"
    return out


@pytest.fixture(scope="module")
def rootless(busybox_tar):
    d = RootlessDaemon()
    try:
        proc = d.start("--debug")
        if proc.poll() is not None:
            pytest.fail(f"rootless sampand exited: {d.log.read_text()[-3000:]}")
        _ok(d.docker("import", str(busybox_tar), "busybox:latest"))
        yield d
    finally:
        d.stop()


def test_layout_and_info(rootless):
    info = json.loads(_ok(rootless.docker("info", "--format", "{{json .}}")))
    assert "name=rootless" in info["SecurityOptions"]
    assert info["DockerRootDir"] == str(rootless.home / ".local" / "share" / "sampan")
    assert info["CgroupDriver"] == "none"
    assert rootless.sock.exists()
    # Files the daemon made are the user's on the host (root of its namespace = the user).
    st = Path(info["DockerRootDir"]).stat()
    assert st.st_uid == rootless.pw.pw_uid
    # The daemon itself runs as the user, not as root.
    pid = int((rootless.runtime / "sampan" / "sampand.pid").read_text())
    uids = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                if ln.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(rootless.pw.pw_uid)}


def test_run_id(rootless):
    r = rootless.docker("run", "--name", "first", "busybox", "id")
    if r.returncode != 0:  # the monitor's own traceback says more than the API's message
        errs = [p.read_text() for p in rootless.home.rglob("*.monitor-error")]
        raise AssertionError(f"{r.stderr!r} {errs}")
    _ok(rootless.docker("rm", "first"))
    out = _ok(rootless.docker("run", "--rm", "busybox", "id"))
    assert out.startswith("uid=0(root) gid=0(root)")
    out = _ok(rootless.docker("run", "--rm", "busybox", "sh", "-c", "echo x > /x && cat /x"))
    assert out == "x\n"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):  # noqa: D401 - silence
        pass


def test_wget_loopback_server_through_slirp(rootless, tmp_path):
    (tmp_path / "hello.txt").write_text("hello from the host\n")
    handler = lambda *a, **k: _Quiet(*a, directory=str(tmp_path), **k)  # noqa: E731
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as srv:
        port = srv.server_address[1]
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            # 10.0.2.2: slirp4netns's gateway, which is the host's loopback.
            for net in ("bridge", "host"):
                out = _ok(rootless.docker("run", "--rm", "--network", net, "busybox",
                                          "wget", "-qO-", f"http://10.0.2.2:{port}/hello.txt"))
                assert out == "hello from the host\n", net
        finally:
            srv.shutdown()
    out = _ok(rootless.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert "lo" in out and "eth0" not in out


def test_limits_refused_without_delegation(rootless):
    r = rootless.docker("run", "--rm", "-m", "64m", "busybox", "true")
    assert r.returncode != 0 and b"no delegated cgroup" in r.stderr


def test_published_port_reached_from_the_host(rootless):
    """-p through slirp4netns's API: the host's 127.0.0.1:PORT reaches the container's httpd
    (port 80: root of the daemon's namespace may bind it), and the forward goes with the
    container."""
    import socket
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = "rl-web"
    _ok(rootless.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox",
                        "httpd", "-f", "-p", "80", "-h", "/etc"))
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=3) as r:
                    body = r.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cid = _ok(rootless.docker("inspect", "-f", "{{.Id}}", name)).strip()
        assert body.strip() == cid[:12]
        ports = json.loads(_ok(rootless.docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", name)))
        assert ports["80/tcp"][0]["HostPort"] == str(port)
    finally:
        _ok(rootless.docker("rm", "-f", name))
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=3)


def test_lifecycle_exec_logs_top(rootless):
    name = "rl-life"
    _ok(rootless.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "echo started; sleep 300"))
    try:
        assert _ok(rootless.docker("exec", name, "id", "-u")).strip() == "0"
        deadline = time.monotonic() + 10
        while "started" not in _ok(rootless.docker("logs", name)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "started" in _ok(rootless.docker("logs", name))
        assert "sleep 300" in _ok(rootless.docker("top", name)) or \
            "sh -c" in _ok(rootless.docker("top", name))
        r = rootless.docker("pause", name)
        assert r.returncode != 0 and b"freezer" in r.stderr  # no cgroup: a clear 409, not a 500
        _ok(rootless.docker("stop", "-t", "1", name))
        assert _ok(rootless.docker("inspect", "-f", "{{.State.Running}}", name)).strip() == "false"
    finally:
        rootless.docker("rm", "-f", name)


def test_missing_requirements_are_clear_errors(rootless):
    """Without XDG_RUNTIME_DIR, or as root with --rootless, the daemon says what is wrong."""
    env = {k: v for k, v in rootless.user_env.items() if k != "XDG_RUNTIME_DIR"}
    r = subprocess.run(["runuser", "-u", USER, "--", "env", "-i",
                        *[f"{k}={v}" for k, v in env.items()], rootless.python, "-m",
                        "sampan.daemon.main"], capture_output=True, text=True, timeout=60,
                       cwd=rootless.base)
    assert r.returncode == 1 and "XDG_RUNTIME_DIR" in r.stderr
    r = subprocess.run([sys.executable, "-m", "sampan.daemon.main", "--rootless"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "not root" in r.stderr
