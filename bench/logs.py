#!/usr/bin/env python3
"""Log and event throughput, sampand against dockerd side by side (issue 6); never asserted.

  1. `seq 1000000` in a container (`--network none`), for the json-file and local drivers:
     the time from `run -d` to the container's exit (the monitor writing the log), then
     `docker logs` of it to /dev/null (whole, `-t`, `--tail 10`), medians of RUNS;
  2. events: `docker events` streaming while N containers are created and removed through
     the API; events/s as the stream saw them, and whether all 2N arrived.

sampand runs privately (own roots, like the e2e harness). dockerd is measured when one
answers on $DOCKERD_SOCK (default /var/run/docker.sock); with START_DOCKERD=1 this script
starts a private one with --iptables=false --bridge=none (so the host's firewall and bridges
are left alone; every container here runs with --network none). Without either, the Docker
side is skipped.

  sudo python3 bench/logs.py          LINES=200000 RUNS=1 N=50 sudo -E python3 bench/logs.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.conftest import MKIMAGE, Sampand, _short_base, api_request  # noqa: E402

DOCKER = "/usr/local/bin/docker"
LINES = int(os.environ.get("LINES", "1000000"))
RUNS = int(os.environ.get("RUNS", "3"))
N = int(os.environ.get("N", "100"))


class Side:
    def __init__(self, name: str, sock: str) -> None:
        self.name = name
        self.sock = sock
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CLI_HINTS="false")

    def docker(self, *args: str, out=subprocess.PIPE, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([DOCKER, *args], env=self.env, stdout=out, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def api(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        st, _, out = api_request(self.sock, method, path, data, timeout=120)
        return st, out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_logs(side: Side, driver: str) -> dict[str, float]:
    name = f"bench-logs-{driver}"
    side.docker("rm", "-f", name)
    res: dict[str, float] = {}
    try:
        def run() -> None:
            r = side.docker("run", "-d", "--name", name, "--network", "none", "--log-driver", driver,
                            "busybox", "seq", str(LINES))
            assert r.returncode == 0, r.stderr
            side.docker("wait", name)
        res["write (run -d .. exit)"] = _timed(run)
        size = 0
        for args, label in ((["logs"], "logs"), (["logs", "-t"], "logs -t"),
                            (["logs", "--tail", "10"], "logs --tail 10")):
            times = []
            for _ in range(RUNS):
                with open(os.devnull, "wb") as null:
                    times.append(_timed(lambda: side.docker(*args, name, out=null)))
            res[label] = statistics.median(times)
        r = side.docker("logs", name)
        size = len(r.stdout)
        if size != len("".join(f"{i}\n" for i in range(1, LINES + 1))):
            print(f"  ! {side.name} {driver}: logs gave {size} bytes", file=sys.stderr)
    finally:
        side.docker("rm", "-f", name)
    return res


def bench_events(side: Side) -> dict[str, float]:
    since = f"{time.time():.3f}"
    proc = subprocess.Popen([DOCKER, "events", "--since", since, "--filter", "type=container",
                             "--filter", "event=create", "--filter", "event=destroy",
                             "--format", "{{.Action}}"],
                            env=side.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen: list[float] = []

    def reader() -> None:
        assert proc.stdout is not None
        for _line in proc.stdout:
            seen.append(time.perf_counter())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    for i in range(N):
        st, body = side.api("POST", f"/containers/create?name=bench-ev-{i}",
                            {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}})
        assert st == 201, body
        cid = json.loads(body)["Id"]
        st, body = side.api("DELETE", f"/containers/{cid}?force=1")
        assert st == 204, body
    t1 = time.perf_counter()
    deadline = time.time() + 30
    while len(seen) < 2 * N and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    last = seen[-1] if seen else t1
    return {"events seen": float(len(seen)), "events expected": float(2 * N),
            "events/s": len(seen) / max(last - t0, 1e-9), "create+rm per s": N / (t1 - t0)}


def start_dockerd(base: Path) -> tuple[subprocess.Popen | None, str]:
    sock = str(base / "docker.sock")
    cmd = ["dockerd", "-H", f"unix://{sock}", "--data-root", str(base / "data"),
           "--exec-root", str(base / "exec"), "--pidfile", str(base / "dockerd.pid"),
           "--iptables=false", "--ip6tables=false", "--bridge=none"]
    log = open(base / "dockerd.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(300):
        try:
            st, _, _ = api_request(sock, "GET", "/_ping", timeout=2)
            if st == 200:
                return proc, sock
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    print("dockerd did not start: see", base / "dockerd.log", file=sys.stderr)
    return None, ""


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    tar = work / "busybox.tar"
    subprocess.run(["bash", str(MKIMAGE), str(tar)], check=True, capture_output=True)
    sd = Sampand(_short_base("sd-"))  # short: monitor socket paths are near the 107-byte limit
    dockerd = None
    docker_base = None
    try:
        sd.start()
        sd.import_image(tar, "busybox")
        sides = [Side("sampand", str(sd.socket))]
        dsock = os.environ.get("DOCKERD_SOCK", "/var/run/docker.sock")
        try:
            up = api_request(dsock, "GET", "/_ping", timeout=2)[0] == 200
        except OSError:
            up = False
        if not up and os.environ.get("START_DOCKERD") == "1" and shutil.which("dockerd"):
            docker_base = Path(tempfile.mkdtemp(prefix="bdk-", dir="/tmp"))
            dockerd, dsock = start_dockerd(docker_base)
            up = dockerd is not None
        if up:
            d = Side("dockerd", dsock)
            if d.docker("image", "inspect", "busybox:latest").returncode != 0:
                d.docker("import", str(tar), "busybox:latest")
            sides.append(d)
        else:
            print("dockerd not running (START_DOCKERD=1 starts a private one): Docker side skipped")
        results: dict[str, dict[str, dict[str, float]]] = {}
        for s in sides:
            results[s.name] = {}
            for drv in ("json-file", "local"):
                results[s.name][drv] = bench_logs(s, drv)
            results[s.name]["events"] = bench_events(s)
        print(f"\nlog throughput: seq {LINES} in a container, median of {RUNS} (seconds; lower is better)")
        hdr = f"{'':28}" + "".join(f"{s.name:>12}" for s in sides) + ("     ratio" if len(sides) > 1 else "")
        for drv in ("json-file", "local"):
            print(f"-- {drv}\n{hdr}")
            for k in results["sampand"][drv]:
                vals = [results[s.name][drv][k] for s in sides]
                line = f"{k:28}" + "".join(f"{v:12.3f}" for v in vals)
                if len(vals) > 1:
                    line += f"  {vals[1] / vals[0]:7.2f}x"  # >1: sampand faster
                if k == "logs":
                    line += f"   ({LINES / vals[0] / 1e6:.2f} M lines/s sampand)"
                print(line)
        print(f"\nevents: {N} containers created and removed while `docker events` streams")
        print(hdr)
        for k in results["sampand"]["events"]:
            vals = [results[s.name]["events"][k] for s in sides]
            line = f"{k:28}" + "".join(f"{v:12.1f}" for v in vals)
            if len(vals) > 1 and k in ("events/s", "create+rm per s"):
                line += f"  {vals[0] / vals[1]:7.2f}x"  # >1: sampand faster
            print(line)
        if len(sides) > 1:
            print("\nratio: how many times faster sampand is (>1 = sampand ahead)")
        return 0
    finally:
        sd.destroy()
        if dockerd is not None:
            dockerd.send_signal(signal.SIGTERM)
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
            subprocess.run(["umount", "-R", "-l", str(docker_base)], capture_output=True)
            shutil.rmtree(docker_base, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
