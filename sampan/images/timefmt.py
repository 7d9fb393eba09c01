"""RFC 3339 times the way Docker writes them (nanoseconds, `Z`) and reads them."""

from __future__ import annotations

import calendar
import re
import time

_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                 r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$")


def rfc3339_nano(ns: int | None = None) -> str:
    if ns is None:
        ns = time.time_ns()
    sec, frac = divmod(ns, 10**9)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_rfc3339(s: str | None) -> float:
    """Seconds since the epoch; 0.0 for missing or unparsable values (Docker shows them as 0)."""
    if not s or not isinstance(s, str):
        return 0.0
    m = _RE.match(s.strip())
    if not m:
        return 0.0
    y, mo, d, h, mi, se, frac, z, sign, oh, om = m.groups()
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(se), 0, 0, 0))
    if frac:
        t += int(frac[:9].ljust(9, "0")) / 1e9
    if not z and sign:
        off = int(oh) * 3600 + int(om) * 60
        t -= off if sign == "+" else -off
    return float(t)


def parse_until(value: str, now: float | None = None) -> float:
    """Docker's `until`/`since` filter time: unix seconds, a Go duration back from now, or RFC 3339."""
    from ..errors import InvalidParameter
    from .changes import parse_duration

    now = time.time() if now is None else now
    v = value.strip()
    try:
        return float(v)
    except ValueError:
        pass
    try:
        return now - parse_duration(v) / 1e9
    except InvalidParameter:
        pass
    t = parse_rfc3339(v) if _RE.match(v) else None
    if t is None:
        m = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", v)
        if not m:
            raise InvalidParameter(f"invalid time value {value!r}")
        t = float(calendar.timegm((int(m[1]), int(m[2]), int(m[3]), 0, 0, 0, 0, 0, 0)))
    return t
