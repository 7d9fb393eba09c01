"""Docker compatibility of the container features, through the real docker CLI.

Each test states what dockerd does and checks that sampand does the same, by its effect: the
output a process prints, a file it can or cannot write, the exit code the CLI returns. Terminal
cases (attach, detach keys, exec -it) drive the docker CLI on a real pty from Python's `pty`.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import time
import uuid
from datetime import datetime, timezone

import pytest


def _name(prefix: str = "compat") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _inspect(sampand, ref: str) -> dict:
    return json.loads(_ok(sampand.docker("inspect", ref)))[0]


def _wait_for(pred, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


@pytest.fixture
def names(sampand):
    """Container names a test makes; all force-removed afterwards."""
    made: list[str] = []

    def new(prefix: str = "compat") -> str:
        n = _name(prefix)
        made.append(n)
        return n

    yield new
    for n in made:
        sampand.docker("rm", "-f", n)


class PtyClient:
    """A docker CLI process on a real terminal: what a user at a shell sees."""

    def __init__(self, sampand, *args: str) -> None:
        if not os.access("/usr/local/bin/docker", os.X_OK):
            pytest.skip("docker CLI not installed")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child: exec at once, nothing of pytest's runs here
            os.chdir(sampand.base)
            os.execve("/usr/local/bin/docker", ["docker", *args], sampand.env)
        self.out = b""
        self.status: int | None = None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def _pump(self, timeout: float) -> bool:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child side is gone
            return False
        self.out += data
        return bool(data)

    def expect(self, needle: bytes, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.out:
            if time.monotonic() > deadline or not self._pump(0.1):
                break
        assert needle in self.out, f"{needle!r} not in output: {self.out!r}"

    def wait(self, timeout: float = 15.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._pump(0.05):
                    pass
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self._pump(0.05)
        self.close()
        raise AssertionError(f"docker CLI still running after {timeout}s; output: {self.out!r}")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.status = -9
        try:
            os.close(self.fd)
        except OSError:
            pass


@pytest.fixture
def ptys():
    made: list[PtyClient] = []

    def new(sampand, *args: str) -> PtyClient:
        p = PtyClient(sampand, *args)
        made.append(p)
        return p

    yield new
    for p in made:
        p.close()


def _running(sampand, name: str) -> bool:
    r = sampand.docker("inspect", "-f", "{{.State.Running}}", name)
    return r.stdout.strip() == "true"


# --- attach, detach keys, stdin ------------------------------------------------------------------

def test_attach_then_ctrl_p_ctrl_q_detaches_and_leaves_it_running(sampand, names, ptys):
    name = names("attach")
    _ok(sampand.docker("run", "-dit", "--name", name, "busybox", "sh"))
    p = ptys(sampand, "attach", name)
    p.send(b"echo sum=$((20+22))\n")
    p.expect(b"sum=42")
    p.send(b"\x10\x11")
    # The docker CLI reports the detach as "read escape sequence" and exits 1 (as with dockerd).
    assert p.wait() == 1
    assert b"read escape sequence" in p.out
    assert _running(sampand, name)
    # Attaching again reaches the same shell.
    p2 = ptys(sampand, "attach", name)
    p2.send(b"echo again=$((1+1))\n")
    p2.expect(b"again=2")
    p2.send(b"exit 5\n")
    assert p2.wait() == 5
    assert _inspect(sampand, name)["State"]["ExitCode"] == 5


def test_attach_with_custom_detach_keys(sampand, names, ptys):
    name = names("keys")
    _ok(sampand.docker("run", "-dit", "--name", name, "busybox", "sh"))
    p = ptys(sampand, "attach", "--detach-keys", "ctrl-a,x", name)
    p.send(b"echo k=$((3*3))\n")
    p.expect(b"k=9")
    p.send(b"\x01x")
    assert p.wait() == 1
    assert _running(sampand, name)


def test_run_it_detach_leaves_the_shell_running(sampand, names, ptys):
    # docker run -it sets StdinOnce; on a tty, dockerd does not close the container's stdin
    # when the client goes away, so a detached shell keeps running.
    name = names("runit")
    p = ptys(sampand, "run", "-it", "--name", name, "busybox", "sh")
    p.send(b"echo up=$((4+4))\n")
    p.expect(b"up=8")
    p.send(b"\x10\x11")
    assert p.wait() == 0  # docker run returns 0 on a detach
    time.sleep(0.3)
    assert _running(sampand, name), _inspect(sampand, name)["State"]
    _ok(sampand.docker("exec", name, "true"))


def test_attach_streams_output_and_returns_the_exit_code(sampand, names):
    name = names("attach-out")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "sleep 1; echo to-out; echo to-err >&2; exit 3"))
    r = sampand.docker("attach", "--no-stdin", name, timeout=20)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stdout == "to-out\n"
    assert r.stderr == "to-err\n"


def test_start_ai_pipes_stdin_and_returns_the_exit_code(sampand, names):
    name = names("startai")
    _ok(sampand.docker("create", "-i", "--name", name, "busybox", "sh", "-c",
                       "read first; echo got:$first; cat; exit 4"))
    r = sampand.docker("start", "-ai", name, input="one\ntwo\nthree\n")
    assert r.returncode == 4, r.stderr
    assert r.stdout == "got:one\ntwo\nthree\n"
    # A second start gets fresh stdin.
    r = sampand.docker("start", "-ai", name, input="again\n")
    assert (r.returncode, r.stdout) == (4, "got:again\n")


def test_start_a_separates_stdout_and_stderr(sampand, names):
    name = names("starta")
    _ok(sampand.docker("create", "--name", name, "busybox", "sh", "-c", "echo o; echo e >&2; exit 6"))
    r = sampand.docker("start", "-a", name)
    assert (r.returncode, r.stdout, r.stderr) == (6, "o\n", "e\n")


def test_piped_stdin_is_data_even_with_detach_key_bytes(sampand):
    # Without a tty, dockerd passes stdin through whole: ctrl-p ctrl-q (0x10 0x11) is just data.
    r = sampand.docker("run", "-i", "--rm", "busybox", "od", "-An", "-tx1", input=b"a\x10\x11b",
                       binary=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [b"61", b"10", b"11", b"62"]
    blob = bytes(range(256)) * 1024 + b"\x10\x11" * 100
    import hashlib
    r = sampand.docker("run", "-i", "--rm", "busybox", "md5sum", input=blob, binary=True, timeout=30)
    assert r.stdout.split()[0].decode() == hashlib.md5(blob).hexdigest()


def test_exec_i_binary_stdin_on_a_non_tty_container(sampand, names):
    import hashlib
    name = names("execbin")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    blob = bytes(range(256)) * 512 + b"\x10\x11"
    r = sampand.docker("exec", "-i", name, "md5sum", input=blob, binary=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.md5(blob).hexdigest()


# --- logs ----------------------------------------------------------------------------------------

def test_logs_keep_stdout_and_stderr_apart(sampand, names):
    name = names("logsplit")
    _ok(sampand.docker("run", "--name", name, "busybox", "sh", "-c",
                       "echo out1; echo err1 >&2; echo out2; echo err2 >&2"))
    r = sampand.docker("logs", name)
    assert (r.stdout, r.stderr) == ("out1\nout2\n", "err1\nerr2\n")
    r = sampand.docker("logs", "--tail", "1", name)
    # --tail counts lines across both streams, as dockerd's json-file reader does.
    assert (r.stdout, r.stderr) == ("", "err2\n")


def test_logs_since_and_until(sampand, names):
    name = names("logtime")
    _ok(sampand.docker("run", "--name", name, "busybox", "sh", "-c", "echo early; sleep 1.2; echo late"))
    stamped = _ok(sampand.docker("logs", "-t", name)).splitlines()
    assert [ln.split(" ", 1)[1] for ln in stamped] == ["early", "late"]

    def ts(line: str) -> float:
        raw = line.split(" ", 1)[0]
        base, frac = raw.rstrip("Z").split(".")
        dt = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        return dt.timestamp() + float("0." + frac)

    mid = (ts(stamped[0]) + ts(stamped[1])) / 2
    assert _ok(sampand.docker("logs", "--since", f"{mid:.9f}", name)) == "late\n"
    assert _ok(sampand.docker("logs", "--until", f"{mid:.9f}", name)) == "early\n"
    rfc = datetime.fromtimestamp(mid, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _ok(sampand.docker("logs", "--since", rfc, name)) == "late\n"
    # Relative durations are turned into timestamps by the CLI: everything is newer than 10m.
    assert _ok(sampand.docker("logs", "--since", "10m", name)) == "early\nlate\n"


def test_logs_follow_streams_until_exit(sampand, names):
    name = names("follow")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "echo a; sleep 0.5; echo b >&2; sleep 0.5; echo c"))
    r = sampand.docker("logs", "-f", "-t", name, timeout=20)
    assert r.returncode == 0
    assert [ln.split(" ", 1)[1] for ln in r.stdout.splitlines()] == ["a", "c"]
    assert r.stderr.split(" ", 1)[1] == "b\n"


# --- wait, stop, kill, restart, rename -----------------------------------------------------------

def test_wait_prints_the_exit_code(sampand, names):
    name = names("wait")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c", "sleep 0.5; exit 12"))
    assert _ok(sampand.docker("wait", name, timeout=20)).strip() == "12"
    # An exited container answers at once with its last code.
    assert _ok(sampand.docker("wait", name)).strip() == "12"


def test_stop_runs_the_term_handler_and_exits_0(sampand, names):
    name = names("trap")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "trap 'echo cleanup; exit 0' TERM; echo ready; while true; do sleep 0.1; done"))
    assert _wait_for(lambda: "ready" in sampand.docker("logs", name).stdout)
    t0 = time.monotonic()
    _ok(sampand.docker("stop", name))
    assert time.monotonic() - t0 < 5  # well within the 10 s default: the handler ran
    st = _inspect(sampand, name)["State"]
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("exited", 0, False)
    assert "cleanup" in _ok(sampand.docker("logs", name))


def test_stop_signal_is_used_by_stop(sampand, names):
    name = names("stopsig")
    _ok(sampand.docker("run", "-d", "--stop-signal", "USR1", "--name", name, "busybox", "sh", "-c",
                       "trap 'echo usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done"))
    assert _inspect(sampand, name)["Config"]["StopSignal"] == "USR1"
    assert _wait_for(lambda: "ready" in sampand.docker("logs", name).stdout)
    _ok(sampand.docker("stop", name))
    assert _inspect(sampand, name)["State"]["ExitCode"] == 7
    # docker stop -s overrides it per call.
    _ok(sampand.docker("start", name))
    assert _wait_for(lambda: _ok(sampand.docker("logs", name)).count("ready") == 2)
    _ok(sampand.docker("stop", "-s", "KILL", name))
    assert _inspect(sampand, name)["State"]["ExitCode"] == 137


def test_stop_t1_kills_a_process_that_ignores_term(sampand, names):
    name = names("ignore")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "trap '' TERM; echo ready; while true; do sleep 0.1; done"))
    assert _wait_for(lambda: "ready" in sampand.docker("logs", name).stdout)
    t0 = time.monotonic()
    _ok(sampand.docker("stop", "-t", "1", name))
    took = time.monotonic() - t0
    assert 0.9 < took < 6, took
    assert _inspect(sampand, name)["State"]["ExitCode"] == 137
    # Stopping a stopped container is no error (304 from the API; the CLI prints the name).
    assert _ok(sampand.docker("stop", name)).strip() == name


def test_kill_usr1_reaches_the_trap_and_the_container_keeps_running(sampand, names):
    name = names("usr1")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done"))
    assert _wait_for(lambda: "ready" in sampand.docker("logs", name).stdout)
    _ok(sampand.docker("kill", "-s", "USR1", name))
    assert _wait_for(lambda: "got-usr1" in sampand.docker("logs", name).stdout)
    assert _running(sampand, name)
    _ok(sampand.docker("kill", "-s", "SIGUSR1", name))
    assert _wait_for(lambda: sampand.docker("logs", name).stdout.count("got-usr1") == 2)
    r = sampand.docker("kill", "-s", "NOSUCHSIG", name)
    assert r.returncode != 0 and "invalid signal" in r.stderr.lower()
    _ok(sampand.docker("kill", name))
    assert _ok(sampand.docker("wait", name)).strip() == "137"
    r = sampand.docker("kill", name)
    assert r.returncode != 0 and "is not running" in r.stderr


def test_restart_gives_a_new_process(sampand, names):
    name = names("restart")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done"))
    before = _inspect(sampand, name)
    time.sleep(0.05)
    _ok(sampand.docker("restart", "-t", "5", name))
    after = _inspect(sampand, name)
    assert after["State"]["Running"] is True
    assert after["State"]["Pid"] not in (0, before["State"]["Pid"])
    assert after["State"]["StartedAt"] > before["State"]["StartedAt"]
    assert after["State"]["FinishedAt"] != "0001-01-01T00:00:00Z"  # the stop was recorded
    # RestartCount counts restart-policy restarts only; `docker restart` leaves it alone.
    assert after["RestartCount"] == 0
    assert _wait_for(lambda: sampand.docker("logs", name).stdout == "started\nstarted\n")
    # A stopped container is simply started by restart.
    _ok(sampand.docker("stop", name))
    _ok(sampand.docker("restart", name))
    assert _running(sampand, name)


def test_rename(sampand, names):
    a, b, other = names("ren-a"), names("ren-b"), names("ren-o")
    _ok(sampand.docker("create", "--name", a, "busybox", "true"))
    _ok(sampand.docker("create", "--name", other, "busybox", "true"))
    cid = _inspect(sampand, a)["Id"]
    _ok(sampand.docker("rename", a, b))
    assert _inspect(sampand, b)["Id"] == cid
    assert _inspect(sampand, b)["Name"] == f"/{b}"
    assert sampand.docker("inspect", a).returncode != 0
    r = sampand.docker("rename", b, other)
    assert r.returncode != 0 and "already in use" in r.stderr
    r = sampand.docker("rename", b, "bad/name")
    assert r.returncode != 0 and "Invalid container name" in r.stderr
    assert _inspect(sampand, cid)["Name"] == f"/{b}"


# --- ps ------------------------------------------------------------------------------------------

def test_ps_filters_and_formats(sampand, names):
    tag = uuid.uuid4().hex[:8]
    first, second, third = names("ps1"), names("ps2"), names("ps3")
    assert sampand.docker("run", "--name", first, "-l", f"suite={tag}", "-l", "role=one", "busybox",
                          "sh", "-c", "exit 3").returncode == 3
    _ok(sampand.docker("run", "-d", "--name", second, "-l", f"suite={tag}", "-l", "role=two",
                       "busybox", "sleep", "300"))
    _ok(sampand.docker("create", "--name", third, "-l", f"suite={tag}", "busybox", "true"))
    ids = {n: _inspect(sampand, n)["Id"] for n in (first, second, third)}

    def ps(*args: str) -> list[str]:
        return _ok(sampand.docker("ps", "--filter", f"label=suite={tag}", "--format", "{{.Names}}",
                                  *args)).split()

    assert ps() == [second]  # running only, by default
    assert ps("-a") == [third, second, first]  # newest first
    assert ps("-a", "--filter", "status=exited") == [first]
    assert ps("-a", "--filter", "status=created") == [third]
    assert ps("-a", "--filter", "status=running") == [second]
    assert ps("-a", "--filter", "exited=3") == [first]
    assert ps("-a", "--filter", "exited=0") == []
    assert ps("-a", "--filter", "label=role=two") == [second]
    assert ps("-a", "--filter", "label=role") == [second, first]
    assert ps("-a", "--filter", f"name={second}") == [second]
    assert ps("-a", "--filter", f"id={ids[first][:12]}") == [first]
    assert ps("-a", "--filter", "ancestor=busybox") == [third, second, first]
    assert ps("-a", "--filter", "ancestor=busybox:latest") == [third, second, first]
    assert ps("-a", "--filter", f"before={second}") == [first]
    assert ps("-a", "--filter", f"since={first}") == [third, second]
    assert ps("-n", "2") == [third, second]  # -n implies -a
    assert ps("-l") == [third]

    q = _ok(sampand.docker("ps", "-aq", "--filter", f"label=suite={tag}")).split()
    assert q == [ids[third][:12], ids[second][:12], ids[first][:12]]
    q = _ok(sampand.docker("ps", "-aq", "--no-trunc", "--filter", f"label=suite={tag}")).split()
    assert q == [ids[third], ids[second], ids[first]]

    rows = _ok(sampand.docker("ps", "-a", "--filter", f"label=suite={tag}", "--format",
                              "{{.Names}}|{{.Status}}|{{.State}}|{{.Image}}|{{.Command}}")).splitlines()
    assert re.fullmatch(rf"{third}\|Created\|created\|busybox\|\"true\"", rows[0]), rows[0]
    assert re.fullmatch(rf"{second}\|Up .*\|running\|busybox\|\"sleep 300\"", rows[1]), rows[1]
    assert re.fullmatch(rf"{first}\|Exited \(3\) .* ago\|exited\|busybox\|\"sh -c 'exit 3'\"", rows[2]), rows[2]

    table = _ok(sampand.docker("ps", "-s", "--filter", f"label=suite={tag}")).splitlines()
    assert table[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS",
                                "NAMES", "SIZE"]
    assert re.search(r"\d+(\.\d+)?[kMG]?B \(virtual \d+(\.\d+)?[kMG]?B\)$", table[1]), table[1]

    for bad in ("status=bogus", "nosuchfilter=1"):
        r = sampand.docker("ps", "--filter", bad)
        assert r.returncode != 0 and "filter" in r.stderr.lower(), (bad, r.stderr)


# --- inspect -------------------------------------------------------------------------------------

def test_inspect_state_config_and_host_config(sampand, names):
    name = names("insp")
    _ok(sampand.docker("create", "--name", name, "-e", "A=1", "-w", "/srv", "-u", "1000:100",
                       "-l", "k=v", "--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--ulimit",
                       "nofile=100:200", "--read-only", "--entrypoint", "sh", "busybox", "-c",
                       "sleep 300"))
    c = _inspect(sampand, name)
    assert c["Name"] == f"/{name}"
    assert (c["Path"], c["Args"]) == ("sh", ["-c", "sleep 300"])
    st = c["State"]
    assert (st["Status"], st["Running"], st["Pid"], st["ExitCode"], st["OOMKilled"]) == \
        ("created", False, 0, 0, False)
    assert st["StartedAt"] == st["FinishedAt"] == "0001-01-01T00:00:00Z"
    cfg = c["Config"]
    assert "A=1" in cfg["Env"]
    assert (cfg["WorkingDir"], cfg["User"], cfg["Labels"]["k"]) == ("/srv", "1000:100", "v")
    assert (cfg["Entrypoint"], cfg["Cmd"], cfg["Image"]) == (["sh"], ["-c", "sleep 300"], "busybox")
    hc = c["HostConfig"]
    assert [x.upper().removeprefix("CAP_") for x in hc["CapAdd"]] == ["NET_ADMIN"]
    assert [x.upper().removeprefix("CAP_") for x in hc["CapDrop"]] == ["MKNOD"]
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}]
    assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False

    _ok(sampand.docker("start", name))
    st = _inspect(sampand, name)["State"]
    assert (st["Status"], st["Running"]) == ("running", True)
    assert st["Pid"] > 0 and os.path.exists(f"/proc/{st['Pid']}")
    assert st["StartedAt"] != "0001-01-01T00:00:00Z"
    _ok(sampand.docker("kill", name))
    _ok(sampand.docker("wait", name))
    st = _inspect(sampand, name)["State"]
    assert (st["Status"], st["Running"], st["Pid"], st["ExitCode"]) == ("exited", False, 0, 137)
    assert st["FinishedAt"] >= st["StartedAt"]

    priv = names("insp-priv")
    _ok(sampand.docker("create", "--name", priv, "--privileged", "busybox", "true"))
    assert _inspect(sampand, priv)["HostConfig"]["Privileged"] is True


# --- run options ---------------------------------------------------------------------------------

def test_env_and_env_file(sampand, tmp_path):
    env_file = tmp_path / "env.list"
    env_file.write_text("A=1\n# a comment\nB=two words\nFROM_HOST\n")
    env = dict(sampand.env, FROM_HOST="host-value")
    import subprocess
    r = subprocess.run(["/usr/local/bin/docker", "run", "--rm", "--env-file", str(env_file),
                        "-e", "C=3", "-e", "A=overridden", "busybox", "sh", "-c",
                        'echo "$A|$B|$C|$FROM_HOST"'], env=env, capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "overridden|two words|3|host-value\n"


def test_workdir_is_created_when_missing(sampand):
    out = _ok(sampand.docker("run", "--rm", "-w", "/does/not/exist", "busybox", "sh", "-c",
                             "pwd; stat -c %U /does/not/exist"))
    assert out.split() == ["/does/not/exist", "root"]


def test_users_and_groups(sampand):
    assert _ok(sampand.docker("run", "--rm", "-u", "1000", "busybox", "id", "-u")).strip() == "1000"
    out = _ok(sampand.docker("run", "--rm", "-u", "user:users", "busybox", "sh", "-c",
                             "id -un; id -gn"))
    assert out.split() == ["user", "users"]
    out = _ok(sampand.docker("run", "--rm", "-u", "1000:1000", "--group-add", "10",
                             "--group-add", "daemon", "busybox", "id", "-G"))
    assert set(out.split()) >= {"1000", "10", "1"}
    # The user's file access follows: uid 1000 cannot write root's /root.
    r = sampand.docker("run", "--rm", "-u", "1000", "busybox", "touch", "/root/x")
    assert r.returncode != 0


def test_hostname_entrypoint_labels(sampand, names):
    assert _ok(sampand.docker("run", "--rm", "-h", "myhost", "busybox", "hostname")).strip() == "myhost"
    out = _ok(sampand.docker("run", "--rm", "--entrypoint", "echo", "busybox", "via", "ep"))
    assert out == "via ep\n"
    name = names("lbl")
    _ok(sampand.docker("create", "--name", name, "-l", "a=b", "--label", "c", "busybox", "true"))
    assert _inspect(sampand, name)["Config"]["Labels"] == {"a": "b", "c": ""}


def test_network_host_sees_the_host_interfaces(sampand):
    host = sorted(ln.split(":")[0].strip() for ln in open("/proc/net/dev").read().splitlines()[2:])
    out = _ok(sampand.docker("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/dev"))
    inside = sorted(ln.split(":")[0].strip() for ln in out.splitlines()[2:])
    assert set(host) <= set(inside) or set(inside) <= set(host)
    assert len(set(inside) & set(host)) >= min(len(host), 2)
    out = _ok(sampand.docker("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev"))
    assert [ln.split(":")[0].strip() for ln in out.splitlines()[2:]] == ["lo"]


def test_capabilities(sampand):
    # CAP_SYS_ADMIN is outside Docker's default set: --cap-add SYS_ADMIN makes mount work.
    assert sampand.docker("run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/tmp").returncode != 0
    _ok(sampand.docker("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
                       "mount -t tmpfs x /tmp && grep -q ' /tmp tmpfs' /proc/mounts"))
    _ok(sampand.docker("run", "--rm", "--privileged", "busybox", "mount", "-t", "tmpfs", "x", "/tmp"))
    r = sampand.docker("run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1000", "/tmp")
    assert r.returncode != 0 and "not permitted" in r.stderr.lower()
    r = sampand.docker("run", "--rm", "--cap-add", "NOT_A_CAP", "busybox", "true")
    assert r.returncode == 125 and "unknown capability" in r.stderr.lower()


def test_read_only_rootfs(sampand):
    r = sampand.docker("run", "--rm", "--read-only", "busybox", "touch", "/tmp/x")
    assert r.returncode != 0 and "read-only" in r.stderr.lower()
    _ok(sampand.docker("run", "--rm", "--read-only", "--tmpfs", "/tmp", "busybox", "touch", "/tmp/x"))


def test_init_is_pid1(sampand):
    out = _ok(sampand.docker("run", "--rm", "--init", "busybox", "sh", "-c",
                             "cat /proc/1/comm; echo $$"))
    comm, pid = out.split()
    assert comm in ("docker-init", "tini", "tini-static"), comm
    assert pid != "1"


def test_ulimit_nofile(sampand):
    out = _ok(sampand.docker("run", "--rm", "--ulimit", "nofile=512:512", "busybox", "sh", "-c",
                             "ulimit -n; ulimit -Hn"))
    assert out.split() == ["512", "512"]


def test_restart_policy_on_failure_retries_up_to_the_limit(sampand, names):
    name = names("onfail")
    r = sampand.docker("run", "--restart", "on-failure:2", "--name", name, "busybox", "sh", "-c",
                       "echo run; exit 3")
    assert r.returncode == 3
    # Two restarts (after 100 ms, then 200 ms), then it stays down with the last exit code.
    assert _wait_for(lambda: _inspect(sampand, name)["RestartCount"] == 2
                     and _inspect(sampand, name)["State"]["Status"] == "exited", timeout=15)
    time.sleep(0.8)
    c = _inspect(sampand, name)
    assert (c["RestartCount"], c["State"]["ExitCode"]) == (2, 3)
    assert _ok(sampand.docker("logs", name)) == "run\nrun\nrun\n"
    # A success is not a failure: no restart.
    ok = names("onfail-ok")
    _ok(sampand.docker("run", "--restart", "on-failure", "--name", ok, "busybox", "true"))
    time.sleep(0.5)
    assert _inspect(sampand, ok)["RestartCount"] == 0


def test_restart_policy_always_until_stopped(sampand, names):
    name = names("always")
    _ok(sampand.docker("run", "-d", "--restart", "always", "--name", name, "busybox", "sh", "-c",
                       "echo run; sleep 0.3"))
    assert _wait_for(lambda: _inspect(sampand, name)["RestartCount"] >= 2, timeout=15)
    # Listed while it cycles, as Docker shows restarting containers without -a.
    assert name in _ok(sampand.docker("ps", "--format", "{{.Names}}")).split()
    _ok(sampand.docker("stop", "-t", "1", name))
    st = _inspect(sampand, name)["State"]
    assert st["Status"] == "exited" and st["Restarting"] is False
    count = _inspect(sampand, name)["RestartCount"]
    time.sleep(1.0)
    c = _inspect(sampand, name)
    assert c["State"]["Status"] == "exited" and c["RestartCount"] == count
    # A manual start resets the count, as dockerd's ResetRestartManager does.
    _ok(sampand.docker("start", name))
    assert _inspect(sampand, name)["RestartCount"] == 0
    _ok(sampand.docker("rm", "-f", name))
    assert sampand.docker("inspect", name).returncode != 0


def test_restart_policies_at_daemon_start(sampand_factory):
    # After the daemon comes back: `always` runs again even after a docker stop,
    # `unless-stopped` only if nobody stopped it, `no` stays down.
    d = sampand_factory()
    for policy in ("always", "unless-stopped", "no"):
        _ok(d.docker("run", "-d", "--restart", policy, "--name", f"p-{policy}", "busybox", "sleep", "300"))
    _ok(d.docker("stop", "-t", "0", "p-always", "p-unless-stopped", "p-no"))
    _ok(d.docker("run", "-d", "--restart", "unless-stopped", "--name", "p-running", "busybox", "sleep", "300"))
    d.restart()

    def status(n: str) -> str:
        return _inspect(d, n)["State"]["Status"]

    assert _wait_for(lambda: status("p-always") == "running", timeout=15)
    assert status("p-running") == "running"
    assert status("p-unless-stopped") == "exited" and status("p-no") == "exited"
    assert _inspect(d, "p-always")["RestartCount"] == 0
    _ok(d.docker("exec", "p-always", "true"))


def test_restart_policy_is_accepted_and_recorded(sampand, names):
    name = names("policy")
    _ok(sampand.docker("create", "--restart", "on-failure:3", "--name", name, "busybox", "true"))
    assert _inspect(sampand, name)["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                                       "MaximumRetryCount": 3}
    r = sampand.docker("run", "--rm", "--restart", "always", "busybox", "true")
    assert r.returncode == 125  # "conflicting options"


def test_rm_removes_after_exit_and_name_conflicts(sampand, names):
    name = names("rmconf")
    _ok(sampand.docker("run", "--rm", "--name", name, "busybox", "true"))
    assert sampand.docker("inspect", name).returncode != 0
    _ok(sampand.docker("create", "--name", name, "busybox", "true"))
    r = sampand.docker("run", "--name", name, "busybox", "true")
    assert r.returncode == 125
    assert f'The container name "/{name}" is already in use' in r.stderr


# --- exec ----------------------------------------------------------------------------------------

def test_exec_options(sampand, names):
    name = names("exec")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    out = _ok(sampand.docker("exec", "-e", "FOO=bar", "-w", "/etc", "-u", "1000", name, "sh", "-c",
                             'echo "$FOO $(pwd) $(id -u)"'))
    assert out == "bar /etc 1000\n"
    r = sampand.docker("exec", name, "sh", "-c", "echo o; echo e >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "o\n", "e\n")
    assert sampand.docker("exec", name, "nosuchcmd").returncode == 127

    # -d: returns at once; the effect shows up afterwards.
    t0 = time.monotonic()
    _ok(sampand.docker("exec", "-d", name, "sh", "-c", "sleep 0.5; echo done > /tmp/marker"))
    assert time.monotonic() - t0 < 5
    assert _wait_for(lambda: sampand.docker("exec", name, "cat", "/tmp/marker").stdout == "done\n")

    # --privileged: the exec'd process has every capability the container lacks.
    def cap_eff(*extra: str) -> int:
        out = _ok(sampand.docker("exec", *extra, name, "grep", "CapEff", "/proc/self/status"))
        return int(out.split()[1], 16)

    plain, priv = cap_eff(), cap_eff("--privileged")
    assert plain & (1 << 21) == 0  # no CAP_SYS_ADMIN
    assert priv & (1 << 21) and priv & plain == plain and priv != plain

    _ok(sampand.docker("stop", "-t", "0", name))
    r = sampand.docker("exec", name, "true")
    assert r.returncode != 0 and "is not running" in r.stderr


def test_exec_it_on_a_pty(sampand, names, ptys):
    name = names("execit")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    p = ptys(sampand, "exec", "-it", name, "sh")
    p.send(b"test -t 0 && test -t 1 && echo both-tty-$((6*7))\n")
    p.expect(b"both-tty-42")
    p.send(b"exit 9\n")
    assert p.wait() == 9


def test_create_with_platform(sampand):
    """`POST /containers/create?platform=`: the local image must match (dockerd's 404 and
    message otherwise, on which the docker CLI pulls the platform asked for)."""
    import platform as _platform
    host = {"x86_64": "amd64", "aarch64": "arm64"}.get(_platform.machine(), _platform.machine())
    other = "arm64" if host != "arm64" else "amd64"
    body = {"Image": "busybox", "Cmd": ["true"]}
    status, out = sampand.api_json("POST", f"/containers/create?platform=linux/{host}", body)
    assert status == 201, out
    sampand.api("DELETE", f"/containers/{out['Id']}")
    status, out = sampand.api_json("POST", f"/containers/create?platform=linux/{other}", body)
    assert status == 404, out
    assert out["message"] == ("image with reference busybox was found but does not match the specified "
                              f"platform: wanted linux/{other}, actual: linux/{host}")
    status, out = sampand.api_json("POST", "/containers/create?platform=linux//x", body)
    assert status == 400, out
