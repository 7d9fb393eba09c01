"""The cost of `stats`: daemon CPU per second while every one of N running containers has a
stats stream open (what `docker stats` does), sampand against dockerd (+ containerd and its
shims) on the same machine, side by side in one run. Never asserted; prints a table.

    sudo python3 bench/stats.py            N=100 SECONDS=10 sudo -E python3 bench/stats.py
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N = int(os.environ.get("N", "100"))
SECONDS = float(os.environ.get("SECONDS_", os.environ.get("SECONDS", "10")))
DOCKER = "/usr/local/bin/docker"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def pids_named(*names: str) -> list[int]:
    out = []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open(f"/proc/{e}/comm") as f:
                    if f.read().strip() in names:
                        out.append(int(e))
            except OSError:
                pass
    return out


def stream(sock: str, cid: str, stop: threading.Event, counts: list[int]) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.sendall(f"GET /containers/{cid}/stats?stream=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.settimeout(1.0)
    while not stop.is_set():
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        counts[0] += data.count(b'"read"')
    s.close()


def measure(label: str, sock: str, cids: list[str], daemon_pids) -> dict:
    stop = threading.Event()
    counts = [0]
    threads = [threading.Thread(target=stream, args=(sock, c, stop, counts), daemon=True) for c in cids]
    for t in threads:
        t.start()
    time.sleep(2.0)  # streams settle
    pids = daemon_pids()
    c0, t0, n0 = cpu_seconds(pids), time.monotonic(), counts[0]
    time.sleep(SECONDS)
    c1, t1, n1 = cpu_seconds(pids), time.monotonic(), counts[0]
    stop.set()
    return {"label": label, "cpu_per_s": (c1 - c0) / (t1 - t0), "readings_per_s": (n1 - n0) / (t1 - t0)}


def docker(host: str, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, "-H", host, *args], capture_output=True, text=True, **kw)


def run_containers(host: str, n: int, extra: list[str]) -> list[str]:
    cids = []
    for _ in range(n):
        r = docker(host, "run", "-d", *extra, "busybox", "sleep", "3600")
        if r.returncode != 0:
            raise SystemExit(f"run failed: {r.stderr}")
        cids.append(r.stdout.strip())
    return cids


def main() -> None:
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    base = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))
    tar = base / "busybox.tar"
    subprocess.run(["bash", str(REPO / "scripts/mkimage-busybox.sh"), str(tar)], check=True)
    results = []
    # -- sampand on private roots
    sock = str(base / "s.sock")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    d = subprocess.Popen([sys.executable, "-m", "sampan.daemon.main", "--data-root", str(base / "root"),
                          "--exec-root", str(base / "run"), "-H", f"unix://{sock}", "--pidfile",
                          str(base / "pid"), "--config-file", "/dev/null"], env=env, cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if docker(f"unix://{sock}", "version").returncode == 0:
                break
            time.sleep(0.1)
        docker(f"unix://{sock}", "import", str(tar), "busybox:latest", check=True)
        cids = run_containers(f"unix://{sock}", N, ["--network", "none"])
        results.append(measure(f"sampand, {N} streams", sock, cids, lambda: [d.pid]))
        docker(f"unix://{sock}", "rm", "-f", *cids)
    finally:
        d.terminate()
        d.wait()
    # -- dockerd, when installed
    if shutil.which("dockerd"):
        dsock = str(base / "d.sock")
        dd = subprocess.Popen(["dockerd", "-H", f"unix://{dsock}", "--data-root", str(base / "docker"),
                               "--exec-root", str(base / "dexec"), "--pidfile", str(base / "d.pid"),
                               "--bridge", "none", "--iptables=false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if docker(f"unix://{dsock}", "version").returncode == 0:
                    break
                time.sleep(0.1)
            docker(f"unix://{dsock}", "import", str(tar), "busybox:latest", check=True)
            cids = run_containers(f"unix://{dsock}", N, ["--network", "none"])
            results.append(measure(f"dockerd+containerd+shims, {N} streams", dsock, cids,
                                   lambda: [dd.pid] + pids_named("containerd", "containerd-shim",
                                                                  "containerd-shim-runc-v2")))
            docker(f"unix://{dsock}", "rm", "-f", *cids)
        finally:
            dd.terminate()
            dd.wait()
    print(f"{'daemon':45} {'CPU s/s':>8} {'readings/s':>11}")
    for r in results:
        print(f"{r['label']:45} {r['cpu_per_s']:8.3f} {r['readings_per_s']:11.1f}")
    if len(results) == 2 and results[1]["cpu_per_s"]:
        print(f"ratio sampand/docker: {results[0]['cpu_per_s'] / results[1]['cpu_per_s']:.2f}")
    print(json.dumps(results))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
