"""Figures for `GET /info` and `GET /version`, read from the host."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

from .. import API_VERSION, MIN_API_VERSION, __version__
from ..userns import hooks as userns_hooks


def cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def version() -> dict[str, Any]:
    u = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(u.machine, u.machine)
    return {
        "Platform": {"Name": "sampan"},
        "Components": [{"Name": "Engine", "Version": __version__,
                        "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                                    "Os": "linux", "Arch": arch, "KernelVersion": u.release,
                                    "Experimental": "false"}}],
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + ".".join(map(str, __import__("sys").version_info[:3])),
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": u.release,
        "BuildTime": "",
    }


def info(engine: Any) -> dict[str, Any]:
    d = _info(engine)
    cg = engine.cgroups.info_fields()
    warnings = cg.pop("Warnings")
    d.update(cg)
    d["Warnings"] = warnings or None
    return d


def _info(engine: Any) -> dict[str, Any]:
    u = os.uname()
    cfg = engine.config
    counts = engine.containers.counts()
    arch = u.machine
    runtimes = {"sampan": {"path": "sampan (built in)"}}
    import shutil
    for rt in ("runc", "crun"):
        p = shutil.which(rt)
        if p:
            runtimes[rt] = {"path": p}
    return {
        "ID": _daemon_id(cfg),
        **counts,
        "Images": engine.images.count(),
        "Driver": engine.storage_driver,
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True,
        "PidsLimit": True, "IPv4Forwarding": True, "BridgeNfIptables": False,
        "BridgeNfIp6tables": False, "Debug": cfg.debug, "NFd": len(os.listdir("/proc/self/fd")),
        "OomKillDisable": True, "NGoroutines": 0, "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime()),
        "LoggingDriver": cfg.log_driver, "CgroupDriver": "cgroupfs", "CgroupVersion": cgroup_version(),
        "NEventsListener": 0, "KernelVersion": u.release, "OperatingSystem": _os_name(),
        "OSVersion": "", "OSType": "linux", "Architecture": arch, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None,
        "DockerRootDir": str(cfg.data_root), "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": socket.gethostname(), "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": version()["Version"], "Runtimes": runtimes, "DefaultRuntime": cfg.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": cfg.live_restore, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SecurityOptions": security_options(cfg),
        "CDISpecDirs": [], "Warnings": None,
    }


def security_options(cfg: Any) -> list[str]:
    """`info` SecurityOptions in dockerd's order and format (daemon/info_unix.go): seccomp,
    userns/rootless (from the userns hooks), cgroupns, no-new-privileges."""
    from ..linux import seccomp
    out = []
    if seccomp.supported():
        out.append(f"name=seccomp,profile={getattr(cfg, 'seccomp_profile_name', 'builtin')}")
    out += userns_hooks.security_options()
    # Containers get a private cgroup namespace by default here (v1 and v2 alike).
    if os.path.exists("/proc/self/ns/cgroup"):
        out.append("name=cgroupns")
    if (getattr(cfg, "extra", None) or {}).get("no-new-privileges"):
        out.append("name=no-new-privileges")
    return out


def _daemon_id(cfg: Any) -> str:
    path = cfg.data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        import uuid
        ident = str(uuid.uuid4())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(ident)
        os.replace(tmp, path)
        return ident
