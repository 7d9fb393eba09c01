"""Published ports for a rootless daemon: slirp4netns forwards them from the host.

The daemon lives in a network namespace of its own, so a port it publishes with its usual
DNAT rules is only reachable from inside that namespace. slirp4netns (started by the parent
with `--api-socket`) listens on the host's `host_ip:host_port` as the user and connects to
10.0.2.100 (the daemon's tap0) on the same port, where the daemon's DNAT takes it to the
container — RootlessKit's port driver, through slirp4netns's own API.

Inside the namespace only slirp4netns can reach tap0's address, so the DNAT key is made
address-less (`0.0.0.0`): a mapping for 127.0.0.1 on the host must match traffic that
arrives for 10.0.2.100 here.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Iterable

from ..errors import InvalidParameter

ENV_API = "_SAMPAN_SLIRP_API"
GUEST_ADDR = "10.0.2.100"

_lock = threading.Lock()
_ids: dict[tuple[str, str, int], int] = {}


def api_path() -> str | None:
    return os.environ.get(ENV_API) or None


def _call(path: str, request: dict) -> dict:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.settimeout(10)
        s.connect(path)
        s.sendall(json.dumps(request).encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    try:
        return json.loads(data or b"{}")
    except ValueError:
        return {"error": {"desc": data.decode(errors="replace")}}


def _key(m: dict) -> tuple[str, str, int]:
    return (str(m["proto"]), str(m.get("host_ip") or "0.0.0.0"), int(m["host_port"]))


def inside(mappings: Iterable[dict]) -> list[dict]:
    """The mappings as the daemon's DNAT rules must see them (no host address)."""
    return [dict(m, host_ip="0.0.0.0") for m in mappings]


def forward(mappings: Iterable[dict]) -> None:
    """Ask slirp4netns to forward each mapping's host port; all or nothing."""
    path = api_path()
    if path is None:
        return
    done: list[dict] = []
    try:
        for m in mappings:
            if m["proto"] not in ("tcp", "udp"):
                raise InvalidParameter(f"rootless: slirp4netns cannot forward {m['proto']} ports")
            key = _key(m)
            r = _call(path, {"execute": "add_hostfwd", "arguments": {
                "proto": key[0], "host_addr": key[1], "host_port": key[2],
                "guest_addr": GUEST_ADDR, "guest_port": key[2]}})
            if "error" in r or "return" not in r:
                desc = (r.get("error") or {}).get("desc") or r
                raise InvalidParameter(f"rootless: cannot forward {key[1]}:{key[2]}/{key[0]} from "
                                       f"the host: {desc}")
            with _lock:
                _ids[key] = int(r["return"]["id"])
            done.append(m)
    except BaseException:
        unforward(done)
        raise


def unforward(mappings: Iterable[dict]) -> None:
    path = api_path()
    if path is None:
        return
    for m in mappings:
        with _lock:
            fid = _ids.pop(_key(m), None)
        if fid is None:
            continue
        try:
            _call(path, {"execute": "remove_hostfwd", "arguments": {"id": fid}})
        except OSError:
            pass
