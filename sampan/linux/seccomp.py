"""seccomp: compile an OCI `linux.seccomp` object to classic BPF and install it.

Only what container profiles use: actions ALLOW/ERRNO/KILL/KILL_PROCESS/TRAP/LOG, syscall
names (unknown names are skipped, as libseccomp does), and argument conditions EQ, NE,
LT, LE, GT, GE (unsigned) and MASKED_EQ on 64-bit arguments. Syscall numbers beyond the
table get ENOSYS. Only the native architecture is allowed through: a syscall made with
another ABI (i386 `int 0x80`, x32) gets EPERM, so it cannot step around the list.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

from .syscall_table import TABLES
from .syscalls import _check, _libc

_ARCH = platform.machine()
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "arm64": 0xC00000B7}
_X32_BIT = 0x40000000

RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

# BPF opcodes (linux/filter.h)
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGT_K = 0x25
_JGE_K = 0x35
_JSET_K = 0x45
_AND_K = 0x54
_RET_K = 0x06

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def supported() -> bool:
    return _ARCH in _AUDIT_ARCH and _ARCH in TABLES


def _action(name: str, errno_ret: int | None) -> int:
    if name == "SCMP_ACT_ALLOW":
        return RET_ALLOW
    if name == "SCMP_ACT_ERRNO":
        return RET_ERRNO | ((errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return RET_KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return RET_KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return RET_TRAP
    if name == "SCMP_ACT_LOG":
        return RET_LOG
    raise ValueError(f"unsupported seccomp action {name!r}")


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k & 0xFFFFFFFF)


def _arg_block(args: list[dict]) -> list[tuple] | None:
    """Instructions checking every condition; each failing check jumps to the block's end
    (encoded as jf=None, patched by the caller). None when a condition is unsupported."""
    block: list[tuple] = []
    for a in args:
        idx = int(a["index"])
        if not 0 <= idx < 6:
            return None
        op = a.get("op")
        value = int(a.get("value", 0))
        two = int(a.get("valueTwo", 0))
        lo_off, hi_off = 16 + 8 * idx, 20 + 8 * idx  # seccomp_data.args[i], little endian
        if op == "SCMP_CMP_MASKED_EQ":
            for off, mask, want in ((lo_off, value, two), (hi_off, value >> 32, two >> 32)):
                block += [("ld", off), ("and", mask & 0xFFFFFFFF), ("jne", want & 0xFFFFFFFF)]
        elif op == "SCMP_CMP_EQ":
            block += [("ld", lo_off), ("jne", value & 0xFFFFFFFF),
                      ("ld", hi_off), ("jne", value >> 32)]
        elif op == "SCMP_CMP_NE":
            # arg != v  <=>  not (lo == v_lo and hi == v_hi): a differing low word skips
            # the high-word check and goes on to the next condition (or the action).
            block += [("ld", lo_off), ("jeq_match", value & 0xFFFFFFFF),
                      ("ld", hi_off), ("jeq_fail", value >> 32)]
        elif op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
            # Unsigned 64-bit: a greater high word passes, a smaller one fails, an equal one
            # leaves it to the low word.
            last = "jgt_else_fail" if op == "SCMP_CMP_GT" else "jge_else_fail"
            block += [("ld", hi_off), ("jgt_skip", value >> 32, 3), ("jne", value >> 32),
                      ("ld", lo_off), (last, value & 0xFFFFFFFF)]
        elif op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
            last = "jge_fail" if op == "SCMP_CMP_LT" else "jgt_fail"
            block += [("ld", hi_off), ("jgt_fail", value >> 32), ("jeq_else_skip", value >> 32, 2),
                      ("ld", lo_off), (last, value & 0xFFFFFFFF)]
        else:
            return None
    return block


def compile_filter(profile: dict) -> bytes:
    """The BPF program (an array of struct sock_filter) for an OCI seccomp object."""
    if not supported():
        raise ValueError(f"seccomp not supported on {_ARCH}")
    table = TABLES[_ARCH]
    default = _action(profile.get("defaultAction", "SCMP_ACT_ALLOW"),
                      profile.get("defaultErrnoRet"))
    prog: list[tuple] = [
        _ins(_LD_W_ABS, 4),
        _ins(_JEQ_K, _AUDIT_ARCH[_ARCH], 1, 0),
        _ins(_RET_K, RET_ERRNO | errno.EPERM),
        _ins(_LD_W_ABS, 0),
    ]
    if _ARCH == "x86_64":
        prog += [_ins(0x35, _X32_BIT, 0, 1),  # JGE: x32 ABI numbers
                 _ins(_RET_K, RET_ERRNO | errno.EPERM)]
    # Syscalls newer than our table: no profile can have meant them, and a deny-list
    # profile would let them through. ENOSYS (as runc does) makes libc fall back to the
    # older call the profile does know.
    prog += [_ins(0x25, max(table.values()), 0, 1),  # JGT
             _ins(_RET_K, RET_ERRNO | errno.ENOSYS)]
    for rule in profile.get("syscalls") or []:
        ret = _action(rule.get("action", "SCMP_ACT_ALLOW"), rule.get("errnoRet"))
        block = _arg_block(rule.get("args") or [])
        if block is None:
            continue  # a condition we cannot express: leave the rule out
        for name in rule.get("names") or []:
            nr = table.get(name)
            if nr is None:
                continue
            body: list[tuple] = []
            for i, item in enumerate(block):
                kind, k = item[0], item[1]
                if kind == "ld":
                    body.append(_ins(_LD_W_ABS, k))
                elif kind == "and":
                    body.append(_ins(_AND_K, k))
                else:
                    body.append(item)
            body.append(_ins(_RET_K, ret))
            n = len(body)
            out: list[tuple] = []
            for i, item in enumerate(body):
                to_end = n - i - 1  # jump target: the `ld nr` after the body
                if item[0] == "jne":
                    out.append(_ins(_JEQ_K, item[1], 0, to_end))
                elif item[0] == "jeq_match":
                    out.append(_ins(_JEQ_K, item[1], 0, 2))  # differs: past the hi check
                elif item[0] == "jeq_fail":
                    out.append(_ins(_JEQ_K, item[1], to_end, 0))
                elif item[0] == "jeq_else_skip":
                    out.append(_ins(_JEQ_K, item[1], 0, item[2]))
                elif item[0] == "jgt_skip":
                    out.append(_ins(_JGT_K, item[1], item[2], 0))
                elif item[0] == "jgt_fail":
                    out.append(_ins(_JGT_K, item[1], to_end, 0))
                elif item[0] == "jge_fail":
                    out.append(_ins(_JGE_K, item[1], to_end, 0))
                elif item[0] == "jgt_else_fail":
                    out.append(_ins(_JGT_K, item[1], 0, to_end))
                elif item[0] == "jge_else_fail":
                    out.append(_ins(_JGE_K, item[1], 0, to_end))
                else:
                    out.append(item)
            if n + 1 > 255:
                raise ValueError("seccomp rule too large")
            prog.append(_ins(_JEQ_K, nr, 0, n + 1 if block else n))
            prog += out
            if block:
                prog.append(_ins(_LD_W_ABS, 0))  # the arg checks clobbered A: reload nr
    prog.append(_ins(_RET_K, default))
    if len(prog) > 4096:
        raise ValueError("seccomp program too long")
    return b"".join(struct.pack("<HBBI", *p) for p in prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Load `program` for this thread. Needs no_new_privs or CAP_SYS_ADMIN."""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0))
