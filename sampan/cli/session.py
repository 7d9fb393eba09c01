"""Interactive sessions shared by run, start -a, attach and exec.

Order matters and follows the docker CLI: for `run`, the wait request is sent before attach and
attach (hijacked) before start, so neither output nor the exit status can be missed, even for a
container that exits (and with --rm, disappears) at once.
"""

from __future__ import annotations

import os
import signal
import _socket

from .client import APIError, Client
from .stream import Output, RawTerminal, copy_output, terminal_size

# docker's ForwardAllSignals skips these; we forward the ones a user actually sends
_PROXY_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def parse_detach_keys(spec: str | None) -> bytes:
    """`ctrl-p,ctrl-q` (docker's default) -> b"\\x10\\x11"."""
    spec = spec or "ctrl-p,ctrl-q"
    out = bytearray()
    for part in spec.split(","):
        p = part.strip()
        if len(p) == 1:
            out.append(ord(p))
        elif p.lower().startswith("ctrl-") and len(p) == 6:
            c = p[5].lower()
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in "@[\\]^_":
                out.append({"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}[c])
            else:
                raise ValueError(f"Unknown character: '{p}'")
        else:
            raise ValueError(f"Unknown character: '{p}'")
    return bytes(out)


def start_error_code(message: str) -> int:
    """docker's exit codes for a container that failed to start."""
    m = message.lower()
    if "executable file not found" in m or "no such file or directory" in m or \
            "system cannot find the file specified" in m:
        return 127
    if "permission denied" in m or "is a directory" in m:
        return 126
    return 125


class Session:
    """One hijacked attach (or exec start) stream with its terminal and signal handling."""

    def __init__(self, client: Client, sock, leftover: bytes, tty: bool,
                 stdin: bool, resize_path: str | None = None, detach_keys: bytes = b"\x10\x11") -> None:
        self.client = client
        self.sock = sock
        self.leftover = leftover
        self.tty = tty
        self.stdin = stdin
        self.resize_path = resize_path
        self.detach_keys = detach_keys
        self.detached = False
        self._old_handlers: dict = {}

    # -- terminal size ---------------------------------------------------------------------------
    def resize(self) -> None:
        if not self.resize_path:
            return
        size = terminal_size(1)
        if not size:
            return
        h, w = size
        try:
            Client(self.client.host).request("POST", self.resize_path, {"h": h, "w": w})
        except Exception:  # the container may already be gone; a resize is best-effort
            pass

    def monitor_size(self) -> None:
        if not self.tty or not os.isatty(1):
            return
        self.resize()
        self._set_handler(signal.SIGWINCH, lambda *_: self.resize())

    # -- signals ---------------------------------------------------------------------------------
    def proxy_signals(self, container_id: str) -> None:
        """Forward the signals a user sends to us to the container (--sig-proxy)."""
        def forward(signum, _frame):
            name = signal.Signals(signum).name[3:]
            try:
                Client(self.client.host).request("POST", f"/containers/{container_id}/kill", {"signal": name})
            except Exception:
                pass

        for name in _PROXY_SIGNALS:
            self._set_handler(getattr(signal, name), forward)

    def _set_handler(self, sig, fn) -> None:
        try:
            self._old_handlers.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, fn)
        except (ValueError, OSError):
            pass

    def restore_signals(self) -> None:
        for sig, h in self._old_handlers.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError, TypeError):
                pass
        self._old_handlers.clear()

    # -- streaming -------------------------------------------------------------------------------
    def run(self, out: Output | None = None) -> None:
        """Pump stdin to the stream and the stream to stdout/stderr until the daemon ends it."""
        out = out or Output()
        raw = self.tty and self.stdin and os.isatty(0)
        if self.stdin:
            import threading
            threading.Thread(target=self._feed, daemon=True).start()
        try:
            if raw:
                with RawTerminal(0):
                    copy_output(self._chunks(), self.tty, out)
            else:
                copy_output(self._chunks(), self.tty, out)
        finally:
            self.restore_signals()
            try:
                self.sock.close()
            except OSError:
                pass
        if out.system_error:
            raise APIError(500, out.system_error.decode("utf-8", "replace").strip())

    def _chunks(self):
        if self.leftover:
            yield self.leftover
        while True:
            try:
                data = self.sock.recv(65536)
            except InterruptedError:
                continue
            except OSError:
                return
            if not data:
                return
            yield data

    def _feed(self) -> None:
        keys = self.detach_keys if self.tty else b""
        matched = 0
        try:
            while True:
                try:
                    data = os.read(0, 32768)
                except InterruptedError:
                    continue
                if not data:
                    break
                if keys:
                    # client-side detach detection, as docker's escape proxy: the keys still
                    # reach the daemon (which detaches too); we stop reading either way
                    for b in data:
                        matched = matched + 1 if b == keys[matched] else (1 if b == keys[0] else 0)
                        if matched == len(keys):
                            self.detached = True
                            break
                self.sock.sendall(data)
                if self.detached:
                    try:
                        self.sock.shutdown(_socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
            # EOF on our stdin: half-close so the container sees EOF and output keeps flowing
            self.sock.shutdown(_socket.SHUT_WR)
        except OSError:
            pass


def read_wait(client: Client, conn) -> int:
    """Finish a wait request sent earlier; return the exit status."""
    resp = client.read_response(conn, "POST")
    if resp.status >= 400:
        from .client import error_from
        raise error_from(resp)
    data = resp.json() or {}
    e = (data.get("Error") or {}).get("Message") if isinstance(data.get("Error"), dict) else None
    if e:
        from .common import err
        err(f"Error: {e}\n")
    return int(data.get("StatusCode", 0))
