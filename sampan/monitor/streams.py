"""The monitor's stream plumbing: process output to attached clients, clients' input to stdin.

A mixin of `Monitor` (process.py): it needs the monitor's selector (`self.sel`), and calls
back `self._maybe_finish(proc)` when a process's output is fully drained.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from dataclasses import dataclass, field

from . import protocol
from .logfile import LogWriter
from .spec import Attach

CLIENT_BUFFER_LIMIT = 8 << 20


@dataclass
class _Client:
    sock: socket.socket
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: bytes
    outbuf: bytearray = field(default_factory=bytearray)
    held: bytes = b""               # a partial detach-key sequence
    reading: bool = True
    closing: bool = False


class _Proc:
    """A process whose stdio the monitor owns: the container's main process or an exec."""

    def __init__(self, pid: int, tty_master: int | None, out_fds: dict[int, int],
                 stdin_fd: int | None, stdin_once: bool, framed: bool) -> None:
        self.pid = pid
        self.master = tty_master
        self.out_fds = out_fds      # fd -> stream (1 stdout, 2 stderr)
        self.stdin_fd = stdin_fd
        self.stdin_once = stdin_once
        self.framed = framed
        self.clients: list[_Client] = []
        self.stdin_buf = bytearray()
        self.status: int | None = None
        self.log: LogWriter | None = None
        self.exec_id: str | None = None


class StreamIO:
    """Client and stdio handling for `Monitor`."""

    def _add_client(self, proc: _Proc, a: Attach) -> None:
        sock = socket.socket(fileno=a.fd)
        sock.setblocking(False)
        # Detach keys only mean something on a terminal (as in dockerd): on a plain stream
        # 0x10 0x11 are just bytes of the data being piped in.
        keys = b""
        if not proc.framed:
            keys = a.detach_keys if a.detach_keys is not None else self.ms.detach_keys
        c = _Client(sock, a.stdin and proc.stdin_fd is not None, a.stdout, a.stderr, keys)
        proc.clients.append(c)
        if a.stdin:
            if a.leftover:
                self._client_input(proc, c, a.leftover)
            self.sel.register(sock, selectors.EVENT_READ, lambda m: self._on_client(proc, c, m))
        else:
            # Still watch for the peer closing, so a gone client does not linger.
            c.reading = True
            self.sel.register(sock, selectors.EVENT_READ, lambda m: self._on_client(proc, c, m))

    # -- I/O ----------------------------------------------------------------------------------
    def _on_output(self, proc: _Proc, fd: int, stream: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno != errno.EIO:  # EIO: the pty's slave side is gone
                raise
            data = b""
        if not data:
            self._close_output(proc, fd)
            return
        if proc.log is not None:
            proc.log.write("stderr" if stream == protocol.STDERR else "stdout", data)
        self._broadcast(proc, stream, data)

    def _broadcast(self, proc: _Proc, stream: int, data: bytes) -> None:
        payload = protocol.frame(stream, data) if proc.framed else data
        for c in list(proc.clients):
            if (stream == protocol.STDERR and not c.stderr) or (stream == protocol.STDOUT and not c.stdout):
                continue
            self._client_send(proc, c, payload)

    def _close_output(self, proc: _Proc, fd: int) -> None:
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)
        if fd == proc.master:
            proc.master = None
            if proc.stdin_fd == fd:
                proc.stdin_fd = None
        else:
            proc.out_fds.pop(fd, None)
        self._maybe_finish(proc)

    def _client_send(self, proc: _Proc, c: _Client, payload: bytes) -> None:
        if c.closing and not c.outbuf and c.sock.fileno() < 0:
            return
        if not c.outbuf:
            try:
                n = c.sock.send(payload)
            except BlockingIOError:
                n = 0
            except OSError:
                self._drop_client(proc, c)
                return
            payload = payload[n:]
        if payload:
            c.outbuf += payload
            if len(c.outbuf) > CLIENT_BUFFER_LIMIT:
                self._drop_client(proc, c)
                return
            self._update_client_events(proc, c)

    def _update_client_events(self, proc: _Proc, c: _Client) -> None:
        ev = (selectors.EVENT_READ if c.reading else 0) | (selectors.EVENT_WRITE if c.outbuf else 0)
        try:
            if ev:
                try:
                    self.sel.modify(c.sock, ev, lambda m: self._on_client(proc, c, m))
                except KeyError:
                    self.sel.register(c.sock, ev, lambda m: self._on_client(proc, c, m))
            else:
                self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass

    def _on_client(self, proc: _Proc, c: _Client, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and c.outbuf:
            try:
                n = c.sock.send(c.outbuf)
                del c.outbuf[:n]
            except BlockingIOError:
                pass
            except OSError:
                self._drop_client(proc, c)
                return
            if not c.outbuf and c.closing:
                self._drop_client(proc, c)
                return
        if mask & selectors.EVENT_READ and c.reading:
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                # Only a half-close: clients (the docker CLI among them) close their write side
                # as soon as they have no more input, and still read output until the end.
                # A client that is really gone shows up as a failed send.
                c.reading = False
                if c.stdin:
                    self._client_stdin_eof(proc, c)
            elif c.stdin:
                self._client_input(proc, c, data)
        self._update_client_events(proc, c)

    def _client_input(self, proc: _Proc, c: _Client, data: bytes) -> None:
        keys = c.detach_keys
        if keys:
            data = c.held + data
            c.held = b""
            out = bytearray()
            i = 0
            while i < len(data):
                if data[i] == keys[0]:
                    seq = data[i:i + len(keys)]
                    if seq == keys:
                        self._write_stdin(proc, bytes(out))
                        self._drop_client(proc, c)
                        return
                    if keys.startswith(seq):  # could still become the sequence
                        c.held = seq
                        break
                out.append(data[i])
                i += 1
            data = bytes(out)
        self._write_stdin(proc, data)

    def _write_stdin(self, proc: _Proc, data: bytes) -> None:
        if not data or proc.stdin_fd is None:
            return
        proc.stdin_buf += data
        self._flush_stdin(proc)

    def _flush_stdin(self, proc: _Proc) -> None:
        fd = proc.stdin_fd
        if fd is None:
            proc.stdin_buf.clear()
            return
        while proc.stdin_buf:
            try:
                n = os.write(fd, proc.stdin_buf)
                del proc.stdin_buf[:n]
            except BlockingIOError:
                break
            except OSError:
                proc.stdin_buf.clear()
                break
        if fd == proc.master:
            return  # the pty master is registered for reading already; a full pty buffer is rare
        try:
            if proc.stdin_buf:
                self.sel.register(fd, selectors.EVENT_WRITE, lambda m: self._flush_stdin(proc))
            else:
                self.sel.unregister(fd)
        except KeyError:
            if not proc.stdin_buf:
                pass
        except ValueError:
            pass
        if not proc.stdin_buf and getattr(proc, "_close_stdin_pending", False):
            self._close_stdin(proc)

    def _client_stdin_eof(self, proc: _Proc, c: _Client) -> None:
        if c.held:  # the start of a detach sequence that never finished is data after all
            held, c.held = c.held, b""
            self._write_stdin(proc, held)
        if proc.exec_id is not None and proc.master is not None:
            return  # a tty exec keeps running when its client goes, as in dockerd
        if proc.stdin_once or proc.exec_id is not None:
            if proc.stdin_buf:
                proc._close_stdin_pending = True  # type: ignore[attr-defined]
            else:
                self._close_stdin(proc)

    def _close_stdin(self, proc: _Proc) -> None:
        fd = proc.stdin_fd
        if fd is None:
            return
        if fd == proc.master:
            # A tty has no half-close: send EOF (^D) as a terminal would.
            try:
                os.write(fd, b"\x04")
            except OSError:
                pass
            return
        try:
            self.sel.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)
        proc.stdin_fd = None

    def _drop_client(self, proc: _Proc, c: _Client) -> None:
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        if c in proc.clients:
            proc.clients.remove(c)
        try:
            c.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.sock.close()

    def _close_clients(self, proc: _Proc) -> None:
        deadline = time.monotonic() + 2.0
        for c in list(proc.clients):
            c.sock.setblocking(True)
            c.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                if c.outbuf:
                    c.sock.sendall(c.outbuf)
            except OSError:
                pass
            self._drop_client(proc, c)

