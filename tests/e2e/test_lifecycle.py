"""Lifecycle and observability end to end: events, health checks, pause/unpause, top.

Real effects only: a paused container's counter really stops advancing, an unhealthy check
really fails inside the container, `top` lists the container's own processes and nothing of
the host's, events arrive over a live `GET /events` stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import socket
import threading
import time
import urllib.parse

import pytest


def _run(d, cmd: list[str], name: str, **extra) -> str:
    status, out = d.api_json("POST", f"/containers/create?name={name}",
                             dict({"Image": "busybox", "Cmd": cmd}, **extra))
    assert status == 201, out
    cid = out["Id"]
    status, out = d.api("POST", f"/containers/{cid}/start")
    assert status == 204, out
    return cid


def _inspect(d, ref: str) -> dict:
    status, body = d.api_json("GET", f"/containers/{ref}/json")
    assert status == 200, body
    return body


def _rm(d, ref: str) -> None:
    d.api("DELETE", f"/containers/{ref}?force=1")


def _events(d, **query) -> list[dict]:
    status, body = d.api("GET", "/events?" + urllib.parse.urlencode(query))
    assert status == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


class _Stream:
    """A live GET /events connection read on a thread."""

    def __init__(self, d, **query) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(d.socket))
        path = "/events?" + urllib.parse.urlencode(query)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        self.events: list[dict] = []
        self.buf = b""
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        dec = json.JSONDecoder()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.buf += data
            # chunked framing: pull out the JSON lines, ignore the chunk-size lines
            text = self.buf.decode(errors="replace")
            head_end = text.find("\r\n\r\n")
            if head_end < 0:
                continue
            body = text[head_end + 4:]
            evs = []
            for line in body.split("\n"):
                line = line.strip()
                if line.startswith("{"):
                    try:
                        evs.append(dec.decode(line))
                    except ValueError:
                        pass
            self.events = evs

    def wait_for(self, pred, timeout: float = 15.0) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in list(self.events):
                if pred(e):
                    return e
            time.sleep(0.05)
        raise AssertionError(f"event not seen; got {[(e['Type'], e['Action']) for e in self.events]}")

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# -- events ----------------------------------------------------------------------------------------

def test_events_stream_container_lifecycle_in_docker_shape(sampand):
    d = sampand
    s = _Stream(d, filters=json.dumps({"type": ["container"], "container": ["ev-life"]}))
    try:
        time.sleep(0.3)
        # pid 1 ignores signals it has no handler for: trap TERM, as a real service does.
        cid = _run(d, ["sh", "-c", "trap 'exit 143' TERM; sleep 30 & wait"], "ev-life",
                   Labels={"tier": "t1"})
        status, _ = d.api("POST", f"/containers/{cid}/kill?signal=TERM")
        assert status == 204
        die = s.wait_for(lambda e: e["Action"] == "die")
        assert die["Actor"]["Attributes"]["exitCode"] == "143"
        kill = s.wait_for(lambda e: e["Action"] == "kill")
        assert kill["Actor"]["Attributes"]["signal"] == "15"
        d.api("POST", "/containers/ev-life/rename?name=ev-life")  # 400: same name, no event
        _rm(d, cid)
        s.wait_for(lambda e: e["Action"] == "destroy")
        actions = [e["Action"] for e in s.events]
        assert actions[:2] == ["create", "start"], actions
        assert actions.index("kill") < actions.index("die") < actions.index("destroy")
        start = next(e for e in s.events if e["Action"] == "start")
        assert start["status"] == "start" and start["id"] == cid and start["from"] == "busybox"
        assert start["Type"] == "container" and start["scope"] == "local"
        assert start["Actor"]["ID"] == cid
        assert start["Actor"]["Attributes"] == {"image": "busybox", "name": "ev-life", "tier": "t1"}
        assert start["time"] == start["timeNano"] // 10**9
        assert abs(start["timeNano"] / 1e9 - time.time()) < 60
        assert all(e["Actor"]["ID"] == cid for e in s.events)  # the filter held
    finally:
        s.close()
        _rm(d, "ev-life")


def test_events_replay_since_until_and_filters(sampand):
    d = sampand
    t0 = time.time()
    cid = _run(d, ["true"], "ev-replay")
    d.api("POST", f"/containers/{cid}/wait")
    d.api("POST", f"/containers/{cid}/rename?name=ev-replay2")
    _rm(d, cid)
    t1 = time.time() + 0.5
    evs = _events(d, since=f"{t0:.9f}", until=f"{t1:.9f}",
                  filters=json.dumps({"container": [cid]}))
    acts = [e["Action"] for e in evs]
    assert acts == ["create", "start", "die", "rename", "destroy"], acts
    rename = evs[3]
    assert rename["Actor"]["Attributes"]["oldName"] == "/ev-replay"
    assert rename["Actor"]["Attributes"]["name"] == "ev-replay2"
    evs = _events(d, since=f"{t0:.9f}", until=f"{t1:.9f}",
                  filters=json.dumps({"container": [cid], "event": ["die"]}))
    assert [e["Action"] for e in evs] == ["die"]
    assert evs[0]["Actor"]["Attributes"]["exitCode"] == "0"
    # A window before any of it: nothing.
    assert _events(d, since="1", until=f"{t0 - 3600:.9f}",
                   filters=json.dumps({"container": [cid]})) == []
    status, body = d.api("GET", "/events?" + urllib.parse.urlencode({"filters": '{"bogus":["x"]}'}))
    assert status == 400 and b"invalid filter" in body
    status, body = d.api("GET", "/events?since=20&until=10")
    assert status == 400


def test_exec_events(sampand):
    d = sampand
    cid = _run(d, ["sleep", "30"], "ev-exec")
    try:
        t0 = time.time()
        status, ex = d.api_json("POST", f"/containers/{cid}/exec", {"Cmd": ["sh", "-c", "exit 3"]})
        assert status == 201
        status, _ = d.api("POST", f"/exec/{ex['Id']}/start", {"Detach": True})
        assert status == 200
        deadline = time.time() + 10
        while time.time() < deadline:
            evs = _events(d, since=f"{t0:.9f}", until=f"{time.time():.9f}",
                          filters=json.dumps({"container": [cid]}))
            if any(e["Action"] == "exec_die" for e in evs):
                break
            time.sleep(0.1)
        acts = [e["Action"] for e in evs]
        assert acts == ["exec_create: sh -c exit 3", "exec_start: sh -c exit 3", "exec_die"], acts
        assert evs[2]["Actor"]["Attributes"]["exitCode"] == "3"
        assert evs[2]["Actor"]["Attributes"]["execID"] == ex["Id"]
    finally:
        _rm(d, cid)


def test_cli_events_format_and_docker_cli(sampand):
    d = sampand
    t0 = f"{time.time():.9f}"
    cid = _run(d, ["true"], "ev-cli")
    d.api("POST", f"/containers/{cid}/wait")
    _rm(d, cid)
    until = f"{time.time() + 0.2:.9f}"
    time.sleep(0.3)
    r = d.cli("events", "--since", t0, "--until", until, "--filter", f"container={cid}",
              "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    acts = [json.loads(l)["Action"] for l in r.stdout.splitlines()]
    assert acts == ["create", "start", "die", "destroy"], acts
    r = d.cli("events", "--since", t0, "--until", until, "--filter", f"container={cid}",
              "--filter", "event=start")
    assert r.returncode == 0, r.stderr
    line, = r.stdout.splitlines()
    assert f" container start {cid} (image=busybox, name=ev-cli)" in line
    r = d.docker("events", "--since", t0, "--until", until, "--filter", f"container={cid}",
                 "--format", "{{.Action}} {{.Actor.Attributes.name}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["create ev-cli", "start ev-cli", "die ev-cli", "destroy ev-cli"]


# -- health ----------------------------------------------------------------------------------------

def _wait_health(d, ref: str, want: str, timeout: float = 20.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = (_inspect(d, ref)["State"].get("Health") or {})
        if h.get("Status") == want:
            return h
        time.sleep(0.1)
    raise AssertionError(f"health never became {want}: {h}")


def test_health_check_becomes_healthy_then_unhealthy(sampand):
    d = sampand
    ms = 1_000_000
    # Healthy while /tmp/ok exists in the container; the check really runs inside it.
    cid = _run(d, ["sh", "-c", "touch /tmp/ok; sleep 60"], "hc1",
               Healthcheck={"Test": ["CMD-SHELL", "test -e /tmp/ok && echo fine"],
                            "Interval": 300 * ms, "Timeout": 2000 * ms, "Retries": 2})
    try:
        t0 = time.time()
        assert _inspect(d, cid)["State"]["Health"]["Status"] == "starting"
        h = _wait_health(d, cid, "healthy")
        assert h["FailingStreak"] == 0
        assert h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "fine\n"
        assert time.time() - t0 >= 0.25  # not before the first interval
        status, _ = d.api_json("GET", "/containers/json?" + urllib.parse.urlencode(
            {"filters": json.dumps({"health": ["healthy"], "name": ["hc1"]})}))
        r = d.cli("ps", "--filter", "name=hc1")
        assert "(healthy)" in r.stdout, r.stdout
        r = d.cli("ps", "--filter", "health=healthy", "--format", "{{.Names}}")
        assert r.stdout.split() == ["hc1"], r.stdout
        # Break it from inside: two failures in a row -> unhealthy.
        status, ex = d.api_json("POST", f"/containers/{cid}/exec", {"Cmd": ["rm", "/tmp/ok"]})
        d.api("POST", f"/exec/{ex['Id']}/start", {"Detach": True})
        h = _wait_health(d, cid, "unhealthy")
        assert h["FailingStreak"] >= 2 and h["Log"][-1]["ExitCode"] == 1
        assert len(h["Log"]) <= 5
        assert "(unhealthy)" in d.cli("ps", "--filter", "name=hc1").stdout
        evs = _events(d, since=f"{t0 - 1:.9f}", until=f"{time.time():.9f}",
                      filters=json.dumps({"container": [cid], "event": ["health_status"]}))
        assert [e["Action"] for e in evs] == ["health_status: healthy", "health_status: unhealthy"]
        # Health execs are not left behind in ExecIDs.
        assert len(_inspect(d, cid)["ExecIDs"] or []) <= 2
    finally:
        _rm(d, cid)


def test_health_timeout_and_none(sampand):
    d = sampand
    ms = 1_000_000
    cid = _run(d, ["sleep", "60"], "hc2",
               Healthcheck={"Test": ["CMD", "sleep", "10"], "Interval": 200 * ms,
                            "Timeout": 300 * ms, "Retries": 1})
    try:
        h = _wait_health(d, cid, "unhealthy", timeout=10)
        assert h["Log"][-1]["ExitCode"] == -1
        assert h["Log"][-1]["Output"] == "Health check exceeded timeout (300ms)"
    finally:
        _rm(d, cid)
    cid = _run(d, ["sleep", "60"], "hc3", Healthcheck={"Test": ["NONE"]})
    try:
        assert "Health" not in _inspect(d, cid)["State"]
        r = d.cli("ps", "--filter", "name=hc3", "--filter", "health=none", "--format", "{{.Names}}")
        assert r.stdout.split() == ["hc3"]
    finally:
        _rm(d, cid)


def test_health_cli_flags_through_docker_cli(sampand):
    d = sampand
    r = d.docker("run", "-d", "--name", "hc4", "--health-cmd", "exit 1", "--health-interval", "200ms",
                 "--health-retries", "1", "busybox", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        _wait_health(d, "hc4", "unhealthy", timeout=10)
        r = d.docker("ps", "--filter", "name=hc4", "--format", "{{.Status}}")
        assert r.stdout.strip().endswith("(unhealthy)"), r.stdout
    finally:
        _rm(d, "hc4")


# -- pause / unpause / top ---------------------------------------------------------------------

def test_pause_really_stops_the_counter(sampand):
    d = sampand
    cid = _run(d, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done"], "pz")
    upper = _inspect(d, cid)["GraphDriver"]["Data"]["UpperDir"]
    counter = os.path.join(upper, "tmp", "n")

    def value() -> int:
        for _ in range(50):
            try:
                text = open(counter).read().strip()
                if text:  # empty: caught between the shell's truncate and its write
                    return int(text)
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError("counter file never appeared")

    try:
        time.sleep(0.5)
        r = d.cli("pause", "pz")
        assert r.returncode == 0 and r.stdout == "pz\n", r.stderr
        st = _inspect(d, cid)["State"]
        assert st["Status"] == "paused" and st["Paused"] and st["Running"]
        a = value()
        time.sleep(0.6)
        assert value() == a  # frozen: not one more increment
        assert "(Paused)" in d.cli("ps", "--filter", "name=pz").stdout
        r = d.cli("pause", "pz")
        assert r.returncode == 1 and "is already paused" in r.stderr
        status, body = d.api_json("POST", f"/containers/{cid}/exec", {"Cmd": ["true"]})
        assert status == 409
        r = d.docker("unpause", "pz")
        assert r.returncode == 0, r.stderr
        assert _inspect(d, cid)["State"]["Status"] == "running"
        time.sleep(0.5)
        assert value() > a
        r = d.cli("unpause", "pz")
        assert r.returncode == 1 and "is not paused" in r.stderr
        # A paused container still stops.
        d.cli("pause", "pz")
        t = time.time()
        status, _ = d.api("POST", f"/containers/{cid}/stop?t=1", timeout=30)
        assert status == 204 and time.time() - t < 15
        assert _inspect(d, cid)["State"]["Status"] == "exited"
        evs = _events(d, since="1", until=f"{time.time():.9f}",
                      filters=json.dumps({"container": [cid], "event": ["pause", "unpause"]}))
        assert [e["Action"] for e in evs][:2] == ["pause", "unpause"]
    finally:
        _rm(d, cid)


def test_top_lists_only_the_containers_processes(sampand):
    d = sampand
    cid = _run(d, ["sh", "-c", "sleep 1001 & sleep 1002"], "tp")
    try:
        time.sleep(0.3)
        status, body = d.api_json("GET", f"/containers/{cid}/top")
        assert status == 200, body
        assert body["Titles"][:3] == ["UID", "PID", "PPID"] and body["Titles"][-1] == "CMD"
        cmds = [p[-1] for p in body["Processes"]]
        assert any("sleep 1001" in c for c in cmds) and any("sleep 1002" in c for c in cmds), cmds
        # busybox sh execs its last command: the two sleeps, and nothing of the host's.
        assert len(body["Processes"]) == 2, cmds
        pids = {int(p[1]) for p in body["Processes"]}
        assert _inspect(d, cid)["State"]["Pid"] in pids
        r = d.cli("top", "tp", "-o", "pid,args")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0].split() == ["PID", "COMMAND"] and len(lines) == 3
        r = d.docker("top", "tp")
        assert r.returncode == 0 and "sleep 1001" in r.stdout, r.stderr
    finally:
        _rm(d, cid)
    status, body = d.api_json("GET", "/containers/nonexistent-xyz/top")
    assert status == 404
    cid = _run(d, ["true"], "tp2")
    d.api("POST", f"/containers/{cid}/wait")
    status, body = d.api_json("GET", f"/containers/{cid}/top")
    assert status == 409 and "is not running" in body["message"]
    _rm(d, cid)


def test_docker_sdk_pause_top_events(docker_client, sampand):
    c = docker_client.containers.run("busybox", ["sleep", "60"], detach=True, name="sdk-pz")
    try:
        since = time.time() - 1
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        top = c.top()
        assert any("sleep 60" in p[-1] for p in top["Processes"])
        evs = list(docker_client.events(since=since, until=time.time() + 0.1, decode=True,
                                        filters={"container": c.id, "event": ["pause", "unpause"]}))
        assert [e["Action"] for e in evs] == ["pause", "unpause"]
    finally:
        c.remove(force=True)


# -- log rotation ----------------------------------------------------------------------------------

def test_json_file_rotation_and_follow_across_it(sampand):
    d = sampand
    r = d.cli("run", "-d", "--name", "lr", "--log-opt", "max-size=2k", "--log-opt", "max-file=3",
              "busybox", "sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); "
              "sleep 0.005; done; sleep 1")
    assert r.returncode == 0, r.stderr
    try:
        f = subprocess.Popen([sys.executable, "-m", "sampan.cli.main", "logs", "-f", "lr"],
                             env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, errs = f.communicate(timeout=60)
        info = _inspect(d, "lr")
        assert info["HostConfig"]["LogConfig"]["Config"] == {"max-size": "2k", "max-file": "3"}
        log = info["LogPath"]
        sizes = [os.path.getsize(p) for p in (log, log + ".1", log + ".2")]
        assert all(s <= 2048 for s in sizes) and not os.path.exists(log + ".3")
        # logs -f started early and followed the live file across every rotation: all 400
        # lines, in order (the files kept hold only the newest ~150).
        got = [int(l.split()[1]) for l in out.splitlines() if l.startswith("line ")]
        assert got[-1] == 399
        assert got == list(range(got[0], 400))
        r = d.cli("logs", "lr")
        kept = [int(l.split()[1]) for l in r.stdout.splitlines()]
        assert kept == list(range(kept[0], 400)) and kept[0] > 0
        assert d.cli("logs", "--tail", "2", "lr").stdout == "line 398\nline 399\n"
    finally:
        _rm(d, "lr")
    r = d.cli("run", "--name", "lr2", "--log-opt", "max-file=2", "busybox", "true")
    assert r.returncode != 0 and "max-file can only be used with max-size" in r.stderr
    r = d.cli("run", "-d", "--name", "lr3", "--log-driver", "none", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    try:
        d.api("POST", "/containers/lr3/wait")
        r = d.cli("logs", "lr3")
        assert r.returncode != 0 and "does not support reading" in r.stderr
    finally:
        _rm(d, "lr3")


def test_daemon_debug_log_is_not_flooded_by_netlink_messages(sampand):
    # pyroute2 logs each netlink message at debug level (its import resets its log level);
    # with --debug the daemon's log must still show sampan's own lines, not thousands of those.
    r = sampand.docker("run", "--rm", "busybox", "true")
    assert r.returncode == 0, r.stderr
    log = sampand.log_path.read_text()
    assert "sampan.network" in log and "pyroute2.netlink" not in log


def test_kill_answers_once_the_container_is_down(sampand):
    # dockerd's Kill: with SIGKILL the API call returns after the container exited, so a
    # script's next `docker inspect` sees it stopped; other signals return at once.
    for _ in range(3):
        r = sampand.docker("run", "-d", "busybox", "sh", "-c", "trap '' TERM; while :; do sleep 1; done")
        assert r.returncode == 0, r.stderr
        cid = r.stdout.strip()
        assert sampand.docker("kill", "-s", "TERM", cid).returncode == 0
        assert sampand.docker("kill", cid).returncode == 0
        state = sampand.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", cid).stdout.split()
        assert state == ["exited", "137"], state
        sampand.docker("rm", cid)
