"""Turning a `POST /containers/create` body into a stored container configuration.

Docker merges the image's config into the container's at create time and stores the result, so
`inspect` shows the merged Config; the same rules are applied here.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import InvalidParameter, NotFound
from ..linux import caps as _caps

# Field types as Docker's Go structs declare them (api/types/container config.go and
# hostconfig.go). dockerd decodes the body with encoding/json, so a value of the wrong JSON type
# anywhere in it, or an integer its Go type cannot hold, is a 400 before anything is created;
# accepting it instead would store a container that clients then fail to decode (the docker CLI
# cannot list containers at all once one has `"Labels": {"a": 1}`).
# Kinds: str, bool, int (int64), uint16, uint64, strs ([]string), strslice (string or
# []string), strmap (map[string]string), set (map[string]struct{}), obj, or a nested dict.
_I64 = (-(1 << 63), (1 << 63) - 1)
_RANGES = {"int": _I64, "uint16": (0, 0xFFFF), "uint64": (0, (1 << 64) - 1)}

_CONFIG_SCHEMA: dict[str, Any] = {
    "Hostname": "str", "Domainname": "str", "User": "str", "AttachStdin": "bool",
    "AttachStdout": "bool", "AttachStderr": "bool", "Tty": "bool", "OpenStdin": "bool",
    "StdinOnce": "bool", "Env": "strs", "Cmd": "strslice", "Entrypoint": "strslice",
    "Image": "str", "WorkingDir": "str", "Labels": "strmap", "ExposedPorts": "set",
    "Volumes": "set", "StopSignal": "str", "StopTimeout": "int", "ArgsEscaped": "bool",
    "NetworkDisabled": "bool", "MacAddress": "str", "OnBuild": "strs", "Shell": "strslice",
    "Healthcheck": {"Test": "strs", "Interval": "int", "Timeout": "int", "StartPeriod": "int",
                    "StartInterval": "int", "Retries": "int"},
}

_HOST_SCHEMA: dict[str, Any] = {
    "Binds": "strs", "ContainerIDFile": "str", "NetworkMode": "str", "PortBindings": "ports",
    "RestartPolicy": {"Name": "str", "MaximumRetryCount": "int"},
    "LogConfig": {"Type": "str", "Config": "strmap"}, "AutoRemove": "bool",
    "VolumeDriver": "str", "VolumesFrom": "strs",
    "Mounts": [{"Type": "str", "Source": "str", "Target": "str", "ReadOnly": "bool",
                "Consistency": "str", "BindOptions": "obj", "VolumeOptions": "obj",
                "TmpfsOptions": "obj"}], "CapAdd": "strslice",
    "CapDrop": "strslice", "Dns": "strs", "DnsOptions": "strs", "DnsSearch": "strs",
    "ExtraHosts": "strs", "GroupAdd": "strs", "IpcMode": "str", "Cgroup": "str",
    "CgroupParent": "str", "Links": "strs", "OomScoreAdj": "int", "PidMode": "str",
    "Privileged": "bool", "PublishAllPorts": "bool", "ReadonlyRootfs": "bool",
    "SecurityOpt": "strs", "StorageOpt": "strmap", "Tmpfs": "strmap", "UTSMode": "str",
    "UsernsMode": "str", "ShmSize": "int", "Sysctls": "strmap", "Runtime": "str",
    "Isolation": "str", "Ulimits": [{"Name": "str", "Soft": "int", "Hard": "int"}],
    "Init": "bool", "CgroupnsMode": "str", "MaskedPaths": "strs", "ReadonlyPaths": "strs",
    "Memory": "int", "MemorySwap": "int", "MemoryReservation": "int", "MemorySwappiness": "int",
    "KernelMemory": "int", "NanoCpus": "int", "CpuShares": "int", "CpuPeriod": "int",
    "CpuQuota": "int", "CpuRealtimePeriod": "int", "CpuRealtimeRuntime": "int",
    "CpusetCpus": "str", "CpusetMems": "str", "CpuCount": "int", "CpuPercent": "int",
    "BlkioWeight": "uint16", "PidsLimit": "int", "OomKillDisable": "bool",
    "IOMaximumIOps": "uint64", "IOMaximumBandwidth": "uint64", "DeviceCgroupRules": "strs",
    "Devices": [{"PathOnHost": "str", "PathInContainer": "str", "CgroupPermissions": "str"}],
    "ConsoleSize": "size", "Annotations": "strmap",
}

_GO_TYPES = {"str": "string", "bool": "bool", "int": "int64", "uint16": "uint16",
             "uint64": "uint64", "strs": "[]string", "strslice": "[]string",
             "strmap": "map[string]string", "set": "map[string]struct {}", "obj": "object",
             "size": "[2]uint", "ports": "nat.PortMap"}


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_error(path: str, v: Any, want: str) -> InvalidParameter:
    return InvalidParameter(f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                            f"{path} of type {want}")


def _check_value(path: str, v: Any, kind: Any) -> None:
    """Raise InvalidParameter unless `v` decodes into `kind` as Go's encoding/json would."""
    if v is None:  # null decodes into anything as the zero value
        return
    if isinstance(kind, dict):
        if not isinstance(v, dict):
            raise _type_error(path, v, "object")
        for k, sub in kind.items():
            _check_value(f"{path}.{k}", v.get(k), sub)
        return
    if isinstance(kind, list):
        if not isinstance(v, list):
            raise _type_error(path, v, "array")
        for item in v:
            _check_value(path, item, kind[0])
        return
    ok: bool
    if kind == "str":
        ok = isinstance(v, str)
    elif kind == "bool":
        ok = isinstance(v, bool)
    elif kind in _RANGES:
        ok = isinstance(v, int) and not isinstance(v, bool)
        if ok and not _RANGES[kind][0] <= v <= _RANGES[kind][1]:
            raise InvalidParameter(f"json: cannot unmarshal number {v} into Go struct field "
                                   f"{path} of type {_GO_TYPES[kind]}")
    elif kind == "strs":
        ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
    elif kind == "strslice":
        ok = isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    elif kind == "strmap":
        ok = isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    elif kind == "set":
        ok = isinstance(v, dict) and all(x is None or isinstance(x, dict) for x in v.values())
    elif kind == "ports":
        ok = isinstance(v, dict)
        for bindings in v.values() if ok else ():
            _check_value(path, bindings, [{"HostIp": "str", "HostPort": "str"}])
    elif kind == "size":
        ok = (isinstance(v, list) and len(v) == 2
              and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < (1 << 32) for x in v))
    else:  # obj
        ok = isinstance(v, dict)
    if not ok:
        raise _type_error(path, v, _GO_TYPES[kind])


def _check_schema(section: str, data: dict[str, Any], schema: dict[str, Any]) -> None:
    for key, kind in schema.items():
        _check_value(f"{section}.{key}", data.get(key), kind)


def check_config(config: Any) -> None:
    """A container Config from a client (as commit's body) decodes as Go's would, or 400."""
    if config is None:
        return
    if not isinstance(config, dict):
        raise InvalidParameter("invalid container config: expected an object")
    _check_schema("Config", config, _CONFIG_SCHEMA)


RESTART_POLICIES = ("", "no", "always", "on-failure", "unless-stopped")


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
    _check_schema("ContainerConfigWrapper", config, _CONFIG_SCHEMA)
    _check_schema("HostConfig", host, _HOST_SCHEMA)
    for e in config.get("Env") or []:
        if e.startswith("="):
            raise InvalidParameter(f"invalid environment variable: {e}")
    rp = host.get("RestartPolicy") or {}
    if rp.get("Name", "") not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{rp.get('Name')}'")
    if rp.get("Name") not in ("", "no", None) and host.get("AutoRemove"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    if rp.get("Name") != "on-failure" and rp.get("MaximumRetryCount"):
        raise InvalidParameter(f"invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if (rp.get("MaximumRetryCount") or 0) < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    for u in host.get("Ulimits") or []:
        if not isinstance(u, dict) or not u.get("Name"):
            raise InvalidParameter("invalid Ulimits: expected objects with Name, Soft, Hard")
    if (host.get("ShmSize") or 0) < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    _check_semantics(config, host)
    return config, host


def _check_semantics(config: dict[str, Any], host: dict[str, Any]) -> None:
    """The checks dockerd makes at create (daemon/container.go verifyContainerSettings), so a
    container that could never start is refused up front rather than stored."""
    wd = config.get("WorkingDir") or ""
    if wd and not wd.startswith("/"):
        raise InvalidParameter(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
    oom = host.get("OomScoreAdj") or 0
    if not -1000 <= oom <= 1000:
        raise InvalidParameter(f"Invalid value {oom}, range for oom score adj is [-1000, 1000]")
    for key in ("CapAdd", "CapDrop"):
        v = host.get(key)
        for cap in [v] if isinstance(v, str) else v or []:
            _caps.normalize(cap)  # 'unknown capability: "CAP_X"'
    mem = host.get("Memory") or 0
    if 0 < mem < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    swap = host.get("MemorySwap") or 0
    if mem > 0 and swap > 0 and swap < mem:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    for key, what, ok in _NS_MODES:
        v = host.get(key) or ""
        joins = key in ("IpcMode", "PidMode") and v.startswith("container:") and len(v) > 10
        if not isinstance(v, str) or not (v in ok or joins):
            raise InvalidParameter(f"invalid {what} mode: {v}")
    from ..runtime.spec import validate_host_config
    validate_host_config(host)  # 'invalid --security-opt 2: "x"', bad seccomp, bad ulimits


# (HostConfig key, what dockerd calls it, the values it accepts besides `container:<id>`)
_NS_MODES = (("IpcMode", "IPC", ("", "none", "private", "shareable", "host")),
             ("PidMode", "PID", ("", "host")),
             ("UTSMode", "UTS", ("", "host")),
             ("CgroupnsMode", "cgroup namespace", ("", "private", "host")))


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


def check_platform(image_config: dict, ref: str, platform: str) -> None:
    """`create?platform=` (API 1.41+): the local image must be of that platform, else dockerd's
    404, on which the docker CLI pulls the right one and creates again."""
    from ..images.service import _ARCH, parse_platform
    want_os, want_arch, want_variant = parse_platform(platform)
    got_os = str(image_config.get("os") or "linux")
    got_arch = str(image_config.get("architecture") or "")
    got_arch = _ARCH.get(got_arch, got_arch)
    got_variant = str(image_config.get("variant") or "")
    if (got_os, got_arch) == (want_os, want_arch) and (not want_variant or not got_variant
                                                      or want_variant == got_variant):
        return
    wanted = "/".join(p for p in (want_os, want_arch, want_variant) if p)
    actual = "/".join(p for p in (got_os, got_arch, got_variant) if p)
    raise NotFound(f"image with reference {ref} was found but does not match the specified "
                   f"platform: wanted {wanted}, actual: {actual}")
