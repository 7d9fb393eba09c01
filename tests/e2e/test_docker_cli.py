"""The real docker CLI (/usr/local/bin/docker, client only) against the session's sampand.

Every assertion is Docker's documented behaviour: what `docker` prints and its exit codes.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path

import pytest


def _name(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _inspect(sampand, ref: str) -> dict:
    out = _ok(sampand.docker("inspect", ref))
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 1
    return data[0]


def _wait_for(pred, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


# --- system ------------------------------------------------------------------------------------

def test_version_shows_server(sampand):
    out = _ok(sampand.docker("version"))
    assert "Server:" in out
    fmt = _ok(sampand.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Version}}")).split()
    assert fmt[0] == "1.45"
    assert fmt[1]


def test_info_reports_the_daemon(sampand):
    info = json.loads(_ok(sampand.docker("info", "--format", "{{json .}}")))
    assert info["DockerRootDir"] == str(sampand.data_root)
    assert info["NCPU"] == os.cpu_count()
    assert info["MemTotal"] > 0
    assert info["Images"] >= 1


# --- run -----------------------------------------------------------------------------------------

def test_run_echo_hello(sampand):
    r = sampand.docker("run", "--rm", "busybox", "echo", "hello")
    assert _ok(r) == "hello\n"


def test_run_pid1_and_hostname(sampand):
    out = _ok(sampand.docker("run", "--rm", "busybox", "sh", "-c", "echo $$; hostname"))
    pid, hostname = out.split()
    assert pid == "1"
    assert re.fullmatch(r"[0-9a-f]{12}", hostname), hostname


def test_hostname_is_the_container_short_id(sampand):
    cid = _ok(sampand.docker("run", "-d", "busybox", "sh", "-c", "echo $$; hostname")).strip()
    try:
        assert re.fullmatch(r"[0-9a-f]{64}", cid), cid
        assert _ok(sampand.docker("wait", cid)).strip() == "0"
        assert _ok(sampand.docker("logs", cid)).split() == ["1", cid[:12]]
    finally:
        sampand.docker("rm", "-f", cid)


def test_detached_ps_logs_exec_stop_rm(sampand):
    name = _name("web")
    cid = _ok(sampand.docker("run", "-d", "--name", name, "busybox",
                             "sh", "-c", "echo started; exec sleep 300")).strip()
    try:
        names = _ok(sampand.docker("ps", "--format", "{{.Names}}")).split()
        assert name in names
        ps = _ok(sampand.docker("ps", "--no-trunc", "-q")).split()
        assert cid in ps

        assert _wait_for(lambda: "started" in sampand.docker("logs", name).stdout)
        assert _ok(sampand.docker("logs", name)) == "started\n"

        assert _ok(sampand.docker("exec", name, "cat", "/etc/hostname")).strip() == cid[:12]
        # exec'd processes share the container's pid namespace: sleep is PID 1.
        assert "sleep 300" in _ok(sampand.docker("exec", name, "ps"))

        # sleep as PID 1 has no SIGTERM handler, so stop -t 1 ends in SIGKILL: 137.
        t0 = time.monotonic()
        assert _ok(sampand.docker("stop", "-t", "1", name)).strip() == name
        assert time.monotonic() - t0 < 10
        state = _inspect(sampand, name)["State"]
        assert state["Status"] == "exited"
        assert state["Running"] is False
        assert state["ExitCode"] == 137
        assert name not in _ok(sampand.docker("ps", "--format", "{{.Names}}")).split()
        assert name in _ok(sampand.docker("ps", "-a", "--format", "{{.Names}}")).split()

        assert _ok(sampand.docker("rm", name)).strip() == name
        assert name not in _ok(sampand.docker("ps", "-a", "--format", "{{.Names}}")).split()
        r = sampand.docker("inspect", name)
        assert r.returncode != 0
        assert "no such" in r.stderr.lower()
    finally:
        sampand.docker("rm", "-f", name)


def test_exit_code_propagates(sampand):
    r = sampand.docker("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr


def test_command_not_found_is_127(sampand):
    r = sampand.docker("run", "--rm", "busybox", "nosuchcmd", timeout=20)
    assert r.returncode == 127, (r.stdout, r.stderr)
    assert "nosuchcmd" in r.stderr


def test_run_rm_leaves_no_container(sampand):
    name = _name("rm")
    _ok(sampand.docker("run", "--rm", "--name", name, "busybox", "true"))
    assert name not in _ok(sampand.docker("ps", "-a", "--format", "{{.Names}}")).split()


def test_files_are_per_container_and_land_in_the_upper_dir(sampand):
    name = _name("writer")
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    _ok(sampand.docker("run", "--name", name, "busybox", "sh", "-c", f"echo payload > /{marker}"))
    try:
        cid = _inspect(sampand, name)["Id"]
        # Another container from the same image doesn't see it...
        r = sampand.docker("run", "--rm", "busybox", "ls", f"/{marker}")
        assert r.returncode != 0
        # ...because the change lives in this container's own layer under the data root,
        found = [p for p in (sampand.data_root / "containers" / cid).rglob(marker)]
        assert found, f"/{marker} not under {sampand.data_root / 'containers' / cid}"
        assert any(p.read_text() == "payload\n" for p in found if p.is_file())
        # ...and never in the image's layers.
        assert not list((sampand.data_root / "layers").rglob(marker))
        # The container's own view still has it when it runs again.
        _ok(sampand.docker("start", "-a", name))
    finally:
        sampand.docker("rm", "-f", name)


def test_stdin_with_dash_i(sampand):
    r = sampand.docker("run", "-i", "--rm", "busybox", "cat", input="hello stdin\nline two\n")
    assert _ok(r) == "hello stdin\nline two\n"


def test_env_workdir_user(sampand):
    out = _ok(sampand.docker("run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "user", "busybox",
                             "sh", "-c", 'echo "$FOO $(pwd) $(id -u) $HOME"'))
    assert out.split() == ["bar", "/tmp", "1000", "/home/user"]


# --- images --------------------------------------------------------------------------------------

def test_images_lists_busybox(sampand):
    refs = _ok(sampand.docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
    assert "busybox:latest" in refs


def test_inspect_image(sampand):
    img = _inspect(sampand, "busybox")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", img["Id"])
    assert "busybox:latest" in img["RepoTags"]
    assert img["RootFS"]["Type"] == "layers"
    assert len(img["RootFS"]["Layers"]) == 1
    assert img["Os"] == "linux"


def test_tag_and_rmi(sampand):
    ref = f"{_name('tagged')}:v1"
    base_id = _inspect(sampand, "busybox")["Id"]
    _ok(sampand.docker("tag", "busybox", ref))
    try:
        assert _inspect(sampand, ref)["Id"] == base_id
        assert ref in _ok(sampand.docker("images", "--format", "{{.Repository}}:{{.Tag}}")).split()
        out = _ok(sampand.docker("rmi", ref))
        # Another tag still points at the image: only the tag goes.
        assert f"Untagged: {ref}" in out
        assert "Deleted" not in out
        assert _inspect(sampand, "busybox")["Id"] == base_id
        r = sampand.docker("image", "inspect", ref)
        assert r.returncode != 0 and "no such image" in r.stderr.lower()
    finally:
        sampand.docker("rmi", ref)


def test_rmi_unknown_image(sampand):
    r = sampand.docker("rmi", "nosuchimage:nope")
    assert r.returncode != 0
    assert "no such image" in r.stderr.lower()


def test_save_load_round_trip(sampand, tmp_path: Path):
    ref = f"{_name('saved')}:1"
    base_id = _inspect(sampand, "busybox")["Id"]
    _ok(sampand.docker("tag", "busybox", ref))
    try:
        # To a file...
        tar = tmp_path / "img.tar"
        _ok(sampand.docker("save", "-o", str(tar), ref))
        assert tar.stat().st_size > 1_000_000  # busybox itself is ~2 MB
        _ok(sampand.docker("rmi", ref))
        out = _ok(sampand.docker("load", "-i", str(tar)))
        assert f"Loaded image: {ref}" in out
        assert _inspect(sampand, ref)["Id"] == base_id

        # ...and through a pipe, as `docker save | docker load`.
        saved = sampand.docker("save", ref, binary=True)
        assert saved.returncode == 0, saved.stderr
        _ok(sampand.docker("rmi", ref))
        loaded = sampand.docker("load", input=saved.stdout, binary=True)
        assert loaded.returncode == 0, loaded.stderr
        assert f"Loaded image: {ref}".encode() in loaded.stdout
        assert _inspect(sampand, ref)["Id"] == base_id
        assert _ok(sampand.docker("run", "--rm", ref, "echo", "from loaded")) == "from loaded\n"
    finally:
        sampand.docker("rmi", ref)


def test_rmi_in_use_needs_force(sampand):
    ref = f"{_name('inuse')}:1"
    _ok(sampand.docker("tag", "busybox", ref))
    name = _name("user")
    _ok(sampand.docker("create", "--name", name, ref, "true"))
    try:
        # Untagging one of two tags is fine even while a container uses the image...
        _ok(sampand.docker("rmi", ref))
        # ...but deleting the image by id is a conflict.
        img_id = _inspect(sampand, "busybox")["Id"]
        r = sampand.docker("rmi", img_id)
        assert r.returncode != 0
        assert "conflict" in r.stderr.lower() or "being used" in r.stderr.lower()
    finally:
        sampand.docker("rm", "-f", name)
        sampand.docker("rmi", ref)


# --- run options ---------------------------------------------------------------------------------

def test_tty_output_uses_crlf(sampand):
    # -t without -i needs no terminal on our side. The pty keeps the default termios (ONLCR),
    # so \n reaches the client as \r\n, as with dockerd (moby/moby#8513, #37366).
    # (binary: text mode's universal newlines would turn \r\n back into \n)
    r = sampand.docker("run", "-t", "--rm", "busybox", "echo", "hi", binary=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hi\r\n"
    # stdin is the pty too (runc dups the pty onto 0, 1 and 2), even without -i.
    r = sampand.docker("run", "-t", "--rm", "busybox", "sh", "-c",
                       "test -t 0 && test -t 1 && echo both", binary=True)
    assert r.stdout == b"both\r\n", r.stderr


def test_init_takes_pid1(sampand):
    out = _ok(sampand.docker("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$"))
    assert out.strip() != "1"


def test_read_only_rootfs(sampand):
    r = sampand.docker("run", "--rm", "--read-only", "busybox", "touch", "/x")
    assert r.returncode != 0
    assert "read-only" in (r.stdout + r.stderr).lower()


def test_network_none_has_only_loopback(sampand):
    out = _ok(sampand.docker("run", "--rm", "--network", "none", "busybox", "cat", "/proc/net/dev"))
    ifaces = [line.split(":")[0].strip() for line in out.splitlines()[2:]]
    assert ifaces == ["lo"]


def test_cap_drop_and_default_caps(sampand):
    # chown needs CAP_CHOWN: in Docker's default set, gone after --cap-drop CHOWN.
    _ok(sampand.docker("run", "--rm", "busybox", "chown", "1000", "/tmp"))
    r = sampand.docker("run", "--rm", "--cap-drop", "CHOWN", "busybox", "chown", "1000", "/tmp")
    assert r.returncode != 0
    # CAP_SYS_ADMIN is not in the default set: mount fails without --privileged.
    r = sampand.docker("run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/tmp")
    assert r.returncode != 0
    _ok(sampand.docker("run", "--rm", "--privileged", "busybox", "mount", "-t", "tmpfs", "x", "/tmp"))


def test_ulimit(sampand):
    out = _ok(sampand.docker("run", "--rm", "--ulimit", "nofile=512:1024", "busybox", "sh", "-c",
                             "ulimit -n; ulimit -Hn"))
    assert out.split() == ["512", "1024"]


def test_entrypoint_and_labels(sampand):
    name = _name("ep")
    _ok(sampand.docker("create", "--name", name, "-l", "tier=e2e", "--entrypoint", "echo",
                       "busybox", "from", "entrypoint"))
    try:
        c = _inspect(sampand, name)
        assert c["Config"]["Entrypoint"] == ["echo"]
        assert c["Config"]["Cmd"] == ["from", "entrypoint"]
        assert c["Config"]["Labels"]["tier"] == "e2e"
        assert _ok(sampand.docker("start", "-a", name)) == "from entrypoint\n"
        assert name in _ok(sampand.docker("ps", "-a", "--filter", "label=tier=e2e",
                                          "--format", "{{.Names}}")).split()
    finally:
        sampand.docker("rm", "-f", name)


# --- lifecycle -----------------------------------------------------------------------------------

def test_kill_signal_rename_restart_wait(sampand):
    name, new = _name("life"), _name("renamed")
    # A shell that exits 42 on SIGUSR1 proves the signal got through as sent.
    script = "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done"
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c", script))
    try:
        assert _wait_for(lambda: "ready" in sampand.docker("logs", name).stdout)
        _ok(sampand.docker("rename", name, new))
        assert _inspect(sampand, new)["Name"] == f"/{new}"
        _ok(sampand.docker("kill", "-s", "USR1", new))
        assert _ok(sampand.docker("wait", new)).strip() == "42"

        pid_before = _inspect(sampand, new)["State"]["Pid"]
        _ok(sampand.docker("restart", "-t", "1", new))
        st = _inspect(sampand, new)["State"]
        assert st["Running"] is True
        assert st["Pid"] != pid_before
        _ok(sampand.docker("kill", new))
        assert _ok(sampand.docker("wait", new)).strip() == "137"
    finally:
        sampand.docker("rm", "-f", name)
        sampand.docker("rm", "-f", new)


def test_logs_tail_and_timestamps(sampand):
    name = _name("logs")
    _ok(sampand.docker("run", "--name", name, "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo $i; done"))
    try:
        assert _ok(sampand.docker("logs", "--tail", "2", name)) == "4\n5\n"
        stamped = _ok(sampand.docker("logs", "-t", name)).splitlines()
        assert len(stamped) == 5
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z 1$", stamped[0]), stamped[0]
        # stdout and stderr stay apart.
        r = sampand.docker("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
        assert (r.stdout, r.stderr) == ("out\n", "err\n")
    finally:
        sampand.docker("rm", "-f", name)


def test_logs_follow_ends_when_container_exits(sampand):
    name = _name("follow")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "for i in 1 2 3; do echo $i; sleep 0.3; done"))
    try:
        t0 = time.monotonic()
        out = _ok(sampand.docker("logs", "-f", name, timeout=20))
        assert out == "1\n2\n3\n"
        assert time.monotonic() - t0 < 15
    finally:
        sampand.docker("rm", "-f", name)


def test_unknown_container_errors(sampand):
    for args in (["stop", "nosuchcontainer"], ["logs", "nosuchcontainer"], ["rm", "nosuchcontainer"]):
        r = sampand.docker(*args)
        assert r.returncode != 0, args
        assert "no such container" in r.stderr.lower(), (args, r.stderr)
    r = sampand.docker("run", "--rm", "nosuchimage:nope", "true")
    assert r.returncode == 125
