"""Tables and `--format` output the way the docker CLI prints them.

- `tabwrite`: Go's text/tabwriter as docker configures it (minwidth 10, padding 3, spaces).
- `human_size`/`human_duration`: go-units HumanSizeWithPrecision / HumanDuration.
- `ContainerCtx`/`ImageCtx`/`HistoryCtx`: the fields `--format` templates see, named as
  docker's formatter contexts name them, with the same table headers.
- `render_list`: `table ...` / plain template / `json` over a list of contexts.
"""

from __future__ import annotations

import time

from .template import Template
from ..units import human_duration

DEFAULT_PS = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
DEFAULT_IMAGES = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
DEFAULT_HISTORY = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


# -- units ------------------------------------------------------------------------------------

_DECIMAL = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
_BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def _go_g(value: float, precision: int) -> str:
    return "%.*g" % (precision, value)  # Go's %.Ng and C's agree for these magnitudes


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, `%.{precision}g`."""
    size = float(size)
    i = 0
    while size >= 1000.0 and i < len(_DECIMAL) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + _DECIMAL[i]


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits (docker info's Total Memory)."""
    size = float(size)
    i = 0
    while size >= 1024.0 and i < len(_BINARY) - 1:
        size /= 1024.0
        i += 1
    return _go_g(size, 4) + _BINARY[i]




def go_time(ts: float) -> str:
    """Go's time.Time.String() for a Unix time, local zone: `2024-01-02 15:04:05 +0000 UTC`."""
    t = time.localtime(ts)
    off = t.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f" {sign}{off // 3600:02d}{off % 3600 // 60:02d} {t.tm_zone}"


def rfc3339(ts: float) -> str:
    t = time.localtime(ts)
    off = t.tm_gmtoff or 0
    if off == 0:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


def parse_time(v) -> float:
    """A Unix number or an RFC 3339 string (API `Created` fields differ by resource) -> seconds."""
    if isinstance(v, (int, float)):
        return float(v)
    if not v or not isinstance(v, str) or v.startswith("0001-01-01"):
        return 0.0
    import datetime  # only on paths that meet string timestamps
    s = v.strip()
    frac = 0.0
    main, dot, rest = s.partition(".")
    tz = ""
    if dot:
        digits = ""
        for i, ch in enumerate(rest):
            if not ch.isdigit():
                tz = rest[i:]
                break
            digits += ch
        frac = float("0." + digits) if digits else 0.0
    else:
        for mark in ("Z", "+", "-"):
            idx = main.find(mark, 10)
            if idx > 0:
                main, tz = main[:idx], main[idx:]
                break
    dt = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    if tz in ("", "Z", "z"):
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    else:
        sign = 1 if tz[0] == "+" else -1
        hh, _, mm = tz[1:].partition(":")
        dt = dt.replace(tzinfo=datetime.timezone(sign * datetime.timedelta(hours=int(hh), minutes=int(mm or 0))))
    return dt.timestamp() + frac


def ellipsis(s: str, width: int) -> str:
    """docker's formatter.Ellipsis: cut to `width` characters, the last one being `…`."""
    if len(s) <= width:
        return s
    if width <= 0:
        return ""
    return s[: width - 1] + "…"


def trunc_id(i: str) -> str:
    i = i or ""
    if ":" in i:
        i = i.split(":", 1)[1]
    return i[:12]


# -- text/tabwriter ------------------------------------------------------------------------------

def tabwrite(text: str, minwidth: int = 10, padding: int = 3) -> str:
    """Align tab-terminated cells into columns (text/tabwriter, padchar ' ', no flags).

    As in Go, a column block is a run of consecutive lines that all have a cell in that column;
    the text after a line's last tab is not part of any column.
    """
    lines = text.split("\n")
    cells = [ln.split("\t") for ln in lines]
    widths: list[list[int]] = [[0] * (len(c) - 1) for c in cells]

    def fmt_block(start: int, end: int, col: int) -> None:
        # lines [start, end) all have a cell in column `col`
        i = start
        while i < end:
            if len(cells[i]) - 1 <= col:
                i += 1
                continue
            j = i
            w = minwidth
            while j < end and len(cells[j]) - 1 > col:
                w = max(w, len(cells[j][col]) + padding)
                j += 1
            for k in range(i, j):
                widths[k][col] = w
            fmt_block(i, j, col + 1)
            i = j

    fmt_block(0, len(cells), 0)
    out = []
    for row, ws in zip(cells, widths):
        parts = [c.ljust(w) for c, w in zip(row[:-1], ws)]
        parts.append(row[-1])
        out.append("".join(parts))
    return "\n".join(out)


# -- contexts -------------------------------------------------------------------------------------

class _Ctx:
    """Base of the per-row contexts: `to_dict` gives `{{json .}}` (all fields, sorted)."""

    FIELDS: tuple[str, ...] = ()
    HEADERS: dict[str, str] = {}

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(self.FIELDS)}


class _Header:
    """Stands in for a row when rendering the header of a `table` format."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._h = headers

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        h = self._h.get(name)
        if h is None:
            # unknown-to-us field: docker derives nothing; use the upper-cased name
            h = name.upper()
        return _HeaderValue(h)


class _HeaderValue(str):
    """A header cell; callable so `{{.Label "x"}}` renders the header too."""

    def __call__(self, *args):
        # docker heads a `{{.Label "k"}}` column with the label's name
        return _HeaderValue(args[0]) if args else self


class ContainerCtx(_Ctx):
    FIELDS = ("ID", "Image", "Command", "CreatedAt", "RunningFor", "Ports", "Status", "Size",
              "Names", "Labels", "Mounts", "Networks", "State", "LocalVolumes")
    HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
               "RunningFor": "CREATED", "Ports": "PORTS", "Status": "STATUS", "Size": "SIZE",
               "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
               "State": "STATE", "LocalVolumes": "LOCAL VOLUMES", "Label": "LABEL", "Platform": "PLATFORM"}

    def __init__(self, c: dict, trunc: bool = True, now: float | None = None) -> None:
        self.c = c
        self.trunc = trunc
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        i = self.c.get("Id", "")
        return trunc_id(i) if self.trunc else i

    @property
    def Image(self) -> str:
        img = self.c.get("Image") or "<no image>"
        if self.trunc and img.startswith("sha256:"):
            return trunc_id(img)
        if self.trunc and "@sha256:" in img:
            img = img.split("@", 1)[0]  # docker drops the digest of name@digest when truncating
        return img

    @property
    def Command(self) -> str:
        cmd = self.c.get("Command") or ""
        return _go_quote(ellipsis(cmd, 20) if self.trunc else cmd)

    @property
    def CreatedAt(self) -> str:
        return go_time(parse_time(self.c.get("Created", 0)))

    @property
    def RunningFor(self) -> str:
        return human_duration(self.now - parse_time(self.c.get("Created", 0))) + " ago"

    @property
    def Ports(self) -> str:
        return display_ports(self.c.get("Ports") or [])

    @property
    def Status(self) -> str:
        return self.c.get("Status", "")

    @property
    def State(self) -> str:
        s = self.c.get("State", "")
        return s.get("Status", "") if isinstance(s, dict) else s

    @property
    def Size(self) -> str:
        rw = self.c.get("SizeRw")
        virt = self.c.get("SizeRootFs")
        if rw is None and virt is None:
            return "0B"
        s = human_size(rw or 0, 3)
        if virt:
            s += f" (virtual {human_size(virt, 3)})"
        return s

    @property
    def Names(self) -> str:
        names = []
        for n in self.c.get("Names") or []:
            n = n[1:] if n.startswith("/") else n
            if self.trunc and "/" in n:
                continue  # a link alias (/other/alias), as docker hides them
            names.append(n)
        return ",".join(names)

    @property
    def Labels(self) -> str:
        labels = self.c.get("Labels") or {}
        return ",".join(f"{k}={v}" for k, v in labels.items())

    def Label(self, name: str) -> str:
        return (self.c.get("Labels") or {}).get(name, "")

    @property
    def Mounts(self) -> str:
        out = []
        for m in self.c.get("Mounts") or []:
            name = m.get("Name") or m.get("Source") or ""
            out.append(ellipsis(name, 15) if self.trunc else name)
        return ",".join(out)

    @property
    def LocalVolumes(self) -> str:
        return str(sum(1 for m in self.c.get("Mounts") or [] if m.get("Driver") == "local"))

    @property
    def Networks(self) -> str:
        nets = ((self.c.get("NetworkSettings") or {}).get("Networks") or {})
        return ",".join(sorted(nets))


def _go_quote(s: str) -> str:
    """strconv.Quote for the common cases."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append("\\x%02x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def display_ports(ports: list[dict]) -> str:
    """docker's DisplayablePorts: `0.0.0.0:8080->80/tcp, 443/tcp`, consecutive ranges merged."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    singles: list[str] = []
    for p in sorted(ports, key=lambda p: (p.get("Type", "tcp"), p.get("PrivatePort", 0),
                                           p.get("IP", ""), p.get("PublicPort", 0))):
        proto = p.get("Type") or "tcp"
        priv = p.get("PrivatePort", 0)
        pub = p.get("PublicPort")
        ip = p.get("IP") or ""
        if pub:
            host = f"[{ip}]" if ":" in ip else ip
            key = f"{host}:{pub - priv}:{proto}"  # same offset: can merge into a range
            singles.append((key, f"{host}:", pub, priv, proto))
        else:
            key = f"{proto}"
            if key not in groups:
                groups[key] = []
                order.append(key)
            groups[key].append(priv)
    out = []
    # published: merge runs with the same host ip, offset and protocol
    run = None
    singles.sort(key=lambda t: (t[4], t[1], t[2]))
    for key, host, pub, priv, proto in singles:
        if run and run[0] == key and pub == run[3] + 1:
            run[3], run[5] = pub, priv
            continue
        if run:
            out.append(_fmt_pub(run))
        run = [key, host, pub, pub, priv, priv, proto]
    if run:
        out.append(_fmt_pub(run))
    for proto in order:
        nums = sorted(set(groups[proto]))
        i = 0
        while i < len(nums):
            j = i
            while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
                j += 1
            out.append(f"{nums[i]}/{proto}" if i == j else f"{nums[i]}-{nums[j]}/{proto}")
            i = j + 1
    return ", ".join(out)


def _fmt_pub(run) -> str:
    _, host, pub_a, pub_b, priv_a, priv_b, proto = run
    if pub_a == pub_b:
        return f"{host}{pub_a}->{priv_a}/{proto}"
    return f"{host}{pub_a}-{pub_b}->{priv_a}-{priv_b}/{proto}"


class ImageCtx(_Ctx):
    FIELDS = ("Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository",
              "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize")
    HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "CreatedSince": "CREATED",
               "CreatedAt": "CREATED AT", "Size": "SIZE", "Digest": "DIGEST", "Containers": "CONTAINERS",
               "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"}

    def __init__(self, img: dict, repo: str, tag: str, digest: str, trunc: bool = True,
                 now: float | None = None) -> None:
        self.i = img
        self.Repository = repo
        self.Tag = tag
        self.Digest = digest
        self.trunc = trunc
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        return trunc_id(self.i.get("Id", "")) if self.trunc else self.i.get("Id", "")

    @property
    def CreatedSince(self) -> str:
        c = parse_time(self.i.get("Created", 0))
        if c <= 0:
            return "N/A"
        return human_duration(self.now - c) + " ago"

    @property
    def CreatedAt(self) -> str:
        return go_time(parse_time(self.i.get("Created", 0)))

    @property
    def Size(self) -> str:
        return human_size(self.i.get("Size", 0) or 0, 3)

    @property
    def VirtualSize(self) -> str:
        return human_size(self.i.get("VirtualSize", self.i.get("Size", 0)) or 0, 3)

    @property
    def SharedSize(self) -> str:
        s = self.i.get("SharedSize", -1)
        return "N/A" if s is None or s < 0 else human_size(s, 3)

    @property
    def UniqueSize(self) -> str:
        s = self.i.get("SharedSize", -1)
        if s is None or s < 0:
            return "N/A"
        return human_size((self.i.get("Size", 0) or 0) - s, 3)

    @property
    def Containers(self) -> str:
        c = self.i.get("Containers", -1)
        return "N/A" if c is None or c < 0 else str(c)


def image_rows(images: list[dict], show_digests: bool = False) -> list[tuple[dict, str, str, str]]:
    """One row per repo:tag as docker does (`<none>` for untagged/dangling)."""
    rows = []
    for img in images:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        digests = [d for d in img.get("RepoDigests") or [] if d != "<none>@<none>"]
        by_repo: dict[str, list[str]] = {}
        for d in digests:
            repo, _, dg = d.rpartition("@")
            by_repo.setdefault(repo, []).append(dg)
        if not tags and not digests:
            rows.append((img, "<none>", "<none>", "<none>"))
            continue
        seen_repos = set()
        for t in tags:
            repo, tag = _split_tag(t)
            seen_repos.add(repo)
            dg = (by_repo.get(repo) or ["<none>"])[0]
            rows.append((img, repo, tag, dg))
        for repo, dgs in by_repo.items():
            if repo not in seen_repos:
                rows.append((img, repo, "<none>", dgs[0]))
    return rows


def _split_tag(ref: str) -> tuple[str, str]:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, "<none>"


class HistoryCtx(_Ctx):
    FIELDS = ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")
    HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
               "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}

    def __init__(self, h: dict, trunc: bool = True, human: bool = True, now: float | None = None) -> None:
        self.h = h
        self.trunc = trunc
        self.human = human
        self.now = time.time() if now is None else now

    @property
    def ID(self) -> str:
        i = self.h.get("Id") or "<missing>"
        if i == "<missing>" or not self.trunc:
            return i
        return trunc_id(i)

    @property
    def CreatedSince(self) -> str:
        c = parse_time(self.h.get("Created", 0))
        if not self.human:
            return rfc3339(c)
        return human_duration(self.now - c) + " ago"

    @property
    def CreatedAt(self) -> str:
        return rfc3339(parse_time(self.h.get("Created", 0)))

    @property
    def CreatedBy(self) -> str:
        s = (self.h.get("CreatedBy") or "").replace("\t", " ")
        return ellipsis(s, 45) if self.trunc else s

    @property
    def Size(self) -> str:
        size = self.h.get("Size", 0) or 0
        return human_size(size, 3) if self.human else str(size)

    @property
    def Comment(self) -> str:
        return self.h.get("Comment", "") or ""


# -- rendering ---------------------------------------------------------------------------------

def render_list(fmt: str, rows: list[_Ctx], headers: dict[str, str]) -> str:
    """Render rows with a docker `--format` (`table ...`, `json`, or a plain template).

    Returns the full text including the trailing newline of each row (empty if no output).
    """
    if fmt == "json":
        fmt = "{{json .}}"
    is_table = fmt.startswith("table")
    if is_table:
        fmt = fmt[len("table"):]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tpl = Template(fmt)
    if not is_table:
        return "".join(tpl.execute(r) + "\n" for r in rows)
    buf = [tpl.execute(_Header(headers)) + "\n"]
    buf += [tpl.execute(r) + "\n" for r in rows]
    return tabwrite("".join(buf))

