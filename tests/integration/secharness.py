"""Run one container through sampan's runtime (build_spec + run_child) on a busybox rootfs
that can also run the HOST's python: /usr is bind-mounted read-only and /lib, /lib64 are
links into it, so `secprobe.py` (bound at /probe.py) makes the syscalls busybox has no
applet for. Shared by test_security_probes.py and test_seccomp_profiles.py, which load
it by path (the suite imports test modules with --import-mode=importlib).

The caller is what a monitor is: a process that unshares the pid namespace and forks the
container's PID 1. No cgroup: the devices-cgroup probes run through the daemon (e2e).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from sampan.linux import syscalls as sc
from sampan.runtime.container import run_child
from sampan.runtime.mounts import Mount
from sampan.runtime.spec import bind_mount, build_spec

PROBE = str(Path(__file__).with_name("secprobe.py"))
HOST_PYTHON = "/usr/bin/python3"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "user:x:1000:1000:user:/home/user:/bin/sh\n")
GROUP = "root:x:0:root\nuser:x:1000:\n"


def usable() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/bin/busybox"):
        return "needs busybox-static"
    if not os.path.exists(HOST_PYTHON) or os.uname().machine != "x86_64":
        return "probes need the host's /usr/bin/python3 on x86_64"
    return None


def make_lower(root: str) -> None:
    """A busybox tree with mount points for /usr and links for the loader's paths, plus a
    setuid-root copy of python at /bin/supy (for the no-new-privileges test)."""
    for d in ("bin", "etc", "usr", "root", "home/user"):
        os.makedirs(f"{root}/{d}")
    os.makedirs(root + "/tmp", mode=0o1777)
    os.chmod(root + "/tmp", 0o1777)
    shutil.copy("/bin/busybox", root + "/bin/busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", f"{root}/bin/{a}")
    os.symlink("usr/lib", root + "/lib")
    os.symlink("usr/lib64", root + "/lib64")
    shutil.copy(os.path.realpath(HOST_PYTHON), root + "/bin/supy")
    os.chown(root + "/bin/supy", 0, 0)
    os.chmod(root + "/bin/supy", 0o4755)
    with open(root + "/etc/passwd", "w") as f:
        f.write(PASSWD)
    with open(root + "/etc/group", "w") as f:
        f.write(GROUP)


class Box:
    """An overlay over the shared lower tree: writes of one test land in its own upper."""

    def __init__(self, base: str, lower: str) -> None:
        self.upper, self.work, self.merged = (f"{base}/{d}" for d in ("upper", "work", "merged"))
        for d in (self.upper, self.work, self.merged):
            os.makedirs(d)
        self.mount = Mount("overlay", "overlay", self.merged,
                           (f"lowerdir={lower}", f"upperdir={self.upper}",
                            f"workdir={self.work}"))

    def spec(self, cmd: list[str], *, config: dict | None = None,
             host_config: dict | None = None) -> dict:
        cfg = {"Cmd": cmd}
        cfg.update(config or {})
        mounts = [bind_mount("/usr", "/usr", readonly=True),
                  bind_mount(PROBE, "/probe.py", readonly=True)]
        return build_spec(config=cfg, host_config=host_config or {}, image_config={},
                          rootfs=self.merged, hostname="probehost", etc_files={},
                          container_id="5ec0de", mounts=mounts)

    def run(self, cmd: list[str], **kw) -> tuple[int, str, str]:
        """(exit code, stdout, stderr) of the container; a setup failure fails the test."""
        code, out, err, fail = run_spec(self.spec(cmd, **kw), self.mount)
        assert fail is None, fail
        return code, out, err

    def probe(self, *probes: str, **kw) -> dict[str, str]:
        code, out, err = self.run([HOST_PYTHON, "-I", "/probe.py", *probes], **kw)
        assert code == 0, err
        return json.loads(out)


def _read_all(fd: int) -> bytes:
    chunks = []
    while b := os.read(fd, 65536):
        chunks.append(b)
    os.close(fd)
    return b"".join(chunks)


def run_spec(spec: dict, mount: Mount | None) -> tuple[int, str, str, dict | None]:
    """(exit code, stdout, stderr, setup error or None) of running `spec` as a container."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (out_r, err_r, fail_r):
                os.close(fd)
            sc.unshare(sc.CLONE_NEWPID)
            child = os.fork()
            if child == 0:
                run_child(spec, mount, (None, out_w, err_w), fail_w)
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


def run_host_probe(probe: str) -> str:
    """The host's own answer to one probe (no namespaces, no filter)."""
    r = subprocess.run([HOST_PYTHON, "-I", PROBE, probe], capture_output=True, text=True,
                       timeout=30, check=True)
    return json.loads(r.stdout)[probe]
