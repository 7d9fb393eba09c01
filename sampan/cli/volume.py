"""volume create, ls, inspect, rm, prune."""

from __future__ import annotations

import sys

from .args import BOOL, LIST, STR, Opt, UsageError
from .common import CliError, Spec, err, filters_json, out, q


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    d: dict[str, str] = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        if not k:
            raise UsageError(f"invalid {what}: {it!r}")
        d[k] = v
    return d


def cmd_create(ctx, ns, args) -> int:
    name = ns.name or ""
    if args:
        if name and name != args[0]:
            raise CliError(f"conflicting options: either specify --name or provide positional arg, not both")
        name = args[0]
    body = {"Name": name, "Driver": ns.driver or "local", "DriverOpts": _kv(ns.opt, "option"),
            "Labels": _kv(ns.label, "label")}
    v = ctx.client.post("/volumes/create", None, body) or {}
    out(v.get("Name", "") + "\n")
    return 0


class VolumeCtx:
    FIELDS = ("Name", "Driver", "Scope", "Mountpoint", "Labels", "Links", "Size", "CreatedAt")
    HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
               "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
               "CreatedAt": "CREATED"}

    def __init__(self, v: dict) -> None:
        self.v = v
        self.Name = v.get("Name", "")
        self.Driver = v.get("Driver", "")
        self.Scope = v.get("Scope", "")
        self.Mountpoint = v.get("Mountpoint", "")
        self.CreatedAt = v.get("CreatedAt", "")
        labels = v.get("Labels") or {}
        self.Labels = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
        usage = v.get("UsageData") or {}
        self.Links = str(usage.get("RefCount", "N/A")) if usage else "N/A"
        if usage and usage.get("Size", -1) >= 0:
            from .format import human_size
            self.Size = human_size(usage["Size"])
        else:
            self.Size = "N/A"

    def Label(self, name: str) -> str:  # noqa: N802 - Go template method name
        return (self.v.get("Labels") or {}).get(name, "")

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in sorted(self.FIELDS)}


def cmd_ls(ctx, ns, args) -> int:
    from .format import render_list
    from .template import TemplateError
    f = filters_json(ns.filter)
    resp = ctx.client.get("/volumes", {"filters": f} if f else None) or {}
    vols = sorted(resp.get("Volumes") or [], key=lambda v: v.get("Name", ""))
    for w in resp.get("Warnings") or []:
        err(f"{w}\n")
    if ns.quiet:
        for v in vols:
            out(v.get("Name", "") + "\n")
        return 0
    fmt = ns.format or "table {{.Driver}}\t{{.Name}}"
    try:
        out(render_list(fmt, [VolumeCtx(v) for v in vols], VolumeCtx.HEADERS))
    except TemplateError as e:
        raise CliError(str(e)) from None
    return 0


def cmd_inspect(ctx, ns, args) -> int:
    from .system import _inspect
    return _inspect(ctx, args, ns.format, lambda n: ctx.client.get(f"/volumes/{q(n)}"),
                    lambda n, e: f"Error response from daemon: {e.message}")


def cmd_rm(ctx, ns, args) -> int:
    from .client import APIError
    rc = 0
    for name in args:
        try:
            ctx.client.delete(f"/volumes/{q(name)}", {"force": True if ns.force else None})
        except APIError as e:
            err(f"Error response from daemon: {e.message}\n")
            rc = 1
            continue
        out(name + "\n")
    return rc


def confirm(message: str) -> bool:
    err(message)
    sys.stderr.flush()
    try:
        line = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return line.strip().lower() in ("y", "yes")


def cmd_prune(ctx, ns, args) -> int:
    from .format import human_size
    if not ns.force:
        what = "all local volumes" if ns.all else "anonymous local volumes"
        if not confirm(f"WARNING! This will remove {what} not used by at least one container.\n"
                       "Are you sure you want to continue? [y/N] "):
            return 0
    f = filters_json(ns.filter, {"all": "true"} if ns.all else None)
    report = ctx.client.post("/volumes/prune", {"filters": f} if f else None) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        out("Deleted Volumes:\n" + "".join(n + "\n" for n in deleted) + "\n")
    out(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


_FORMAT = Opt("--format", STR, "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")

SPECS = {
    "volume create": Spec(cmd_create, "[OPTIONS] [VOLUME]", "Create a volume",
                          [Opt("-d --driver", STR, 'Specify volume driver name (default "local")'),
                           Opt("--label", LIST, "Set metadata for a volume"),
                           Opt("--name", STR, "Specify volume name", hidden=True),
                           Opt("-o --opt", LIST, "Set driver specific options (default map[])")],
                          max_args=1),
    "volume ls": Spec(cmd_ls, "[OPTIONS]", "List volumes",
                      [Opt("-f --filter", LIST, "Provide filter values (e.g. \"dangling=true\")", metavar="filter"),
                       _FORMAT, Opt("-q --quiet", BOOL, "Only display volume names")],
                      max_args=0, aliases="sampan volume ls, sampan volume list"),
    "volume inspect": Spec(cmd_inspect, "[OPTIONS] VOLUME [VOLUME...]",
                           "Display detailed information on one or more volumes",
                           [Opt("-f --format", STR, "Format output using a custom template")],
                           min_args=1),
    "volume rm": Spec(cmd_rm, "[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes",
                      [Opt("-f --force", BOOL, "Force the removal of one or more volumes")],
                      min_args=1, aliases="sampan volume rm, sampan volume remove"),
    "volume prune": Spec(cmd_prune, "[OPTIONS]", "Remove unused local volumes",
                         [Opt("-a --all", BOOL, "Remove all unused volumes, not just anonymous ones"),
                          Opt("--filter", LIST, "Provide filter values (e.g. \"label=<label>\")", metavar="filter"),
                          Opt("-f --force", BOOL, "Do not prompt for confirmation")], max_args=0),
}
