"""The e2e harness: a private sampand per session, with a busybox image imported.

The daemon runs as `python -m sampan.daemon.main` on its own data root, exec root, socket,
pidfile and config file under a fresh temp dir, so it never touches a system daemon at
/run/sampan or /var/lib/sampan, and two of them run side by side (test_restart starts a
second one). The busybox image is built once per session from Debian's busybox-static by
scripts/mkimage-busybox.sh and imported through the API (`POST /images/create?fromSrc=-`).

Teardown leaves nothing behind: containers are removed through the API, the daemon gets
SIGTERM (then SIGKILL), any process still running from those roots (monitors, container
processes) is killed by pid, mounts under the roots are detached and the dir removed.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
MKIMAGE = REPO / "scripts" / "mkimage-busybox.sh"
DOCKER = "/usr/local/bin/docker"
PING_TIMEOUT = 20.0


# --- a tiny HTTP client over a unix socket ---------------------------------------------------

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self._unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def api_request(sock_path: str | Path, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, headers with lower-case names, body)."""
    conn = _UnixHTTPConnection(str(sock_path), timeout)
    try:
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# --- processes and mounts left under a root -----------------------------------------------------

def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    # The comm field can hold spaces and parens: the ppid is the second field after the last ')'.
    try:
        return int(stat[stat.rindex(b")") + 2:].split()[1])
    except (ValueError, IndexError):
        return -1


def _pids_under(base: Path) -> list[int]:
    """Pids started from `base`: whose command line names it or whose cwd is in it, and all
    their descendants (container processes are children of their monitor)."""
    needle = str(base).encode()
    me = {os.getpid(), os.getppid()}
    children: dict[int, list[int]] = {}
    seeds: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in me:
            continue
        children.setdefault(_ppid(pid), []).append(pid)
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            cwd = ""
        if needle in _read(f"/proc/{pid}/cmdline") or cwd.startswith(str(base) + "/"):
            seeds.append(pid)
    found: set[int] = set()
    stack = list(seeds)
    while stack:
        pid = stack.pop()
        if pid in found or pid in me:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    return sorted(found)


def _kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base).rstrip("/") + "/"
    points = []
    for line in _read("/proc/self/mountinfo").decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) > 4:
            mp = _unescape_mountinfo(parts[4])
            if mp.startswith(prefix) or mp == str(base):
                points.append(mp)
    return points


def _unmount_under(base: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    MNT_DETACH = 2
    for _ in range(5):  # stacked mounts need more than one pass
        points = _mounts_under(base)
        if not points:
            return
        for mp in sorted(points, key=lambda p: p.count("/"), reverse=True):
            libc.umount2(mp.encode(), MNT_DETACH)


# --- the daemon ---------------------------------------------------------------------------------

class Sampand:
    """A sampand on private roots under `base`, and clients pointed at it."""

    # The daemon is run from the checkout (cwd=REPO), so the suite tests this tree's code even
    # where the installed entry point points at another clone.
    daemon_argv = [sys.executable, "-m", "sampan.daemon.main"]

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data_root = base / "root"
        self.exec_root = base / "run"
        self.socket = self.exec_root / "sampan.sock"
        self.host = f"unix://{self.socket}"
        self.pidfile = self.exec_root / "sampand.pid"
        self.config_file = base / "daemon.json"
        self.log_path = base / "sampand.log"
        self.docker_config = base / "docker-config"
        env = dict(os.environ)
        # Nothing from the caller's environment may point the clients elsewhere.
        for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"):
            env.pop(k, None)
        env.update(SAMPAN_HOST=self.host, DOCKER_HOST=self.host,
                   DOCKER_CONFIG=str(self.docker_config), DOCKER_CLI_HINTS="false",
                   PYTHONDONTWRITEBYTECODE="1")
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # lifecycle
    def start(self, timeout: float = PING_TIMEOUT) -> None:
        self.data_root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self.docker_config.mkdir(parents=True, exist_ok=True)
        if not self.config_file.exists():
            self.config_file.write_text("{}\n")
        cmd = [*self.daemon_argv,
               "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
               "-H", self.host, "--pidfile", str(self.pidfile),
               "--config-file", str(self.config_file), "--debug"]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n".encode())
            log.flush()
            # Own session: a ctrl-C of pytest doesn't reach the daemon before teardown does.
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        last_err = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sampand exited with {self.proc.returncode} during start-up\n"
                                   f"--- {self.log_path} ---\n{self.log_tail()}")
            try:
                status, _, body = api_request(self.socket, "GET", "/_ping", timeout=2)
                if status == 200 and body.strip() == b"OK":
                    return
                last_err = f"/_ping answered {status} {body[:200]!r}"
            except OSError as e:
                last_err = str(e)
            time.sleep(0.05)
        raise RuntimeError(f"sampand did not answer /_ping within {timeout:.0f}s ({last_err})\n"
                           f"--- {self.log_path} ---\n{self.log_tail()}")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self, timeout: float = PING_TIMEOUT) -> None:
        """kill -9 and start again on the same roots (the live-restore case)."""
        self.kill9()
        self.start(timeout)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        text = _read(str(self.log_path)).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # clients
    def api(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> tuple[int, bytes]:
        """Raw API call: a dict/list body is sent as JSON. Returns (status, body)."""
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        status, _, data = api_request(self.socket, method, path, body, headers, timeout)
        return status, data

    def api_json(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        status, data = self.api(method, path, body, timeout=timeout)
        try:
            return status, json.loads(data) if data.strip() else None
        except ValueError:
            return status, data

    def import_image(self, tar: Path, repo: str, tag: str = "latest") -> None:
        q = urllib.parse.urlencode({"fromSrc": "-", "repo": repo, "tag": tag})
        status, data = self.api("POST", f"/images/create?{q}", tar.read_bytes(),
                                headers={"Content-Type": "application/x-tar"}, timeout=120)
        if status != 200 or b'"error' in data:
            raise RuntimeError(f"import of {tar} as {repo}:{tag} failed: {status} {data[-500:]!r}")
        status, data = self.api("GET", f"/images/{repo}:{tag}/json")
        if status != 200:
            raise RuntimeError(f"{repo}:{tag} not found after import: {status} {data[:300]!r}")

    def _run(self, argv: list[str], input: str | bytes | None, timeout: float,
             binary: bool) -> subprocess.CompletedProcess:
        text = not binary and not isinstance(input, (bytes, bytearray))
        # No input: /dev/null, not whatever stdin pytest has (CI runs with none at all).
        extra = {"stdin": subprocess.DEVNULL} if input is None else {"input": input}
        return subprocess.run(argv, env=self.env, capture_output=True, text=text,
                              timeout=timeout, cwd=self.base, **extra)

    def cli(self, *args: str, input: str | bytes | None = None, timeout: float = 30,
            binary: bool = False) -> subprocess.CompletedProcess:
        """sampan's own CLI (python -m sampan.cli.main) with SAMPAN_HOST set."""
        return self._run([sys.executable, "-m", "sampan.cli.main", *args], input, timeout, binary)

    def docker(self, *args: str, input: str | bytes | None = None, timeout: float = 30,
               binary: bool = False) -> subprocess.CompletedProcess:
        """The real docker CLI with DOCKER_HOST set; skips the test when it isn't installed."""
        if not os.access(DOCKER, os.X_OK):
            pytest.skip(f"docker CLI not installed at {DOCKER}")
        return self._run([DOCKER, *args], input, timeout, binary)

    # teardown
    def remove_all_containers(self) -> None:
        try:
            status, items = self.api_json("GET", "/containers/json?all=1", timeout=10)
        except OSError:
            return
        if status != 200 or not isinstance(items, list):
            return
        for c in items:
            try:
                self.api("DELETE", f"/containers/{c['Id']}?force=1&v=1", timeout=20)
            except (OSError, KeyError):
                pass

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.remove_all_containers()
        self.stop()
        # Monitors outlive the daemon by design: end those (and their containers) by pid.
        for _ in range(3):
            pids = _pids_under(self.base)
            if not pids:
                break
            _kill_pids(pids)
            time.sleep(0.2)
        # Bridges, nft rules and namespaces are host-wide: remove this daemon's.
        subprocess.run([sys.executable, "-m", "sampan.network.cleanup", str(self.data_root),
                        str(self.exec_root)], cwd=REPO, capture_output=True, timeout=60)
        _unmount_under(self.base)
        shutil.rmtree(self.base, ignore_errors=True)


def _short_base(prefix: str) -> Path:
    # Unix socket paths are limited to 107 bytes, and per-container monitor sockets live under
    # the exec root: keep the base short (/tmp/sd-XXXXXXXX) instead of pytest's deep tmp dirs.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox rootfs tarball, built once per session."""
    if not os.access("/bin/busybox", os.X_OK):
        pytest.skip("/bin/busybox missing: apt-get install busybox-static (scripts/install.sh does)")
    out = tmp_path_factory.mktemp("image") / "busybox.tar"
    subprocess.run(["bash", str(MKIMAGE), str(out)], check=True, capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def sampand_factory(busybox_tar: Path) -> Iterator[Any]:
    """Starts extra daemons side by side (each on its own roots), all torn down at the end."""
    made: list[Sampand] = []

    def make(with_busybox: bool = True, config: dict | None = None) -> Sampand:
        if os.geteuid() != 0:
            pytest.skip("sampand needs root")
        d = Sampand(_short_base("sd-"))
        made.append(d)
        config = dict(config or {})
        # Networks from a private pool, not Docker's 31 defaults: bridges leaked by a killed
        # run (or held by other suites running beside this one) cannot use up what we need.
        config.setdefault("default-address-pools",
                          [{"base": f"10.{100 + os.getpid() % 50}.0.0/16", "size": 24}])
        d.config_file.parent.mkdir(parents=True, exist_ok=True)
        d.config_file.write_text(json.dumps(config) + "\n")
        try:
            d.start()
            if with_busybox:
                d.import_image(busybox_tar, "busybox", "latest")
        except (RuntimeError, OSError) as e:
            pytest.fail(str(e), pytrace=False)
        return d

    yield make
    for d in reversed(made):
        d.destroy()


@pytest.fixture(scope="session")
def sampand(sampand_factory: Any) -> Sampand:
    """The session's daemon, with busybox:latest imported."""
    return sampand_factory()


@pytest.fixture
def docker_client(sampand: Sampand) -> Iterator[Any]:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=sampand.host, version="1.45", timeout=60)
    try:
        yield client
    finally:
        client.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    # A failing e2e test shows the end of the daemon's log beside its traceback.
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        d = getattr(item, "funcargs", {}).get("sampand")
        if isinstance(d, Sampand):
            report.sections.append(("sampand log (tail)", d.log_tail(40)))
