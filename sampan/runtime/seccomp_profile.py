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

from ..errors import InvalidParameter

# Refused whatever the capabilities (Docker's profile never allows them).
_ALWAYS = ("add_key", "keyctl", "request_key", "nfsservctl", "sysfs", "_sysctl", "uselib",
           "ustat", "vm86", "vm86old", "io_uring_setup", "io_uring_enter",
           "io_uring_register", "create_module", "get_kernel_syms", "query_module",
           "lookup_dcookie")
# Allowed only with one of these capabilities.
_GATED: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": ("mount", "umount", "umount2", "pivot_root", "setns", "unshare",
                      "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
                      "mount_setattr", "name_to_handle_at", "quotactl", "quotactl_fd",
                      "swapon", "swapoff", "fanotify_init", "bpf", "perf_event_open",
                      "syslog"),
    "CAP_SYS_BOOT": ("reboot", "kexec_load", "kexec_file_load"),
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
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"]


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


def from_docker_profile(text: str, caps: list[str]) -> dict:
    """A user profile (`--security-opt seccomp=<json>`) in Docker's format -> OCI form."""
    try:
        prof = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"decoding seccomp profile failed: {e}") from None
    if not isinstance(prof, dict) or not isinstance(prof.get("defaultAction"), str):
        raise InvalidParameter("decoding seccomp profile failed: defaultAction required")
    granted = set(caps)
    rules = []
    for r in prof.get("syscalls") or []:
        if not isinstance(r, dict):
            raise InvalidParameter("decoding seccomp profile failed: bad syscall rule")
        inc = (r.get("includes") or {}).get("caps") or []
        exc = (r.get("excludes") or {}).get("caps") or []
        if inc and not all(c in granted for c in inc):
            continue
        if exc and any(c in granted for c in exc):
            continue
        names = r.get("names") or ([r["name"]] if r.get("name") else [])
        rule = {"names": [str(n) for n in names], "action": str(r.get("action", ""))}
        if r.get("errnoRet") is not None:
            rule["errnoRet"] = int(r["errnoRet"])
        if r.get("args"):
            rule["args"] = r["args"]
        rules.append(rule)
    out = {"defaultAction": prof["defaultAction"], "architectures": list(ARCHES),
           "syscalls": rules}
    if prof.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(prof["defaultErrnoRet"])
    # Fail now, not in every container start, if we cannot compile it.
    from ..linux import seccomp
    if seccomp.supported():
        try:
            seccomp.compile_filter(out)
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidParameter(f"invalid seccomp profile: {e}") from None
    return out
