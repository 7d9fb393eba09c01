"""The seccomp profile a container gets, as an OCI `linux.seccomp` object.

Docker's default profile is an allow-list of ~350 syscalls; its effect is to refuse a
known set of dangerous ones unless the container holds the capability that makes them
legitimate. We express that effect directly as a deny-list (default ALLOW), which is
shorter to evaluate and to read. `--security-opt seccomp=<profile JSON>` is also accepted
(Docker's format: rules filtered by their includes/excludes caps).
"""

from __future__ import annotations

import errno
import json
import os
import platform
from typing import Any

from ..errors import InvalidParameter

# Refused whatever the capabilities (Docker's profile never allows them).
_ALWAYS = ("add_key", "keyctl", "request_key", "nfsservctl", "sysfs", "_sysctl", "uselib",
           "ustat", "vm86", "vm86old", "io_uring_setup", "io_uring_enter",
           "io_uring_register", "create_module", "get_kernel_syms", "query_module",
           "lookup_dcookie", "userfaultfd", "kexec_load", "kexec_file_load", "swapon",
           "swapoff", "move_pages", "migrate_pages")
# Allowed only with one of these capabilities.
_GATED: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": ("mount", "umount", "umount2", "pivot_root", "setns", "unshare",
                      "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
                      "mount_setattr", "name_to_handle_at", "quotactl", "quotactl_fd",
                      "fanotify_init", "bpf", "perf_event_open", "syslog", "sethostname",
                      "setdomainname"),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise"),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_adjtime"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}
# clone(2) namespace flags Docker refuses without CAP_SYS_ADMIN (user namespaces included:
# they need no capability from the kernel, which is exactly why the profile blocks them).
_CLONE_NS_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                   0x40000000)
# personality(2) values Docker allows (PER_LINUX, PER_LINUX32, UNAME26 with each, and the
# 0xffffffff query); anything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE...) is refused.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
_AF_VSOCK = 40  # Docker refuses vsock sockets: they reach the hypervisor, not the netns
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]
# Docker's profile names architectures both ways (`amd64` in includes, SCMP_ARCH_* in arches).
_ARCH_NAMES = {"x86_64": {"amd64", "x86_64", "SCMP_ARCH_X86_64"},
               "aarch64": {"arm64", "aarch64", "SCMP_ARCH_AARCH64"}}
_OPS = ("SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
        "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ")
_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD",
            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP", "SCMP_ACT_LOG")


def default_profile(caps: list[str]) -> dict:
    granted = set(caps)
    allowed: set[str] = set()
    for cap, calls in _GATED.items():
        if cap in granted:
            allowed.update(calls)
    denied: list[str] = list(_ALWAYS)
    for calls in _GATED.values():
        for c in calls:
            if c not in allowed and c not in denied:
                denied.append(c)
    rules: list[dict] = [{"names": denied, "action": "SCMP_ACT_ERRNO",
                          "errnoRet": errno.EPERM}]
    # Rules are checked in order: the allowed personalities first, then the rest refused.
    rules += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
               "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]} for v in _PERSONALITIES]
    rules.append({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM})
    rules.append({"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM,
                  "args": [{"index": 0, "value": _AF_VSOCK, "op": "SCMP_CMP_EQ"}]})
    if "CAP_SYS_ADMIN" not in granted:
        for flag in _CLONE_NS_FLAGS:
            rules.append({"names": ["clone"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": errno.EPERM,
                          "args": [{"index": 0, "value": flag, "valueTwo": flag,
                                    "op": "SCMP_CMP_MASKED_EQ"}]})
        # clone3 passes flags in memory a filter cannot read: ENOSYS makes libc use clone.
        rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno.ENOSYS})
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": list(ARCHES),
            "syscalls": rules}


def _bad(what: str) -> InvalidParameter:
    return InvalidParameter(f"decoding seccomp profile failed: {what}")


def _kernel_at_least(version: str) -> bool:
    def nums(v: str) -> tuple[int, ...]:
        out = []
        for part in v.split(".")[:3]:
            digits = "".join(c for c in part if c.isdigit()) or "0"
            out.append(int(digits))
        return tuple(out)
    return nums(os.uname().release.split("-")[0]) >= nums(version)


def _applies(rule: dict, granted: set[str]) -> bool:
    """Docker's includes/excludes: caps, arches and minKernel, for this host."""
    arch = _ARCH_NAMES.get(platform.machine(), {platform.machine()})
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if not isinstance(inc, dict) or not isinstance(exc, dict):
        raise _bad("includes/excludes must be objects")
    for key in ("caps", "arches"):
        for cond in (inc, exc):
            v = cond.get(key)
            if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                raise _bad(f"{key} must be a list of strings")
    if inc.get("caps") and not all(c in granted for c in inc["caps"]):
        return False
    if exc.get("caps") and any(c in granted for c in exc["caps"]):
        return False
    if inc.get("arches") and not arch & set(inc["arches"]):
        return False
    if exc.get("arches") and arch & set(exc["arches"]):
        return False
    if inc.get("minKernel"):
        if not isinstance(inc["minKernel"], str):
            raise _bad("minKernel must be a string")
        return _kernel_at_least(inc["minKernel"])
    return True


def _args(args: Any) -> list[dict]:
    """Argument conditions, checked: one sampan cannot compile is refused, never dropped
    (a dropped ERRNO rule would silently let the call through)."""
    if not isinstance(args, list):
        raise _bad("args must be a list")
    out = []
    for a in args:
        if not isinstance(a, dict):
            raise _bad("each args entry must be an object")
        op = a.get("op")
        if op not in _OPS:
            raise InvalidParameter(f"seccomp profile: argument operator {op} is not supported "
                                   f"(supported: {', '.join(_OPS)})")
        idx, value, two = a.get("index"), a.get("value", 0), a.get("valueTwo", 0)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (idx, value, two)):
            raise _bad("args index, value and valueTwo must be integers")
        if not 0 <= idx < 6:
            raise _bad(f"args index {idx} out of range 0-5")
        if not (0 <= value < 2**64 and 0 <= two < 2**64):
            raise _bad("args values must be unsigned 64-bit integers")
        out.append({"index": idx, "value": value, "valueTwo": two, "op": op})
    return out


def _errno(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 4095:
        raise _bad(f"{what} must be an errno number (0-4095)")
    return v


def from_docker_profile(text: str, caps: list[str]) -> dict:
    """A user profile (`--security-opt seccomp=<json>`) in Docker's format -> OCI form."""
    try:
        prof = json.loads(text)
    except ValueError as e:
        raise _bad(str(e)) from None
    if not isinstance(prof, dict) or not isinstance(prof.get("defaultAction"), str):
        raise _bad("defaultAction required")
    for action in [prof["defaultAction"]]:
        if action not in _ACTIONS:
            raise InvalidParameter(f"seccomp profile: action {action} is not supported")
    syscalls = prof.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad("syscalls must be a list")
    granted = set(caps)
    rules = []
    for r in syscalls:
        if not isinstance(r, dict):
            raise _bad("bad syscall rule: each must be an object")
        names = r.get("names") if r.get("names") is not None else (
            [r["name"]] if r.get("name") else [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _bad("names must be a list of strings")
        action = r.get("action", "")
        if action not in _ACTIONS:
            raise InvalidParameter(f"seccomp profile: action {action} is not supported")
        rule: dict[str, Any] = {"names": list(names), "action": action}
        if r.get("errnoRet") is not None:
            rule["errnoRet"] = _errno(r["errnoRet"], "errnoRet")
        if r.get("args"):
            rule["args"] = _args(r["args"])
        if not _applies(r, granted):
            continue
        rules.append(rule)
    out = {"defaultAction": prof["defaultAction"], "architectures": list(ARCHES),
           "syscalls": rules}
    if prof.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = _errno(prof["defaultErrnoRet"], "defaultErrnoRet")
    # Fail now, not in every container start, if we cannot compile it.
    from ..linux import seccomp
    if seccomp.supported():
        try:
            seccomp.compile_filter(out)
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidParameter(f"invalid seccomp profile: {e}") from None
    return out
