"""User-namespace id maps: Docker's `--userns-remap` value, /etc/subuid and /etc/subgid ranges,
and translation between container ids and host ids.

Pure functions over text (the caller reads the files), so every rule is unit-tested without
root. The semantics are moby's `idtools`: a remap user's subordinate ranges, in file order,
become consecutive container ids starting at 0 (range 1 maps container 0.., range 2 continues
where range 1 ended), so root in the container is the first id of the first range.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidParameter

DEFAULT_REMAP_USER = "dockremap"  # Docker's name: /etc/subuid entries made for Docker work
DEFAULT_RANGE_START = 100000
DEFAULT_RANGE_SIZE = 65536
_MAX_ID = 2**32 - 2  # (uid_t)-1 is "no id"
# The kernel accepts at most 340 lines in uid_map (5 before 4.15); Docker caps nothing, but a
# hostile /etc/subuid must not make us write an unbounded map.
MAX_RANGES = 340


@dataclass(frozen=True)
class IdRange:
    container: int
    host: int
    size: int

    def line(self) -> str:
        return f"{self.container} {self.host} {self.size}"


@dataclass(frozen=True)
class IdMap:
    """Container<->host translation for uids and gids (what /proc/<pid>/uid_map holds)."""
    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]

    @property
    def root(self) -> tuple[int, int]:
        """The host (uid, gid) of root in the container."""
        return self.to_host(0, 0)

    def to_host(self, uid: int, gid: int) -> tuple[int, int]:
        """Host ids for container ids; an id outside the map is an InvalidParameter (it could
        only be written as the overflow id, silently losing ownership)."""
        return _translate(self.uids, uid, True, "uid"), _translate(self.gids, gid, True, "gid")

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        return _translate(self.uids, uid, False, "uid"), _translate(self.gids, gid, False, "gid")

    def uid_map_text(self) -> str:
        return "".join(r.line() + "\n" for r in self.uids)

    def gid_map_text(self) -> str:
        return "".join(r.line() + "\n" for r in self.gids)

    def oci(self) -> dict[str, list[dict[str, int]]]:
        """OCI runtime-spec `linux.uidMappings` / `linux.gidMappings`."""
        def conv(rs: tuple[IdRange, ...]) -> list[dict[str, int]]:
            return [{"containerID": r.container, "hostID": r.host, "size": r.size} for r in rs]
        return {"uidMappings": conv(self.uids), "gidMappings": conv(self.gids)}

    def key(self) -> str:
        """Docker's per-mapping data-root directory name: `<root uid>.<root gid>`."""
        uid, gid = self.root
        return f"{uid}.{gid}"

    def to_json(self) -> dict:
        return {"uids": [[r.container, r.host, r.size] for r in self.uids],
                "gids": [[r.container, r.host, r.size] for r in self.gids]}

    @classmethod
    def from_json(cls, obj: dict) -> "IdMap":
        return cls(tuple(IdRange(*map(int, r)) for r in obj["uids"]),
                   tuple(IdRange(*map(int, r)) for r in obj["gids"]))


def _translate(ranges: tuple[IdRange, ...], n: int, to_host: bool, what: str) -> int:
    for r in ranges:
        start = r.container if to_host else r.host
        if start <= n < start + r.size:
            return n - start + (r.host if to_host else r.container)
    side = "container" if to_host else "host"
    raise InvalidParameter(f"{what} {n} is not mapped in the user namespace ({side} id)")


def parse_remap(value: str) -> tuple[str, str]:
    """`--userns-remap` -> (user, group). `default` is Docker's `dockremap:dockremap`; a user
    alone uses the same name for the group (moby parseRemappedRoot)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("userns-remap: a user name, uid, user:group or `default` is required")
    value = value.strip()
    if value == "default":
        return DEFAULT_REMAP_USER, DEFAULT_REMAP_USER
    user, sep, group = value.partition(":")
    if not user or (sep and not group) or ":" in group:
        raise InvalidParameter(f"invalid userns-remap value {value!r}: expected user[:group]")
    for part in (user, group):
        if part and not all(c.isalnum() or c in "._-" for c in part):
            raise InvalidParameter(f"invalid userns-remap value {value!r}")
    return user, group or user


def parse_subid(text: str, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """[(start, count)] for any of `names` (a user name and/or its numeric id) in subuid/subgid
    text, in file order. Malformed lines are skipped, as shadow-utils does."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(":")
        if len(f) != 3 or f[0] not in names:
            continue
        try:
            start, count = int(f[1]), int(f[2])
        except ValueError:
            continue
        if start < 0 or count <= 0 or start + count - 1 > _MAX_ID:
            continue
        out.append((start, count))
    return out


def ranges_from_subid(pairs: list[tuple[int, int]], what: str, who: str) -> tuple[IdRange, ...]:
    """Consecutive container ids over the subordinate ranges (moby createIDMap)."""
    if not pairs:
        raise InvalidParameter(f"no subordinate {what} ranges found for user {who!r} "
                               f"in /etc/sub{what}")
    if len(pairs) > MAX_RANGES:
        raise InvalidParameter(f"too many subordinate {what} ranges for {who!r} ({len(pairs)})")
    out = []
    next_container = 0
    for start, count in pairs:
        if next_container + count - 1 > _MAX_ID:
            break
        out.append(IdRange(next_container, start, count))
        next_container += count
    return tuple(out)


def free_range(texts: list[str], size: int = DEFAULT_RANGE_SIZE,
               start: int = DEFAULT_RANGE_START) -> int:
    """The lowest start >= `start` where `size` ids overlap no range in any of `texts` (what
    dockerd picks for a dockremap it creates)."""
    used = []
    for text in texts:
        for line in text.splitlines():
            f = line.strip().split(":")
            if len(f) != 3:
                continue
            try:
                used.append((int(f[1]), int(f[2])))
            except ValueError:
                continue
    cand = start
    for s, c in sorted(used):
        if s + c <= cand:
            continue
        if s >= cand + size:
            break
        cand = s + c
    if cand + size - 1 > _MAX_ID:
        raise InvalidParameter("no free subordinate id range left")
    return cand


def parse_proc_map(text: str) -> tuple[IdRange, ...]:
    """/proc/<pid>/uid_map text -> ranges."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3:
            out.append(IdRange(int(f[0]), int(f[1]), int(f[2])))
    return tuple(out)
