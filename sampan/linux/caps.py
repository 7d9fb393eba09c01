"""Linux capability names and numbers (linux/capability.h), and Docker's cap-add/drop rules."""

from __future__ import annotations

from ..errors import InvalidParameter

CAPABILITIES: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}
CAP_NAMES = {v: k for k, v in CAPABILITIES.items()}

# moby oci/caps/defaults.go: the set every non-privileged container starts with.
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)

_last_cap: int | None = None


def last_cap() -> int:
    """Highest capability number this kernel knows (/proc/sys/kernel/cap_last_cap)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read().strip())
        except (OSError, ValueError):
            _last_cap = max(CAPABILITIES.values())
    return _last_cap


def all_caps() -> list[str]:
    """Every capability the running kernel supports, in number order (Docker's `ALL`)."""
    top = last_cap()
    return [CAP_NAMES[n] for n in sorted(CAP_NAMES) if n <= top]


def normalize(name: str) -> str:
    """`net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `all` -> `ALL`."""
    if not isinstance(name, str):
        raise InvalidParameter(f"invalid capability: {name!r}")
    up = name.strip().upper()
    if up == "ALL":
        return "ALL"
    if not up.startswith("CAP_"):
        up = "CAP_" + up
    if up not in CAPABILITIES:
        raise InvalidParameter(f'unknown capability: "{up}"')
    return up


def tweak(adds: list[str] | None, drops: list[str] | None, privileged: bool,
          basics: tuple[str, ...] = DOCKER_DEFAULT_CAPS) -> list[str]:
    """The effective capability list Docker computes from --cap-add/--cap-drop/--privileged."""
    if privileged:
        return all_caps()
    if not adds and not drops:
        return list(basics)
    cap_add = [normalize(c) for c in adds or []]
    cap_drop = [normalize(c) for c in drops or []]
    if "ALL" in cap_add:
        caps = [c for c in all_caps() if c not in cap_drop]
    elif "ALL" in cap_drop:
        caps = list(cap_add)
    else:
        caps = [c for c in basics if c not in cap_drop] + cap_add
    out: list[str] = []
    for c in caps:
        if c != "ALL" and c not in out:
            out.append(c)
    return out


def to_mask(names: list[str] | tuple[str, ...]) -> int:
    """Bit mask of known capability names; names this table lacks are ignored."""
    mask = 0
    for n in names:
        num = CAPABILITIES.get(n)
        if num is not None:
            mask |= 1 << num
    return mask
