"""A container's terminal, made from the container's own devpts (runc's console socket).

For `Tty: true` the container's init (or an exec child, once it has joined the container's
mount namespace) opens `/dev/ptmx` of the container's devpts instance (mounted with
`newinstance,ptmxmode=0666`), so inside the container the terminal is `/dev/pts/N` and
`ls /dev/pts` shows it. The master goes to the monitor over a unix socket as SCM_RIGHTS;
the slave becomes the process's stdio and controlling terminal.

Everything here is a few ioctls and one sendmsg: it runs on every `docker run -t`.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import socket
import struct
import termios

# <asm-generic/ioctls.h>; Python's termios lacks the pty ones.
TIOCGPTN = 0x80045430       # _IOR('T', 0x30, unsigned int)
TIOCSPTLCK = 0x40045431     # _IOW('T', 0x31, int)
TIOCGPTPEER = 0x5441        # _IO('T', 0x41), Linux 4.13+

MAX_DIM = 0xFFFF            # struct winsize fields are unsigned short


def open_pty(ptmx: str = "/dev/ptmx") -> tuple[int, int, str]:
    """(master fd, slave fd, slave path) of a new pty of the devpts `ptmx` belongs to.

    Both are close-on-exec and opened O_NOCTTY: the caller decides which becomes stdio and
    makes it the controlling terminal itself.
    """
    master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"))[0]
        name = f"/dev/pts/{n}"
        try:
            # The peer straight from the master: no path lookup that a container's /dev
            # (or a race with another pty) could redirect.
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            slave = os.open(name, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except BaseException:
        os.close(master)
        raise
    return master, slave, name


def set_size(fd: int, height: int, width: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def parse_size(value: object) -> tuple[int, int] | None:
    """[h, w] / (h, w) / {"height", "width"} -> (h, w); None when absent, zero or invalid.

    The docker CLI sends ConsoleSize [0, 0] when it has no terminal: that means "unset".
    """
    if isinstance(value, dict):
        value = (value.get("height"), value.get("width"))
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    h, w = value
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (h, w)):
        return None
    if not (0 < h <= MAX_DIM and 0 < w <= MAX_DIM):
        return None
    return h, w


def send_master(sock_fd: int, master: int, name: str) -> None:
    """Hand the master to the monitor; the pty's path rides along for information."""
    s = socket.socket(fileno=sock_fd)
    try:
        s.sendmsg([name.encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                     array.array("i", [master]))])
    finally:
        s.detach()  # the caller owns the fd number


def recv_master(sock: socket.socket, timeout: float) -> int | None:
    """The master fd a child sent on `sock`, or None if it closed the socket (it failed, or
    exec'd without sending) or sent nothing within `timeout` seconds."""
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None
    fds = array.array("i")
    try:
        # Close-on-exec on receipt: the monitor forks execs, which must not inherit it.
        # (socket.recv_fds would drop the flag: it never passes it to recvmsg.)
        _, anc, _, _ = sock.recvmsg(256, socket.CMSG_SPACE(4 * fds.itemsize),
                                    socket.MSG_CMSG_CLOEXEC)
    except OSError:
        return None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    for extra in fds[1:]:
        os.close(extra)
    return fds[0] if fds else None
