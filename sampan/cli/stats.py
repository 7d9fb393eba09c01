"""`stats` (live table, `--no-stream`, `--format`, `-a`) and `update`, as the docker CLI does them.

Figures are computed the way the docker CLI computes them from the stats JSON, so sampan's
table and `docker stats` against the same daemon agree.
"""

from __future__ import annotations

import threading
import time

from .args import BOOL, FLOAT, INT, STR, Opt, UsageError
from .common import CliError, Spec, err, out, q
from .format import _Ctx, bytes_size, human_size, render_list

DEFAULT_STATS = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


# -- figures (docker CLI's calculate* functions) ------------------------------------------------

def cpu_percent(s: dict) -> float:
    cpu, pre = s.get("cpu_stats") or {}, s.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    sys_delta = (cpu.get("system_cpu_usage") or 0) - (pre.get("system_cpu_usage") or 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or [])
    if sys_delta > 0 and cpu_delta > 0:
        return cpu_delta / sys_delta * online * 100.0
    return 0.0


def mem_usage(s: dict) -> float:
    """Usage without the inactive page cache (v1 total_inactive_file, v2 inactive_file)."""
    m = s.get("memory_stats") or {}
    usage = m.get("usage") or 0
    st = m.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        if key in st:
            return usage - st[key] if st[key] < usage else usage
    return usage


def block_io(s: dict) -> tuple[int, int]:
    r = w = 0
    for row in (s.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(row.get("op", "")).lower()
        if op == "read":
            r += row.get("value", 0)
        elif op == "write":
            w += row.get("value", 0)
    return r, w


def net_io(s: dict) -> tuple[int, int]:
    rx = tx = 0
    for n in (s.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    return rx, tx


class StatsCtx(_Ctx):
    FIELDS = ("Container", "Name", "ID", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")
    HEADERS = {"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
               "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
               "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

    def __init__(self, container: str, s: dict | None, trunc: bool = True, error: bool = False) -> None:
        self.container = container
        self.s = s or {}
        self.trunc = trunc
        self.error = error or not s

    @property
    def Container(self) -> str:
        return self.container

    @property
    def Name(self) -> str:
        n = (self.s.get("name") or "").lstrip("/")
        return n or ("--" if self.error else "")

    @property
    def ID(self) -> str:
        i = self.s.get("id") or self.container
        return i[:12] if self.trunc else i

    @property
    def CPUPerc(self) -> str:
        return "--" if self.error else f"{cpu_percent(self.s):.2f}%"

    @property
    def MemUsage(self) -> str:
        if self.error:
            return "-- / --"
        limit = (self.s.get("memory_stats") or {}).get("limit") or 0
        return f"{bytes_size(mem_usage(self.s))} / {bytes_size(limit)}"

    @property
    def MemPerc(self) -> str:
        if self.error:
            return "--"
        limit = (self.s.get("memory_stats") or {}).get("limit") or 0
        return f"{(mem_usage(self.s) / limit * 100.0) if limit else 0.0:.2f}%"

    @property
    def NetIO(self) -> str:
        if self.error:
            return "--"
        rx, tx = net_io(self.s)
        return f"{human_size(rx, 3)} / {human_size(tx, 3)}"

    @property
    def BlockIO(self) -> str:
        if self.error:
            return "--"
        r, w = block_io(self.s)
        return f"{human_size(r, 3)} / {human_size(w, 3)}"

    @property
    def PIDs(self) -> str:
        return "--" if self.error else str((self.s.get("pids_stats") or {}).get("current") or 0)


# -- stats ---------------------------------------------------------------------------------------

class _Follower(threading.Thread):
    """Streams one container's stats on its own connection, keeping the latest reading."""

    def __init__(self, host: str, name: str, stream: bool) -> None:
        super().__init__(daemon=True)
        self.host, self.name, self.stream = host, name, stream
        self.latest: dict | None = None
        self.error: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        from .client import APIError, Client
        client = Client(self.host)
        try:
            resp = client.request("GET", f"/containers/{q(self.name)}/stats",
                                  {"stream": "1" if self.stream else "0"}, stream=True)
            for s in resp.json_stream():
                self.latest = s
                if not self.stream:
                    break
        except APIError as e:
            self.error = e.message
        except Exception as e:  # noqa: BLE001 - the table shows the container as errored
            self.error = str(e)
        finally:
            self.done.set()
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass


def cmd_stats(ctx, ns, args) -> int:
    from .template import TemplateError
    fmt = ns.format or ""
    if not fmt or fmt == "table":
        fmt = DEFAULT_STATS
    named = list(args)
    followers: dict[str, _Follower] = {}

    def wanted() -> list[str]:
        if named:
            return named
        items = ctx.client.get("/containers/json", {"all": True if ns.all else None}) or []
        return [c["Id"] for c in items]

    def refresh() -> None:
        names = wanted()
        for n in names:
            if n not in followers:
                f = followers[n] = _Follower(ctx.host, n, not ns.no_stream)
                f.start()
        for n in list(followers):
            if n not in names:
                del followers[n]

    def render() -> str:
        rows = [StatsCtx(n, f.latest, trunc=not ns.no_trunc, error=bool(f.error))
                for n, f in followers.items()]
        try:
            return render_list(fmt, rows, StatsCtx.HEADERS)
        except TemplateError as e:
            raise CliError(str(e)) from None

    refresh()
    if ns.no_stream:
        for f in followers.values():
            f.done.wait(30)
        failed = [f for f in followers.values() if f.error]
        for f in failed:
            err(f"Error response from daemon: {f.error}\n")
        if named and failed:
            return 1
        out(render())
        return 0
    try:
        while True:
            time.sleep(1.0)
            errs = [f for f in followers.values() if f.error and f.name in named]
            if named and errs and len(errs) == len(named):
                for f in errs:
                    err(f"Error response from daemon: {f.error}\n")
                return 1
            text = render()
            out("\033[2J\033[H" + text)  # clear the screen and redraw, as docker does
            import sys
            sys.stdout.flush()
            if not named:
                refresh()
    except KeyboardInterrupt:
        return 0


# -- update --------------------------------------------------------------------------------------

UPDATE_OPTS = [
    Opt("--blkio-weight", INT, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)", metavar="uint16"),
    Opt("--cpu-period", INT, "Limit CPU CFS (Completely Fair Scheduler) period"),
    Opt("--cpu-quota", INT, "Limit CPU CFS (Completely Fair Scheduler) quota"),
    Opt("--cpu-rt-period", INT, "Limit the CPU real-time period in microseconds"),
    Opt("--cpu-rt-runtime", INT, "Limit the CPU real-time runtime in microseconds"),
    Opt("-c --cpu-shares", INT, "CPU shares (relative weight)"),
    Opt("--cpus", FLOAT, "Number of CPUs"),
    Opt("--cpuset-cpus", STR, "CPUs in which to allow execution (0-3, 0,1)"),
    Opt("--cpuset-mems", STR, "MEMs in which to allow execution (0-3, 0,1)"),
    Opt("--kernel-memory", STR, "Kernel memory limit (deprecated)", metavar="bytes"),
    Opt("-m --memory", STR, "Memory limit", metavar="bytes"),
    Opt("--memory-reservation", STR, "Memory soft limit", metavar="bytes"),
    Opt("--memory-swap", STR, "Swap limit equal to memory plus swap: -1 to enable unlimited swap", metavar="bytes"),
    Opt("--pids-limit", INT, "Tune container pids limit (set -1 for unlimited)"),
    Opt("--restart", STR, "Restart policy to apply when a container exits"),
]


def build_update(ns) -> dict:
    from .runopts import parse_bytes, parse_restart
    body: dict = {}
    for dest, key in (("blkio_weight", "BlkioWeight"), ("cpu_period", "CpuPeriod"),
                      ("cpu_quota", "CpuQuota"), ("cpu_rt_period", "CpuRealtimePeriod"),
                      ("cpu_rt_runtime", "CpuRealtimeRuntime"), ("cpu_shares", "CpuShares"),
                      ("pids_limit", "PidsLimit")):
        if ns.get(dest) is not None:
            body[key] = ns[dest]
    if ns.cpus is not None:
        if ns.cpus < 0:
            raise UsageError(f'invalid argument "{ns.cpus}" for "--cpus" flag: value is negative')
        body["NanoCpus"] = int(round(ns.cpus * 1e9))
    for dest, key in (("cpuset_cpus", "CpusetCpus"), ("cpuset_mems", "CpusetMems")):
        if ns.get(dest):
            body[key] = ns[dest]
    for dest, key in (("memory", "Memory"), ("memory_reservation", "MemoryReservation"),
                      ("memory_swap", "MemorySwap"), ("kernel_memory", "KernelMemory")):
        if ns.get(dest):
            body[key] = parse_bytes(ns[dest], "--" + dest.replace("_", "-"))
    if ns.restart:
        body["RestartPolicy"] = parse_restart(ns.restart)
    if not body:
        raise UsageError("you must provide one or more flags when using this command")
    return body


def cmd_update(ctx, ns, args) -> int:
    from .client import APIError
    body = build_update(ns)
    failed = []
    for name in args:
        try:
            resp = ctx.client.post(f"/containers/{q(name)}/update", None, body) or {}
        except APIError as e:
            err(f"Error response from daemon: {e.message}\n")
            failed.append(name)
            continue
        for w in resp.get("Warnings") or []:
            err(f"WARNING: {w}\n")
        out(name + "\n")
    if failed:
        err(f"Error: failed to update containers: {', '.join(failed)}\n")
        return 1
    return 0


_STATS_OPTS = [
    Opt("-a --all", BOOL, "Show all containers (default shows just running)"),
    Opt("--format", STR, "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
    Opt("--no-stream", BOOL, "Disable streaming stats and only pull the first result"),
    Opt("--no-trunc", BOOL, "Do not truncate output"),
]

SPECS = {
    "stats": Spec(cmd_stats, "[OPTIONS] [CONTAINER...]",
                  "Display a live stream of container(s) resource usage statistics", _STATS_OPTS),
    "update": Spec(cmd_update, "[OPTIONS] CONTAINER [CONTAINER...]",
                   "Update configuration of one or more containers", UPDATE_OPTS, min_args=1),
}
