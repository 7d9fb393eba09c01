"""Device access control on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices.allow/deny files. The kernel instead runs a small eBPF program,
attached to the cgroup, on every device open and mknod: it reads the request from a
`struct bpf_cgroup_dev_ctx` {u32 access_type (access << 16 | type), u32 major, u32 minor}
and returns 1 (allow) or 0 (deny). This module compiles the container's OCI device rules
(the same list the v1 driver writes to devices.allow/deny) into such a program by hand —
no compiler, no libbpf — loads it with bpf(2) and attaches it to the container's cgroup.

Rule semantics are those of the v1 lists as OCI runtimes apply them: the rules are read in
order and the LAST one matching a request decides; nothing matching means deny. So the
program tests the rules from the last to the first and returns at the first match.

Instruction encoding (linux/bpf.h, linux/bpf_common.h): 8 bytes each, {u8 code; u8
dst:4, src:4; s16 off; s32 imm}; jump offsets count instructions after the jump.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Any

from .fs import CgroupError

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351}.get(os.uname().machine, 321)
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4
_ACCESS = {"m": ACC_MKNOD, "r": ACC_READ, "w": ACC_WRITE}

# opcodes
_LDXW = 0x61      # BPF_LDX | BPF_MEM | BPF_W
_MOV_REG = 0xBF   # BPF_ALU64 | BPF_MOV | BPF_X
_MOV_IMM = 0xB7   # BPF_ALU64 | BPF_MOV | BPF_K
_AND_IMM = 0x57   # BPF_ALU64 | BPF_AND | BPF_K
_RSH_IMM = 0x77   # BPF_ALU64 | BPF_RSH | BPF_K
_JNE_IMM = 0x55   # BPF_JMP | BPF_JNE | BPF_K
_EXIT = 0x95      # BPF_JMP | BPF_EXIT

_INSN = struct.Struct("=BBhi")


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return _INSN.pack(code, (src << 4) | dst, off, imm)


def _rule_checks(rule: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(opcode, register, immediate) tests a request must pass for `rule` to match; each
    failing test jumps to the next rule. Registers: r3 type, r4 access, r5 major, r6 minor."""
    checks: list[tuple[int, int, int]] = []
    kind = rule.get("type") or "a"
    if kind in ("c", "b"):
        checks.append((_JNE_IMM, 3, DEV_CHAR if kind == "c" else DEV_BLOCK))
    elif kind != "a":
        raise CgroupError(f"invalid device type {kind!r} in a device rule")
    access = 0
    for ch in rule.get("access") or "rwm":
        if ch not in _ACCESS:
            raise CgroupError(f"invalid device access {ch!r} in a device rule")
        access |= _ACCESS[ch]
    if access != ACC_MKNOD | ACC_READ | ACC_WRITE:
        # every requested access bit must be in the rule's set: (access & ~allowed) == 0
        checks.append((_AND_IMM, 7, ~access))
    for reg, key in ((5, "major"), (6, "minor")):
        value = rule.get(key)
        if value is not None and value != -1:
            if not isinstance(value, int) or value < 0 or value >= 1 << 31:
                raise CgroupError(f"invalid device {key} {value!r} in a device rule")
            checks.append((_JNE_IMM, reg, value))
    return checks


def compile_rules(rules: list[dict[str, Any]]) -> bytes:
    """The program's instructions for OCI `linux.resources.devices` rules."""
    prog = [
        _insn(_LDXW, dst=2, src=1, off=0),     # r2 = ctx->access_type
        _insn(_MOV_REG, dst=3, src=2),         # r3 = type (low 16 bits)
        _insn(_AND_IMM, dst=3, imm=0xFFFF),
        _insn(_MOV_REG, dst=4, src=2),         # r4 = access (high 16 bits)
        _insn(_RSH_IMM, dst=4, imm=16),
        _insn(_LDXW, dst=5, src=1, off=4),     # r5 = ctx->major
        _insn(_LDXW, dst=6, src=1, off=8),     # r6 = ctx->minor
    ]
    for rule in reversed(rules):
        body: list[bytes] = []
        checks = _rule_checks(rule)
        # each test is one jump, except the access test: copy, mask, then jump
        size = sum(3 if op == _AND_IMM else 1 for op, _, _ in checks) + 2
        for op, reg, imm in checks:
            if op == _AND_IMM:
                body.append(_insn(_MOV_REG, dst=7, src=4))
                body.append(_insn(_AND_IMM, dst=7, imm=imm))
                reg, imm = 7, 0
            # jump to the first instruction after this rule's block
            body.append(_insn(_JNE_IMM, dst=reg, off=size - len(body) - 1, imm=imm))
        body.append(_insn(_MOV_IMM, dst=0, imm=1 if rule.get("allow") else 0))
        body.append(_insn(_EXIT))
        assert len(body) == size
        prog += body
        if not checks:
            # matches every request: what follows could never run, and the verifier
            # refuses unreachable instructions
            return b"".join(prog)
    prog += [_insn(_MOV_IMM, dst=0, imm=0), _insn(_EXIT)]  # nothing matched: deny
    return b"".join(prog)


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    rc = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def load(insns: bytes) -> int:
    """BPF_PROG_LOAD: the program's fd (the verifier's log in the error when it refuses)."""
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    log = ctypes.create_string_buffer(65536)
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("=IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // _INSN.size,
                     ctypes.addressof(code), ctypes.addressof(license_), 1, len(log),
                     ctypes.addressof(log))
    struct.pack_into("=I", attr, 68, BPF_CGROUP_DEVICE)  # expected_attach_type
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()[-3:]
        raise CgroupError(f"loading the device filter failed: {e.strerror}"
                          + (f" ({'; '.join(detail)})" if detail else "")) from None


def attach(cgroup_dir: str, rules: list[dict[str, Any]]) -> None:
    """Compile, load and attach the device filter for `rules` to the v2 cgroup `cgroup_dir`.

    The attachment holds the program; its fd is closed here. BPF_F_ALLOW_MULTI as runc
    does, so programs a parent may carry (systemd's) keep applying too.
    """
    prog = load(compile_rules(rules))
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = ctypes.create_string_buffer(32)
            struct.pack_into("=IIII", attr, 0, cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
            _bpf(BPF_PROG_ATTACH, attr)
        except OSError as e:
            raise CgroupError(f"attaching the device filter to {cgroup_dir}: {e.strerror}") from None
        finally:
            os.close(cg)
    finally:
        os.close(prog)


_supported: bool | None = None


def supported() -> bool:
    """Whether this kernel loads device filters (checked once, with a deny-all program)."""
    global _supported
    if _supported is None:
        try:
            os.close(load(compile_rules([])))
            _supported = True
        except (CgroupError, OSError):
            _supported = False
    return _supported
