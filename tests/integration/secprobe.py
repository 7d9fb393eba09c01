"""Escape probes, run INSIDE a container by the host's python (bind-mounted read-only).

    python3 -I /probe.py mount unshare_mount add_key mknod_read=254:0 ...

Prints one JSON object: probe name -> "ok" (the kernel let it through) or the errno's name
("EPERM", "EROFS"...), or a small value for the read-only facts (seccomp mode, NoNewPrivs,
bytes read from /proc/kcore). Each probe is harmless when allowed (bad magic numbers, NULL
arguments, tmpfs mounts in the container's own namespace), so the privileged run can call
most of them too; the test decides which ones it dares to run where.

Syscall numbers are x86_64's: busybox has no applets for most of these calls and the image
has no compiler, hence ctypes. The tests skip on other architectures.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

NR = {"init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169,
      "settimeofday": 164, "clock_settime": 227, "add_key": 248, "keyctl": 250,
      "request_key": 249, "open_by_handle_at": 304, "unshare": 272, "kexec_load": 246,
      "ptrace": 101, "swapon": 167, "acct": 163, "setns": 308, "pivot_root": 155,
      "io_uring_setup": 425, "bpf": 321, "socket": 41, "personality": 135,
      "move_pages": 279}
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3


def _sys(name: str, *args) -> str:
    ctypes.set_errno(0)
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(ctypes.c_long(NR[name]), *cargs)
    if r == -1:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "ok"


def _sys_nr(nr: int, *args) -> str:
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == -1:
        return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
    return "ok"


def _sys_in_child(name: str, *args) -> str:
    """A call whose success would change the probe itself (personality): made in a child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, _sys(name, *args).encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        return f.read()


def _os(fn, *args) -> str:
    try:
        fn(*args)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "ok"


def _mount_tmpfs(target: str) -> str:
    os.makedirs(target, exist_ok=True)
    ctypes.set_errno(0)
    if libc.mount(b"probe", target.encode(), b"tmpfs", 0, None) != 0:
        return errno.errorcode[ctypes.get_errno()]
    libc.umount2(target.encode(), 2)
    return "ok"


def _unshare_then_mount(flags: int) -> str:
    # In a child: the unshare must not change the probe's own namespaces.
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        res = _sys("unshare", flags)
        res = "unshare:" + res if res != "ok" else _mount_tmpfs("/tmp/probe-unshare")
        if res not in ("ok",) and not res.startswith("unshare:"):
            res = "mount:" + res
        os.write(w, res.encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        return f.read()


def _write(path: str, data: str) -> str:
    def w() -> None:
        with open(path, "w") as f:
            f.write(data)
    return _os(w)


def _status(field: str) -> str:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return "missing"


def _read_n(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return str(len(f.read(4096)))
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def _mknod_read(arg: str) -> str:
    major, minor = (int(x) for x in arg.split(":"))
    node = "/tmp/probe-disk"
    try:
        os.unlink(node)
    except FileNotFoundError:
        pass
    res = _os(os.mknod, node, 0o600 | 0o060000, os.makedev(major, minor))
    if res != "ok":
        return "mknod:" + res
    return "read:" + _read_n(node)


def _open_by_handle() -> str:
    # struct file_handle {u32 handle_bytes; int handle_type; u8 f_handle[8]}: a bogus handle;
    # refused before it is even looked at when the caller lacks CAP_DAC_READ_SEARCH.
    buf = ctypes.create_string_buffer(b"\x08\x00\x00\x00\x01\x00\x00\x00" + b"\x00" * 8)
    fd = os.open("/", os.O_RDONLY)
    try:
        return _sys("open_by_handle_at", fd, buf, os.O_RDONLY)
    finally:
        os.close(fd)


def _ro_mount(path: str) -> str:
    return "ro" if os.statvfs(path).f_flag & os.ST_RDONLY else "rw"


def probe(name: str, arg: str) -> str:
    if name == "mount":
        return _mount_tmpfs("/tmp/probe-mnt")
    if name == "unshare_mount":           # unshare -m, then mount
        return _unshare_then_mount(CLONE_NEWNS)
    if name == "userns_mount":            # unshare -U -m: the classic way round CAP_SYS_ADMIN
        return _unshare_then_mount(CLONE_NEWUSER | CLONE_NEWNS)
    if name == "init_module":
        return _sys("init_module", None, 0, b"")
    if name == "finit_module":
        return _sys("finit_module", -1, b"", 0)
    if name == "delete_module":
        return _sys("delete_module", b"sampan_probe_none", 0)
    if name == "kexec_load":
        return _sys("kexec_load", 0, 0, None, 0)
    if name == "reboot":                  # bad magic: EINVAL even if it got through
        return _sys("reboot", 0, 0, 0, None)
    if name == "settimeofday":            # NULL, NULL: changes nothing even if allowed
        return _sys("settimeofday", None, None)
    if name == "clock_settime":           # tv_nsec = -1: EINVAL even if allowed
        ts = (ctypes.c_long * 2)(0, -1)
        return _sys("clock_settime", 0, ts)
    if name == "add_key":
        return _sys("add_key", b"user", b"sampan-probe", b"x", 1, KEY_SPEC_PROCESS_KEYRING)
    if name == "keyctl":                  # KEYCTL_GET_KEYRING_ID
        return _sys("keyctl", 0, KEY_SPEC_SESSION_KEYRING, 0)
    if name == "request_key":
        return _sys("request_key", b"user", b"sampan-probe", None, 0)
    if name == "open_by_handle_at":
        return _open_by_handle()
    if name == "swapon":
        return _sys("swapon", b"/nonexistent", 0)
    if name == "acct":
        return _sys("acct", None)
    if name == "move_pages":              # count 0: does nothing even if allowed
        return _sys("move_pages", 0, 0, None, None, None, 0)
    if name == "io_uring_setup":
        return _sys("io_uring_setup", 1, ctypes.create_string_buffer(120))
    if name == "personality":             # arg: the persona, e.g. 0x40000 (ADDR_NO_RANDOMIZE)
        return _sys_in_child("personality", int(arg, 0))
    if name == "nr":                      # a raw syscall number with zero arguments
        return _sys_nr(int(arg), 0, 0, 0, 0)
    if name == "socket_vsock":            # AF_VSOCK(40), SOCK_STREAM
        return _sys("socket", 40, 1, 0)
    if name == "proc_sys_write":          # uts-namespaced: harmless where allowed
        with open("/proc/sys/kernel/hostname") as f:
            return _write("/proc/sys/kernel/hostname", f.read().strip())
    if name == "sysrq_write":             # never run where it could succeed
        return _write("/proc/sysrq-trigger", "")
    if name == "sys_ro":
        return _ro_mount("/sys")
    if name == "sys_write":               # the container's own loopback: harmless
        with open("/sys/class/net/lo/mtu") as f:
            return _write("/sys/class/net/lo/mtu", f.read().strip())
    if name == "kcore":
        return _read_n("/proc/kcore")
    if name == "proc_keys":
        return _read_n("/proc/keys")
    if name == "ptrace_host":             # a host pid: not visible in our pid namespace
        return _sys("ptrace", 16, int(arg), 0, 0)  # PTRACE_ATTACH
    if name == "kill_host":
        return _os(os.kill, int(arg), 0)
    if name == "mknod_read":
        return _mknod_read(arg)
    if name == "seccomp":
        return _status("Seccomp")
    if name == "nnp":
        return _status("NoNewPrivs")
    if name == "capeff":
        return _status("CapEff")
    if name == "euid":
        return str(os.geteuid())
    if name == "ns":
        return os.readlink(f"/proc/self/ns/{arg}")
    raise SystemExit(f"unknown probe {name}")


def main(argv: list[str]) -> None:
    out = {}
    for item in argv:
        name, _, arg = item.partition("=")
        out[item] = probe(name, arg)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
