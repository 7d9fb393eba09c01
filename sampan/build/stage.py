"""One stage's state while it builds, and the instructions that only change the image config.

Each instruction of the classic builder makes a new image whose history entry says what made it;
the strings here are the ones dockerd writes (builder/dockerfile/dispatchers.go): a config-only
step is committed with the container command `<shell> "#(nop) " <comment>`, so its history's
`created_by` reads `/bin/sh -c #(nop)  CMD ["sh"]` (two spaces: the `#(nop) ` word and the
comment are joined by one). Everything here is pure: the builder does the IO.
"""

from __future__ import annotations

import copy
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidParameter

DEFAULT_SHELL = ["/bin/sh", "-c"]
# Docker's predefined ARGs: usable without an ARG line, never in history or the cache key.
PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
              "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy")
METADATA = {"ENV", "LABEL", "EXPOSE", "USER", "VOLUME", "STOPSIGNAL", "CMD", "ENTRYPOINT",
            "SHELL", "HEALTHCHECK", "ONBUILD", "MAINTAINER", "ARG"}


def go_quote(s: str) -> str:
    """strconv.Quote for the strings Dockerfiles hold (JSON escaping is the same for them)."""
    return json.dumps(s, ensure_ascii=False)


def go_q_list(items: list[str] | None) -> str:
    """fmt's %q of a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(x) for x in items or []) + "]"


def go_v_list(items: list[str] | None) -> str:
    """fmt's %v of a []string: `[a b]`."""
    return "[" + " ".join(items or []) + "]"


def go_duration(ns: int) -> str:
    """time.Duration.String for the whole-unit values a Dockerfile gives (`1m30s`, `500ms`)."""
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                v = ns / size
                return f"{v:g}{unit}"
    secs = ns / 1e9
    h, rem = divmod(int(secs), 3600)
    m, _ = divmod(rem, 60)
    s = secs - h * 3600 - m * 60
    out = ""
    if h:
        out += f"{h}h"
    if h or m:
        out += f"{m}m"
    return out + f"{s:g}s"


@dataclass
class StageState:
    """The image a stage has made so far, plus what only exists while it builds."""
    index: int
    name: str | None
    image_id: str = ""                       # "" until FROM scratch has made a first image
    image: dict[str, Any] = field(default_factory=dict)   # the whole image config JSON
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in this stage
    cmd_set: bool = False
    done: bool = False
    out: Any = None      # the stage's Progress (schedule.OrderedOutput keeps stages in order)
    step: int = 0        # the last step number this stage printed

    @property
    def config(self) -> dict[str, Any]:
        return self.image.setdefault("config", {})

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)

    def env_list(self) -> list[str]:
        return list(self.config.get("Env") or [])

    def env_map(self) -> dict[str, str]:
        out = {}
        for e in self.env_list():
            k, _, v = e.partition("=")
            out[k] = v
        return out

    def expansion_env(self, build_args: dict[str, str | None]) -> dict[str, str]:
        """What `$x` means in this stage: the stage's ARGs (with --build-arg values), then its
        ENV, which wins over an ARG of the same name (dispatchers.go getExpansionEnv)."""
        env: dict[str, str] = {}
        for k, default in self.args.items():
            v = build_args.get(k) if build_args.get(k) is not None else default
            if v is not None:
                env[k] = v
        env.update(self.env_map())
        return env

    def run_args(self, build_args: dict[str, str | None]) -> list[tuple[str, str]]:
        """ARGs a RUN sees as environment and that key its cache: declared, valued, not
        shadowed by ENV; sorted, as dockerd's buildArgs.FilterAllowed."""
        env = self.env_map()
        out = []
        for k in sorted(self.args):
            v = build_args.get(k) if build_args.get(k) is not None else self.args[k]
            if v is not None and k not in env:
                out.append((k, v))
        return out


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def set_default_path(img: dict[str, Any]) -> None:
    """dockerd's setDefaultPath at the start of every stage: a config without PATH gets the
    default one, so it ends up in the built image's Env (first, unless the base had Env)."""
    cfg = img.setdefault("config", {})
    env = list(cfg.get("Env") or [])
    if not any(e.partition("=")[0] == "PATH" for e in env):
        cfg["Env"] = env + ["PATH=" + DEFAULT_PATH]


def blank_image(platform: tuple[str, str, str] | None = None) -> dict[str, Any]:
    os_, arch, variant = platform or ("linux", "amd64", "")
    img: dict[str, Any] = {"architecture": arch, "os": os_, "config": {},
                           "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    if variant:
        img["variant"] = variant
    return img


def nop_created_by(shell: list[str], comment: str) -> str:
    return " ".join(shell + ["#(nop) ", comment])


def nop_created_by_string(shell: list[str], comment: str) -> str:
    """COPY/ADD/WORKDIR's form (withCmdCommentString): one word, so one space."""
    return " ".join(shell + ["#(nop) " + comment])


def run_created_by(argv: list[str], arg_env: list[tuple[str, str]]) -> str:
    """A RUN's history line: `|2 a=1 b=2 /bin/sh -c make` when build args are in effect."""
    prefix = ""
    if arg_env:
        prefix = f"|{len(arg_env)} " + " ".join(f"{k}={v}" for k, v in arg_env) + " "
    return prefix + " ".join(argv)


def _words(ins: Any, env: dict[str, str], escape: str) -> list[str]:
    """The args after substitution: each written word expanded as one word (Docker's rule for
    VOLUME, USER, WORKDIR, COPY...), except EXPOSE, whose words split again (`EXPOSE $PORTS`)."""
    from .dockerfile import expand, expand_words
    if ins.cmd == "EXPOSE":
        return [w for a in ins.args for w in expand_words(a, env, escape)]
    return [expand(a, env, escape) for a in ins.args]


def _kv(ins: Any, env: dict[str, str], escape: str) -> list[tuple[str, str | None]]:
    """ENV/LABEL pairs: split as written first, then key and value substituted each (so a
    substituted value with spaces stays one value)."""
    from .dockerfile import expand, parse_kv
    return [(expand(k, env, escape), None if v is None else expand(v, env, escape))
            for k, v in parse_kv(list(ins.args), ins.cmd)]


def _one_word(ins: Any, env: dict[str, str], escape: str, what: str) -> str:
    words = _words(ins, env, escape)
    text = " ".join(words).strip()
    if not text:
        raise InvalidParameter(f"{what} requires exactly one argument")
    return text


def parse_ports(words: list[str]) -> list[str]:
    """EXPOSE's `80`, `80/udp`, `8000-8002/tcp` -> ["80/tcp", ...] (nat.ParsePortSpecs)."""
    out = []
    for w in words:
        port, _, proto = w.partition("/")
        proto = (proto or "tcp").lower()
        if proto not in ("tcp", "udp", "sctp"):
            raise InvalidParameter(f"invalid proto: {proto}")
        if ":" in port:
            port = port.rsplit(":", 1)[1]  # ip:hostPort:containerPort: only the last counts
        lo, _, hi = port.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise InvalidParameter(f"invalid containerPort: {port}") from None
        if not (0 <= a <= 65535 and a <= b <= 65535):
            raise InvalidParameter(f"invalid port range: {port}")
        out += [f"{n}/{proto}" for n in range(a, b + 1)]
    return out


def shell_or_exec(ins: Any, shell: list[str]) -> list[str]:
    """CMD/ENTRYPOINT/RUN's command: the JSON list, or the shell plus the text."""
    if ins.json:
        return list(ins.args)
    text = ins.args[0] if ins.args else ""
    return shell + [text]


def _duration(flags: dict[str, str], name: str) -> int:
    from ..images.changes import parse_duration
    v = flags.get(name)
    if not v:
        return 0
    d = parse_duration(v)
    if 0 < d < 1_000_000:
        raise InvalidParameter(f'{name.capitalize()} "{v}" cannot be less than 1ms')
    if d < 0:
        raise InvalidParameter(f'{name.capitalize()} "{v}" cannot be negative')
    return d


def healthcheck(ins: Any) -> dict[str, Any]:
    args = list(ins.args)
    if not args:
        raise InvalidParameter("HEALTHCHECK requires an argument")
    if args[0].upper() == "NONE":
        if len(args) > 1 or ins.flags:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return {"Test": ["NONE"]}
    if args[0].upper() not in ("CMD", "CMD-SHELL"):
        raise InvalidParameter(f"Unknown type {args[0]!r} in HEALTHCHECK (try CMD)")
    hc: dict[str, Any] = {"Test": [args[0].upper(), *args[1:]]}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod"), ("start-interval", "StartInterval")):
        d = _duration(ins.flags, flag)
        if d:
            hc[key] = d
    retries = ins.flags.get("retries")
    if retries:
        try:
            n = int(retries)
        except ValueError:
            raise InvalidParameter(f"invalid --retries value {retries!r}") from None
        if n < 0:
            raise InvalidParameter(f"--retries cannot be negative ({n})")
        if n:
            hc["Retries"] = n
    for f in ins.flags:
        if f not in ("interval", "timeout", "start-period", "start-interval", "retries"):
            raise InvalidParameter(f"Unknown flag: {f}")
    return hc


def _healthcheck_comment(hc: dict[str, Any]) -> str:
    # fmt's %q of *container.HealthConfig: &{Test Interval Timeout StartPeriod StartInterval Retries}
    parts = [go_q_list(hc.get("Test"))]
    for k in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        parts.append(go_quote(go_duration(int(hc.get(k) or 0))))
    parts.append("'\\x%02x'" % int(hc.get("Retries") or 0))
    return "HEALTHCHECK &{" + " ".join(parts) + "}"


def _set_env(cfg: dict[str, Any], key: str, value: str) -> None:
    # Docker keeps an ENV's position when it replaces one: same order as `docker inspect`.
    env = list(cfg.get("Env") or [])
    for i, e in enumerate(env):
        if e.partition("=")[0] == key:
            env[i] = f"{key}={value}"
            break
    else:
        env.append(f"{key}={value}")
    cfg["Env"] = env


def apply_metadata(ins: Any, st: StageState, build_args: dict[str, str | None],
                   escape: str = "\\", meta: dict[str, str | None] | None = None,
                   ) -> tuple[dict[str, Any], str]:
    """A config-only instruction: (the new image config JSON, the history comment).

    ARG updates `st.args` in place (it is build state, not image state); everything else
    works on a copy, so a failing instruction changes nothing.
    """
    from .dockerfile import expand, parse_kv

    img = copy.deepcopy(st.image)
    cfg = img.setdefault("config", {})
    env = st.expansion_env(build_args)
    cmd = ins.cmd
    if cmd == "ENV":
        pairs = _kv(ins, env, escape)
        if not pairs:
            raise InvalidParameter("ENV requires at least one argument")
        comment = "ENV"
        for k, v in pairs:
            if not k:
                raise InvalidParameter("ENV names can not be blank")
            v = v or ""
            _set_env(cfg, k, v)
            comment += f" {k}={v}"
    elif cmd == "LABEL":
        pairs = _kv(ins, env, escape)
        if not pairs:
            raise InvalidParameter("LABEL requires at least one argument")
        labels = dict(cfg.get("Labels") or {})
        comment = "LABEL"
        for k, v in pairs:
            if not k:
                raise InvalidParameter("LABEL names can not be blank")
            v = v or ""
            labels[k] = v
            comment += f" {k}={v}"
        cfg["Labels"] = labels
    elif cmd == "EXPOSE":
        words = _words(ins, env, escape)
        ports = parse_ports(words)
        if not ports:
            raise InvalidParameter("EXPOSE requires at least one argument")
        exposed = dict(cfg.get("ExposedPorts") or {})
        for p in ports:
            exposed[p] = {}
        cfg["ExposedPorts"] = exposed
        comment = "EXPOSE " + " ".join(words)  # the words as given, as dockerd records them
    elif cmd == "USER":
        cfg["User"] = _one_word(ins, env, escape, "USER")
        comment = "USER " + cfg["User"]
    elif cmd == "VOLUME":
        vols = _words(ins, env, escape)
        if not vols:
            raise InvalidParameter("VOLUME requires at least one argument")
        volumes = dict(cfg.get("Volumes") or {})
        for v in vols:
            v = v.strip()
            if not v:
                raise InvalidParameter("VOLUME specified can not be an empty string")
            volumes[v] = {}
        cfg["Volumes"] = volumes
        comment = "VOLUME " + go_v_list(vols)
    elif cmd == "STOPSIGNAL":
        from ..engine.containers import parse_signal
        sig = _one_word(ins, env, escape, "STOPSIGNAL")
        parse_signal(sig)
        cfg["StopSignal"] = sig
        comment = "STOPSIGNAL " + sig
    elif cmd == "CMD":
        cfg["Cmd"] = shell_or_exec(ins, st.shell)
        comment = "CMD " + go_q_list(cfg["Cmd"])
    elif cmd == "ENTRYPOINT":
        ep = shell_or_exec(ins, st.shell)
        if not ins.json and not (ins.args and ins.args[0].strip()):
            ep = []
        cfg["Entrypoint"] = ep or None
        if not st.cmd_set:
            cfg["Cmd"] = None  # an ENTRYPOINT drops an inherited CMD (dispatchEntrypoint)
        comment = "ENTRYPOINT " + go_q_list(ep)
    elif cmd == "SHELL":
        if not ins.json or not ins.args:
            raise InvalidParameter("SHELL requires the arguments to be in JSON form")
        cfg["Shell"] = list(ins.args)
        comment = "SHELL " + go_v_list(cfg["Shell"])
    elif cmd == "HEALTHCHECK":
        hc = healthcheck(ins)
        cfg["Healthcheck"] = hc
        comment = _healthcheck_comment(hc)
    elif cmd == "ONBUILD":
        trigger = (ins.args[0] if ins.args else "").strip()
        if not trigger:
            raise InvalidParameter("ONBUILD requires at least one argument")
        kw = trigger.split(None, 1)[0].upper()
        if kw == "ONBUILD":
            raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if kw in ("FROM", "MAINTAINER"):
            raise InvalidParameter(f"{kw} isn't allowed as an ONBUILD trigger")
        cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [trigger]
        comment = "ONBUILD " + trigger
    elif cmd == "MAINTAINER":
        who = " ".join(ins.args).strip()
        img["author"] = who
        comment = "MAINTAINER " + who
    elif cmd == "ARG":
        comment_parts = []
        for raw_name, default in parse_kv(list(ins.args), "ARG"):
            name = expand(raw_name, env, escape)
            eq = default is not None
            if not name:
                raise InvalidParameter("ARG names can not be blank")
            value = expand(default, env, escape) if eq else None
            if not eq:
                # `ARG X` in a stage takes the value of a global `ARG X=...` (before FROM)
                value = st.args.get(name, (meta or {}).get(name))
            st.args[name] = value
            env = st.expansion_env(build_args)
            comment_parts.append(f"{name}={value}" if eq else name)
        if not comment_parts:
            raise InvalidParameter("ARG requires exactly one argument")
        comment = "ARG " + " ".join(comment_parts)
    else:
        raise InvalidParameter(f"{cmd} is not a metadata instruction")
    return img, comment


def workdir(current: str, new: str) -> str:
    """WORKDIR's path: relative ones join the current directory (path.Join semantics)."""
    if not new:
        raise InvalidParameter("WORKDIR requires exactly one argument")
    if not new.startswith("/"):
        new = posixpath.join(current or "/", new)
    return posixpath.normpath(new).replace("//", "/")
