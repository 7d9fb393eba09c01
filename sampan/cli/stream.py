"""Attached streams: Docker's multiplexed frames, stdin pumping, raw terminals.

A non-tty attach/logs stream is a sequence of frames: an 8-byte header
[stream, 0, 0, 0, size as big-endian uint32] followed by `size` bytes; stream 1 is stdout,
2 is stderr (0, stdin, is printed to stdout; 3 is a daemon-side error). A tty stream is raw.
"""

from __future__ import annotations

import os


class FrameError(Exception):
    pass


class Demuxer:
    """Incremental frame decoder: `feed(data)` returns [(stream, payload), ...].

    Payloads are returned as soon as bytes arrive (a large frame comes out in pieces), so
    memory stays bounded whatever sizes a peer announces.
    """

    def __init__(self) -> None:
        self._head = b""
        self._stream = 0
        self._left = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        mv = memoryview(data)
        i, n = 0, len(data)
        while i < n:
            if self._left:
                take = min(self._left, n - i)
                out.append((self._stream, bytes(mv[i:i + take])))
                self._left -= take
                i += take
                continue
            need = 8 - len(self._head)
            self._head += bytes(mv[i:i + need])
            i += min(need, n - i)
            if len(self._head) < 8:
                break
            h = self._head
            self._head = b""
            if h[0] > 3 or h[1:4] != b"\0\0\0":
                raise FrameError(f"bad stream frame header {h.hex()}")
            self._stream = h[0]
            self._left = int.from_bytes(h[4:8], "big")
        return out

    @property
    def partial(self) -> bool:
        return bool(self._head) or self._left > 0


def write_all(fd: int, data: bytes) -> None:
    mv = memoryview(data)
    while mv:
        n = os.write(fd, mv)
        mv = mv[n:]


class Output:
    """Where stream payloads go; errors from the daemon (stream 3) are collected."""

    def __init__(self, out_fd: int = 1, err_fd: int = 2) -> None:
        self.out_fd = out_fd
        self.err_fd = err_fd
        self.system_error = b""

    def write(self, stream: int, data: bytes) -> None:
        if stream == 2:
            write_all(self.err_fd, data)
        elif stream == 3:
            self.system_error += data
        else:
            write_all(self.out_fd, data)


def copy_output(chunks, tty: bool, out: Output) -> None:
    """Copy a body (iterator of bytes) to stdout/stderr, demultiplexing unless tty."""
    if tty:
        for c in chunks:
            write_all(out.out_fd, c)
        return
    d = Demuxer()
    for c in chunks:
        for stream, payload in d.feed(c):
            out.write(stream, payload)


class RawTerminal:
    """Put a terminal into raw mode for `-it`; restore it on exit (also on errors)."""

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self.saved = None

    def __enter__(self):
        import termios
        import tty
        try:
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        except termios.error:
            self.saved = None
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def terminal_size(fd: int = 1) -> tuple[int, int] | None:
    """(height, width) of the terminal on fd, or None."""
    for f in (fd, 0, 2):
        try:
            sz = os.get_terminal_size(f)
            return sz.lines, sz.columns
        except OSError:
            continue
    return None
