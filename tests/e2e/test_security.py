"""Security through the real daemon and the real docker CLI: escape probes in default and
privileged containers (with the container's cgroup, so the devices rules are in force),
custom seccomp profiles from a file, --security-opt handling and Docker's messages, the
namespace modes compared by their /proc/self/ns links, and `info`'s SecurityOptions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import shutil
import uuid
from pathlib import Path

import pytest

PROBE = str(Path(__file__).resolve().parents[1] / "integration" / "secprobe.py")
# The host's python, its libraries and the probe, read-only, into a busybox container.
PY = ["-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro", "-v", f"{PROBE}:/probe.py:ro"]
PY_OK = os.path.exists("/usr/bin/python3") and os.uname().machine == "x86_64"


def _host_probe(probe: str) -> str:
    """What the host itself (no namespaces, no cgroup rules) answers to a probe."""
    try:
        r = subprocess.run([sys.executable, "-I", PROBE, probe], capture_output=True,
                           text=True, timeout=30)
        return json.loads(r.stdout)[probe]
    finally:
        if os.path.lexists("/tmp/probe-disk"):
            os.unlink("/tmp/probe-disk")


# A block device the host can open and read harmlessly: /dev/loop0 (7:0), unbound reads
# nothing. Docker's device rules let a container mknod it but not open it.
LOOP0 = "mknod_read=7:0"


def _run(sampand, *args, timeout=60):
    r = sampand.docker("run", "--rm", *args, timeout=timeout)
    return r


def _ok(r) -> str:
    assert r.returncode == 0, r.stderr
    return r.stdout


def _probe(sampand, *opts_and_probes, split: int):
    args = list(opts_and_probes[:split])
    probes = list(opts_and_probes[split:])
    r = _run(sampand, *PY, *args, "busybox", "/usr/bin/python3", "-I", "/probe.py", *probes)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.skipif(not PY_OK, reason="probes need the host's /usr/bin/python3 on x86_64")
def test_default_container_probes(sampand):
    probes = ["mount", "unshare_mount", "userns_mount", "init_module", "reboot", "settimeofday",
              "clock_settime", "add_key", "keyctl", "open_by_handle_at", "proc_sys_write",
              "sys_ro", "sys_write", "seccomp", f"kill_host={os.getpid()}", LOOP0]
    got = _probe(sampand, *probes, split=0)
    want = {"mount": "EPERM", "unshare_mount": "unshare:EPERM", "userns_mount": "unshare:EPERM",
            "init_module": "EPERM", "reboot": "EPERM", "settimeofday": "EPERM",
            "clock_settime": "EPERM", "add_key": "EPERM", "keyctl": "EPERM",
            "open_by_handle_at": "EPERM", "proc_sys_write": "EROFS", "sys_ro": "ro",
            "sys_write": "EROFS", "seccomp": "2", f"kill_host={os.getpid()}": "ESRCH"}
    # mknod is allowed (Docker's "b *:* m" rule); opening the node is the devices cgroup's
    # no - where the host itself can open it, so the refusal is the container's.
    want[LOOP0] = "read:EPERM"
    assert got == want
    assert _host_probe(LOOP0) != "read:EPERM"


@pytest.mark.skipif(not PY_OK, reason="probes need the host's /usr/bin/python3 on x86_64")
def test_privileged_container_probes(sampand):
    probes = ["mount", "unshare_mount", "userns_mount", "add_key", "proc_sys_write", "sys_ro",
              "seccomp", LOOP0]
    got = _probe(sampand, "--privileged", *probes, split=1)
    # The device rules are lifted: the container reads the node exactly as the host does.
    want = {"mount": "ok", "unshare_mount": "ok", "userns_mount": "ok", "add_key": "ok",
            "proc_sys_write": "ok", "sys_ro": "rw", "seccomp": "0", LOOP0: _host_probe(LOOP0)}
    assert got == want


def test_seccomp_modes_seen_in_proc(sampand):
    def mode(*opts):
        r = _run(sampand, *opts, "busybox", "grep", "-E", "^(Seccomp|NoNewPrivs):",
                 "/proc/self/status")
        assert r.returncode == 0, r.stderr
        return dict(line.split(":\t") for line in r.stdout.strip().splitlines())
    assert mode() == {"NoNewPrivs": "0", "Seccomp": "2"}
    assert mode("--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    assert mode("--security-opt", "seccomp=builtin")["Seccomp"] == "2"
    assert mode("--privileged")["Seccomp"] == "0"
    assert mode("--security-opt", "no-new-privileges") == {"NoNewPrivs": "1", "Seccomp": "2"}
    assert mode("--security-opt", "no-new-privileges=true")["NoNewPrivs"] == "1"
    assert mode("--security-opt", "no-new-privileges:false")["NoNewPrivs"] == "0"


def test_custom_seccomp_profile_file(sampand, tmp_path):
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text(json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13}]}, indent=2))
    r = _run(sampand, "--security-opt", f"seccomp={prof}", "busybox", "sh", "-c",
             "mkdir /tmp/d; echo mkdir=$?; chmod 600 /etc/hostname; echo chmod=$?;"
             " touch /tmp/f; echo touch=$?")
    assert r.stdout.split() == ["mkdir=1", "chmod=1", "touch=0"], r.stderr
    assert "Operation not permitted" in r.stderr and "Permission denied" in r.stderr
    # sampan's own CLI sends the file's content too (the daemon never reads client paths).
    r = sampand.cli("run", "--rm", "--security-opt", f"seccomp={prof}", "busybox", "sh", "-c",
                    "mkdir /tmp/d; echo mkdir=$?")
    assert r.stdout.split() == ["mkdir=1"], r.stderr
    r = sampand.cli("run", "--rm", "--security-opt", "systempaths=unconfined", "busybox",
                    "sh", "-c", "wc -c < /proc/sys/kernel/ostype; touch /proc/sys/x 2>&1; true")
    assert r.stdout.split()[0] != "0" and "Read-only" not in r.stdout, r.stdout
    # The CLI itself refuses a file that is not JSON; the API refuses a profile it cannot use.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = _run(sampand, "--security-opt", f"seccomp={bad}", "busybox", "true")
    assert r.returncode != 0
    status, body = sampand.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"SecurityOpt": ['seccomp={"syscalls": []}']}})
    assert status == 400 and b"defaultAction" in body, body
    status, body = sampand.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": ["seccomp={bad"]}})
    assert status == 400 and b"seccomp" in body, body


def test_security_opt_keys(sampand):
    # Accepted on a host without AppArmor/SELinux, as dockerd does.
    for o in ("label=disable", "label=type:svirt_apache_t", "label:level:s0:c100,c200",
              "apparmor=unconfined", "apparmor=docker-default", "disable"):
        status, body = sampand.api_json("POST", "/containers/create", {
            "Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": [o]}})
        assert status == 201, (o, body)
        assert sampand.api("DELETE", f"/containers/{body['Id']}")[0] == 204
    # Docker's messages: no separator at all is "1", an unknown key or bad value "2".
    for o, msg in (("bogus", 'invalid --security-opt 1: "bogus"'),
                   ("bogus=1", 'invalid --security-opt 2: "bogus=1"'),
                   ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"')):
        status, body = sampand.api_json("POST", "/containers/create", {
            "Image": "busybox", "Cmd": ["true"], "HostConfig": {"SecurityOpt": [o]}})
        assert status == 400 and body["message"] == msg, (o, body)
    r = sampand.docker("create", "--security-opt", "bogus=1", "busybox", "true")
    assert r.returncode != 0 and 'invalid --security-opt 2: \\"bogus=1\\"' in r.stderr \
        or 'invalid --security-opt 2: "bogus=1"' in r.stderr, r.stderr


def _ns(sampand, *opts, kind: str, image_args=("busybox",)) -> str:
    r = _run(sampand, *opts, *image_args, "readlink", f"/proc/self/ns/{kind}")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _host_ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


@pytest.mark.parametrize("flag,kind", [("--pid", "pid"), ("--ipc", "ipc"), ("--uts", "uts"),
                                       ("--cgroupns", "cgroup"), ("--userns", "user"),
                                       ("--network", "net")])
def test_host_namespace_modes(sampand, flag, kind):
    assert _ns(sampand, f"{flag}=host", kind=kind) == _host_ns(kind)
    if kind != "user":  # no user namespace unless remapped: the host's either way
        assert _ns(sampand, kind=kind) != _host_ns(kind)
    else:
        assert _ns(sampand, kind=kind) == _host_ns(kind)


def test_private_modes(sampand):
    assert _ns(sampand, "--cgroupns=private", kind="cgroup") != _host_ns("cgroup")
    assert _ns(sampand, "--ipc=private", kind="ipc") != _host_ns("ipc")
    r = _run(sampand, "--ipc=none", "busybox", "sh", "-c",
             "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/self/mountinfo")
    ns, shm = r.stdout.split()
    assert ns != _host_ns("ipc") and shm == "0", r.stdout  # no /dev/shm at all


@pytest.fixture
def donor(sampand):
    name = "donor-" + uuid.uuid4().hex[:8]
    r = sampand.docker("run", "-d", "--name", name, "--ipc=shareable", "busybox",
                       "sleep", "300")
    assert r.returncode == 0, r.stderr
    yield name
    sampand.docker("rm", "-f", name)


def test_container_namespace_modes(sampand, donor):
    def donor_ns(kind):
        r = sampand.docker("exec", donor, "readlink", f"/proc/self/ns/{kind}")
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    assert _ns(sampand, f"--ipc=container:{donor}", kind="ipc") == donor_ns("ipc")
    assert _ns(sampand, f"--pid=container:{donor}", kind="pid") == donor_ns("pid")
    assert _ns(sampand, f"--network=container:{donor}", kind="net") == donor_ns("net")
    # Sharing the pid namespace: the donor's sleep is visible.
    r = _run(sampand, f"--pid=container:{donor}", "busybox", "ps", "-o", "comm")
    assert "sleep" in r.stdout.split(), r.stdout


def test_ipc_container_shares_the_donors_dev_shm(sampand, donor):
    # what the joiner writes to /dev/shm the donor reads: one tmpfs, mounted on the host side
    r = _run(sampand, f"--ipc=container:{donor}", "busybox", "sh", "-c",
             "echo shared > /dev/shm/note && grep ' /dev/shm ' /proc/self/mounts")
    assert r.returncode == 0 and " tmpfs " in r.stdout, r.stderr
    r = sampand.docker("exec", donor, "cat", "/dev/shm/note")
    assert r.stdout == "shared\n", r.stderr
    cid = _ok(sampand.docker("inspect", "-f", "{{.Id}}", donor)).strip()
    host_shm = sampand.data_root / "containers" / cid / "mounts" / "shm"
    assert os.path.ismount(host_shm) and (host_shm / "note").read_text() == "shared\n"
    # a private container (the default) cannot be joined, as with dockerd
    name = "private-" + uuid.uuid4().hex[:8]
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    try:
        r = _run(sampand, f"--ipc=container:{name}", "busybox", "true")
        assert r.returncode != 0 and "non-shareable IPC" in r.stderr, r.stderr
    finally:
        sampand.docker("rm", "-f", name)
    # the host-side tmpfs goes with the donor's stop, and comes back, empty, with its start
    _ok(sampand.docker("stop", "-t", "0", donor))
    assert not os.path.ismount(host_shm)
    _ok(sampand.docker("start", donor))
    assert os.path.ismount(host_shm) and not (host_shm / "note").exists()


def test_shareable_ipc_shm_size(sampand):
    r = _run(sampand, "--ipc=shareable", "--shm-size=8m", "busybox", "df", "-k", "/dev/shm")
    assert r.returncode == 0 and r.stdout.split()[-5] == "8192", r.stdout


def test_info_security_options(sampand):
    status, info = sampand.api_json("GET", "/info")
    assert status == 200
    opts = info["SecurityOptions"]
    assert opts[0] == "name=seccomp,profile=builtin"
    assert "name=cgroupns" in opts
    assert not any(o.startswith("name=no-new-privileges") for o in opts)
    r = sampand.docker("info")
    assert r.returncode == 0, r.stderr
    assert "Security Options:" in r.stdout
    sec = r.stdout.split("Security Options:")[1]
    assert "seccomp" in sec and "Profile: builtin" in sec and "cgroupns" in sec


def test_daemon_default_no_new_privileges(sampand_factory):
    d = sampand_factory(config={"no-new-privileges": True})
    status, info = d.api_json("GET", "/info")
    assert "name=no-new-privileges" in info["SecurityOptions"]
    r = d.docker("run", "--rm", "busybox", "grep", "NoNewPrivs:", "/proc/self/status")
    assert r.stdout.split() == ["NoNewPrivs:", "1"], r.stderr
    # A container can still opt out, as with dockerd.
    r = d.docker("run", "--rm", "--security-opt", "no-new-privileges=false", "busybox",
                 "grep", "NoNewPrivs:", "/proc/self/status")
    assert r.stdout.split() == ["NoNewPrivs:", "0"], r.stderr
    d.destroy()


def test_no_new_privileges_reaches_docker_exec(sampand):
    # The setuid effect itself is proven in integration/test_security_probes.py
    # (test_no_new_privileges_stops_setuid); here: `docker exec` processes carry the flag too.
    name = "nnp-" + uuid.uuid4().hex[:8]
    r = sampand.docker("run", "-d", "--name", name, "--security-opt", "no-new-privileges",
                       "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    try:
        r = sampand.docker("exec", name, "grep", "NoNewPrivs:", "/proc/self/status")
        assert r.stdout.split() == ["NoNewPrivs:", "1"], r.stderr
    finally:
        sampand.docker("rm", "-f", name)


def test_docker_exec_runs_under_the_containers_profile(sampand, tmp_path):
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))
    name = "sec-exec-" + uuid.uuid4().hex[:8]
    r = sampand.docker("run", "-d", "--name", name, "--security-opt", f"seccomp={prof}",
                       "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    try:
        r = sampand.docker("exec", name, "sh", "-c", "mkdir /tmp/x; echo rc=$?")
        assert "rc=1" in r.stdout and "Permission denied" in r.stderr, (r.stdout, r.stderr)
        # The exec process carries a filter of its own (mode 2), installed before its exec.
        r = sampand.docker("exec", name, "grep", "Seccomp:", "/proc/self/status")
        assert r.stdout.split() == ["Seccomp:", "2"]
    finally:
        sampand.docker("rm", "-f", name)


def test_daemon_wide_seccomp_profile(sampand_factory, tmp_path):
    """daemon.json `seccomp-profile` (dockerd's): the default for containers that name no
    profile; `seccomp=builtin` and `seccomp=unconfined` still choose for themselves."""
    prof = tmp_path / "deny-mkdir.json"
    prof.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}))
    d = sampand_factory(config={"seccomp-profile": str(prof)})
    _, info = d.api_json("GET", "/info")
    assert info["SecurityOptions"][0] == f"name=seccomp,profile={prof}"
    probe = ["busybox", "sh", "-c", "mkdir /tmp/d; echo mkdir=$?; grep ^Seccomp: /proc/self/status"]
    r = d.docker("run", "--rm", *probe)
    assert r.stdout.split() == ["mkdir=1", "Seccomp:", "2"], r.stderr
    assert "Operation not permitted" in r.stderr
    r = d.docker("run", "--rm", "--security-opt", "seccomp=builtin", *probe)
    assert r.stdout.split() == ["mkdir=0", "Seccomp:", "2"], r.stderr
    r = d.docker("run", "--rm", "--security-opt", "seccomp=unconfined", *probe)
    assert r.stdout.split() == ["mkdir=0", "Seccomp:", "0"], r.stderr
    d.destroy()

    d = sampand_factory(config={"seccomp-profile": "unconfined"})
    _, info = d.api_json("GET", "/info")
    assert info["SecurityOptions"][0] == "name=seccomp,profile=unconfined"
    r = d.docker("run", "--rm", *probe)
    assert r.stdout.split() == ["mkdir=0", "Seccomp:", "0"], r.stderr
    r = d.docker("run", "--rm", "--security-opt", "seccomp=builtin", *probe)
    assert r.stdout.split() == ["mkdir=0", "Seccomp:", "2"], r.stderr
    d.destroy()


@pytest.mark.parametrize("content, message", [
    (None, "opening seccomp profile"),
    ('{"defaultAction": "SCMP_ACT_BOGUS"}', "loading seccomp profile"),
])
def test_daemon_refuses_to_start_with_a_bad_seccomp_profile(tmp_path, content, message):
    prof = tmp_path / "profile.json"
    if content is not None:
        prof.write_text(content)
    (tmp_path / "daemon.json").write_text("{}\n")
    r = subprocess.run([sys.executable, "-m", "sampan.daemon.main", "--data-root", str(tmp_path / "root"),
                        "--exec-root", str(tmp_path / "run"), "-H", f"unix://{tmp_path}/s.sock",
                        "--config-file", str(tmp_path / "daemon.json"), "--seccomp-profile", str(prof)],
                       capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 1 and message in r.stderr and str(prof) in r.stderr, r.stderr
    assert not (tmp_path / "s.sock").exists()


@pytest.mark.skipif(not shutil.which("runc"), reason="runc not installed")
def test_exec_into_a_runc_container_is_inside_it(sampand):
    """`docker exec` with `--runtime runc`: the process joins the container's mount, pid,
    network, uts and ipc namespaces and its cgroup, never staying on the host's."""
    name = "runc-exec-" + uuid.uuid4().hex[:8]
    _ok(sampand.docker("run", "-d", "--runtime", "runc", "--name", name, "--hostname", "inside",
                       "--memory", "64m", "busybox", "sh", "-c", "touch /inside-marker; exec sleep 300"))
    try:
        init = int(_ok(sampand.docker("inspect", "-f", "{{.State.Pid}}", name)))
        out = _ok(sampand.docker("exec", name, "sh", "-c",
                                 "for n in mnt pid net uts ipc; do readlink /proc/self/ns/$n; done;"
                                 " hostname; ls /inside-marker; cat /proc/self/cgroup; ps -o pid,comm"))
        lines = out.splitlines()
        for n, got in zip(("mnt", "pid", "net", "uts", "ipc"), lines[:5]):
            assert got == os.readlink(f"/proc/{init}/ns/{n}") != os.readlink(f"/proc/self/ns/{n}"), n
        assert lines[5:7] == ["inside", "/inside-marker"], out          # its root, not the host's
        # its cgroup: the root of its cgroup namespace (outside it, the path would climb "/..")
        mem = [l for l in lines[7:] if ":memory:" in l or l.startswith("0::")]
        assert mem and all(l.rsplit(":", 1)[1] == "/" for l in mem if ":memory:" in l), out
        ps = [l.split() for l in lines[7:] if l.split() and l.split()[0].isdigit()]
        assert ["1", "sleep"] in ps, out                                 # its pid namespace
    finally:
        sampand.docker("rm", "-f", name)


@pytest.mark.skipif(not shutil.which("runc"), reason="runc not installed")
def test_joining_a_runc_containers_namespaces(sampand):
    """`--ipc/--pid/--network container:<x>` where x runs under runc: the joiner gets x's
    namespaces (State.Pid is x's init, not the runc process on the host) and its /dev/shm."""
    name = "runc-donor-" + uuid.uuid4().hex[:8]
    _ok(sampand.docker("run", "-d", "--runtime", "runc", "--name", name, "--ipc=shareable",
                       "busybox", "sleep", "300"))
    try:
        init = int(_ok(sampand.docker("inspect", "-f", "{{.State.Pid}}", name)))
        assert os.readlink(f"/proc/{init}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert open(f"/proc/{init}/comm").read().strip() == "sleep"
        for runtime in ("runc", "sampan"):
            out = _ok(sampand.docker(
                "run", "--rm", "--runtime", runtime, f"--ipc=container:{name}", f"--pid=container:{name}",
                f"--network=container:{name}", "busybox", "sh", "-c",
                f"echo {runtime} > /dev/shm/by-{runtime}; for n in ipc pid net; do readlink /proc/self/ns/$n; done"))
            assert out.split() == [os.readlink(f"/proc/{init}/ns/{n}") for n in ("ipc", "pid", "net")]
            assert _ok(sampand.docker("exec", name, "cat", f"/dev/shm/by-{runtime}")) == f"{runtime}\n"
    finally:
        sampand.docker("rm", "-f", name)
