"""Resolve Docker's `--user name|uid[:group|gid]` and `--group-add` against /etc/passwd and
/etc/group text, with runc's rules (libcontainer/user.GetExecUser), so errors and the
resulting ids match what Docker users see. Pure functions: the caller reads the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InvalidParameter

_MAX_ID = 2**31 - 1
# Bound what we read from an image's /etc files: a hostile image can ship a huge one.
MAX_FILE = 4 << 20


@dataclass(frozen=True)
class ExecUser:
    uid: int
    gid: int
    sgids: tuple[int, ...] = field(default=())
    home: str = "/"
    name: str = ""


def parse_passwd(text: str) -> list[tuple[str, int, int, str]]:
    """[(name, uid, gid, home)] from passwd text; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 4:
            continue
        try:
            uid, gid = int(f[2]), int(f[3])
        except ValueError:
            continue
        out.append((f[0], uid, gid, f[5] if len(f) > 5 else ""))
    return out


def parse_group(text: str) -> list[tuple[str, int, list[str]]]:
    """[(name, gid, members)] from group text; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) < 3:
            continue
        try:
            gid = int(f[2])
        except ValueError:
            continue
        members = [m for m in f[3].split(",") if m] if len(f) > 3 else []
        out.append((f[0], gid, members))
    return out


def _num(s: str) -> int | None:
    if s.isdigit():
        n = int(s)
        if n > _MAX_ID:
            raise InvalidParameter(f"uids and gids must be in range 0-{_MAX_ID}")
        return n
    if s.startswith("-") and s[1:].isdigit():
        raise InvalidParameter(f"uids and gids must be in range 0-{_MAX_ID}")
    return None


def resolve(user_spec: str, passwd: str | None, group: str | None,
            group_add: list[str] | tuple[str, ...] = ()) -> ExecUser:
    """The ids a process runs as. `passwd`/`group` are file contents, None when absent."""
    user_arg, _, group_arg = (user_spec or "").partition(":")
    uid_arg = _num(user_arg)
    gid_arg = _num(group_arg)
    users = parse_passwd(passwd) if passwd is not None else []

    uid, gid, home, name = 0, 0, "/", ""
    match = None
    for entry in users:
        if user_arg == "":
            hit = entry[1] == 0
        elif uid_arg is not None:
            hit = entry[1] == uid_arg
        else:
            hit = entry[0] == user_arg
        if hit:
            match = entry
            break
    if match is not None:
        name, uid, gid, home = match[0], match[1], match[2], match[3] or "/"
    elif user_arg != "":
        if uid_arg is None:
            raise InvalidParameter(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = uid_arg

    groups = parse_group(group) if group is not None else []
    sgids: list[int] = []
    if group_arg != "":
        found = None
        for g in groups:
            if (gid_arg is not None and g[1] == gid_arg) or (gid_arg is None and g[0] == group_arg):
                found = g
                break
        if found is not None:
            gid = found[1]
        elif gid_arg is not None:
            gid = gid_arg
        else:
            raise InvalidParameter(
                f"unable to find group {group_arg}: no matching entries in group file")
    elif name:
        # Supplementary groups only in the implicit form, as runc does.
        sgids = [g[1] for g in groups if name in g[2]]

    for extra in group_add or ():
        extra = str(extra)
        n = _num(extra)
        hit = next((g for g in groups if (n is not None and g[1] == n)
                    or (n is None and g[0] == extra)), None)
        if hit is not None:
            gid_extra = hit[1]
        elif n is not None:
            gid_extra = n
        else:
            raise InvalidParameter(
                f"unable to find group {extra}: no matching entries in group file")
        if gid_extra not in sgids:
            sgids.append(gid_extra)
    return ExecUser(uid, gid, tuple(sgids), home, name)
