"""Turning a `POST /containers/create` body into a stored container configuration.

Docker merges the image's config into the container's at create time and stores the result, so
`inspect` shows the merged Config; the same rules are applied here.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InvalidParameter

_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "Hostname": str, "Domainname": str, "User": str, "AttachStdin": bool, "AttachStdout": bool,
    "AttachStderr": bool, "Tty": bool, "OpenStdin": bool, "StdinOnce": bool, "Env": list,
    "Cmd": (list, str), "Entrypoint": (list, str), "Image": str, "WorkingDir": str,
    "Labels": dict, "ExposedPorts": dict, "Volumes": dict, "StopSignal": str,
    "StopTimeout": int, "Healthcheck": dict, "ArgsEscaped": bool, "NetworkDisabled": bool,
    "MacAddress": str, "OnBuild": list, "Shell": list,
}

_HOST_TYPES: dict[str, type | tuple[type, ...]] = {
    "Binds": list, "NetworkMode": str, "PortBindings": dict, "RestartPolicy": dict,
    "AutoRemove": bool, "VolumeDriver": str, "VolumesFrom": list, "Mounts": list, "CapAdd": list,
    "CapDrop": list, "Dns": list, "DnsOptions": list, "DnsSearch": list, "ExtraHosts": list,
    "GroupAdd": list, "IpcMode": str, "Cgroup": str, "Links": list, "OomScoreAdj": int,
    "PidMode": str, "Privileged": bool, "PublishAllPorts": bool, "ReadonlyRootfs": bool,
    "SecurityOpt": list, "StorageOpt": dict, "Tmpfs": dict, "UTSMode": str, "UsernsMode": str,
    "ShmSize": int, "Sysctls": dict, "Runtime": str, "Isolation": str, "Ulimits": list,
    "Init": bool, "LogConfig": dict, "CgroupnsMode": str, "MaskedPaths": list,
    "ReadonlyPaths": list, "Memory": int, "MemorySwap": int, "NanoCpus": int, "CpuShares": int,
    "PidsLimit": int, "Devices": list, "ConsoleSize": list,
}

RESTART_POLICIES = ("", "no", "always", "on-failure", "unless-stopped")


def _check_types(section: str, data: dict[str, Any], types: dict[str, Any]) -> None:
    for key, want in types.items():
        v = data.get(key)
        if v is None:
            continue
        if want is int and isinstance(v, bool):
            raise InvalidParameter(f"invalid {section}.{key}: expected an integer")
        if not isinstance(v, want):
            names = want.__name__ if isinstance(want, type) else "/".join(t.__name__ for t in want)
            raise InvalidParameter(f"invalid {section}.{key}: expected {names}, got {type(v).__name__}")


def _as_list(v: Any) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if not all(isinstance(x, str) for x in v):
        raise InvalidParameter("command and entrypoint must be lists of strings")
    return list(v)


def split_body(body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate the create body's shape; returns (Config, HostConfig)."""
    if not isinstance(body, dict):
        raise InvalidParameter("config cannot be empty in order to create a container")
    host = body.get("HostConfig")
    if host is None:
        host = {}
    if not isinstance(host, dict):
        raise InvalidParameter("invalid HostConfig: expected an object")
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    _check_types("Config", config, _CONFIG_TYPES)
    _check_types("HostConfig", host, _HOST_TYPES)
    for key in ("Env",):
        for e in config.get(key) or []:
            if not isinstance(e, str):
                raise InvalidParameter("invalid Env: expected strings")
            if e.startswith("="):
                raise InvalidParameter(f"invalid environment variable: {e}")
    rp = host.get("RestartPolicy") or {}
    if rp.get("Name", "") not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{rp.get('Name')}'")
    if rp.get("Name") in ("always", "unless-stopped") and host.get("AutoRemove"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if rp.get("Name") != "on-failure" and rp.get("MaximumRetryCount"):
        raise InvalidParameter(f"invalid restart policy: maximum retry count can only be used with 'on-failure'")
    for u in host.get("Ulimits") or []:
        if not isinstance(u, dict) or not isinstance(u.get("Name"), str):
            raise InvalidParameter("invalid Ulimits: expected objects with Name, Soft, Hard")
    if (host.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    return config, host


def merge_image_config(config: dict[str, Any], image_cfg: dict[str, Any]) -> dict[str, Any]:
    """Docker's merge of the image's Config into the container's (daemon/create.go)."""
    c = copy.deepcopy(config)
    img = image_cfg or {}
    if not c.get("User"):
        c["User"] = img.get("User") or ""
    ports = dict(img.get("ExposedPorts") or {})
    ports.update(c.get("ExposedPorts") or {})
    if ports:
        c["ExposedPorts"] = ports
    env = list(c.get("Env") or [])
    keys = {e.split("=", 1)[0] for e in env}
    for e in img.get("Env") or []:
        if e.split("=", 1)[0] not in keys:
            env.append(e)
    c["Env"] = env or None
    labels = dict(img.get("Labels") or {})
    labels.update(c.get("Labels") or {})
    c["Labels"] = labels
    entry = _as_list(c.get("Entrypoint"))
    cmd = _as_list(c.get("Cmd"))
    if not entry:
        if not cmd:
            cmd = _as_list(img.get("Cmd"))
        entry = _as_list(img.get("Entrypoint"))
    c["Entrypoint"] = entry or None
    c["Cmd"] = cmd or None
    if not c.get("WorkingDir"):
        c["WorkingDir"] = img.get("WorkingDir") or ""
    vols = dict(img.get("Volumes") or {})
    vols.update(c.get("Volumes") or {})
    c["Volumes"] = vols or None
    if not c.get("StopSignal") and img.get("StopSignal"):
        c["StopSignal"] = img["StopSignal"]
    if not c.get("Healthcheck") and img.get("Healthcheck"):
        c["Healthcheck"] = img["Healthcheck"]
    if c.get("OnBuild") is None:
        c["OnBuild"] = None
    for key, default in (("Hostname", ""), ("Domainname", ""), ("AttachStdin", False),
                         ("AttachStdout", False), ("AttachStderr", False), ("Tty", False),
                         ("OpenStdin", False), ("StdinOnce", False), ("Image", "")):
        c.setdefault(key, default)
    return c


def fill_host_config(host: dict[str, Any]) -> dict[str, Any]:
    """Docker reports a full HostConfig in inspect; clients (docker-py) read some of it."""
    h = copy.deepcopy(host)
    defaults: dict[str, Any] = {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
        "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0],
        "CapAdd": None, "CapDrop": None, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [],
        "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
        "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
        "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
        "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
        "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "",
        "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0,
        "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": None, "PidsLimit": None,
        "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "Init": None, "Mounts": None, "Tmpfs": None, "Sysctls": None,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }
    for k, v in defaults.items():
        if h.get(k) is None or (k in ("NetworkMode", "Runtime", "IpcMode", "CgroupnsMode") and h.get(k) == ""):
            h[k] = copy.deepcopy(v)
    if not h["RestartPolicy"].get("Name"):
        h["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": h["RestartPolicy"].get("MaximumRetryCount", 0)}
    if not h["LogConfig"].get("Type"):
        h["LogConfig"] = {"Type": "json-file", "Config": h["LogConfig"].get("Config") or {}}
    return h


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
    if not argv:
        raise InvalidParameter("No command specified")
    return argv[0], argv[1:]
