"""The monitor zygote: a small process the daemon starts once, that forks every monitor.

A monitor forked straight from the daemon shares the daemon's big heap copy-on-write, and
every allocation it makes lands in a page of that heap and copies it: about 5-7 MB private
per container. The zygote is a fresh interpreter that imports only the monitor and runtime
code, so a monitor forked from it copies pages of a small heap instead (about 2 MB).

Protocol, over a SOCK_SEQPACKET pair: the daemon sends one message per monitor, a pickled
(MonitorSpec, [Attach with fd=None...]) with the monitor's status socket and the attach fds
as SCM_RIGHTS; the zygote forks the monitor (detached, exactly as `spawn` does) and answers
b"ok". EOF from the daemon ends the zygote; monitors already made live on. When the zygote
cannot be used (it died, or a message is too big), `spawn` forks the monitor itself.
"""

from __future__ import annotations

import array
import gc
import os
import pickle
import signal
import socket
import sys

MAX_MESSAGE = 128 * 1024   # well under a unix socket's default send buffer
MAX_FDS = 64


def _recv(sock: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(MAX_MESSAGE, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def serve(sock: socket.socket) -> None:
    from . import process

    while True:
        try:
            msg, fds = _recv(sock)
        except InterruptedError:
            continue
        except OSError:
            return
        if not msg:
            for fd in fds:
                os.close(fd)
            return  # the daemon is gone
        pid = 0
        try:
            ms, attaches = pickle.loads(msg)
            status_fd, rest = fds[0], fds[1:]
            for a, fd in zip(attaches, rest):
                a.fd = fd
            pid = os.fork()
            if pid == 0:
                try:
                    sock.close()
                    process.detach_and_run(ms, attaches, status_fd)
                finally:
                    os._exit(1)
        except Exception as e:  # noqa: BLE001 - nothing forked: the daemon forks it itself
            reply = f"error: {e}".encode()
        else:
            reply = b"ok"  # forked: from here on the status socket reports how it went
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        for fd in fds:
            os.close(fd)
        try:
            sock.send(reply)
        except OSError:
            return


def main(fd: int) -> None:
    # Not the terminal's: a ^C for the daemon must not end the zygote under it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    # What a monitor and a container's init use, imported once here, before any fork.
    from . import process  # noqa: F401
    from ..runtime import container  # noqa: F401
    gc.collect()
    gc.freeze()  # nothing here is collected again: a fork's GC would touch every page
    serve(sock)
    sys.exit(0)
