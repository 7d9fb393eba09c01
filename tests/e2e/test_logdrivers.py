"""Log drivers end to end through the real docker CLI and the SDK: json-file with
`compress=true` (rotated files really gzip on disk, `logs` reads them with --tail/--since),
the `local` driver (its files on disk, logs with --since/--until/--tail/-f/--timestamps),
daemon.json `log-driver`/`log-opts` defaults, and Docker's 400 for unknown options."""

from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


def _inspect(d, ref):
    r = d.docker("inspect", ref)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)[0]


def _wait_exit(d, ref):
    r = d.docker("wait", ref, timeout=120)
    assert r.returncode == 0, r.stderr


def test_json_file_compress_rotates_to_gzip_and_logs_reads_all(sampand):
    d = sampand
    r = d.docker("run", "-d", "--name", "jz", "--log-opt", "max-size=20k", "--log-opt", "max-file=4",
                 "--log-opt", "compress=true", "busybox", "sh", "-c",
                 "seq 1 1000; sleep 1.2; seq 1001 1400")
    assert r.returncode == 0, r.stderr
    try:
        _wait_exit(d, "jz")
        info = _inspect(d, "jz")
        log = info["LogPath"]
        rotated = sorted(glob.glob(log + ".*"))
        assert rotated and all(p.endswith(".gz") for p in rotated), rotated
        for p in rotated:
            with gzip.open(p) as f:
                first = json.loads(f.readline())
            assert first["stream"] == "stdout"
        r = d.docker("logs", "jz", binary=True)
        nums = [int(x) for x in r.stdout.split()]
        assert nums == list(range(nums[0], 1401)) and nums[0] > 1  # oldest fell off, no gaps
        assert d.docker("logs", "--tail", "5", "jz").stdout.split() == [str(i) for i in range(1396, 1401)]
        # --since between the two bursts: only the second (the older .gz files are skipped)
        started = info["State"]["StartedAt"]
        from sampan.monitor.logfile import parse_rfc3339_nano
        cut = parse_rfc3339_nano(started) / 1e9 + 0.6
        r = d.docker("logs", "--since", f"{cut:.3f}", "jz")
        assert r.stdout.split() == [str(i) for i in range(1001, 1401)]
    finally:
        d.docker("rm", "-f", "jz")


def test_local_driver_files_and_every_logs_option(sampand, docker_client):
    d = sampand
    r = d.docker("run", "-d", "--name", "lz", "--log-driver", "local", "--log-opt", "max-size=10k",
                 "busybox", "sh", "-c",
                 "seq 1 3000; echo oops >&2; sleep 1.2; echo late; sleep 1.5; echo last")
    assert r.returncode == 0, r.stderr
    try:
        deadline = time.time() + 30
        while d.docker("logs", "--tail", "1", "lz").stderr != "oops\n" and time.time() < deadline:
            time.sleep(0.05)  # until the first burst is logged (the sleep gives 1.2 s)
        t0 = time.time()
        f = subprocess.Popen(["/usr/local/bin/docker", "logs", "-f", "--tail", "2", "lz"],
                             env=d.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = f.communicate(timeout=60)
        assert f.returncode == 0, err
        assert out.split() == [b"3000", b"late", b"last"] and err == b"oops\n"
        assert time.time() - t0 > 0.8  # it really followed until the container ended
        info = _inspect(d, "lz")
        assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {"max-size": "10k"}}
        cdir = os.path.dirname(os.path.dirname(info["LogPath"]))
        live = os.path.join(cdir, "local-logs", "container.log")
        assert info["LogPath"] == live
        rotated = sorted(glob.glob(live + ".*"))
        assert len(rotated) == 4 and all(p.endswith(".gz") for p in rotated)  # max-file 5, compressed
        assert not glob.glob(os.path.join(cdir, "*-json.log"))
        r = d.docker("logs", "lz", binary=True)
        words = r.stdout.split()
        assert words[-2:] == [b"late", b"last"]
        nums = [int(x) for x in words[:-2]]
        assert nums == list(range(nums[0], 3001))
        assert r.stderr == b"oops\n"
        r = d.docker("logs", "--timestamps", "--tail", "1", "lz")
        ts, _, text = r.stdout.strip().partition(" ")
        assert text == "last" and ts.endswith("Z") and ts[:4].isdigit()
        from sampan.monitor.logfile import parse_rfc3339_nano
        late_ts = parse_rfc3339_nano(d.docker("logs", "-t", "--tail", "2", "lz").stdout.split()[0])
        r = d.docker("logs", "--since", f"{late_ts / 1e9 - 0.0005:.6f}",
                     "--until", f"{late_ts / 1e9 + 0.5:.6f}", "lz")
        assert r.stdout.split() == ["late"]
        c = docker_client.containers.get("lz")
        assert c.logs(stdout=False, stderr=True) == b"oops\n"
        assert c.logs(tail=2) == b"late\nlast\n"
    finally:
        d.docker("rm", "-f", "lz")


def test_unknown_log_opts_are_rejected_at_create(sampand):
    d = sampand
    r = d.docker("create", "--log-driver", "local", "--log-opt", "labels=x", "busybox", "true")
    assert r.returncode != 0 and "unknown log opt 'labels' for log driver local" in r.stderr
    r = d.docker("create", "--log-opt", "nope=1", "busybox", "true")
    assert r.returncode != 0 and "unknown log opt 'nope' for json-file log driver" in r.stderr
    r = d.docker("create", "--log-opt", "compress=true", "busybox", "true")
    assert r.returncode != 0 and "compress cannot be true" in r.stderr
    status, body = d.api_json("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"LogConfig": {"Type": "gelfish", "Config": {}}}})
    assert status == 400 and "no log driver named 'gelfish'" in body["message"]


def test_daemon_json_log_driver_and_opts_are_the_default(sampand_factory):
    d = sampand_factory(config={"log-driver": "local", "log-opts": {"max-size": "8k", "max-file": "2"}})
    r = d.docker("run", "--name", "dl", "busybox", "seq", "1", "5000")
    assert r.returncode == 0, r.stderr
    info = _inspect(d, "dl")
    assert info["HostConfig"]["LogConfig"] == {"Type": "local", "Config": {"max-file": "2", "max-size": "8k"}}
    assert info["LogPath"].endswith("/local-logs/container.log")
    assert [os.path.basename(p) for p in glob.glob(info["LogPath"] + "*")] == [] or \
        sorted(os.path.basename(p) for p in glob.glob(info["LogPath"] + "*")) == [
            "container.log", "container.log.1.gz"]
    assert d.docker("logs", "--tail", "1", "dl").stdout == "5000\n"
    # A container asking for json-file gets json-file, without the local driver's opts.
    r = d.docker("run", "--name", "dj", "--log-driver", "json-file", "busybox", "echo", "hi")
    assert r.returncode == 0, r.stderr
    assert _inspect(d, "dj")["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert d.docker("logs", "dj").stdout == "hi\n"
    assert d.docker("info", "-f", "{{.LoggingDriver}}").stdout.strip() == "local"


def _hwm_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_100mb_of_output_does_not_grow_the_daemon(sampand_factory, driver):
    """The daemon's peak RSS (VmHWM) moves by far less than the log it serves: the monitor
    writes the log, and `logs` streams it in bounded chunks."""
    d = sampand_factory()
    # 100 MiB: 25,600 lines of 4095 x and a newline.
    script = "head -c 104832000 /dev/zero | tr '\\0' x | fold -w 4095; echo"
    r = d.docker("run", "-d", "--name", "big", "--network", "none", "--log-driver", driver,
                 "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    _wait_exit(d, "big")
    before = _hwm_kb(d.pid)
    with open(os.devnull, "wb") as null:
        p = subprocess.run(["/usr/local/bin/docker", "logs", "big"], env=d.env, stdout=null,
                           stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    r = d.docker("logs", "--tail", "1", "big", binary=True)
    assert r.stdout == b"x" * 4095 + b"\n"
    grown_mb = (_hwm_kb(d.pid) - before) / 1024
    assert grown_mb < 40, f"daemon peak RSS grew by {grown_mb:.0f} MB serving a 100 MB log"
    d.docker("rm", "-f", "big")


@pytest.mark.parametrize("conf, message", [
    ({"log-driver": "bogus"}, "no log driver named 'bogus'"),
    ({"log-driver": "local", "log-opts": {"labels": "a"}}, "unknown log opt 'labels' for log driver local"),
    ({"log-opts": {"max-file": "0", "max-size": "1m"}}, "max-file cannot be less than 1"),
])
def test_daemon_refuses_a_bad_default_log_config(tmp_path, conf, message):
    """As dockerd: a daemon.json whose log-driver/log-opts no container could use stops the
    daemon at start, before it touches its roots."""
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps(conf))
    import sys
    r = subprocess.run([sys.executable, "-m", "sampan.daemon.main", "--config-file", str(cfg),
                        "--data-root", str(tmp_path / "root"), "--exec-root", str(tmp_path / "run"),
                        "-H", f"unix://{tmp_path}/s.sock"],
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "root").exists()
