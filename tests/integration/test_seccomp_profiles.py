"""Custom seccomp profiles in Docker's JSON format (`--security-opt seccomp=<json>`), run in
real containers by sampan's runtime: the listed syscall is refused with the profile's errno
(or kills), an unlisted one works, caps/arch conditions are honoured, and a profile sampan
cannot enforce faithfully is refused up front instead of being half applied."""

from __future__ import annotations

import ctypes
import errno
import importlib.util
import json
import os
from pathlib import Path

import pytest

from sampan.errors import InvalidParameter
from sampan.linux.syscall_table import TABLES
from sampan.runtime.spec import build_spec

_spec = importlib.util.spec_from_file_location(
    "secharness", Path(__file__).with_name("secharness.py"))
H = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(H)

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(H.usable() is not None, reason=str(H.usable()))]

MKDIR_THEN_TOUCH = "mkdir /tmp/d; echo mkdir=$?; touch /tmp/f; echo touch=$?"


@pytest.fixture(scope="module")
def lower(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("seccomp") / "lower")
    H.make_lower(root)
    return root


@pytest.fixture
def box(tmp_path, lower):
    return H.Box(str(tmp_path), lower)


def opt(profile: dict) -> dict:
    # What the docker CLI sends: the file's content, compacted, after `seccomp=`.
    return {"SecurityOpt": ["seccomp=" + json.dumps(profile, separators=(",", ":"))]}


def deny(names, **rule) -> dict:
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [dict({"names": names, "action": "SCMP_ACT_ERRNO"}, **rule)]}


def test_listed_syscall_gets_eperm_unlisted_works(box):
    code, out, err = box.run(["sh", "-c", MKDIR_THEN_TOUCH],
                             host_config=opt(deny(["mkdir", "mkdirat"])))
    assert "mkdir=1" in out and "touch=0" in out, (out, err)
    assert "Operation not permitted" in err


def test_errno_ret_is_honoured(box):
    code, out, err = box.run(["sh", "-c", MKDIR_THEN_TOUCH],
                             host_config=opt(deny(["mkdir", "mkdirat"], errnoRet=errno.EACCES)))
    assert "mkdir=1" in out and "touch=0" in out
    assert "Permission denied" in err


def test_default_errno_ret_of_an_allow_list(box):
    # An allow-list (Docker's own style): everything known but mkdir/mkdirat; what is not
    # listed gets defaultErrnoRet.
    names = sorted(n for n in TABLES["x86_64"] if n not in ("mkdir", "mkdirat"))
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.EROFS,
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    code, out, err = box.run(["sh", "-c", MKDIR_THEN_TOUCH], host_config=opt(prof))
    assert "mkdir=1" in out and "touch=0" in out, (out, err)
    assert "Read-only file system" in err


def test_kill_action_kills_with_sigsys(box):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]}
    code, out, err = box.run(["sh", "-c", "mkdir /tmp/d; echo rc=$?"], host_config=opt(prof))
    assert "rc=159" in out  # 128 + SIGSYS


def test_argument_conditions(box):
    # socket(AF_INET, ...) refused, socket(AF_UNIX, ...) allowed: an EQ rule on arg 0.
    prof = deny(["socket"], args=[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}])
    script = ("import socket\n"
              "for fam in (socket.AF_UNIX, socket.AF_INET):\n"
              "    try:\n"
              "        socket.socket(fam).close(); print('ok')\n"
              "    except OSError as e:\n"
              "        print(e.errno)\n")
    code, out, err = box.run([H.HOST_PYTHON, "-I", "-c", script], host_config=opt(prof))
    assert out.split() == ["ok", str(errno.EPERM)], err


def test_two_conditions_including_ne(box):
    # socket(AF_INET, _, protocol != 0): an explicit protocol is refused, the default not.
    prof = deny(["socket"], args=[{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                                  {"index": 2, "value": 0, "op": "SCMP_CMP_NE"}])
    script = ("import socket\n"
              "for proto in (0, socket.IPPROTO_TCP):\n"
              "    try:\n"
              "        socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto).close()\n"
              "        print('ok')\n"
              "    except OSError as e:\n"
              "        print(e.errno)\n"
              "socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0).close()\n")
    code, out, err = box.run([H.HOST_PYTHON, "-I", "-c", script], host_config=opt(prof))
    assert out.split() == ["ok", str(errno.EPERM)], err
    assert code == 0, err


def test_caps_and_arches_conditions(box):
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        # Applies only to containers holding CAP_SYS_ADMIN.
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        # Applies only on s390x: never here.
        {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO",
         "includes": {"arches": ["s390x"]}},
        # Excluded on amd64: never here either.
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "excludes": {"arches": ["amd64"]}},
    ]}
    script = "mkdir /tmp/d; echo mkdir=$?; chmod 700 /tmp/d; echo chmod=$?; rmdir /tmp/d; echo rmdir=$?"
    _, out, _ = box.run(["sh", "-c", script], host_config=opt(prof))
    assert out.split() == ["mkdir=0", "chmod=0", "rmdir=0"]
    _, out, _ = box.run(["sh", "-c", script], host_config=dict(opt(prof), CapAdd=["SYS_ADMIN"]))
    assert out.split()[0] == "mkdir=1"


def test_unknown_syscall_names_are_skipped(box):
    # As libseccomp: a name this kernel/arch does not have is not an error.
    _, out, _ = box.run(["sh", "-c", MKDIR_THEN_TOUCH],
                        host_config=opt(deny(["no_such_syscall", "mkdir", "mkdirat"])))
    assert "mkdir=1" in out and "touch=0" in out


def test_privileged_and_unconfined_turn_it_off(box):
    prof = opt(deny(["mkdir", "mkdirat"]))
    _, out, _ = box.run(["sh", "-c", MKDIR_THEN_TOUCH + "; grep Seccomp: /proc/self/status"],
                        host_config=dict(prof, Privileged=True))
    assert "mkdir=0" in out and "Seccomp:\t0" in out
    _, out, _ = box.run(["sh", "-c", "grep Seccomp: /proc/self/status"],
                        host_config={"SecurityOpt": ["seccomp=unconfined"]})
    assert "Seccomp:\t0" in out
    _, out, _ = box.run(["sh", "-c", "grep Seccomp: /proc/self/status"],
                        host_config={"SecurityOpt": ["seccomp=builtin"]})
    assert "Seccomp:\t2" in out


def _build(host_config):
    return build_spec(config={"Cmd": ["true"]}, host_config=host_config, image_config={},
                      rootfs="/r", hostname="h", etc_files={}, container_id="x")


@pytest.mark.parametrize("text,fragment", [
    ("{not json", "decoding seccomp profile failed"),
    ("[]", "decoding seccomp profile failed"),
    ('{"syscalls": []}', "defaultAction"),
    ('{"defaultAction": "SCMP_ACT_BOGUS"}', "SCMP_ACT_BOGUS"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["x"]}}', "syscalls"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [5]}', "syscall"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", '
     '"action": "SCMP_ACT_ERRNO"}]}', "names"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_ERRNO", "errnoRet": "x"}]}', "errnoRet"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}',
     "SCMP_CMP_FOO"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]}',
     "unsigned"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
     "index"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], '
     '"action": "SCMP_ACT_NOTIFY"}]}', "SCMP_ACT_NOTIFY"),
])
def test_bad_profiles_are_invalid_parameter(text, fragment):
    with pytest.raises(InvalidParameter) as ei:
        _build({"SecurityOpt": ["seccomp=" + text]})
    assert fragment in str(ei.value)


# --- ordered comparisons, compiled by sampan and run by the kernel -----------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_V = (1 << 32) + 5  # the high word matters as much as the low one
_VALUES = [0, 4, 5, 6, 0xFFFFFFFF, (1 << 32) + 4, _V, (1 << 32) + 6, (2 << 32), (2 << 32) + 1,
           (1 << 64) - 1]
_CMP = {"SCMP_CMP_GT": lambda a: a > _V, "SCMP_CMP_GE": lambda a: a >= _V,
        "SCMP_CMP_LT": lambda a: a < _V, "SCMP_CMP_LE": lambda a: a <= _V,
        "SCMP_CMP_EQ": lambda a: a == _V, "SCMP_CMP_NE": lambda a: a != _V}


def _refused_values(op: str) -> list[int]:
    """Which of _VALUES a getpgid(arg) under `ERRNO 77 when arg <op> _V` gets refused."""
    from sampan.linux import seccomp
    from sampan.linux import syscalls as sc
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                          "args": [{"index": 0, "value": _V, "op": op}]}]}
    prog = seccomp.compile_filter(prof)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            sc.set_no_new_privs()
            seccomp.install(prog)
            hits = []
            for v in _VALUES:
                ctypes.set_errno(0)
                if _libc.syscall(ctypes.c_long(121), ctypes.c_ulong(v)) == -1 \
                        and ctypes.get_errno() == 77:
                    hits.append(v)
            os.write(w, json.dumps(hits).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.parametrize("op", sorted(_CMP))
def test_ordered_and_equality_comparisons_on_64_bit_arguments(op):
    assert _refused_values(op) == [v for v in _VALUES if _CMP[op](v)]


def test_a_range_rule_in_a_container(box):
    # write(2) refused for fds >= 3: stdout still works, tee (writing to the file it opened,
    # fd 3 or above) does not.
    prof = deny(["write"], errnoRet=errno.EBADF,
                args=[{"index": 0, "value": 3, "op": "SCMP_CMP_GE"}])
    script = "echo to-stdout; tee /tmp/x </etc/passwd >/dev/null; echo rc=$?"
    code, out, err = box.run(["sh", "-c", script], host_config=opt(prof))
    assert out.split() == ["to-stdout", "rc=1"], (out, err)
    assert "Bad file descriptor" in err
