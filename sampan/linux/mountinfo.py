"""Reading /proc/<pid>/mountinfo."""

from __future__ import annotations


def unescape(field_: str) -> str:
    """The kernel writes space, tab, newline and backslash in mount paths as \\ooo octal."""
    out, i = [], 0
    while i < len(field_):
        code = field_[i + 1:i + 4]
        if field_[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def mount_points(pid: int | str = "self") -> list[str]:
    """Every mount point in `pid`'s mount namespace, as its root sees them."""
    with open(f"/proc/{pid}/mountinfo") as f:
        return [unescape(line.split()[4]) for line in f if len(line.split()) > 4]
