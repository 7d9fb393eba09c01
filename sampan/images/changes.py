"""`docker import --change` / `commit --change`: Dockerfile lines applied to an image config.

Only instructions that touch the config are allowed (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL,
USER, VOLUME, WORKDIR, STOPSIGNAL, ONBUILD, HEALTHCHECK), as in Docker.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from ..errors import InvalidParameter

ALLOWED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR",
           "STOPSIGNAL", "ONBUILD", "HEALTHCHECK")

_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(s: str) -> int:
    """Go duration (`30s`, `1m30s`) -> nanoseconds."""
    if s == "0":
        return 0
    if not _DURATION_RE.match(s):
        raise InvalidParameter(f"invalid duration {s!r}")
    return int(sum(float(n) * _UNIT_NS[u] for n, u in _DURATION_PART.findall(s)))


def _json_or_shell(rest: str) -> list[str]:
    """Exec form (a JSON array of strings) or shell form (`/bin/sh -c rest`)."""
    s = rest.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return ["/bin/sh", "-c", s]


def _pairs(instr: str, rest: str) -> list[tuple[str, str]]:
    """`k=v k2="v 2"` or the legacy `k v with spaces` form (ENV, LABEL)."""
    rest = rest.strip()
    if not rest:
        raise InvalidParameter(f"{instr} requires at least one argument")
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise InvalidParameter(f"{instr}: {e}") from None
    if "=" not in words[0]:
        key, _, value = rest.partition(" ")
        if instr == "LABEL" or not value.strip():
            raise InvalidParameter(f"{instr} names can not be blank" if not key
                                   else f"{instr} must have two arguments")
        return [(key, value.strip())]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise InvalidParameter(f"{instr}: syntax error - can't find = in {w!r}. Must be of the form: name=value")
        out.append((k, v))
    return out


def _expose(rest: str) -> list[str]:
    ports = []
    for p in rest.split():
        port, _, proto = p.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        lo, _, hi = port.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise InvalidParameter(f"invalid containerPort: {port}") from None
        if not (0 < a <= 65535 and a <= b <= 65535):
            raise InvalidParameter(f"invalid port range: {port}")
        ports += [f"{n}/{proto}" for n in range(a, b + 1)]
    return ports


def _healthcheck(rest: str) -> dict[str, Any]:
    words = rest.split()
    if words and words[0].upper() == "NONE":
        if len(words) > 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    hc: dict[str, Any] = {}
    s = rest.strip()
    while s.startswith("--"):
        flag, _, s = s.partition(" ")
        s = s.lstrip()
        name, _, value = flag[2:].partition("=")
        key = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod",
               "start-interval": "StartInterval", "retries": "Retries"}.get(name)
        if key is None:
            raise InvalidParameter(f"Unknown flag: {name}")
        if key == "Retries":
            try:
                hc[key] = int(value)
            except ValueError:
                raise InvalidParameter(f"invalid retries {value!r}") from None
        else:
            hc[key] = parse_duration(value)
    kind, _, cmd = s.partition(" ")
    if kind.upper() != "CMD" or not cmd.strip():
        raise InvalidParameter("Unknown type in HEALTHCHECK (try CMD)")
    try:
        argv = json.loads(cmd) if cmd.strip().startswith("[") else None
    except ValueError:
        argv = None
    if isinstance(argv, list) and all(isinstance(x, str) for x in argv):
        hc["Test"] = ["CMD", *argv]
    else:
        hc["Test"] = ["CMD-SHELL", cmd.strip()]
    return hc


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply Dockerfile lines to a container config dict (the image config's `config`)."""
    cfg = dict(config)
    for line in changes:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        if "\t" in instr:
            instr, _, more = instr.partition("\t")
            rest = more + " " + rest
        instr = instr.upper()
        if instr not in ALLOWED:
            raise InvalidParameter(f"{instr.lower()} is not a valid change command")
        rest = rest.strip()
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest) if rest else None
            cfg["Cmd"] = None if rest else cfg.get("Cmd")
        elif instr == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(instr, rest):
                env = [e for e in env if e.partition("=")[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(instr, rest))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            ports.update({p: {} for p in _expose(rest)})
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            paths = _json_or_shell(rest)
            if paths[:2] == ["/bin/sh", "-c"]:
                paths = rest.split()
            for p in paths:
                if not p.strip():
                    raise InvalidParameter("VOLUME specified can not be an empty string")
                vols[p] = {}
            cfg["Volumes"] = vols
        elif instr in ("USER", "WORKDIR", "STOPSIGNAL"):
            if not rest:
                raise InvalidParameter(f"{instr} requires exactly one argument")
            key = {"USER": "User", "WORKDIR": "WorkingDir", "STOPSIGNAL": "StopSignal"}[instr]
            if instr == "WORKDIR" and not rest.startswith("/"):
                rest = "/" + "/".join(p for p in ((cfg.get("WorkingDir") or "/") + "/" + rest).split("/") if p)
            cfg[key] = rest
        elif instr == "ONBUILD":
            if not rest:
                raise InvalidParameter("ONBUILD requires at least one argument")
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
        elif instr == "HEALTHCHECK":
            cfg["Healthcheck"] = _healthcheck(rest)
    return cfg
