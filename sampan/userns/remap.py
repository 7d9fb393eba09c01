"""The daemon's `--userns-remap`: find (or, for `default`, create) the remap user, read its
subordinate ranges, and lay out the per-mapping data root, as dockerd does.

`configure(cfg, value)` runs once at daemon start-up, before the engine opens anything; the
resulting map is kept as the process's active map (`active()`), which the runtime, the layer
store and `info` consult. One daemon has one mapping for its whole life (Docker's rule too:
changing it means a new data root).
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from .idmap import (DEFAULT_RANGE_SIZE, DEFAULT_REMAP_USER, IdMap, free_range, parse_remap,
                    parse_subid, ranges_from_subid)

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"

_active: IdMap | None = None


def active() -> IdMap | None:
    """The remapping this daemon runs with (None: no --userns-remap)."""
    return _active


def set_active(idmap: IdMap | None) -> None:
    global _active
    _active = idmap


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(16 << 20)
    except FileNotFoundError:
        return ""


def _append_line(path: str, line: str) -> None:
    """Append under an exclusive lock, by temp file + rename so a crash leaves the old file."""
    # The lock lives in /run (not beside the file in /etc): the file itself is replaced.
    lock_dir = "/run/lock" if os.path.isdir("/run/lock") else "/run"
    lock = os.open(os.path.join(lock_dir, "sampan-subid.lock"),
                   os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        old = _read(path)
        if old and not old.endswith("\n"):
            old += "\n"
        tmp = f"{path}.sampan-tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(old + line + "\n")
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        os.close(lock)


def _create_default_user() -> None:
    """dockerd: `useradd --system -s /bin/false dockremap` (with its group)."""
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    try:
        subprocess.run([useradd, "--system", "--user-group", "-s", "/bin/false",
                        DEFAULT_REMAP_USER], check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise InvalidParameter(f"Couldn't create subordinate ID ranges: failed to add user "
                               f"{DEFAULT_REMAP_USER}: {detail.decode(errors='replace').strip() or e}") from None


def _ensure_ranges(name: str, uid: int) -> None:
    """Give `name` a 65536-id range in /etc/subuid and /etc/subgid if it has none (dockerd
    does this only for the user it created, `dockremap`)."""
    texts = [_read(SUBUID), _read(SUBGID)]
    names = (name, str(uid))
    if parse_subid(texts[0], names) and parse_subid(texts[1], names):
        return
    start = free_range(texts)
    for path, text in ((SUBUID, texts[0]), (SUBGID, texts[1])):
        if not parse_subid(text, names):
            _append_line(path, f"{name}:{start}:{DEFAULT_RANGE_SIZE}")


def _lookup(user: str, group: str) -> tuple[str, int, str, int]:
    """(user name, uid, group name, gid); numeric values may lack a passwd/group entry."""
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        uname, uid = pw.pw_name, pw.pw_uid
    except (KeyError, ValueError):
        if not user.isdigit():
            raise InvalidParameter(f"Error during uid lookup for {user}: no such user") from None
        uname, uid = user, int(user)
    try:
        gr = grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)
        gname, gid = gr.gr_name, gr.gr_gid
    except (KeyError, ValueError):
        if not group.isdigit():
            raise InvalidParameter(f"Error during gid lookup for {group}: no such group") from None
        gname, gid = group, int(group)
    return uname, uid, gname, gid


def resolve(value: str, create: bool = True) -> tuple[IdMap, str]:
    """The id map for a `--userns-remap` value, and the user:group it resolved to."""
    user, group = parse_remap(value)
    if user == DEFAULT_REMAP_USER and value.strip() == "default" and create:
        try:
            pwd.getpwnam(DEFAULT_REMAP_USER)
        except KeyError:
            _create_default_user()
        _ensure_ranges(DEFAULT_REMAP_USER, pwd.getpwnam(DEFAULT_REMAP_USER).pw_uid)
    uname, uid, gname, gid = _lookup(user, group)
    if uid == 0:
        raise InvalidParameter("cannot remap root: the remap user must not be root")
    uids = ranges_from_subid(parse_subid(_read(SUBUID), (uname, str(uid))), "uid", uname)
    gids = ranges_from_subid(parse_subid(_read(SUBGID), (gname, str(gid))), "gid", gname)
    return IdMap(uids, gids), f"{uname}:{gname}"


def configure(cfg: Any, value: str) -> IdMap:
    """Apply `--userns-remap` to a DaemonConfig: the data root becomes `<root>/<uid>.<gid>`
    (so remapped and unremapped content never mix), owned root:<remapped gid> 0710 so the
    remapped root can reach its files, under a top directory opened to 0701 as dockerd does."""
    idmap, who = resolve(value)
    top = Path(cfg.data_root)
    top.mkdir(parents=True, exist_ok=True)
    os.chmod(top, 0o701)
    check_reachable(top, idmap)
    root = top / idmap.key()
    root.mkdir(mode=0o710, exist_ok=True)
    os.chown(root, 0, idmap.root[1])
    os.chmod(root, 0o710)
    cfg.data_root = root
    cfg.extra["userns-remap"] = value
    cfg.extra["userns-remap-resolved"] = who
    set_active(idmap)
    return idmap


def _can_search(st: os.stat_result, uid: int, gid: int) -> bool:
    if st.st_uid == uid:
        return bool(st.st_mode & 0o100)
    if st.st_gid == gid:
        return bool(st.st_mode & 0o010)
    return bool(st.st_mode & 0o001)


def check_reachable(path: Path, idmap: IdMap) -> None:
    """Every directory above the data root must let the remapped root through: the container's
    init resolves its mounts' sources there after joining its user namespace (dockerd makes the
    same check at start-up, with the same advice)."""
    uid, gid = idmap.root
    for d in path.resolve().parents:
        if str(d) == "/":
            break
        if not _can_search(os.stat(d), uid, gid):
            raise InvalidParameter(
                f"a subdirectory in your graphroot path ({path}) restricts access to the remapped "
                f"root uid/gid; please fix by allowing 'o+x' permissions on existing directories "
                f"({d})")
