"""sampan.runtime.console: pty pairs, sizes and the console socket (no root needed)."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
import time

import pytest

from sampan.runtime import console


@pytest.mark.parametrize("value, expected", [
    ([24, 80], (24, 80)),
    ((1, 1), (1, 1)),
    ({"height": 50, "width": 200}, (50, 200)),
    ([65535, 65535], (65535, 65535)),
    ([0, 0], None),          # the docker CLI without a terminal
    ([0, 80], None),
    ([24], None),
    ([24, 80, 1], None),
    (["24", "80"], None),
    ([True, 80], None),
    ([-1, 80], None),
    ([65536, 80], None),     # winsize fields are unsigned short
    ([24.0, 80], None),
    (None, None),
    ("24x80", None),
    ({"height": 24}, None),
])
def test_parse_size(value, expected):
    assert console.parse_size(value) == expected


def test_open_pty_gives_an_unlocked_pair():
    master, slave, name = console.open_pty()
    try:
        assert name.startswith("/dev/pts/") and name[len("/dev/pts/"):].isdigit()
        assert os.isatty(slave)
        assert os.get_inheritable(master) is False and os.get_inheritable(slave) is False
        assert os.stat(name).st_rdev == os.fstat(slave).st_rdev
        console.set_size(master, 33, 111)
        h, w, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        assert (h, w) == (33, 111)
        os.write(master, b"ping\n")
        assert os.read(slave, 100) == b"ping\n"
    finally:
        os.close(master)
        os.close(slave)


def test_open_pty_of_a_missing_ptmx_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        console.open_pty(str(tmp_path / "ptmx"))


def test_master_travels_over_the_console_socket():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    master, slave, name = console.open_pty()
    try:
        console.send_master(theirs.fileno(), master, name)
        assert theirs.fileno() >= 0  # the sender's fd stays its own
        got = console.recv_master(ours, 5)
        assert got is not None and got != master
        assert os.get_inheritable(got) is False
        os.write(got, b"x\n")  # canonical mode: the slave reads whole lines
        assert os.read(slave, 10) == b"x\n"
        os.close(got)
    finally:
        for fd in (master, slave):
            os.close(fd)
        ours.close()
        theirs.close()


def test_recv_master_on_a_closed_socket_is_none():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.close()
    assert console.recv_master(ours, 5) is None
    ours.close()


def test_recv_master_without_fds_is_none():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.send(b"/dev/pts/0")
    assert console.recv_master(ours, 5) is None
    ours.close()
    theirs.close()


def test_recv_master_times_out():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    t0 = time.monotonic()
    assert console.recv_master(ours, 0.2) is None
    assert 0.15 < time.monotonic() - t0 < 3
    ours.close()
    theirs.close()


def test_extra_fds_are_closed_not_leaked():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    socket.send_fds(theirs, [b"x"], [r1, r2])
    got = console.recv_master(ours, 5)
    try:
        assert got is not None
        os.close(r2)
        os.write(w1, b"a")
        assert os.read(got, 1) == b"a"
        # The second fd was closed on receipt: with r2 gone too, nothing reads the pipe.
        with pytest.raises(BrokenPipeError):
            os.write(w2, b"b")
    finally:
        for fd in (got, r1, w1, w2):
            if fd is not None:
                os.close(fd)
        ours.close()
        theirs.close()
