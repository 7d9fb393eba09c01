"""The runtime against the real kernel: fork, unshare pid, run_child on a busybox overlay.

Each test builds a spec with `build_spec`, runs it as a monitor would (a middle process
that unshares the pid namespace and forks the container's PID 1) and asserts what the
container itself reports on stdout, or what it did to the upper dir.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from sampan.linux import syscalls as sc
from sampan.runtime import console, oci
from sampan.runtime.container import exec_child, run_child
from sampan.runtime.mounts import Mount
from sampan.runtime.spec import build_exec_process, build_spec

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static"),
]

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
          "user:x:1000:1000:user:/home/user:/bin/sh\n")
GROUP = "root:x:0:root\nwheel:x:10:root\nnogroup:x:65534:\nuser:x:1000:\nextra:x:2000:\n"


def _make_busybox_tree(root: str) -> None:
    os.makedirs(root + "/bin")
    os.makedirs(root + "/etc")
    os.makedirs(root + "/tmp", mode=0o1777)
    shutil.copy("/bin/busybox", root + "/bin/busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", f"{root}/bin/{a}")
    with open(root + "/etc/passwd", "w") as f:
        f.write(PASSWD)
    with open(root + "/etc/group", "w") as f:
        f.write(GROUP)


@pytest.fixture(scope="session")
def lower(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("busybox") / "lower")
    _make_busybox_tree(root)
    # Hostile entries: symlinks that point out of the rootfs.
    os.symlink("/../../../../../../tmp/sampan-escape-" + uuid.uuid4().hex, root + "/evil")
    os.symlink("../../../../../../../etc", root + "/hostetc")
    return root


class Box:
    def __init__(self, base: str, lower: str):
        self.lower = lower
        self.upper = base + "/upper"
        self.work = base + "/work"
        self.merged = base + "/merged"
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d)
        self.mount = Mount("overlay", "overlay", self.merged,
                           (f"lowerdir={lower}", f"upperdir={self.upper}",
                            f"workdir={self.work}"))


@pytest.fixture
def box(tmp_path, lower):
    return Box(str(tmp_path), lower)


def spec_for(box: Box, cmd, *, config=None, host_config=None, etc_files=None, **kw) -> dict:
    cfg = {"Cmd": cmd}
    cfg.update(config or {})
    return build_spec(config=cfg, host_config=host_config or {}, image_config={},
                      rootfs=box.merged, hostname="sampantest", etc_files=etc_files or {},
                      container_id="c0ffee", **kw)


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks)


def run(spec: dict, mount: Mount | None, *, stdio=None):
    """(exit code, stdout, stderr, error dict or None) of running `spec` as a container."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.close(fail_r)
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                run_child(spec, mount, stdio if stdio is not None else (None, out_w, err_w),
                          fail_w)
            os.close(fail_w)
            _, st = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
        finally:
            os._exit(99)
    for fd in (out_w, err_w, fail_w):
        os.close(fd)
    fail = _read_all(fail_r)
    out = _read_all(out_r)
    err = _read_all(err_r)
    _, st = os.waitpid(pid, 0)
    return (os.waitstatus_to_exitcode(st), out.decode(), err.decode(),
            json.loads(fail) if fail else None)


def sh(box, script, **kw):
    mount = kw.pop("mount", box.mount)
    code, out, err, fail = run(spec_for(box, ["sh", "-c", script], **kw), mount)
    assert fail is None, fail
    return code, out, err


def test_pid1_hostname_and_only_own_processes(box):
    code, out, _ = sh(box, "echo $$; hostname; ls -d /proc/[0-9]* | wc -l")
    lines = out.split()
    assert code == 0
    assert lines[0] == "1"
    assert lines[1] == "sampantest"
    assert int(lines[2]) <= 3  # sh, ls (and wc): nothing of the host


def test_default_capabilities_match_docker(box):
    _, out, _ = sh(box, "grep -E 'Cap(Eff|Prm|Bnd|Inh)' /proc/self/status")
    caps = dict(line.split(":\t") for line in out.strip().splitlines())
    assert caps["CapEff"] == "00000000a80425fb"
    assert caps["CapPrm"] == "00000000a80425fb"
    assert caps["CapBnd"] == "00000000a80425fb"
    assert caps["CapInh"] == "0000000000000000"


def test_masked_and_readonly_paths(box):
    code, out, err = sh(box, "cat /proc/keys; echo keys=$?; ls /sys/firmware | wc -l;"
                             " echo 1 > /proc/sys/kernel/domainname; echo sys=$?")
    assert "keys=0" in out  # readable, but it is /dev/null: empty
    assert out.split("keys=0")[0].strip() == ""
    assert out.split()[1] == "0"
    assert "sys=1" in out and "Read-only file system" in err


def test_write_lands_in_upper_not_lower(box):
    code, _, _ = sh(box, "echo hello > /newfile && rm /bin/ls")
    assert code == 0
    with open(os.path.join(box.upper, "newfile")) as f:
        assert f.read() == "hello\n"
    assert not os.path.exists(os.path.join(box.lower, "newfile"))
    assert os.path.lexists(os.path.join(box.lower, "bin/ls"))
    # The overlay lived only in the container's mount namespace.
    assert os.listdir(box.merged) == []


def test_mount_denied_without_sys_admin_and_allowed_with(box):
    code, _, err = sh(box, "mkdir -p /m && mount -t tmpfs t /m")
    assert code != 0 and "permission denied" in err.lower()
    code, _, err = sh(box, "mkdir -p /m && mount -t tmpfs t /m",
                      host_config={"CapAdd": ["SYS_ADMIN"]})
    assert code == 0, err


def test_cap_drop_all(box):
    _, out, _ = sh(box, "grep CapEff /proc/self/status", host_config={"CapDrop": ["ALL"]})
    assert out.split()[1] == "0000000000000000"


def test_numeric_user_has_uid_and_no_caps(box):
    _, out, _ = sh(box, "id -u; id -g; grep -E 'Cap(Eff|Prm|Bnd)' /proc/self/status; echo $HOME",
                   config={"User": "1000"})
    lines = out.split("\n")
    assert lines[0] == "1000"
    assert lines[1] == "1000"  # from passwd
    assert "CapEff:\t0000000000000000" in out
    assert "CapPrm:\t0000000000000000" in out
    assert "CapBnd:\t00000000a80425fb" in out
    assert lines[-2] == "/home/user"


def test_named_user_group_and_group_add(box):
    _, out, _ = sh(box, "id", config={"User": "user:nogroup"},
                   host_config={"GroupAdd": ["extra", "3000"]})
    assert out.startswith("uid=1000(user) gid=65534(nogroup)")
    assert "2000(extra)" in out and "3000" in out
    _, out, _ = sh(box, "id")
    assert out.strip() == "uid=0(root) gid=0(root) groups=0(root),10(wheel)"


def test_unknown_user_is_a_clear_error(box):
    code, _, _, fail = run(spec_for(box, ["true"], config={"User": "nosuch"}), box.mount)
    assert fail["message"] == "unable to find user nosuch: no matching entries in passwd file"
    assert code == fail["exit_code"] != 0


def test_no_extra_fds(box):
    _, out, _ = sh(box, "ls /proc/self/fd")
    assert set(out.split()) <= {"0", "1", "2", "3"}


def test_missing_command_127_and_not_executable_126(box):
    code, _, _, fail = run(spec_for(box, ["foo"]), box.mount)
    assert fail == {"message": 'exec: "foo": executable file not found in $PATH',
                    "exit_code": 127}
    assert code == 127
    code, _, _, fail = run(spec_for(box, ["/etc/passwd"]), box.mount)
    assert fail["exit_code"] == 126 == code and "permission denied" in fail["message"]


def test_env_cwd_created_and_tty_env(box):
    _, out, _ = sh(box, "pwd; echo $PATH; echo $HOSTNAME; echo $HOME; echo $FOO",
                   config={"WorkingDir": "/work/dir", "Env": ["FOO=bar"]})
    assert out.split() == ["/work/dir", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                           "/sbin:/bin", "sampantest", "/root", "bar"]
    assert os.path.isdir(os.path.join(box.upper, "work/dir"))


def test_readonly_rootfs_keeps_dev_shm_writable(box):
    code, out, err = sh(box, "touch /x; echo root=$?; touch /dev/shm/x; echo shm=$?",
                        host_config={"ReadonlyRootfs": True})
    assert "root=1" in out and "shm=0" in out


def test_loopback_up_rlimits_sysctls(box):
    _, out, _ = sh(box, "cat /sys/class/net/lo/flags; ulimit -n; ulimit -Hn;"
                        " cat /proc/sys/net/ipv4/ip_forward",
                   host_config={"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                                "Sysctls": {"net.ipv4.ip_forward": "1"}})
    flags, soft, hard, fwd = out.split()
    assert int(flags, 16) & 1  # IFF_UP
    assert (soft, hard, fwd) == ("1024", "2048", "1")


def test_etc_files_bound_and_symlinks_stay_inside(box, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("10.0.0.1 sampantest\n")
    escape = os.readlink(os.path.join(box.lower, "evil")).split("/")[-1]
    code, out, err = sh(box, "cat /etc/hosts; touch /evil/x/y 2>/dev/null; echo ok",
                        etc_files={"/etc/hosts": str(hosts)},
                        host_config={"Tmpfs": {"/evil/x": "", "/hostetc/sampan-t": ""}})
    assert code == 0, err
    assert "10.0.0.1 sampantest" in out
    # The tmpfs mount points were created inside the rootfs, never on the host.
    assert not os.path.exists("/tmp/" + escape)
    assert not os.path.exists("/etc/sampan-t")
    assert os.path.isdir(os.path.join(box.upper, "tmp", escape, "x"))


def test_init_is_pid1(box):
    if not os.path.exists("/usr/bin/tini-static"):
        pytest.skip("tini-static not installed")
    _, out, _ = sh(box, "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
                   host_config={"Init": True})
    first, me = out.strip().split("\n")
    assert first.startswith("/sbin/docker-init -- sh -c")
    assert me != "1"


def test_tty_is_controlling_terminal_and_console(box):
    master, slave = os.openpty()
    spec = spec_for(box, ["sh", "-c", "tty; ls -l /dev/console | wc -l; echo $TERM"],
                    config={"Tty": True})
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            os.close(master)
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                run_child(spec, box.mount, slave, fail_w)
            _, st = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
        finally:
            os._exit(99)
    os.close(slave)
    os.close(fail_w)
    assert _read_all(fail_r) == b""
    out = b""
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        out += b
    os.waitpid(pid, 0)
    os.close(master)
    lines = out.decode().split()
    # A pty handed in as stdio (not made through the console socket) is the host's devpts'
    # one, so inside it is known only as /dev/console. The monitor uses the console socket.
    assert lines[0] == "/dev/console"
    assert lines[1] == "1"
    assert lines[2] == "xterm"


def _run_with_console(spec: dict, mount: Mount | None, timeout: float = 10.0):
    """Run `spec` as the monitor does for a tty: a console socket instead of stdio.

    Returns (pty master or None, output read from it, exit code, error dict or None).
    """
    csock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            csock.close()
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                run_child(spec, mount, None, fail_w, console_fd=theirs.fileno())
            os.close(fail_w)
            theirs.close()
            _, st = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
        finally:
            os._exit(99)
    theirs.close()
    os.close(fail_w)
    master = console.recv_master(csock, timeout)
    csock.close()
    out = b""
    if master is not None:
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: every slave fd is closed
                break
            if not b:
                break
            out += b
    fail = _read_all(fail_r)
    _, st = os.waitpid(pid, 0)
    return master, out.decode(), os.waitstatus_to_exitcode(st), json.loads(fail) if fail else None


def test_tty_comes_from_the_containers_own_devpts(box):
    script = ("tty; ls /dev/pts; stty size; test -t 0 && echo stdin-tty; "
              "stat -c %t:%T /dev/console /dev/pts/0; ls /dev/pts/ptmx")
    spec = spec_for(box, ["sh", "-c", script], config={"Tty": True},
                    host_config={"ConsoleSize": [33, 111]})
    master, out, code, fail = _run_with_console(spec, box.mount)
    assert fail is None and code == 0
    os.close(master)
    lines = out.replace("\r", "").split("\n")
    # /dev/pts/0 of a devpts that has only this pty: not the host's, whose ptys number on.
    assert lines[0] == "/dev/pts/0"
    assert lines[1].split() == ["0", "ptmx"]
    assert lines[2] == "33 111"  # consoleSize applied before the process started
    assert lines[3] == "stdin-tty"
    assert lines[4] == lines[5] == "88:0"  # /dev/console is the same pty (136 = 0x88)
    assert lines[6] == "/dev/pts/ptmx"


def test_tty_child_failing_before_its_console_closes_the_socket(box):
    spec = spec_for(box, ["true"], config={"Tty": True})
    spec["mounts"].append({"destination": "/bad", "type": "no-such-fs", "source": "x"})
    master, out, code, fail = _run_with_console(spec, box.mount)
    assert master is None and out == ""
    assert code == 128
    assert "error mounting" in fail["message"] and fail["exit_code"] == 128


def test_tty_exec_failing_after_its_console_reports_on_err_fd(box):
    spec = spec_for(box, ["no-such-command"], config={"Tty": True})
    master, _, code, fail = _run_with_console(spec, box.mount)
    assert master is not None  # sent before the exec, which then failed
    os.close(master)
    assert code == 127 and "executable file not found" in fail["message"]


def test_plain_rootfs_without_mount(tmp_path):
    root = str(tmp_path / "rootfs")
    _make_busybox_tree(root)
    spec = build_spec(config={"Cmd": ["sh", "-c", "echo $$ > /pid1"]}, host_config={},
                      image_config={}, rootfs=root, hostname="h", etc_files={},
                      container_id="x")
    code, _, _, fail = run(spec, None)
    assert fail is None and code == 0
    with open(root + "/pid1") as f:
        assert f.read() == "1\n"


def test_exec_child_joins_running_container(box):
    spec = spec_for(box, ["sh", "-c", "echo started > /tmp/ready; exec sleep 30"])
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid_r, pid_w = os.pipe()
    monitor = os.fork()
    if monitor == 0:
        try:
            os.close(pid_r)
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                run_child(spec, box.mount, (None, None, None), fail_w)
            os.close(fail_w)
            os.write(pid_w, str(child).encode())
            os.close(pid_w)
            _, st = os.waitpid(child, 0)
            os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
        finally:
            os._exit(99)
    os.close(pid_w)
    os.close(fail_w)
    pid1 = int(_read_all(pid_r))
    assert _read_all(fail_r) == b""
    try:
        deadline = time.time() + 5
        while not os.path.exists(os.path.join(box.upper, "tmp/ready")):
            assert time.time() < deadline
            time.sleep(0.01)
        ns = {n: os.open(f"/proc/{pid1}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC)
              for n in ("mnt", "uts", "ipc", "net", "cgroup")}
        pidns = os.open(f"/proc/{pid1}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        proc = build_exec_process(spec, cmd=["sh", "-c", "hostname; id -un; cat /proc/1/comm;"
                                             " ls /proc/self/fd; pwd"],
                                  user="1000", workdir="/tmp")
        out_r, out_w = os.pipe()
        e_r, e_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(out_r)
                sc.setns(pidns, sc.CLONE_NEWPID)
                child = os.fork()
                if child == 0:
                    exec_child(proc, ns, (None, out_w, out_w), e_w)
                _, st = os.waitpid(child, 0)
                os._exit(os.waitstatus_to_exitcode(st) & 0xFF)
            finally:
                os._exit(99)
        os.close(out_w)
        os.close(e_w)
        for fd in list(ns.values()) + [pidns]:
            os.close(fd)
        assert _read_all(e_r) == b""
        out = _read_all(out_r).decode().split()
        _, st = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(st) == 0
        # `user` comes from the container's /etc/passwd: we are inside its root.
        assert out[0] == "sampantest" and out[1] == "user" and out[2] == "sleep"
        assert set(out[3:-1]) <= {"0", "1", "2", "3"}
        assert out[-1] == "/tmp"
    finally:
        os.kill(pid1, 9)
        os.waitpid(monitor, 0)


def test_long_overlay_lowerdir_is_shortened(tmp_path):
    # Enough layers that the absolute-path option string exceeds a page: the mount is done
    # with paths relative to their common parent instead (as moby does).
    base = str(tmp_path / "layers")
    layers = []
    for i in range(70):
        d = f"{base}/{i:03d}-{'x' * 50}"
        os.makedirs(d)
        layers.append(d)
    with open(layers[0] + "/marker", "w") as f:
        f.write("top\n")
    _make_busybox_tree(base + "/zz-busybox")
    layers.append(base + "/zz-busybox")
    for d in ("upper", "work", "merged"):
        os.makedirs(f"{base}/{d}")
    m = Mount("overlay", "overlay", base + "/merged",
              ("lowerdir=" + ":".join(layers), f"upperdir={base}/upper", f"workdir={base}/work"))
    assert len(",".join(m.options)) > 4096
    spec = build_spec(config={"Cmd": ["cat", "/marker"]}, host_config={}, image_config={},
                      rootfs=base + "/merged", hostname="h", etc_files={}, container_id="x")
    code, out, _, fail = run(spec, m)
    assert fail is None and code == 0
    assert out == "top\n"


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_external_runtime_runs_our_spec(tmp_path, runtime):
    if shutil.which(runtime) is None:
        pytest.skip(f"{runtime} not installed")
    root = str(tmp_path / "rootfs")
    _make_busybox_tree(root)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    spec = build_spec(config={"Cmd": ["sh", "-c", "echo $$; hostname; id -u; echo $HOME;"
                                      " grep CapEff /proc/self/status; cat /etc/hosts"],
                              "User": "user"},
                      host_config={}, image_config={}, rootfs=root, hostname="ocihost",
                      etc_files={"/etc/hosts": str(hosts)}, container_id="oci")
    bundle = str(tmp_path / "bundle")
    oci.write_bundle(bundle, spec)
    cid = f"sampan-test-{uuid.uuid4().hex[:12]}"
    state = str(tmp_path / "state")
    r = subprocess.run(oci.runtime_argv(runtime, bundle, cid, state_root=state),
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    subprocess.run(oci.runtime_delete_argv(runtime, cid, state_root=state),
                   capture_output=True)
    if runtime == "crun" and "hybrid mode not supported" in r.stderr:
        pytest.skip("crun does not support this host's hybrid cgroup layout")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[:4] == ["1", "ocihost", "1000", "/home/user"]
    assert "CapEff:\t0000000000000000" in r.stdout
    assert "127.0.0.1 localhost" in r.stdout


def test_privileged_gets_host_devices_and_caps(box):
    _, held, _ = sc.capget()
    code, out, err = sh(box, "grep CapEff /proc/self/status; ls /dev | wc -l;"
                             " mkdir -p /m && mount -t tmpfs t /m && echo mounted;"
                             " cat /proc/keys >/dev/null && echo keys",
                        host_config={"Privileged": True})
    assert code == 0, err
    lines = out.split("\n")
    assert int(lines[0].split()[1], 16) == held & ((1 << 41) - 1)
    assert int(lines[1]) > 20  # the host's device nodes, not just Docker's six
    assert "mounted" in out


def test_user_device_mapping(box):
    _, out, _ = sh(box, "ls -l /dev/mynull; echo hi > /dev/mynull && echo ok",
                   host_config={"Devices": [{"PathOnHost": "/dev/null",
                                             "PathInContainer": "/dev/mynull",
                                             "CgroupPermissions": "rwm"}]})
    assert out.startswith("crw") and "1,   3" in out and "ok" in out


def test_seccomp_default_and_unconfined(box):
    _, out, _ = sh(box, "unshare -U true; echo rc=$?; grep Seccomp: /proc/self/status")
    assert "rc=1" in out and "Seccomp:\t2" in out
    _, out, _ = sh(box, "unshare -U true; echo rc=$?; grep Seccomp: /proc/self/status",
                   host_config={"SecurityOpt": ["seccomp=unconfined"]})
    assert "rc=0" in out and "Seccomp:\t0" in out


def test_monitor_tty_sizes_for_run_and_exec(box, tmp_path):
    """The monitor's side of the console socket: MonitorSpec.console_size and an exec
    request's console_size reach the ptys before the processes start."""
    from sampan.monitor import process as monitor
    from sampan.monitor import protocol

    spec = spec_for(box, ["sh", "-c", "tty; stty size; exec sleep 30"], config={"Tty": True})
    run_dir = str(tmp_path / "m")
    os.makedirs(run_dir)
    ms = monitor.MonitorSpec(
        id="c0ffee", spec=spec, rootfs_mount=box.mount, tty=True, open_stdin=False,
        stdin_once=False, log_path=run_dir + "/log.json", exit_path=run_dir + "/exit.json",
        socket_path=run_dir + "/mon.sock", bundle=run_dir, console_size=(21, 77))
    status = monitor.spawn(ms, [])
    status.settimeout(20)
    first = json.loads(status.makefile().readline())
    assert first["event"] == "started", first
    try:
        deadline = time.time() + 10
        logged = ""
        while "21 77" not in logged:
            assert time.time() < deadline, logged
            time.sleep(0.02)
            with open(ms.log_path) as f:
                logged = "".join(json.loads(line)["log"] for line in f)
        assert logged.replace("\r", "").split("\n")[:2] == ["/dev/pts/0", "21 77"]

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = build_exec_process(spec, cmd=["sh", "-c", "tty; stty size"], tty=True)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10)
        conn.connect(ms.socket_path)
        protocol.send_msg(conn, {"op": "exec", "id": "e1", "process": proc, "tty": True,
                                 "stdin": False, "console_size": [22, 66]}, [theirs.fileno()])
        reply, _ = protocol.recv_msg(conn)
        conn.close()
        theirs.close()
        assert reply.get("pid"), reply
        ours.settimeout(10)
        out = b""
        while chunk := ours.recv(4096):
            out += chunk
        ours.close()
        assert out.decode().replace("\r", "").split() == ["/dev/pts/1", "22", "66"]
    finally:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(10)
        try:
            conn.connect(ms.socket_path)
            protocol.send_msg(conn, {"op": "signal", "signal": 9})
            protocol.recv_msg(conn)
        finally:
            conn.close()
        while status.recv(4096):  # EOF: the monitor recorded the exit and is gone
            pass
        status.close()
    with open(ms.exit_path) as f:
        assert json.load(f)["exit_code"] == 137
