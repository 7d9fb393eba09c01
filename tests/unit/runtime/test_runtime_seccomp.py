"""The seccomp BPF compiler, exercised for real in forked children (no root needed: the
child sets no_new_privs first, which is what lets an unprivileged process load a filter)."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from sampan.errors import InvalidParameter
from sampan.linux import caps, seccomp
from sampan.linux import syscalls as sc
from sampan.linux.syscall_table import TABLES
from sampan.runtime.seccomp_profile import default_profile, from_docker_profile
from sampan.runtime.spec import build_exec_process, build_spec

pytestmark = pytest.mark.skipif(not seccomp.supported(), reason="arch without seccomp table")

_libc = ctypes.CDLL(None, use_errno=True)


def _errno_of(fn, *args) -> int:
    ctypes.set_errno(0)
    r = fn(*args)
    return ctypes.get_errno() if r == -1 else 0


def in_filtered_child(profile: dict, probe) -> int:
    """Run probe() in a child under `profile`; returns the child's exit status."""
    prog = seccomp.compile_filter(profile)
    pid = os.fork()
    if pid == 0:
        try:
            sc.set_no_new_privs()
            seccomp.install(prog)
            os._exit(probe())
        except BaseException:
            os._exit(250)
    _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st)


def test_plain_deny_and_default_allow():
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpgid", "nosuchcall"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 42}]}
    assert in_filtered_child(prof, lambda: _errno_of(_libc.getpgid, 0)) == 42
    assert in_filtered_child(prof, lambda: _errno_of(_libc.getsid, 0)) == 0


def test_masked_eq_argument_rule():
    # Refuse setpgid only when the pid argument has bit 0x4000 set.
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["setpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                          "args": [{"index": 0, "value": 0x4000, "valueTwo": 0x4000,
                                    "op": "SCMP_CMP_MASKED_EQ"}]}]}
    assert in_filtered_child(prof, lambda: _errno_of(_libc.setpgid, 0x4001, 0)) == 77
    # Without the bit the kernel answers (ESRCH: no such process), not the filter.
    assert in_filtered_child(prof, lambda: _errno_of(_libc.setpgid, 0x3001, 0)) == errno.ESRCH
    # Rules after an argument rule still see the syscall number.
    prof["syscalls"].append({"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5})
    assert in_filtered_child(prof, lambda: _errno_of(_libc.getpgid, 0)) == 5


def test_eq_and_ne_rules():
    eq = {"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                        "args": [{"index": 0, "value": 1 << 33, "op": "SCMP_CMP_EQ"}]}]}
    assert in_filtered_child(eq, lambda: _errno_of(_libc.getpgid, ctypes.c_long(1 << 33))) == 9
    assert in_filtered_child(eq, lambda: _errno_of(_libc.getpgid, 0)) == 0
    ne = {"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 9,
                        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]}]}
    assert in_filtered_child(ne, lambda: _errno_of(_libc.getpgid, 0)) == 0
    assert in_filtered_child(ne, lambda: _errno_of(_libc.getpgid, 123456)) == 9


def test_allowlist_profile():
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "syscalls": [{"names": ["exit_group", "exit", "getpid", "rt_sigreturn", "write",
                                    "wait4", "munmap", "brk", "mmap"], "action": "SCMP_ACT_ALLOW"}]}
    assert in_filtered_child(prof, lambda: _errno_of(_libc.getsid, 0)) == errno.EPERM
    assert in_filtered_child(prof, lambda: _errno_of(_libc.getpgid, 0)) == errno.EPERM
    assert in_filtered_child(prof, lambda: 0 if _libc.getpid() > 0 else 1) == 0


def test_default_profile_blocks_user_namespaces_and_keys():
    prof = default_profile(list(caps.DOCKER_DEFAULT_CAPS))
    assert in_filtered_child(prof, lambda: _errno_of(_libc.unshare, sc.CLONE_NEWUSER)) == \
        errno.EPERM
    keyctl = TABLES[os.uname().machine]["keyctl"]
    assert in_filtered_child(prof, lambda: _errno_of(_libc.syscall, keyctl, 0)) == errno.EPERM
    # An ordinary fork still works under the clone rules.
    def forks():
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert in_filtered_child(prof, forks) == 7


def test_default_profile_follows_caps():
    names = lambda p: set(p["syscalls"][0]["names"])  # noqa: E731
    assert "mount" in names(default_profile(list(caps.DOCKER_DEFAULT_CAPS)))
    admin = default_profile(list(caps.DOCKER_DEFAULT_CAPS) + ["CAP_SYS_ADMIN"])
    assert "mount" not in names(admin) and "keyctl" in names(admin)
    assert not any(r["names"] == ["clone"] for r in admin["syscalls"])


def test_spec_seccomp_modes():
    def s(hc):
        return build_spec(config={"Cmd": ["x"]}, host_config=hc, image_config={}, rootfs="/r",
                          hostname="h", etc_files={}, container_id="i")
    assert s({})["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "seccomp" not in s({"SecurityOpt": ["seccomp=unconfined"]})["linux"]
    assert "seccomp" not in s({"Privileged": True})["linux"]
    custom = s({"SecurityOpt": ['seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": '
                                '[{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"}, '
                                '{"names": ["mount"], "action": "SCMP_ACT_ALLOW", '
                                '"includes": {"caps": ["CAP_SYS_ADMIN"]}}]}']})
    assert custom["linux"]["seccomp"]["syscalls"] == [{"names": ["chmod"],
                                                       "action": "SCMP_ACT_ERRNO"}]
    with pytest.raises(InvalidParameter):
        s({"SecurityOpt": ["seccomp={not json"]})
    with pytest.raises(InvalidParameter):
        from_docker_profile('{"defaultAction": "SCMP_ACT_BOGUS"}', [])
    spec = s({})
    assert build_exec_process(spec, cmd=["ls"])["seccomp"] == spec["linux"]["seccomp"]
