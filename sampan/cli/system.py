"""version, info, inspect (containers and images)."""

from __future__ import annotations

import json
import os
import sys

from .args import BOOL, STR, Opt
from .common import CliError, Spec, err, out, q, qimg

_FORMAT = Opt("-f --format", STR, "Format output using a custom template:\n'json': Print in JSON format\n"
              "'TEMPLATE': Print output using the given Go template")


def _template(fmt: str):
    from .template import Template, TemplateError
    if fmt == "json":
        fmt = "{{json .}}"
    try:
        return Template(fmt)
    except TemplateError as e:
        raise CliError(str(e)) from None


def _exec(tpl, data) -> str:
    from .template import TemplateError
    try:
        return tpl.execute(data)
    except TemplateError as e:
        raise CliError(str(e)) from None


# -- version ---------------------------------------------------------------------------------------

def _client_version() -> dict:
    from .. import API_VERSION, __version__
    return {
        "Platform": {"Name": ""},
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "GitCommit": "",
        "GoVersion": "python" + _pyver(),
        "Os": sys.platform,
        "Arch": _arch(),
        "BuildTime": "",
        "Context": "default",
    }


def _pyver() -> str:
    return "%d.%d.%d" % sys.version_info[:3]


def _arch() -> str:
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def cmd_version(ctx, ns, args) -> int:
    from .client import APIError, ConnectError
    client = _client_version()
    server = None
    problem = None
    try:
        server = ctx.client.get("/version")
    except ConnectError as e:
        problem = f"Cannot connect to the sampan daemon at {e.host}: Is the sampan daemon running?"
    except APIError as e:
        problem = f"Error response from daemon: {e.message}"
    if ns.format:
        tpl = _template(ns.format)
        out(_exec(tpl, {"Client": client, "Server": server}) + "\n")
    else:
        lines = ["Client:",
                 f" Version:           {client['Version']}",
                 f" API version:       {client['ApiVersion']}",
                 f" Python version:    {_pyver()}",
                 f" OS/Arch:           {client['Os']}/{client['Arch']}",
                 " Context:           default"]
        if server:
            lines += ["", f"Server: {(server.get('Platform') or {}).get('Name') or 'sampan'}",
                      " Engine:",
                      f"  Version:          {server.get('Version', '')}",
                      f"  API version:      {server.get('ApiVersion', '')} (minimum version {server.get('MinAPIVersion', '')})",
                      f"  Go version:       {server.get('GoVersion', '')}",
                      f"  Git commit:       {server.get('GitCommit', '')}",
                      f"  Built:            {server.get('BuildTime', '')}",
                      f"  OS/Arch:          {server.get('Os', '')}/{server.get('Arch', '')}",
                      f"  Experimental:     {str(bool(server.get('Experimental'))).lower()}"]
            for comp in server.get("Components") or []:
                if comp.get("Name") in ("Engine",):
                    continue
                lines += [f" {comp.get('Name')}:", f"  Version:          {comp.get('Version', '')}"]
        out("\n".join(lines) + "\n")
    if problem:
        err(problem + "\n")
        return 1
    return 0


# -- info ------------------------------------------------------------------------------------------

def cmd_info(ctx, ns, args) -> int:
    from .client import APIError, ConnectError
    from .format import bytes_size
    info = None
    problem = None
    try:
        info = ctx.client.get("/info")
    except ConnectError as e:
        problem = f"Cannot connect to the sampan daemon at {e.host}: Is the sampan daemon running?"
    except APIError as e:
        problem = f"Error response from daemon: {e.message}"
    if ns.format:
        if info is None:
            raise CliError(problem or "")
        out(_exec(_template(ns.format), info) + "\n")
        return 0
    from .. import __version__
    lines = ["Client:", f" Version:    {__version__}", " Context:    default",
             " Debug Mode: false", "", "Server:"]
    if info is None:
        out("\n".join(lines) + "\n")
        err(f"ERROR: {problem}\nerrors pretty printing info\n")
        return 1
    g = info.get
    lines += [f" Containers: {g('Containers', 0)}",
              f"  Running: {g('ContainersRunning', 0)}",
              f"  Paused: {g('ContainersPaused', 0)}",
              f"  Stopped: {g('ContainersStopped', 0)}",
              f" Images: {g('Images', 0)}",
              f" Server Version: {g('ServerVersion', '')}",
              f" Storage Driver: {g('Driver', '')}"]
    for pair in g("DriverStatus") or []:
        if isinstance(pair, list) and len(pair) == 2:
            lines.append(f"  {pair[0]}: {pair[1]}")
    lines += [f" Logging Driver: {g('LoggingDriver', '')}",
              f" Cgroup Driver: {g('CgroupDriver', '')}",
              f" Cgroup Version: {g('CgroupVersion', '')}"]
    runtimes = g("Runtimes") or {}
    if runtimes:
        lines.append(f" Runtimes: {' '.join(sorted(runtimes))}")
    lines += [f" Default Runtime: {g('DefaultRuntime', '')}",
              f" Init Binary: {g('InitBinary', '')}"]
    sec = g("SecurityOptions") or []
    if sec:
        lines.append(" Security Options:")
        for s in sec:
            for kv in s.split(","):
                k, _, v = kv.partition("=")
                lines.append(f"  {v}" if k == "name" else f"   {k.title()}: {v}")
    lines += [f" Kernel Version: {g('KernelVersion', '')}",
              f" Operating System: {g('OperatingSystem', '')}",
              f" OSType: {g('OSType', '')}",
              f" Architecture: {g('Architecture', '')}",
              f" CPUs: {g('NCPU', 0)}",
              f" Total Memory: {bytes_size(g('MemTotal', 0) or 0)}",
              f" Name: {g('Name', '')}",
              f" ID: {g('ID', '')}",
              f" Docker Root Dir: {g('DockerRootDir', '')}",
              f" Debug Mode: {str(bool(g('Debug'))).lower()}",
              f" Experimental: {str(bool(g('ExperimentalBuild'))).lower()}"]
    regs = (g("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
    idx = (g("RegistryConfig") or {}).get("IndexConfigs") or {}
    insecure = [k for k, v in idx.items() if isinstance(v, dict) and not v.get("Secure", True)]
    if regs or insecure:
        lines.append(" Insecure Registries:")
        lines += [f"  {r}" for r in insecure + regs]
    mirrors = (g("RegistryConfig") or {}).get("Mirrors") or []
    if mirrors:
        lines.append(" Registry Mirrors:")
        lines += [f"  {m}" for m in mirrors]
    lines.append(f" Live Restore Enabled: {str(bool(g('LiveRestoreEnabled'))).lower()}")
    out("\n".join(lines) + "\n")
    for w in g("Warnings") or []:
        err(w + "\n")
    return 0


# -- inspect ---------------------------------------------------------------------------------------

def _dump(objs: list) -> str:
    if not objs:
        return "[]\n"
    s = json.dumps(objs, indent=4, ensure_ascii=False)
    # Go's json.MarshalIndent escapes HTML characters
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


def _inspect(ctx, names: list[str], fmt: str | None, getter, missing_msg) -> int:
    from .client import APIError
    tpl = _template(fmt) if fmt else None
    found = []
    failed = []
    for name in names:
        try:
            obj = getter(name)
        except APIError as e:
            if e.status == 404:
                failed.append(missing_msg(name, e))
                continue
            raise
        found.append(obj)
        if tpl is not None:
            out(_exec(tpl, obj) + "\n")
    if tpl is None:
        out(_dump(found))
    for msg in failed:
        err(msg + "\n")
    return 1 if failed else 0


def _get_container(ctx, size: bool):
    return lambda name: ctx.client.get(f"/containers/{q(name)}/json", {"size": True} if size else None)


def _get_image(ctx):
    return lambda name: ctx.client.get(f"/images/{qimg(name)}/json")


def cmd_inspect(ctx, ns, args) -> int:
    from .client import APIError
    kind = ns.type
    if kind and kind not in ("container", "image"):
        raise CliError(f'"{kind}" is not a valid value for --type')
    getters = []
    if kind in (None, "", "container"):
        getters.append(_get_container(ctx, ns.size))
    if kind in (None, "", "image"):
        getters.append(_get_image(ctx))

    def get_any(name):
        last = None
        for g in getters:
            try:
                return g(name)
            except APIError as e:
                if e.status != 404:
                    raise
                last = e
        raise last

    if kind:
        return _inspect(ctx, args, ns.format, get_any, lambda n, e: f"Error: No such {kind}: {n}")
    return _inspect(ctx, args, ns.format, get_any, lambda n, e: f"Error: No such object: {n}")


def cmd_container_inspect(ctx, ns, args) -> int:
    return _inspect(ctx, args, ns.format, _get_container(ctx, ns.size),
                    lambda n, e: f"Error response from daemon: {e.message}")


def cmd_image_inspect(ctx, ns, args) -> int:
    return _inspect(ctx, args, ns.format, _get_image(ctx),
                    lambda n, e: f"Error response from daemon: {e.message}")


SPECS = {
    "version": Spec(cmd_version, "[OPTIONS]", "Show the sampan version information", [_FORMAT], max_args=0),
    "info": Spec(cmd_info, "[OPTIONS]", "Display system-wide information", [_FORMAT], max_args=0),
    "inspect": Spec(cmd_inspect, "[OPTIONS] NAME|ID [NAME|ID...]",
                    "Return low-level information on sampan objects",
                    [_FORMAT, Opt("-s --size", BOOL, "Display total file sizes if the type is container"),
                     Opt("--type", STR, "Return JSON for specified type")], min_args=1),
    "container inspect": Spec(cmd_container_inspect, "[OPTIONS] CONTAINER [CONTAINER...]",
                              "Display detailed information on one or more containers",
                              [_FORMAT, Opt("-s --size", BOOL, "Display total file sizes")], min_args=1),
    "image inspect": Spec(cmd_image_inspect, "[OPTIONS] IMAGE [IMAGE...]",
                          "Display detailed information on one or more images", [_FORMAT], min_args=1),
}
