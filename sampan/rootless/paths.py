"""Where a rootless daemon keeps things (Docker's rootless layout, with `sampan` for `docker`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidParameter


# A monitor's socket is <exec-root>/monitors/<64-hex id>.sock.<pid> while it is bound: unix
# socket paths end at 107 bytes, and /run/user/1000/sampan already leaves too little.
_SOCKET_TAIL = len("/monitors/") + 64 + len(".sock.") + 7
_MAX_SOCKET = 107


@dataclass(frozen=True)
class RootlessPaths:
    data_root: Path
    run_dir: Path        # $XDG_RUNTIME_DIR/sampan: the API socket and the pid file
    config_file: Path
    exec_root: Path      # run_dir, or a shorter private directory when monitor sockets need it

    @property
    def socket(self) -> str:
        return f"unix://{self.run_dir / 'sampan.sock'}"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "sampand.pid"


def short_exec_root(uid: int) -> Path:
    """/tmp/sampan-<uid>, made 0700 and checked to be ours and a real directory (/tmp is
    shared: another user may have put something there first)."""
    p = Path(f"/tmp/sampan-{uid}")
    try:
        os.mkdir(p, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(p)
    import stat as _stat
    if not _stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise InvalidParameter(f"{p} exists but is not a private directory of uid {uid}: remove it "
                               f"or set --exec-root")
    return p


def resolve(env: dict[str, str] | None = None) -> RootlessPaths:
    env = dict(os.environ if env is None else env)
    home = env.get("HOME") or ""
    runtime = env.get("XDG_RUNTIME_DIR") or ""
    if not runtime:
        raise InvalidParameter("rootless mode needs XDG_RUNTIME_DIR to be set (a directory only "
                               "this user can write, e.g. /run/user/$UID)")
    if not os.path.isabs(runtime):
        raise InvalidParameter(f"XDG_RUNTIME_DIR must be an absolute path, not {runtime!r}")
    data = env.get("XDG_DATA_HOME") or (os.path.join(home, ".local", "share") if home else "")
    conf = env.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else "")
    if not data or not os.path.isabs(data) or not conf or not os.path.isabs(conf):
        raise InvalidParameter("rootless mode needs HOME (or XDG_DATA_HOME and XDG_CONFIG_HOME) "
                               "to be absolute paths")
    run_dir = Path(runtime) / "sampan"
    exec_root = run_dir
    if len(str(run_dir)) + _SOCKET_TAIL > _MAX_SOCKET:
        exec_root = short_exec_root(os.getuid())
    return RootlessPaths(Path(data) / "sampan", run_dir, Path(conf) / "sampan" / "daemon.json",
                         exec_root)
