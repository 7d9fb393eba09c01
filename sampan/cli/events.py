"""`events`, `top`, `pause`, `unpause`, as the docker CLI does them."""

from __future__ import annotations

import sys
import time

from .args import LIST, STR, Opt
from .common import CliError, Spec, err, filters_json, out, q


def _local_rfc3339_nano(ns: int) -> str:
    """Go's RFC3339NanoFixed in local time: 2006-01-02T15:04:05.000000000Z07:00."""
    sec, frac = divmod(ns, 1_000_000_000)
    tm = time.localtime(sec)
    off = tm.tm_gmtoff or 0
    if off == 0:
        zone = "Z"
    else:
        sign = "+" if off > 0 else "-"
        off = abs(off)
        zone = f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f".{frac:09d}" + zone


def pretty_event(ev: dict) -> str:
    """docker CLI's prettyPrintEvent: time, type, action, actor ID, (sorted attributes)."""
    parts = []
    if ev.get("timeNano"):
        parts.append(_local_rfc3339_nano(int(ev["timeNano"])) + " ")
    elif ev.get("time"):
        parts.append(_local_rfc3339_nano(int(ev["time"]) * 1_000_000_000) + " ")
    actor = ev.get("Actor") or {}
    parts.append(f"{ev.get('Type', '')} {ev.get('Action', '')} {actor.get('ID', '')}")
    attrs = actor.get("Attributes") or {}
    if attrs:
        parts.append(" (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")")
    return "".join(parts) + "\n"


def cmd_events(ctx, ns, args) -> int:
    from .containers import _timestamp
    from .template import Template, TemplateError
    now = time.time()
    query = {"since": _timestamp(ns.since, now), "until": _timestamp(ns.until, now),
             "filters": filters_json(ns.filter)}
    tpl = None
    fmt = ns.format
    if fmt:
        if fmt == "json":
            fmt = "{{json .}}"
        try:
            tpl = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
        except TemplateError as e:
            raise CliError(str(e)) from None
    try:
        resp = ctx.client.request("GET", "/events", query, stream=True)
        for ev in resp.json_stream():
            if tpl is not None:
                try:
                    out(tpl.execute(ev) + "\n")
                except TemplateError as e:
                    raise CliError(str(e)) from None
            else:
                out(pretty_event(ev))
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_top(ctx, ns, args) -> int:
    from .format import tabwrite
    name, ps_args = args[0], args[1:]
    query = {"ps_args": " ".join(ps_args)} if ps_args else None
    r = ctx.client.get(f"/containers/{q(name)}/top", query) or {}
    lines = ["\t".join(r.get("Titles") or [])] + ["\t".join(p) for p in r.get("Processes") or []]
    out(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))
    return 0


def _each(ctx, args, path: str) -> int:
    from .client import APIError
    failed = []
    for name in args:
        try:
            ctx.client.request("POST", f"/containers/{q(name)}/{path}")
        except APIError as e:
            failed.append(e.message)
            continue
        out(name + "\n")
    if failed:
        raise CliError("".join(f"Error response from daemon: {m}\n" for m in failed).rstrip("\n"))
    return 0


def cmd_pause(ctx, ns, args) -> int:
    return _each(ctx, args, "pause")


def cmd_unpause(ctx, ns, args) -> int:
    return _each(ctx, args, "unpause")


_EVENTS_OPTS = [
    Opt("-f --filter", LIST, "Filter output based on conditions provided", metavar="filter"),
    Opt("--format", STR, "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
    Opt("--since", STR, "Show all events created since timestamp", metavar="string"),
    Opt("--until", STR, "Stream events until this timestamp", metavar="string"),
]

SPECS = {
    "events": Spec(cmd_events, "[OPTIONS]", "Get real time events from the server", _EVENTS_OPTS, max_args=0),
    "top": Spec(cmd_top, "CONTAINER [ps OPTIONS]", "Display the running processes of a container",
                min_args=1, interspersed=False),
    "pause": Spec(cmd_pause, "CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
                  min_args=1),
    "unpause": Spec(cmd_unpause, "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
                    min_args=1),
}
