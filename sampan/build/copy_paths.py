"""Paths inside a root, resolved as a chroot would (moby's FollowSymlinkInScope).

Used for build-context sources, `COPY --from` rootfs sources and COPY destinations in the
image: every symlink met on the way is followed, but an absolute target or `..` can never climb
above the root, so the result always lies inside it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InvalidParameter

_MAX_LINKS = 255


def clean_rel(path: str) -> str:
    """Lexically clean `path` as if rooted ("/" + path), returned without the leading "/"
    ("" for the root itself)."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


def resolve_rel(root: Path | str, path: str) -> str:
    """`path` with every symlink resolved inside `root`, as a cleaned relative path ("" = the
    root). Components that do not exist are kept as written."""
    root = os.fspath(root)
    # Docker cleans the path lexically first: "a/.." never looks at what "a" is
    todo = [p for p in clean_rel(path).split("/") if p]
    todo.reverse()  # a stack: the next component is last
    done: list[str] = []
    links = 0
    while todo:
        p = todo.pop()
        if p in ("", "."):
            continue
        if p == "..":
            if done:
                done.pop()
            continue
        full = os.path.join(root, *done, p)
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            done.append(p)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(p)
            continue
        links += 1
        if links > _MAX_LINKS:
            raise InvalidParameter(f"too many levels of symbolic links in {path!r}")
        target = os.readlink(full)
        if target.startswith("/"):
            done = []
        todo.extend(reversed([t for t in target.split("/") if t not in ("", ".")]))
    return "/".join(done)


def resolve_in_root(root: Path | str, path: str) -> Path:
    """Absolute host path of `path` resolved inside `root` (never outside it)."""
    rel = resolve_rel(root, path)
    return Path(root, rel) if rel else Path(root)
