"""Escape probes inside containers made by sampan's runtime, against the real kernel.

A DEFAULT container (Docker's capabilities, seccomp profile, masked and read-only paths) must
refuse every probe the way Docker's does (EPERM from seccomp or a missing capability, EROFS
from a read-only mount, ESRCH for host pids it cannot see); a `--privileged` one must be let
through where that is safe to try. The probes are made by the host's python bound into the
container (tests/integration/secprobe.py); the devices-cgroup probe (mknod + raw read of the
host's disk) needs the container's cgroup and is in tests/e2e/test_security.py.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "secharness", Path(__file__).with_name("secharness.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(H.usable() is not None, reason=str(H.usable()))]


@pytest.fixture(scope="module")
def lower(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("secprobe") / "lower")
    H.make_lower(root)
    return root


@pytest.fixture
def box(tmp_path, lower):
    return H.Box(str(tmp_path), lower)


# probe -> what a default Docker container answers (moby's default seccomp profile returns
# EPERM for everything outside its allow-list).
REFUSED_BY_DEFAULT = {
    "mount": "EPERM",
    "unshare_mount": "unshare:EPERM",
    "userns_mount": "unshare:EPERM",
    "init_module": "EPERM",
    "finit_module": "EPERM",
    "delete_module": "EPERM",
    "kexec_load": "EPERM",
    "reboot": "EPERM",
    "settimeofday": "EPERM",
    "clock_settime": "EPERM",
    "add_key": "EPERM",
    "keyctl": "EPERM",
    "request_key": "EPERM",
    "open_by_handle_at": "EPERM",
    "swapon": "EPERM",
    "acct": "EPERM",
    "io_uring_setup": "EPERM",
    "move_pages": "EPERM",
    "socket_vsock": "EPERM",
    "proc_sys_write": "EROFS",
    "sysrq_write": "EROFS",
    "sys_write": "EROFS",
    "sys_ro": "ro",
    "kcore": "0",       # masked: /dev/null bound over it
    "proc_keys": "0",
    "seccomp": "2",     # a filter is installed
    "nnp": "0",
}


def test_default_container_refuses_every_probe(box):
    host_pid = os.getpid()
    got = box.probe(*REFUSED_BY_DEFAULT, f"ptrace_host={host_pid}", f"kill_host={host_pid}")
    want = dict(REFUSED_BY_DEFAULT)
    # Some kernels (this VM's) have no /proc/kcore or /proc/sysrq-trigger: nothing to mask.
    for probe, path in (("kcore", "/proc/kcore"), ("sysrq_write", "/proc/sysrq-trigger")):
        if not os.path.exists(path):
            want[probe] = "ENOENT"
    # The test's own pid is a host pid: the container's pid namespace cannot name it.
    want[f"ptrace_host={host_pid}"] = "ESRCH"
    want[f"kill_host={host_pid}"] = "ESRCH"
    assert got == want


@pytest.mark.parametrize("user", ["root", "1000"])
def test_refused_for_root_and_non_root_alike(box, user):
    got = box.probe("mount", "unshare_mount", "userns_mount", "keyctl", "capeff",
                    config={"User": user})
    assert got["mount"] == "EPERM"
    assert got["unshare_mount"] == got["userns_mount"] == "unshare:EPERM"
    assert got["keyctl"] == "EPERM"
    assert got["capeff"] == ("00000000a80425fb" if user == "root" else "0000000000000000")


def test_busybox_unshare_then_mount_is_refused(box):
    code, out, err = box.run(["sh", "-c", "unshare -m mount -t tmpfs t /tmp; echo rc=$?;"
                                          " unshare -Urm true; echo userns=$?"])
    assert "rc=1" in out and "userns=1" in out, (out, err)
    assert "Operation not permitted" in err


def test_privileged_container_is_let_through(box):
    # Only what is harmless when allowed; reboot and module loading are not tried: seccomp
    # being off (mode 0) is what shows they would reach the kernel's own checks.
    got = box.probe("mount", "unshare_mount", "userns_mount", "add_key", "keyctl",
                    "settimeofday", "open_by_handle_at", "proc_sys_write", "sys_ro",
                    "sys_write", "socket_vsock", "seccomp", "capeff",
                    host_config={"Privileged": True})
    assert got.pop("seccomp") == "0"
    assert int(got.pop("capeff"), 16) & (1 << 21)  # CAP_SYS_ADMIN
    assert got.pop("sys_ro") == "rw"
    # A bogus handle: the kernel looked at it (ESTALE/EINVAL), nothing refused the call.
    assert got.pop("open_by_handle_at") not in ("EPERM", "ENOSYS")
    # vsock may be missing from the kernel (EAFNOSUPPORT): only the filter's answer matters.
    assert got.pop("socket_vsock") != "EPERM"
    assert got == {"mount": "ok", "unshare_mount": "ok", "userns_mount": "ok",
                   "add_key": "ok", "keyctl": "ok", "settimeofday": "ok",
                   "proc_sys_write": "ok", "sys_write": "ok"}


def test_cap_add_sys_admin_lifts_the_mount_gate_only(box):
    # Docker's profile ties mount/unshare to CAP_SYS_ADMIN, but keyctl stays refused.
    got = box.probe("mount", "unshare_mount", "keyctl", "init_module", "seccomp",
                    host_config={"CapAdd": ["SYS_ADMIN"]})
    assert got == {"mount": "ok", "unshare_mount": "ok", "keyctl": "EPERM",
                   "init_module": "EPERM", "seccomp": "2"}


def test_seccomp_unconfined_keeps_capabilities_as_the_gate(box):
    # Without the filter, the capability set still refuses what needs CAP_SYS_ADMIN etc.
    got = box.probe("mount", "init_module", "settimeofday", "reboot", "seccomp",
                    host_config={"SecurityOpt": ["seccomp=unconfined"]})
    # A kernel built without module support answers ENOSYS before any capability check.
    modules = "EPERM" if os.path.exists("/proc/modules") else "ENOSYS"
    assert got == {"mount": "EPERM", "init_module": modules, "settimeofday": "EPERM",
                   "reboot": "EPERM", "seccomp": "0"}


def test_no_new_privileges_stops_setuid(box):
    script = "/bin/supy -I -c 'import os; print(os.geteuid())'; grep NoNewPrivs /proc/self/status"
    code, out, err = box.run(["sh", "-c", script], config={"User": "1000"})
    assert out.split()[:3] == ["0", "NoNewPrivs:", "0"], (out, err)  # setuid works without
    code, out, err = box.run(["sh", "-c", script], config={"User": "1000"},
                             host_config={"SecurityOpt": ["no-new-privileges"]})
    assert out.split()[:3] == ["1000", "NoNewPrivs:", "1"], (out, err)
    code, out, err = box.run(["sh", "-c", script], config={"User": "1000"},
                             host_config={"SecurityOpt": ["no-new-privileges=false"]})
    assert out.split()[:3] == ["0", "NoNewPrivs:", "0"], (out, err)


def test_nothing_escaped_to_the_host(box):
    box.probe("mount", "unshare_mount", "proc_sys_write", host_config={"Privileged": True})
    # The privileged container's mounts were in its own mount namespace.
    with open("/proc/self/mountinfo") as f:
        assert "probe-mnt" not in f.read() and "probe-unshare" not in f.read()
    assert not os.path.exists("/tmp/probe-mnt")
    with open("/proc/sys/kernel/hostname") as f:
        assert f.read().strip() != "probehost"


def test_personality_only_with_dockers_values(box):
    got = box.probe("personality=0x0", "personality=0x8", "personality=0xffffffff",
                    "personality=0x40000", "personality=0x400000")
    # PER_LINUX, PER_LINUX32 and the query are fine; ADDR_NO_RANDOMIZE and READ_IMPLIES_EXEC
    # (ways to weaken ASLR and NX for what runs next) are not.
    assert got == {"personality=0x0": "ok", "personality=0x8": "ok",
                   "personality=0xffffffff": "ok", "personality=0x40000": "EPERM",
                   "personality=0x400000": "EPERM"}


def test_syscalls_newer_than_the_profile_get_enosys(box):
    from sampan.linux.syscall_table import TABLES
    newest = max(TABLES["x86_64"].values())
    probe_nr = f"nr={newest + 1}"  # cachestat on x86_64: in kernels >= 6.5
    host = H.run_host_probe(probe_nr)
    if host == "ENOSYS":
        pytest.skip("this kernel has no syscall beyond sampan's table")
    assert box.probe(probe_nr) == {probe_nr: "ENOSYS"}
    # Without the filter the kernel's own answer comes back.
    assert box.probe(probe_nr, host_config={"SecurityOpt": ["seccomp=unconfined"]}) == {
        probe_nr: host}
