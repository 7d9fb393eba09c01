"""exec stdin: piped bytes are data on a plain stream, and a tty exec outlives its client."""

from __future__ import annotations

import hashlib
import os
import socket
import time


def test_exec_without_tty_into_tty_container_pipes_detach_bytes_as_data(sampand):
    payload = bytes(range(256)) * 64 + b"\x10\x11\x10\x11end"
    r = sampand.docker("run", "-d", "-t", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        r = sampand.docker("exec", "-i", cid, "md5sum", input=payload, binary=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split()[0].decode() == hashlib.md5(payload).hexdigest()
    finally:
        sampand.docker("rm", "-f", cid)


def test_tty_exec_keeps_running_when_its_client_goes(sampand):
    r = sampand.docker("run", "-d", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    try:
        status, body = sampand.api_json("POST", f"/containers/{cid}/exec", {
            "Cmd": ["sh", "-c", "sleep 30"], "AttachStdin": True, "AttachStdout": True,
            "AttachStderr": True, "Tty": True})
        assert status == 201, body
        exec_id = body["Id"]
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(str(sampand.socket))
        req = b'{"Detach":false,"Tty":true}'
        s.sendall(b"POST /exec/%s/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (exec_id.encode(), len(req), req))
        assert s.recv(4096).startswith(b"HTTP/1.1 101")
        s.close()  # the client goes away (as a detached `docker exec -it` does)
        time.sleep(0.5)
        status, info = sampand.api_json("GET", f"/exec/{exec_id}/json")
        assert status == 200 and info["Running"] is True, info
        assert os.path.exists(f"/proc/{info['Pid']}")
    finally:
        sampand.docker("rm", "-f", cid)
