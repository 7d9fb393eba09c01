"""sampan's own CLI against the session's sampand (fixture in conftest.py).

Assertions are what docker's CLI prints and how it exits, on real containers.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid


def _name(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def test_version_and_info(sampand):
    out = _ok(sampand.cli("version"))
    assert "Client:" in out and "Server:" in out
    assert _ok(sampand.cli("version", "-f", "{{.Server.ApiVersion}}")).strip() == "1.45"
    info = json.loads(_ok(sampand.cli("info", "--format", "{{json .}}")))
    assert info["DockerRootDir"] == str(sampand.data_root)
    assert "Containers:" in _ok(sampand.cli("info"))


def test_unreachable_daemon(sampand, tmp_path):
    r = sampand.cli("-H", f"unix://{tmp_path}/none.sock", "ps")
    assert r.returncode == 1 and "Is the sampan daemon running?" in r.stderr


def test_images_lists_busybox(sampand):
    out = _ok(sampand.cli("images"))
    assert out.splitlines()[0].split()[:3] == ["REPOSITORY", "TAG", "IMAGE"]
    assert re.search(r"^busybox\s+latest\s+[0-9a-f]{12}\s", out, re.M)
    full = _ok(sampand.cli("image", "inspect", "-f", "{{.Id}}", "busybox")).strip()
    assert _ok(sampand.cli("images", "-q", "busybox")).strip() == full.split(":")[1][:12]


def test_run_output_streams_and_exit_code(sampand):
    r = sampand.cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr == "err\n"


def test_run_stdin_eof_reaches_container(sampand):
    r = sampand.cli("run", "--rm", "-i", "busybox", "sh", "-c", "wc -l; echo done", input="a\nb\nc\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "done"]


def test_run_flags_reach_the_process(sampand):
    r = sampand.cli("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "-h", "box",
                    "busybox", "sh", "-c", 'echo "$FOO $(pwd) $(id -u):$(id -g) $(hostname)"')
    assert _ok(r).strip() == "bar /tmp 1000:1000 box"


def test_run_exit_codes_for_bad_commands(sampand):
    r = sampand.cli("run", "--rm", "busybox", "/no/such/binary")
    assert r.returncode == 127, (r.returncode, r.stderr)
    r = sampand.cli("run", "--rm", "nosuchimage:v9", "true")
    assert r.returncode == 125
    assert "Unable to find image 'nosuchimage:v9' locally" in r.stderr


def test_detached_lifecycle(sampand):
    name = _name()
    cid = _ok(sampand.cli("run", "-d", "--name", name, "-l", "suite=cli", "busybox", "sleep", "300")).strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid)
    try:
        ps = _ok(sampand.cli("ps", "--filter", f"name={name}", "--format", "{{.ID}} {{.Names}} {{.State}} {{.Label \"suite\"}}"))
        assert ps.strip() == f"{cid[:12]} {name} running cli"
        assert cid[:12] in _ok(sampand.cli("ps", "-q"))
        pid = int(_ok(sampand.cli("inspect", "-f", "{{.State.Pid}}", name)).strip())
        assert pid > 0 and os.path.exists(f"/proc/{pid}")
        r = sampand.cli("exec", name, "sh", "-c", "echo in-exec; exit 4")
        assert r.returncode == 4 and r.stdout == "in-exec\n"
        r = sampand.cli("exec", "-i", name, "cat", input="piped\n")
        assert r.stdout == "piped\n"
        assert _ok(sampand.cli("stop", "-t", "1", name)).strip() == name
        assert _ok(sampand.cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.State}}")).strip() == "exited"
        assert _ok(sampand.cli("wait", name)).strip() in ("137", "143")
        new = _name("renamed")
        _ok(sampand.cli("rename", name, new))
        name = new
    finally:
        sampand.cli("rm", "-f", name)
    r = sampand.cli("inspect", name)
    assert r.returncode == 1 and r.stdout == "[]\n"


def test_logs(sampand):
    name = _name()
    _ok(sampand.cli("run", "--name", name, "busybox", "sh", "-c", "echo one; echo two >&2; echo three"))
    try:
        r = sampand.cli("logs", name)
        assert r.stdout == "one\nthree\n" and r.stderr == "two\n"
        assert _ok(sampand.cli("logs", "--tail", "1", name)) in ("three\n", "")
        ts = _ok(sampand.cli("logs", "-t", name)).splitlines()
        assert ts and re.match(r"\d{4}-\d\d-\d\dT", ts[0])
    finally:
        sampand.cli("rm", name)


def test_create_start_attach(sampand):
    name = _name()
    cid = _ok(sampand.cli("create", "--name", name, "busybox", "sh", "-c", "echo started; exit 6")).strip()
    try:
        r = sampand.cli("start", "-a", name)
        assert r.returncode == 6 and r.stdout == "started\n"
        assert _ok(sampand.cli("inspect", "-f", "{{.State.ExitCode}}", cid)).strip() == "6"
    finally:
        sampand.cli("rm", name)


def test_sig_proxy_forwards_sigterm(sampand):
    env = sampand.env
    p = subprocess.Popen([sys.executable, "-m", "sampan.cli.main", "run", "--rm", "busybox", "sh", "-c",
                          'trap "echo got-term; exit 9" TERM; echo ready; while true; do sleep 0.1; done'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(15)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 9, err
    assert out == b"got-term\n"


def test_tty_run_with_pty(sampand):
    """`run -it` in a real terminal: raw mode, the size sent to the container, exit code kept."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI, with the pty as its terminal
        os.environ.update(sampand.env)
        os.execv(sys.executable, [sys.executable, "-m", "sampan.cli.main", "run", "--rm", "-it",
                                  "busybox", "sh", "-c", "read x; stty size; echo got-$x; exit 5"])
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
    buf = b""
    deadline = time.monotonic() + 30
    sent = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
        if not sent and time.monotonic() > deadline - 28:
            # the size is sent right after start (and in ConsoleSize at create): by the time
            # we type, the container's terminal has it
            os.write(fd, b"hello\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    assert b"got-hello" in buf, buf
    assert b"33 111" in buf, buf
    assert os.waitstatus_to_exitcode(status) == 5


def test_tag_history_save_load_rmi(sampand, tmp_path):
    tag = f"cli-{uuid.uuid4().hex[:6]}:v1"
    _ok(sampand.cli("tag", "busybox", tag))
    assert tag.split(":")[0] in _ok(sampand.cli("images"))
    hist = _ok(sampand.cli("history", tag)).splitlines()
    assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and len(hist) >= 2
    out = tmp_path / "img.tar"
    _ok(sampand.cli("save", "-o", str(out), tag))
    assert out.stat().st_size > 100_000
    rmi = _ok(sampand.cli("rmi", tag))
    assert f"Untagged: {tag}" in rmi
    loaded = _ok(sampand.cli("load", "-i", str(out)))
    assert tag in loaded
    _ok(sampand.cli("rmi", tag))
    r = sampand.cli("rmi", tag)
    assert r.returncode == 1 and "Error response from daemon" in r.stderr


def test_import_with_changes(sampand, busybox_tar):
    ref = f"cli-imp-{uuid.uuid4().hex[:6]}:latest"
    r = sampand.cli("import", "-c", 'CMD ["echo", "from-cmd"]', "-m", "hello", str(busybox_tar), ref)
    assert _ok(r).strip().startswith("sha256:")
    try:
        assert _ok(sampand.cli("image", "inspect", "-f", "{{json .Config.Cmd}}", ref)).strip() == '["echo","from-cmd"]'
        assert _ok(sampand.cli("run", "--rm", ref)) == "from-cmd\n"
    finally:
        sampand.cli("rmi", ref)


def test_rm_reports_each_failure(sampand):
    r = sampand.cli("rm", "no-such-one", "no-such-two")
    assert r.returncode == 1
    assert r.stderr.count("Error response from daemon") == 2
