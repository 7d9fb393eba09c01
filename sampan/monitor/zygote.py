"""The monitor zygote: a small process the daemon starts once, that forks every monitor.

A monitor forked straight from the daemon shares the daemon's big heap copy-on-write, and
every allocation it makes lands in a page of that heap and copies it: about 5-7 MB private
per container. The zygote is a fresh interpreter that imports only the monitor and runtime
code, so a monitor forked from it copies pages of a small heap instead (about 2 MB).

Protocol, over a SOCK_SEQPACKET pair: the daemon sends one message per monitor, a pickled
(MonitorSpec, [Attach with fd=-1, ...]) with the monitor's status socket and the attach fds
as SCM_RIGHTS; the zygote forks the monitor (detached, exactly as `spawn` does) and answers
b"ok". EOF from the daemon ends the zygote; monitors already made live on. When the zygote
cannot be used (it died, or a message is too big), `spawn` forks the monitor itself.
"""

from __future__ import annotations

import array
import dataclasses
import gc
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

log = logging.getLogger("sampan.monitor")

MAX_MESSAGE = 128 * 1024   # well under a unix socket's default send buffer
MAX_FDS = 64


# -- the daemon's side -------------------------------------------------------------------------

class _Zygote:
    def __init__(self, tag: str) -> None:
        self.max_message = MAX_MESSAGE
        self.lock = threading.Lock()
        self.sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        code = ("import sys; sys.path.insert(0, sys.argv[1]); "
                "from sampan.monitor.zygote import main; main(int(sys.argv[2]))")
        try:
            # the tag (the daemon's monitors dir) tells whose monitors these are in `ps`
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", code, root, str(child.fileno()), f"sampan-monitors:{tag}"],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            child.close()
        self.dead = False

    def spawn(self, ms: Any, attaches: list[Any], status: socket.socket) -> bool:
        """True when the zygote took the monitor (or may have: then the status socket tells);
        False when nothing reached it, and the caller forks the monitor itself."""
        payload = pickle.dumps((ms, [dataclasses.replace(a, fd=-1) for a in attaches]))
        if len(payload) > self.max_message or len(attaches) >= 63:
            return False
        fds = array.array("i", [status.fileno()] + [a.fd for a in attaches])
        with self.lock:
            if self.dead:
                return False
            try:
                self.sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
            except OSError as e:
                log.warning("monitor zygote gone (%s): monitors are forked by the daemon", e)
                self.dead = True
                self.proc.poll()  # reaped, not left a zombie
                return False
            try:
                self.sock.settimeout(30)
                reply = self.sock.recv(4096)
            except OSError as e:
                # Sent: it may have forked the monitor, so never fork a second one. If it did
                # not, the status socket's EOF reports the failed start.
                log.warning("monitor zygote did not answer (%s)", e)
                self.dead = True
                return True
        if reply == b"ok":
            return True
        if not reply:
            self.dead = True
            return True
        log.warning("monitor zygote: %s", reply.decode(errors="replace"))
        return False  # refused before forking: safe to fork here


_zygotes: dict[str, _Zygote] = {}
_zygotes_lock = threading.Lock()


def start_zygote(monitors_dir: str) -> None:
    """Start the zygote for the daemon whose monitors live in `monitors_dir`, ahead of the
    first container (its interpreter takes a moment to start). Safe to call again."""
    with _zygotes_lock:
        z = _zygotes.get(monitors_dir)
        if z is None or z.dead:
            try:
                _zygotes[monitors_dir] = _Zygote(monitors_dir)
            except OSError as e:
                log.warning("cannot start the monitor zygote (%s): monitors are forked by the daemon", e)


def try_spawn(ms: Any, attaches: list[Any], status: socket.socket) -> bool:
    """Hand a monitor to this daemon's zygote; False: there is none, fork it yourself."""
    z = _zygotes.get(os.path.dirname(ms.socket_path))
    return z is not None and z.spawn(ms, attaches, status)


# -- the zygote's side ---------------------------------------------------------------------------

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
