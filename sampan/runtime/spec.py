"""Docker container config -> OCI runtime-spec `config.json`, resolved as moby does.

`build_spec` is pure apart from reading two host facts (the daemon's own rlimits and the
kernel's last capability), so it is unit-tested without root. The user name is kept
symbolic (annotation `org.sampan.user`) because it can only be resolved against the
container's own /etc/passwd once its rootfs is mounted: `run_child` does that after
pivot_root, and `oci.write_bundle` does it for runc/crun.
"""

from __future__ import annotations

import os
import posixpath
import re
import resource
import stat
from typing import Any

from ..errors import InvalidParameter
from ..linux import caps as _caps
from . import seccomp_profile as _seccomp

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
INIT_PATH_IN_CONTAINER = "/sbin/docker-init"
DEFAULT_INIT_BINARY = "/usr/bin/tini-static"

ANN_USER = "org.sampan.user"
ANN_GROUPS = "org.sampan.groups"
ANN_STOP_SIGNAL = "org.sampan.stop-signal"

# moby oci/defaults.go
DEFAULT_MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)
# (path, major, minor): the devices every container gets (runc's AllowedDevices).
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
# Device cgroup rules (moby's defaults plus runc's AllowedDevices): deny all, then `mknod`
# anything, and read/write only the default nodes, the console and ptys.
_DEVICE_RULES = [{"allow": False, "access": "rwm"},
                 {"allow": True, "type": "c", "access": "m"},
                 {"allow": True, "type": "b", "access": "m"}] + [
    {"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
    for ma, mi in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9), (5, 0), (5, 1), (5, 2))] + [
    {"allow": True, "type": "c", "major": 136, "access": "rwm"}]
RLIMITS = {
    "core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS", "rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING", "stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}
_IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}
_SYSCTL_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")


def _strslice(v: Any, what: str) -> list[str] | None:
    """Docker's StrSlice: null -> None, "x" -> ["x"], [..] -> list of str."""
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return list(v)
    raise InvalidParameter(f"invalid {what}: must be a string or a list of strings")


def _image_cfg(image_config: dict | None) -> dict:
    ic = image_config or {}
    for key in ("config", "Config"):
        inner = ic.get(key)
        if isinstance(inner, dict) and not ({"Cmd", "Env", "Entrypoint"} & ic.keys()):
            return inner
    return ic


def resolve_args(config: dict, image_config: dict | None) -> list[str]:
    """Entrypoint + Cmd, merged with the image's as moby's `merge` + getEntrypointAndArgs."""
    ic = _image_cfg(image_config)
    ep = _strslice(config.get("Entrypoint"), "Entrypoint")
    cmd = _strslice(config.get("Cmd"), "Cmd")
    # `--entrypoint ""` arrives as [""]: an explicit empty entrypoint, not "unset".
    if ep is not None and all(x == "" for x in ep):
        ep = []
    if not ep:
        if not cmd:
            cmd = _strslice(ic.get("Cmd"), "Cmd")
        if ep is None:
            ep = _strslice(ic.get("Entrypoint"), "Entrypoint")
    args = (ep or []) + (cmd or [])
    if not args:
        raise InvalidParameter("no command specified")
    return args


def merge_env(user_env: list[str] | None, image_env: list[str] | None) -> list[str]:
    """Container Env first, then the image's variables the container did not set."""
    user_env = list(user_env or [])
    if not user_env:
        return list(image_env or [])
    keys = {e.partition("=")[0] for e in user_env}
    return user_env + [e for e in image_env or [] if e.partition("=")[0] not in keys]


def replace_or_append_env(defaults: list[str], overrides: list[str]) -> list[str]:
    """moby's ReplaceOrAppendEnvValues: overrides replace in place; `KEY` alone unsets."""
    out = list(defaults)
    index = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for v in overrides:
        key, eq, _ = v.partition("=")
        if not eq:
            if key in index:
                out[index[key]] = None  # type: ignore[call-overload]
            continue
        if key in index and out[index[key]] is not None:
            out[index[key]] = v
        else:
            index[key] = len(out)
            out.append(v)
    return [e for e in out if e is not None]


def container_env(config: dict, image_config: dict | None, hostname: str, tty: bool) -> list[str]:
    env = config.get("Env")
    if env is not None and not (isinstance(env, list) and all(isinstance(e, str) for e in env)):
        raise InvalidParameter("invalid Env: must be a list of strings")
    merged = merge_env(env, _image_cfg(image_config).get("Env"))
    base = ["PATH=" + DEFAULT_PATH, "HOSTNAME=" + hostname]
    if tty:
        base.append("TERM=xterm")
    return replace_or_append_env(base, merged)


def _clean_abs(path: str, what: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise InvalidParameter(f"the {what} '{path}' is invalid, it needs to be an absolute path")
    return posixpath.normpath(path).replace("//", "/")


def _rlimits(ulimits: list[dict] | None) -> list[dict]:
    out: dict[str, dict] = {}
    for u in ulimits or []:
        if not isinstance(u, dict):
            raise InvalidParameter("invalid ulimit: expected an object")
        name = str(u.get("Name", "")).lower()
        if name not in RLIMITS:
            raise InvalidParameter(f"invalid ulimit type: {name}")
        try:
            soft, hard = int(u.get("Soft", 0)), int(u.get("Hard", 0))
        except (TypeError, ValueError):
            raise InvalidParameter(f"invalid ulimit value for {name}") from None
        if soft > hard:
            raise InvalidParameter(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
        # We cannot raise a hard limit beyond our own (no CAP_SYS_RESOURCE): clamp, so the
        # container starts with the most it can have rather than failing at exec time.
        own_hard = resource.getrlimit(getattr(resource, RLIMITS[name]))[1]
        if own_hard != resource.RLIM_INFINITY:
            hard = own_hard if hard < 0 else min(hard, own_hard)
            soft = own_hard if soft < 0 else min(soft, hard)
        out[name] = {"type": RLIMITS[name], "hard": hard, "soft": soft}
    return list(out.values())


def _security_opts(opts: list[str] | None) -> tuple[bool, str | None]:
    """(no_new_privileges, seccomp) from SecurityOpt, parsed as dockerd's parseSecurityOpt
    (same messages); seccomp is None (the daemon's default), "builtin" (the built-in profile
    whatever the daemon's default), "unconfined", or a profile's JSON text (the docker CLI
    sends the file's content)."""
    nnp = False
    seccomp: str | None = None
    for o in opts or []:
        if not isinstance(o, str):
            raise InvalidParameter(f"invalid --security-opt: {o!r}")
        if o == "no-new-privileges":
            nnp = True
            continue
        if o == "disable":  # the old spelling of label=disable
            continue
        if "=" in o:
            key, _, val = o.partition("=")
        elif ":" in o:  # deprecated separator, still accepted by dockerd
            key, _, val = o.partition(":")
        else:
            raise InvalidParameter(f"invalid --security-opt 1: {_goquote(o)}")
        if key == "no-new-privileges":
            if val in ("1", "t", "T", "TRUE", "true", "True"):
                nnp = True
            elif val in ("0", "f", "F", "FALSE", "false", "False"):
                nnp = False
            else:
                raise InvalidParameter(f"invalid --security-opt 2: {_goquote(o)}")
        elif key == "seccomp":
            seccomp = val or None
        elif key in ("apparmor", "label", "writable-cgroups"):
            # Accepted: this host applies no LSM profile (dockerd does the same without
            # AppArmor/SELinux); writable-cgroups is not supported and ignored.
            continue
        else:
            raise InvalidParameter(f"invalid --security-opt 2: {_goquote(o)}")
    return nnp, seccomp


def _goquote(s: str) -> str:
    """Go's %q of a string: what dockerd's messages show."""
    import json
    return json.dumps(s, ensure_ascii=False)


def validate_host_config(host_config: dict) -> None:
    """Create-time checks of what would otherwise only fail at start: SecurityOpt (unknown
    keys, a seccomp profile that cannot be used) and Ulimits - a 400 before the container
    exists, not a failure at every start."""
    hc = host_config or {}
    _rlimits(hc.get("Ulimits"))
    _, seccomp = _security_opts(hc.get("SecurityOpt"))
    if seccomp not in (None, "builtin", "unconfined") and not hc.get("Privileged"):
        cap_list = _caps.tweak(hc.get("CapAdd"), hc.get("CapDrop"), False)
        _seccomp.from_docker_profile(seccomp, cap_list)


def _sysctls(sysctls: dict | None, net_host: bool, ipc_host: bool) -> dict[str, str]:
    out = {}
    for k, v in (sysctls or {}).items():
        if not isinstance(k, str) or not _SYSCTL_KEY.match(k):
            raise InvalidParameter(f"sysctl '{k}' is not allowed")
        if k in _IPC_SYSCTLS or k.startswith("fs.mqueue."):
            if ipc_host:
                raise InvalidParameter(f"sysctl '{k}' is not allowed in host IPC namespace")
        elif k.startswith("net."):
            if net_host:
                raise InvalidParameter(f"sysctl '{k}' not allowed in host network namespace")
        else:
            raise InvalidParameter(f"sysctl '{k}' is not allowed")
        out[k] = str(v)
    return out


def _tmpfs_options(opts: str) -> list[str]:
    """Docker's tmpfs defaults (noexec,nosuid,nodev) with the user's options overriding."""
    flags = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
    chosen = {"exec": "noexec", "suid": "nosuid", "dev": "nodev"}
    extra: list[str] = []
    for o in [x.strip() for x in (opts or "").split(",") if x.strip()]:
        base = o[2:] if o.startswith("no") and o[2:] in flags else o
        if base in flags:
            chosen[base] = o
        else:
            extra.append(o)
    return list(chosen.values()) + extra


def _ns_mode(value: Any) -> str:
    return value if isinstance(value, str) else ""


def default_mounts(*, privileged: bool, shm_size: int, ipc_mode: str,
                   shm_path: str | None) -> list[dict]:
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    cg_opts = ["nosuid", "noexec", "nodev", "relatime"] + ([] if privileged else ["ro"])
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": cg_opts},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ]
    if shm_path:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": shm_path,
                       "options": ["rbind", "nosuid", "noexec", "nodev"]})
    elif ipc_mode == "host":
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                       "options": ["rbind", "rprivate"]})
    elif ipc_mode != "none":
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777",
                                   f"size={shm_size}"]})
    return mounts


def bind_mount(source: str, destination: str, *, readonly: bool = False,
               propagation: str = "rprivate") -> dict:
    """An OCI bind mount entry, as Docker writes them for volumes and binds."""
    opts = ["rbind", propagation] + (["ro"] if readonly else [])
    return {"destination": destination, "type": "bind", "source": source, "options": opts}


def _device_entry(host_path: str, container_path: str) -> dict | None:
    try:
        st = os.stat(host_path)
    except OSError:
        return None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {"path": container_path, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid}


_SKIP_DEV = {"pts", "shm", "mqueue", "fd", "console"}


def host_devices(top: str = "/dev") -> list[dict]:
    """Every device node under the host's /dev (what `--privileged` gets), as moby lists
    them: symlinks and the pseudo-filesystems Docker mounts itself are skipped."""
    out: list[dict] = []
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if d == top and e.name in _SKIP_DEV:
                continue
            if e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
                continue
            dev = _device_entry(e.path, e.path)
            if dev is not None:
                out.append(dev)
    out.sort(key=lambda x: x["path"])
    return out


def _user_devices(devices: list | None) -> tuple[list[dict], list[dict]]:
    """HostConfig.Devices (`--device /dev/x[:/dev/y[:rwm]]`) -> (devices, cgroup rules)."""
    devs: list[dict] = []
    rules: list[dict] = []
    for d in devices or []:
        if not isinstance(d, dict) or not isinstance(d.get("PathOnHost"), str):
            raise InvalidParameter("invalid device mapping: PathOnHost required")
        host = d["PathOnHost"]
        inside = d.get("PathInContainer") or host
        perms = d.get("CgroupPermissions") or "rwm"
        if not set(perms) <= set("rwm"):
            raise InvalidParameter(f"invalid device cgroup permissions: {perms}")
        inside = _clean_abs(inside, "device path")
        entry = _device_entry(host, inside)
        if entry is None:
            raise InvalidParameter(
                f"error gathering device information while adding custom device {host!r}: "
                "not a device node")
        devs.append(entry)
        rules.append({"allow": True, "type": entry["type"], "major": entry["major"],
                      "minor": entry["minor"], "access": perms})
    return devs, rules


def _depth(dest: str) -> int:
    return len([p for p in dest.split("/") if p])


def build_spec(*, config: dict, host_config: dict, image_config: dict | None, rootfs: str,
               hostname: str, etc_files: dict[str, str] | None, container_id: str,
               mounts: list[dict] | tuple = (), ns_paths: dict[str, str] | None = None,
               shm_path: str | None = None, init_path: str = DEFAULT_INIT_BINARY,
               default_seccomp: str | None = None) -> dict:
    """The OCI config.json for a container.

    `mounts`: extra OCI mount dicts (volumes, binds) already resolved to host paths.
    `ns_paths`: {"network"|"ipc"|"uts"|"pid": "/proc/<pid>/ns/..."} for `container:<id>`
    modes (or a pre-made network namespace): the namespace is joined, not created.
    `default_seccomp`: the daemon's `seccomp-profile` for containers that name none: None
    (the built-in profile), "unconfined", or a profile's JSON text.
    """
    config = config or {}
    hc = host_config or {}
    ic = _image_cfg(image_config)
    ns_paths = dict(ns_paths or {})
    privileged = bool(hc.get("Privileged"))
    tty = bool(config.get("Tty"))

    args = resolve_args(config, ic)
    if hc.get("Init") and args[0] != INIT_PATH_IN_CONTAINER:
        args = [INIT_PATH_IN_CONTAINER, "--"] + args
    env = container_env(config, ic, hostname, tty)
    cwd = _clean_abs(config.get("WorkingDir") or ic.get("WorkingDir") or "/", "working directory")
    user = config.get("User") or ic.get("User") or ""
    if not isinstance(user, str):
        raise InvalidParameter("invalid User: must be a string")
    group_add = [str(g) for g in hc.get("GroupAdd") or []]

    cap_list = _caps.tweak(hc.get("CapAdd"), hc.get("CapDrop"), privileged)
    nnp, seccomp = _security_opts(hc.get("SecurityOpt"))
    process: dict[str, Any] = {
        "terminal": tty,
        "user": {"uid": 0, "gid": 0},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {"bounding": cap_list, "effective": list(cap_list),
                         "permitted": list(cap_list)},
        "noNewPrivileges": nnp,
    }
    rl = _rlimits(hc.get("Ulimits"))
    if rl:
        process["rlimits"] = rl
    if hc.get("OomScoreAdj"):
        process["oomScoreAdj"] = int(hc["OomScoreAdj"])
    cs = hc.get("ConsoleSize")
    if tty and isinstance(cs, list) and len(cs) == 2 and all(cs):
        process["consoleSize"] = {"height": int(cs[0]), "width": int(cs[1])}

    net_mode = _ns_mode(hc.get("NetworkMode"))
    ipc_mode = _ns_mode(hc.get("IpcMode"))
    pid_mode = _ns_mode(hc.get("PidMode"))
    uts_mode = _ns_mode(hc.get("UTSMode"))
    cgroupns_mode = _ns_mode(hc.get("CgroupnsMode")) or "private"
    namespaces: list[dict] = []

    def ns(kind: str, mode: str) -> None:
        if mode == "host":
            return
        if mode.startswith("container:") and kind not in ns_paths:
            raise InvalidParameter(
                f"{kind} mode {mode!r} needs the other container's namespace path")
        entry = {"type": kind}
        if kind in ns_paths:
            entry["path"] = ns_paths[kind]
        namespaces.append(entry)

    ns("pid", pid_mode)
    ns("network", net_mode)
    ns("ipc", ipc_mode)
    ns("uts", uts_mode)
    namespaces.append({"type": "mount"})
    if cgroupns_mode != "host":
        namespaces.append({"type": "cgroup"})

    shm_size = int(hc.get("ShmSize") or DEFAULT_SHM_SIZE)
    if shm_size < 0:
        raise InvalidParameter("SHM size can not be less than 0")

    # User-supplied mounts (volumes, binds, tmpfs, etc files, init) replace defaults at the
    # same destination, and a user /dev replaces everything Docker would put under /dev.
    user_mounts: list[dict] = []
    for m in mounts or ():
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise InvalidParameter("invalid mount: destination required")
        m = dict(m)
        m["destination"] = _clean_abs(m["destination"], "mount destination")
        if m["destination"] == "/":
            raise InvalidParameter("invalid mount config: destination can't be '/'")
        user_mounts.append(m)
    tmpfs = hc.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise InvalidParameter("invalid Tmpfs: expected an object")
    for dest, opts in tmpfs.items():
        if _clean_abs(dest, "tmpfs destination") == "/":
            raise InvalidParameter("invalid mount config: destination can't be '/'")
        user_mounts.append({"destination": _clean_abs(dest, "tmpfs destination"),
                            "type": "tmpfs", "source": "tmpfs",
                            "options": _tmpfs_options(opts if isinstance(opts, str) else "")})
    user_dests = {m["destination"] for m in user_mounts}
    ro_rootfs = bool(hc.get("ReadonlyRootfs"))
    for dest, src in (etc_files or {}).items():
        dest = _clean_abs(dest, "mount destination")
        if dest in user_dests:
            continue  # a user bind over /etc/hosts wins, as in Docker
        user_mounts.append({"destination": dest, "type": "bind", "source": src,
                            "options": ["rbind", "rprivate"] + (["ro"] if ro_rootfs else [])})
    if hc.get("Init"):
        user_mounts.append({"destination": INIT_PATH_IN_CONTAINER, "type": "bind",
                            "source": init_path, "options": ["bind", "ro"]})
    user_mounts.sort(key=lambda m: _depth(m["destination"]))
    user_dests = {m["destination"] for m in user_mounts}
    over_dev = "/dev" in user_dests
    defaults = [m for m in default_mounts(privileged=privileged, shm_size=shm_size,
                                          ipc_mode=ipc_mode, shm_path=shm_path)
                if m["destination"] not in user_dests
                and not (over_dev and m["destination"].startswith("/dev/"))]

    masked = hc.get("MaskedPaths")
    readonly = hc.get("ReadonlyPaths")
    devices = [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666,
                "uid": 0, "gid": 0} for p, ma, mi in DEFAULT_DEVICES]
    if privileged:
        known = {d["path"] for d in devices}
        devices += [d for d in host_devices() if d["path"] not in known]
    extra_devs, extra_rules = _user_devices(hc.get("Devices"))
    for d in extra_devs:
        devices = [x for x in devices if x["path"] != d["path"]] + [d]
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "devices": devices,
        "maskedPaths": [] if privileged else list(DEFAULT_MASKED_PATHS if masked is None
                                                   else masked),
        "readonlyPaths": [] if privileged else list(DEFAULT_READONLY_PATHS if readonly is None
                                                     else readonly),
        "resources": {"devices": [{"allow": True, "access": "rwm"}] if privileged
                      else [dict(r) for r in _DEVICE_RULES] + extra_rules},
        "cgroupsPath": f"/sampan/{container_id}",
        "rootfsPropagation": "rslave",
    }
    if seccomp is None:
        seccomp = default_seccomp or "builtin"
    if not privileged and seccomp != "unconfined":
        linux["seccomp"] = (_seccomp.default_profile(cap_list) if seccomp == "builtin"
                            else _seccomp.from_docker_profile(seccomp, cap_list))
    sysctl = _sysctls(hc.get("Sysctls"), net_mode == "host", ipc_mode == "host")
    if sysctl:
        linux["sysctl"] = sysctl

    annotations = {ANN_USER: user}
    if group_add:
        annotations[ANN_GROUPS] = ",".join(group_add)
    stop = config.get("StopSignal") or ic.get("StopSignal")
    if stop:
        annotations[ANN_STOP_SIGNAL] = str(stop)

    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": ro_rootfs},
        "mounts": defaults + user_mounts,
        "linux": linux,
        "annotations": annotations,
    }
    if uts_mode != "host":
        spec["hostname"] = hostname
        if config.get("Domainname"):
            spec["domainname"] = str(config["Domainname"])
    return spec


def build_exec_process(spec: dict, *, cmd: list[str], env: list[str] | None = None,
                       user: str = "", workdir: str = "", tty: bool = False,
                       privileged: bool = False) -> dict:
    """The OCI `process` for `docker exec`, from the container's spec and the ExecConfig.

    The user stays symbolic (`username`) for `exec_child` to resolve inside the container.
    """
    if not cmd or not all(isinstance(c, str) for c in cmd):
        raise InvalidParameter("No exec command specified")
    base = spec.get("process", {})
    ann = spec.get("annotations", {})
    proc_env = replace_or_append_env(list(base.get("env", [])), list(env or []))
    if tty and not any(e.startswith("TERM=") for e in proc_env):
        proc_env.append("TERM=xterm")
    capset = base.get("capabilities", {})
    if privileged:
        all_ = _caps.all_caps()
        capset = {"bounding": all_, "effective": all_, "permitted": all_}
    proc: dict[str, Any] = {
        "terminal": tty,
        "user": dict(base.get("user", {"uid": 0, "gid": 0})),
        "username": user or ann.get(ANN_USER, ""),
        "args": list(cmd),
        "env": proc_env,
        "cwd": _clean_abs(workdir, "working directory") if workdir else base.get("cwd", "/"),
        "capabilities": capset,
        "noNewPrivileges": bool(base.get("noNewPrivileges")),
    }
    if ann.get(ANN_GROUPS):
        proc["groupAdd"] = ann[ANN_GROUPS].split(",")
    if base.get("rlimits"):
        proc["rlimits"] = base["rlimits"]
    if (spec.get("linux") or {}).get("seccomp"):
        proc["seccomp"] = spec["linux"]["seccomp"]  # exec_child applies the container's
    return proc
