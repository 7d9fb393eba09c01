"""Daemon configuration: Docker's daemon flags and `daemon.json` keys."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter

DEFAULT_HOST = "unix:///run/sampan/sampan.sock"
DEFAULT_DATA_ROOT = "/var/lib/sampan"
DEFAULT_EXEC_ROOT = "/run/sampan"
DEFAULT_CONFIG_FILE = "/etc/sampan/daemon.json"


@dataclass
class DaemonConfig:
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST])
    data_root: Path = Path(DEFAULT_DATA_ROOT)
    exec_root: Path = Path(DEFAULT_EXEC_ROOT)
    config_file: Path = Path(DEFAULT_CONFIG_FILE)
    pidfile: Path | None = None
    debug: bool = False
    storage_driver: str = ""          # "" = detect: overlay, else vfs
    default_runtime: str = "sampan"   # or "runc", "crun"
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    live_restore: bool = True
    dns: list[str] = field(default_factory=list)
    # `seccomp-profile`: what containers naming no profile get. seccomp_profile is None (the
    # built-in one), "unconfined" or the file's JSON text; seccomp_profile_name is what `info`
    # shows ("builtin", "unconfined" or the file's path).
    seccomp_profile: str | None = None
    seccomp_profile_name: str = "builtin"
    extra: dict[str, Any] = field(default_factory=dict)  # other daemon.json keys, kept for later issues

    # Layout under the roots (DESIGN "Files on disk").
    @property
    def db_path(self) -> Path:
        return self.data_root / "sampan.db"

    @property
    def content_dir(self) -> Path:
        return self.data_root / "content"

    @property
    def layers_dir(self) -> Path:
        return self.data_root / "layers"

    @property
    def containers_dir(self) -> Path:
        return self.data_root / "containers"

    @property
    def tmp_dir(self) -> Path:
        return self.data_root / "tmp"

    @property
    def monitors_dir(self) -> Path:
        return self.exec_root / "monitors"

    def load_file(self, required: bool = False) -> None:
        """Merge daemon.json; flags given on the command line win (caller applies them after)."""
        try:
            raw = self.config_file.read_text()
        except FileNotFoundError:
            if required:
                raise InvalidParameter(f"config file {self.config_file} does not exist") from None
            return
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise InvalidParameter(f"invalid daemon config {self.config_file}: {e}") from None
        if not isinstance(data, dict):
            raise InvalidParameter(f"invalid daemon config {self.config_file}: not a JSON object")
        for key, value in data.items():
            if key == "data-root":
                self.data_root = Path(value)
            elif key == "exec-root":
                self.exec_root = Path(value)
            elif key == "hosts":
                self.hosts = list(value)
            elif key == "debug":
                self.debug = bool(value)
            elif key == "storage-driver":
                self.storage_driver = str(value)
            elif key == "default-runtime":
                self.default_runtime = str(value)
            elif key == "log-driver":
                self.log_driver = str(value)
            elif key == "log-opts":
                self.log_opts = {str(k): str(v) for k, v in dict(value).items()}
            elif key == "live-restore":
                self.live_restore = bool(value)
            elif key == "dns":
                self.dns = [str(x) for x in value]
            else:
                self.extra[key] = value
