"""Container terminals through the real docker CLI, run in a real terminal of our own.

The terminal comes from the container's own devpts (runc's console socket): inside, `tty`
says /dev/pts/0 for the container and /dev/pts/1, ... for `docker exec -t`, `ls /dev/pts`
shows them, /dev/console is the same pty, and the size the client's terminal has is the
size the process sees from its first instruction on.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import termios
import time
import uuid

import pytest

DOCKER = "/usr/local/bin/docker"  # as in conftest (importlib mode: not importable here)
pytestmark = pytest.mark.skipif(not os.access(DOCKER, os.X_OK),
                                reason=f"docker CLI not installed at {DOCKER}")


def _session(sampand, args: list[str], script: list[tuple[bytes, bytes]] = (),
             size: tuple[int, int] = (33, 111), timeout: float = 30) -> tuple[str, int]:
    """Run `docker ARGS` with a fresh pty as its terminal, `size` rows x cols.

    `script`: (wait for this output, then type this) steps, like expect(1). Returns (all the
    output with \\r removed, exit code).
    """
    pid, fd = pty.fork()
    if pid == 0:
        try:
            # Sized before the CLI starts, so its first look at the terminal sees it.
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
            os.environ.update(sampand.env)
            os.execv(DOCKER, [DOCKER, *args])
        finally:
            os._exit(127)
    buf = b""
    pos = 0
    steps = list(script)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if steps and steps[0][0] in buf[pos:]:
                want, typed = steps.pop(0)
                pos = buf.index(want, pos) + len(want)
                os.write(fd, typed)
            r, _, _ = select.select([fd], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the CLI is gone
                break
            if not data:
                break
            buf += data
        else:
            os.kill(pid, 9)
            pytest.fail(f"docker {' '.join(args)} still running after {timeout}s: {buf!r}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert not steps, f"never saw {steps[0][0]!r} in {buf!r}"
    return buf.decode(errors="replace").replace("\r", ""), os.waitstatus_to_exitcode(status)


def test_run_it_terminal_is_the_containers_pts0(sampand):
    out, code = _session(sampand, [
        "run", "-it", "--rm", "busybox", "sh", "-c",
        "tty; ls /dev/pts; stty size; read x; echo got-$x; exit 4"],
        script=[(b"33 111", b"hello\r")])
    lines = out.splitlines()
    assert lines[0] == "/dev/pts/0", out
    assert lines[1].split() == ["0", "ptmx"], out  # its own devpts: nothing of the host's
    assert lines[2] == "33 111", out               # ConsoleSize, before the process started
    assert "got-hello" in out                      # typed input reached it (echoed too)
    assert code == 4


def test_interactive_shell_round_trip(sampand):
    out, code = _session(sampand, ["run", "-it", "--rm", "busybox", "sh"],
                         script=[(b"# ", b"echo typed-$((6*7)); stty size\r"),
                                 (b"typed-42", b"exit 3\r")], size=(40, 132))
    assert "typed-42" in out and "40 132" in out, out
    assert code == 3


def test_console_is_the_same_pty(sampand):
    # -t without -i needs no terminal on the client side.
    r = sampand.docker("run", "-t", "--rm", "busybox", "stat", "-c", "%t:%T %g",
                       "/dev/console", "/dev/pts/0")
    assert r.returncode == 0, r.stderr
    # 136 (0x88) is the pty slave major; gid 5 (tty) from devpts' gid=5 option.
    assert r.stdout.replace("\r", "").split("\n")[:2] == ["88:0 5", "88:0 5"], r.stdout


@pytest.fixture
def running(sampand):
    name = f"tty-{uuid.uuid4().hex[:8]}"
    r = sampand.docker("run", "-d", "-it", "--name", name, "busybox", "sh")
    assert r.returncode == 0, r.stderr
    yield name
    sampand.docker("rm", "-f", name)


def test_exec_it_gets_the_next_pty(sampand, running):
    out, code = _session(sampand, ["exec", "-it", running, "sh"],
                         script=[(b"# ", b"tty; ls /dev/pts; stty size\r"),
                                 (b"40 100", b"exit 7\r")], size=(40, 100))
    assert "/dev/pts/1" in out.splitlines(), out
    assert re.search(r"^0\s+1\s+ptmx$", out, re.M), out
    assert "40 100" in out
    assert code == 7
    # The exec's pty is gone with it; the container's own is still there.
    r = sampand.docker("exec", running, "ls", "/dev/pts")
    assert r.stdout.split() == ["0", "ptmx"], r.stdout


def test_exec_t_as_a_user_owns_its_pty(sampand, running):
    r = sampand.docker("exec", "-t", "-u", "1000", running, "sh", "-c",
                       "tty; stat -L -c %u /proc/self/fd/0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace("\r", "").split() == ["/dev/pts/1", "1000"]


def test_tty_start_failures_are_reported(sampand, running):
    # The child sends its pty before exec: a failing exec still reports its own error.
    r = sampand.docker("run", "-t", "--rm", "busybox", "no-such-command")
    assert r.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in r.stderr
    r = sampand.docker("exec", "-t", running, "no-such-command")
    assert r.returncode == 127
    assert "executable file not found" in r.stdout + r.stderr
    # ... and the container is unharmed and a later exec still gets a terminal.
    r = sampand.docker("exec", "-t", running, "tty")
    assert r.returncode == 0 and r.stdout.strip() == "/dev/pts/1", r.stdout + r.stderr
