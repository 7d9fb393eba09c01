"""A container's record: what is stored in SQLite and how it is shown in Docker's JSON shapes."""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidParameter
from ..units import human_duration
from ..monitor.logfile import rfc3339_nano, parse_rfc3339_nano

ZERO_TIME = "0001-01-01T00:00:00Z"
NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")

_ADJECTIVES = (
    "agile amber ancient bold brave bright brisk calm candid clever cosmic crisp curious daring "
    "deft eager earnest fervent fond gentle glad grand happy hardy humble jolly keen kind lively "
    "lucid merry mellow modest nimble noble patient plucky proud quiet quirky rapid serene sharp "
    "silent sleepy smart snappy steady sturdy sunny swift tender thrifty tidy trusty upbeat vivid "
    "warm wise witty zealous").split()
_NOUNS = (
    "albatross badger beaver bison bittern crane curlew dolphin egret falcon ferret finch gannet "
    "gecko heron ibis jackal kestrel kingfisher lemur lynx magpie marmot marten mink narwhal newt "
    "ocelot osprey otter owl panda pelican penguin petrel plover puffin quail raven robin salmon "
    "sandpiper seal shrike skua sparrow stoat swift tapir tern thrush toucan turtle walrus wombat "
    "wren yak").split()


def new_id() -> str:
    return secrets.token_hex(32)


def random_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def now_rfc3339() -> str:
    return rfc3339_nano(time.time_ns())




def _since(ts: str) -> float:
    try:
        return max(0.0, time.time() - parse_rfc3339_nano(ts) / 1e9)
    except ValueError:
        return 0.0


@dataclass
class State:
    Status: str = "created"     # created running paused restarting removing exited dead
    Running: bool = False
    Paused: bool = False
    Restarting: bool = False
    OOMKilled: bool = False
    Dead: bool = False
    Pid: int = 0
    ExitCode: int = 0
    Error: str = ""
    StartedAt: str = ZERO_TIME
    FinishedAt: str = ZERO_TIME
    Health: dict | None = None  # State.Health, with a health check (sampan.health)


@dataclass
class Container:
    id: str
    name: str
    created: str
    image: str                  # as the user named it
    image_id: str
    config: dict[str, Any]      # Docker's Config, merged with the image's
    host_config: dict[str, Any]
    path: str
    args: list[str]
    state: State = field(default_factory=State)
    restart_count: int = 0
    driver: str = "overlay2"
    manual_stop: bool = False
    lower_dirs: list[str] = field(default_factory=list)
    dir: str = ""               # containers/<id>
    exec_ids: list[str] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)  # sampan.volumes MountPoints

    # -- storage ------------------------------------------------------------------------------
    def to_row(self) -> tuple[str, str, str]:
        d = asdict(self)
        d.pop("exec_ids", None)
        return self.id, self.name, json.dumps(d)

    @classmethod
    def from_row(cls, data: str) -> "Container":
        d = json.loads(data)
        d["state"] = State(**d["state"])
        return cls(**d)

    # -- paths --------------------------------------------------------------------------------
    @property
    def log_path(self) -> str:
        from .logread import log_path  # json-file's or local's, by the container's driver
        return log_path(self)

    @property
    def upper_dir(self) -> str:
        return f"{self.dir}/upper"

    @property
    def work_dir(self) -> str:
        return f"{self.dir}/work"

    @property
    def rootfs(self) -> str:
        return f"{self.dir}/merged"

    # -- Docker shapes ------------------------------------------------------------------------
    def status_text(self) -> str:
        s = self.state
        if s.Status == "running":
            from ..health import status_suffix
            return f"Up {human_duration(_since(s.StartedAt))}{status_suffix(s.Health)}"
        if s.Status == "paused":
            return f"Up {human_duration(_since(s.StartedAt))} (Paused)"
        if s.Status == "restarting":
            return f"Restarting ({s.ExitCode}) {human_duration(_since(s.FinishedAt))} ago"
        if s.Status == "exited":
            return f"Exited ({s.ExitCode}) {human_duration(_since(s.FinishedAt))} ago"
        if s.Status == "removing":
            return "Removal In Progress"
        if s.Status == "dead":
            return "Dead"
        return "Created"

    def command_text(self) -> str:
        parts = [self.path] + list(self.args)
        # Docker quotes arguments that contain a space with single quotes, and nothing else.
        return " ".join(f"'{p}'" if " " in p else p for p in parts if p is not None)

    def network_mode(self) -> str:
        return self.host_config.get("NetworkMode") or "default"

    def networks(self) -> dict[str, Any]:
        mode = self.network_mode()
        if mode.startswith("container:"):
            return {}
        name = "bridge" if mode == "default" else mode
        return {name: {
            "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "NetworkID": "",
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
        }}

    def summary(self, size: dict[str, int] | None = None) -> dict[str, Any]:
        out = {
            "Id": self.id,
            "Names": ["/" + self.name],
            "Image": self.image,
            "ImageID": self.image_id,
            "Command": self.command_text(),
            "Created": int(parse_rfc3339_nano(self.created) // 1_000_000_000),
            "Ports": [],
            "Labels": self.config.get("Labels") or {},
            "State": self.state.Status,
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": self.network_mode()},
            "NetworkSettings": {"Networks": self.networks()},
            "Mounts": self.public_mounts(),
        }
        if size is not None:
            out.update(size)
        return out

    def public_mounts(self) -> list[dict[str, Any]]:
        from ..volumes.hooks import public_mounts
        return public_mounts(self)

    def inspect(self, size: dict[str, int] | None = None) -> dict[str, Any]:
        out = {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "State": {k: v for k, v in asdict(self.state).items() if k != "Health" or v},
            "Image": self.image_id,
            "ResolvConfPath": f"{self.dir}/resolv.conf",
            "HostnamePath": f"{self.dir}/hostname",
            "HostsPath": f"{self.dir}/hosts",
            "LogPath": self.log_path,
            "Name": "/" + self.name,
            "RestartCount": self.restart_count,
            "Driver": self.driver,
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": list(self.exec_ids) or None,
            "HostConfig": self.host_config,
            "GraphDriver": {
                "Name": self.driver,
                "Data": {
                    "LowerDir": ":".join(self.lower_dirs),
                    "MergedDir": self.rootfs,
                    "UpperDir": self.upper_dir,
                    "WorkDir": self.work_dir,
                },
            },
            "Mounts": self.public_mounts(),
            "Config": self.config,
            "NetworkSettings": {
                "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {},
                "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
                "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None, "EndpointID": "",
                "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
                "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
                "Networks": self.networks(),
            },
        }
        if size is not None:
            out.update(size)
        return out

