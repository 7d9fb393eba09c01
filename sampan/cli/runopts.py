"""`run`/`create` flags and the POST /containers/create body they make (as docker's CLI does)."""

from __future__ import annotations

import os

from .args import BOOL, FLOAT, INT, LIST, STR, Opt, UsageError

RUN_OPTS = [
    Opt("-d --detach", BOOL, "Run container in background and print container ID"),
    Opt("--name", STR, "Assign a name to the container"),
    Opt("-i --interactive", BOOL, "Keep STDIN open even if not attached"),
    Opt("-t --tty", BOOL, "Allocate a pseudo-TTY"),
    Opt("--rm", BOOL, "Automatically remove the container when it exits"),
    Opt("-a --attach", LIST, "Attach to STDIN, STDOUT or STDERR"),
    Opt("-e --env", LIST, "Set environment variables"),
    Opt("--env-file", LIST, "Read in a file of environment variables"),
    Opt("-w --workdir", STR, "Working directory inside the container"),
    Opt("-u --user", STR, "Username or UID (format: <name|uid>[:<group|gid>])"),
    Opt("-h --hostname", STR, "Container host name"),
    Opt("--domainname", STR, "Container NIS domain name"),
    Opt("--entrypoint", STR, "Overwrite the default ENTRYPOINT of the image"),
    Opt("-l --label", LIST, "Set meta data on a container"),
    Opt("--label-file", LIST, "Read in a line delimited file of labels"),
    Opt("--network --net", STR, "Connect a container to a network", dest="network"),
    Opt("--network-alias --net-alias", LIST, "Add network-scoped alias for the container", dest="network_alias"),
    Opt("--ip", STR, "IPv4 address (e.g., 172.30.100.104)"),
    Opt("--link", LIST, "Add link to another container"),
    Opt("--ip6", STR, "IPv6 address (e.g., 2001:db8::33)"),
    Opt("--mac-address", STR, "Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Opt("--privileged", BOOL, "Give extended privileges to this container"),
    Opt("--cap-add", LIST, "Add Linux capabilities"),
    Opt("--cap-drop", LIST, "Drop Linux capabilities"),
    Opt("--read-only", BOOL, "Mount the container's root filesystem as read only"),
    Opt("--init", BOOL, "Run an init inside the container that forwards signals and reaps processes"),
    Opt("--ulimit", LIST, "Ulimit options"),
    Opt("--restart", STR, "Restart policy to apply when a container exits", default="no"),
    Opt("--runtime", STR, "Runtime to use for this container"),
    Opt("--group-add", LIST, "Add additional groups to join"),
    Opt("-p --publish", LIST, "Publish a container's port(s) to the host"),
    Opt("-P --publish-all", BOOL, "Publish all exposed ports to random ports"),
    Opt("--expose", LIST, "Expose a port or a range of ports"),
    Opt("-v --volume", LIST, "Bind mount a volume"),
    Opt("--mount", LIST, "Attach a filesystem mount to the container", metavar="mount"),
    Opt("--tmpfs", LIST, "Mount a tmpfs directory"),
    Opt("--volumes-from", LIST, "Mount volumes from the specified container(s)"),
    Opt("-m --memory", STR, "Memory limit", metavar="bytes"),
    Opt("--memory-swap", STR, "Swap limit equal to memory plus swap: '-1' to enable unlimited swap", metavar="bytes"),
    Opt("--memory-reservation", STR, "Memory soft limit", metavar="bytes"),
    Opt("--cpus", FLOAT, "Number of CPUs"),
    Opt("-c --cpu-shares", INT, "CPU shares (relative weight)"),
    Opt("--cpuset-cpus", STR, "CPUs in which to allow execution (0-3, 0,1)"),
    Opt("--pids-limit", INT, "Tune container pids limit (set -1 for unlimited)"),
    Opt("--shm-size", STR, "Size of /dev/shm", metavar="bytes"),
    Opt("--stop-signal", STR, "Signal to stop the container"),
    Opt("--stop-timeout", INT, "Timeout (in seconds) to stop a container"),
    Opt("--dns", LIST, "Set custom DNS servers"),
    Opt("--dns-search", LIST, "Set custom DNS search domains"),
    Opt("--dns-option", LIST, "Set DNS options"),
    Opt("--add-host", LIST, "Add a custom host-to-IP mapping (host:ip)"),
    Opt("--security-opt", LIST, "Security Options"),
    Opt("--device", LIST, "Add a host device to the container"),
    Opt("--sysctl", LIST, "Sysctl options"),
    Opt("--log-driver", STR, "Logging driver for the container"),
    Opt("--log-opt", LIST, "Log driver options"),
    Opt("--pid", STR, "PID namespace to use"),
    Opt("--ipc", STR, "IPC mode to use"),
    Opt("--uts", STR, "UTS namespace to use"),
    Opt("--userns", STR, "User namespace to use"),
    Opt("--cgroupns", STR, "Cgroup namespace to use (host|private)"),
    Opt("--platform", STR, "Set platform if server is multi-platform capable"),
    Opt("--pull", STR, 'Pull image before running ("always", "missing", "never")', default="missing"),
    Opt("--health-cmd", STR, "Command to run to check health"),
    Opt("--health-interval", STR, "Time between running the check (ms|s|m|h)", metavar="duration"),
    Opt("--health-timeout", STR, "Maximum time to allow one check to run (ms|s|m|h)", metavar="duration"),
    Opt("--health-retries", INT, "Consecutive failures needed to report unhealthy"),
    Opt("--health-start-period", STR, "Start period for the container to initialize (ms|s|m|h)", metavar="duration"),
    Opt("--no-healthcheck", BOOL, "Disable any container-specified HEALTHCHECK"),
    Opt("--cidfile", STR, "Write the container ID to the file"),
    Opt("--oom-kill-disable", BOOL, "Disable OOM Killer"),
    Opt("--sig-proxy", BOOL, "Proxy received signals to the process", default=True),
    Opt("--detach-keys", STR, "Override the key sequence for detaching a container"),
    Opt("-q --quiet", BOOL, "Suppress the pull output"),
]

from .limits import LIMIT_OPTS, limit_fields  # noqa: E402 - the rest of the cgroup flags

RUN_OPTS += LIMIT_OPTS

_BUILTIN_NETS = {"default", "bridge", "host", "none"}


def parse_bytes(v: str, flag: str) -> int:
    """go-units RAMInBytes: `512m`, `1g`, `1.5GiB` (binary multipliers); `-1` passes through."""
    import re
    v = v.strip()
    if v == "-1":
        return -1
    m = re.fullmatch(r"(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?", v)
    if not m:
        raise UsageError(f'invalid argument "{v}" for "{flag}" flag: invalid size: \'{v}\'')
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}[(m.group(2) or "").lower()]
    return int(float(m.group(1)) * mult)


def parse_duration(v: str, flag: str) -> int:
    """Go durations (`1m30s`, `500ms`) to nanoseconds."""
    import re
    units = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", v)
    if not parts or "".join(a + b for a, b in parts) != v:
        if v == "0":
            return 0
        raise UsageError(f'invalid argument "{v}" for "{flag}" flag: time: invalid duration "{v}"')
    return int(sum(float(a) * units[b] for a, b in parts))


def read_kv_file(path: str, what: str) -> list[str]:
    """docker's env-file/label-file: `KEY=VALUE` lines; `#` comments; a bare `KEY` takes its
    value from our environment (and is dropped if unset)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    out = []
    for n, raw in enumerate(lines, 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, val = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise UsageError(f"{what} file {path}, line {n}: variable '{key}' contains whitespaces")
        if eq:
            out.append(f"{key}={val}")
        elif what == "env" and key in os.environ:
            out.append(f"{key}={os.environ[key]}")
        elif what == "label":
            out.append(key)
    return out


def _env_list(values: list[str]) -> list[str]:
    out = []
    for e in values:
        if "=" in e:
            if e.startswith("="):
                raise UsageError(f"invalid environment variable: {e}")
            out.append(e)
        elif e in os.environ:
            out.append(f"{e}={os.environ[e]}")
    return out


def parse_port_spec(spec: str) -> list[tuple[str, dict | None]]:
    """`[ip:][hostPort:]containerPort[/proto]` with ranges -> [("80/tcp", binding|None)]."""
    body, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise UsageError(f"invalid proto: {proto}")
    ip = ""
    if body.startswith("["):  # [v6]:host:container
        end = body.find("]")
        if end < 0:
            raise UsageError(f"invalid IP address: {body}")
        ip, body = body[1:end], body[end + 1:].lstrip(":")
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) == 3:
            ip = parts.pop(0)
        elif len(parts) > 3:
            raise UsageError(f"invalid port format: {spec}")
    if len(parts) == 1:
        host, cont = "", parts[0]
    else:
        host, cont = parts[0], parts[1]
    if not cont:
        raise UsageError(f"no port specified: {spec}<empty>")
    c0, c1 = _port_range(cont, spec)
    h0 = h1 = 0
    if host:
        h0, h1 = _port_range(host, spec)
        if c0 != c1 and h1 - h0 != c1 - c0:
            raise UsageError(f"invalid ranges specified for container and host Ports: {cont} and {host}")
    out = []
    for i, p in enumerate(range(c0, c1 + 1)):
        hp = ""
        if host:
            hp = (str(h0) if h0 == h1 else f"{h0}-{h1}") if c0 == c1 else str(h0 + i)
        out.append((f"{p}/{proto}", {"HostIp": ip, "HostPort": hp}))
    return out


def _port_range(s: str, spec: str) -> tuple[int, int]:
    a, dash, b = s.partition("-")
    try:
        lo = int(a)
        hi = int(b) if dash else lo
    except ValueError:
        raise UsageError(f"invalid containerPort: {s}" if s else f"invalid port format: {spec}") from None
    if not (0 <= lo <= 65535 and 0 <= hi <= 65535 and lo <= hi):
        raise UsageError(f"invalid range specified for port: {s}")
    return lo, hi


def parse_mount(spec: str) -> dict:
    """`--mount type=bind,source=/a,target=/b,readonly` -> a HostConfig.Mounts entry."""
    m: dict = {"Type": "volume"}
    opts = {}
    for field in _csv(spec):
        key, eq, val = field.partition("=")
        k = key.strip().lower()
        if not eq and k not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise UsageError(f"invalid field '{field}' must be a key=value pair")
        opts.setdefault(k, []).append(val)
    for k, vals in opts.items():
        val = vals[-1]
        if k == "type":
            if val not in ("bind", "volume", "tmpfs", "npipe", "cluster", "image"):
                raise UsageError(f"invalid mount type: {val}")
            m["Type"] = val
        elif k in ("source", "src"):
            m["Source"] = val
        elif k in ("target", "dst", "destination"):
            m["Target"] = val
        elif k in ("readonly", "ro"):
            m["ReadOnly"] = _truthy(val, field=k)
        elif k == "consistency":
            m["Consistency"] = val
        elif k == "bind-propagation":
            m.setdefault("BindOptions", {})["Propagation"] = val
        elif k == "bind-nonrecursive":
            m.setdefault("BindOptions", {})["NonRecursive"] = _truthy(val, field=k)
        elif k == "volume-nocopy":
            m.setdefault("VolumeOptions", {})["NoCopy"] = _truthy(val, field=k)
        elif k == "volume-label":
            labels = m.setdefault("VolumeOptions", {}).setdefault("Labels", {})
            for v in vals:
                lk, _, lv = v.partition("=")
                labels[lk] = lv
        elif k == "volume-driver":
            m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {})["Name"] = val
        elif k == "volume-opt":
            dopts = m.setdefault("VolumeOptions", {}).setdefault("DriverConfig", {}).setdefault("Options", {})
            for v in vals:
                ok, _, ov = v.partition("=")
                dopts[ok] = ov
        elif k == "volume-subpath":
            m.setdefault("VolumeOptions", {})["Subpath"] = val
        elif k == "tmpfs-size":
            m.setdefault("TmpfsOptions", {})["SizeBytes"] = parse_bytes(val, "--mount")
        elif k == "tmpfs-mode":
            try:
                m.setdefault("TmpfsOptions", {})["Mode"] = int(val, 8)
            except ValueError:
                raise UsageError(f"invalid value for {k}: {val}") from None
        else:
            raise UsageError(f"unexpected key '{k}' in '{spec}'")
    if not m.get("Target"):
        raise UsageError("target is required")
    if m["Type"] == "bind" and not m.get("Source"):
        raise UsageError("source is required when specifying bind mount")
    return m


def _csv(s: str) -> list[str]:
    """Split a --mount value on commas, honouring double quotes like encoding/csv."""
    out, cur, q = [], [], False
    for ch in s:
        if ch == '"':
            q = not q
        elif ch == "," and not q:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [f for f in out if f]


def _truthy(v: str, field: str) -> bool:
    if v == "":
        return True
    lv = v.lower()
    if lv in ("1", "true", "t", "yes"):
        return True
    if lv in ("0", "false", "f", "no"):
        return False
    raise UsageError(f"invalid value for {field}: {v}")


def parse_ulimit(v: str) -> dict:
    name, eq, limits = v.partition("=")
    if not eq or not name:
        raise UsageError(f"invalid ulimit argument: {v}")
    soft, colon, hard = limits.partition(":")
    try:
        s = int(soft)
        h = int(hard) if colon else s
    except ValueError:
        raise UsageError(f"invalid ulimit argument: {v}") from None
    if s > h and h != -1:
        raise UsageError(f"ulimit soft limit must be less than or equal to hard limit: {s} > {h}")
    return {"Name": name, "Soft": s, "Hard": h}


def parse_restart(v: str) -> dict:
    name, colon, count = v.partition(":")
    if name not in ("no", "always", "unless-stopped", "on-failure", ""):
        raise UsageError(f"invalid restart policy: {name}")
    pol = {"Name": name if name != "" else "no", "MaximumRetryCount": 0}
    if colon:
        if name != "on-failure":
            raise UsageError("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
        try:
            pol["MaximumRetryCount"] = int(count)
        except ValueError:
            raise UsageError("invalid restart policy format: maximum retry count must be an integer") from None
    return pol


def _volume(spec: str, binds: list, volumes: dict) -> None:
    # Windows drive letters are not a concern here: split on ':' as Linux docker does
    parts = spec.split(":")
    if len(parts) == 1:
        if not spec.startswith("/"):
            raise UsageError(f"invalid volume specification: '{spec}'")
        volumes[spec] = {}
        return
    if len(parts) > 3 or not parts[1]:
        raise UsageError(f"invalid volume specification: '{spec}'")
    src = parts[0]
    if not parts[1].startswith("/"):
        raise UsageError(f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{parts[1]}' mount path must be absolute")
    if src.startswith(".") or src.startswith("~"):
        # docker's CLI resolves relative bind sources against the client's cwd
        src = os.path.abspath(os.path.expanduser(src))
        parts[0] = src
    binds.append(":".join(parts))


def build_create(ns, image: str, cmd: list[str]) -> tuple[dict, dict]:
    """(body, query) for POST /containers/create from parsed `run`/`create` flags."""
    if ns.rm and ns.restart not in (None, "", "no"):
        raise UsageError("Conflicting options: --restart and --rm")
    attach = [a.lower() for a in (ns.attach or [])]
    for a in attach:
        if a not in ("stdin", "stdout", "stderr"):
            raise UsageError(f"invalid argument {a!r} for -a: valid streams are STDIN, STDOUT and STDERR")
    if ns.get("detach") and attach:
        raise UsageError("Conflicting options: -a and -d")
    detach = bool(ns.get("detach"))
    if attach:
        a_in, a_out, a_err = "stdin" in attach, "stdout" in attach, "stderr" in attach
    elif detach:
        a_in = a_out = a_err = False
    else:
        a_in, a_out, a_err = bool(ns.interactive), True, True
    env = []
    for f in ns.env_file or []:
        env += read_kv_file(f, "env")
    env += _env_list(ns.env or [])
    labels: dict[str, str] = {}
    for f in ns.label_file or []:
        for item in read_kv_file(f, "label"):
            k, _, v = item.partition("=")
            labels[k] = v
    for item in ns.label or []:
        k, _, v = item.partition("=")
        labels[k] = v
    exposed: dict = {}
    bindings: dict = {}
    for spec in ns.publish or []:
        for port, b in parse_port_spec(spec):
            exposed[port] = {}
            bindings.setdefault(port, []).append(b)
    for spec in ns.expose or []:
        p, _, proto = spec.partition("/")
        lo, hi = _port_range(p, spec)
        for n in range(lo, hi + 1):
            exposed[f"{n}/{proto or 'tcp'}"] = {}
    binds: list[str] = []
    volumes: dict = {}
    for spec in ns.volume or []:
        _volume(spec, binds, volumes)
    tmpfs = {}
    for spec in ns.tmpfs or []:
        path, _, opts = spec.partition(":")
        if not path.startswith("/"):
            raise UsageError(f"invalid tmpfs path: {path}")
        tmpfs[path] = opts
    entrypoint = None
    if "entrypoint" in ns.changed:
        entrypoint = [ns.entrypoint] if ns.entrypoint else [""]
    config = {
        "Hostname": ns.hostname or "",
        "Domainname": ns.domainname or "",
        "User": ns.user or "",
        "AttachStdin": a_in,
        "AttachStdout": a_out,
        "AttachStderr": a_err,
        "Tty": bool(ns.tty),
        "OpenStdin": bool(ns.interactive),
        "StdinOnce": bool(a_in),
        "Env": env,
        "Cmd": cmd or None,
        "Image": image,
        "Volumes": volumes or None,
        "WorkingDir": ns.workdir or "",
        "Entrypoint": entrypoint,
        "Labels": labels,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    if ns.stop_signal:
        config["StopSignal"] = ns.stop_signal
    if ns.stop_timeout is not None:
        config["StopTimeout"] = ns.stop_timeout
    if ns.mac_address:
        config["MacAddress"] = ns.mac_address
    hc = _healthcheck(ns)
    if hc:
        config["Healthcheck"] = hc
    network = ns.network or "default"
    security_opts, unmask_paths = parse_security_opts(ns.security_opt)
    host = {
        "Binds": binds or None,
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": parse_restart(ns.restart or "no"),
        "AutoRemove": bool(ns.rm),
        "VolumesFrom": ns.volumes_from or None,
        "CapAdd": ns.cap_add or None,
        "CapDrop": ns.cap_drop or None,
        "Dns": ns.dns or [],
        "DnsOptions": ns.dns_option or [],
        "DnsSearch": ns.dns_search or [],
        "ExtraHosts": [h.replace("=", ":", 1) if "=" in h else h for h in ns.add_host or []] or None,
        "Links": ns.link or None,
        "GroupAdd": ns.group_add or None,
        "Privileged": bool(ns.privileged),
        "PublishAllPorts": bool(ns.publish_all),
        "ReadonlyRootfs": bool(ns.read_only),
        "SecurityOpt": security_opts or None,
        "Tmpfs": tmpfs or None,
        "Ulimits": [parse_ulimit(u) for u in ns.ulimit or []] or None,
        "Mounts": [parse_mount(m) for m in ns.mount or []] or None,
        "Init": True if ns.init else None,
        "LogConfig": {"Type": ns.log_driver or "",
                      "Config": dict(o.partition("=")[::2] for o in ns.log_opt or [])},
    }
    if unmask_paths:
        host["MaskedPaths"], host["ReadonlyPaths"] = [], []
    if ns.runtime:
        host["Runtime"] = ns.runtime
    if ns.memory:
        host["Memory"] = parse_bytes(ns.memory, "--memory")
    if ns.memory_swap:
        host["MemorySwap"] = parse_bytes(ns.memory_swap, "--memory-swap")
    if ns.memory_reservation:
        host["MemoryReservation"] = parse_bytes(ns.memory_reservation, "--memory-reservation")
    if ns.cpus is not None:
        if ns.cpus < 0:
            raise UsageError(f'invalid argument "{ns.cpus}" for "--cpus" flag: value is negative')
        host["NanoCpus"] = int(round(ns.cpus * 1e9))
    if ns.cpu_shares is not None:
        host["CpuShares"] = ns.cpu_shares
    if ns.cpuset_cpus:
        host["CpusetCpus"] = ns.cpuset_cpus
    if ns.pids_limit is not None:
        host["PidsLimit"] = ns.pids_limit
    if ns.shm_size:
        host["ShmSize"] = parse_bytes(ns.shm_size, "--shm-size")
    if ns.oom_kill_disable:
        host["OomKillDisable"] = True
    host.update(limit_fields(ns))
    for flag, key in (("pid", "PidMode"), ("ipc", "IpcMode"), ("uts", "UTSMode"),
                      ("userns", "UsernsMode"), ("cgroupns", "CgroupnsMode")):
        if ns.get(flag):
            host[key] = ns[flag]
    if ns.sysctl:
        host["Sysctls"] = dict(s.partition("=")[::2] for s in ns.sysctl)
    if ns.device:
        host["Devices"] = [_device(d) for d in ns.device]
    body = dict(config, HostConfig=host)
    ep: dict = {}
    if ns.network_alias:
        ep["Aliases"] = list(ns.network_alias)
    if ns.ip or ns.ip6:
        ep["IPAMConfig"] = {k: v for k, v in (("IPv4Address", ns.ip), ("IPv6Address", ns.ip6)) if v}
    if (network not in _BUILTIN_NETS and not network.startswith("container:")) or ep:
        body["NetworkingConfig"] = {"EndpointsConfig": {network: ep}}
    query = {}
    if ns.name:
        query["name"] = ns.name
    if ns.platform:
        query["platform"] = ns.platform
    return body, query


def parse_security_opts(values: list[str] | None) -> tuple[list[str], bool]:
    """The docker CLI's parseSecurityOpts/parseSystemPaths: `seccomp=<file>` sends the
    file's compacted JSON (the daemon never reads client paths); `systempaths=unconfined`
    becomes empty MaskedPaths/ReadonlyPaths. -> (SecurityOpt, unmask system paths)."""
    import json
    out: list[str] = []
    unmask = False
    for o in values or []:
        key, sep, val = o.partition("=") if "=" in o else o.partition(":")
        if key == "systempaths" and sep:
            if val != "unconfined":
                raise UsageError(f'invalid --security-opt: "{o}"')
            unmask = True
            continue
        if key == "seccomp" and sep and val not in ("unconfined", "builtin"):
            try:
                with open(val) as f:
                    text = f.read()
            except OSError as e:
                raise UsageError(f"opening seccomp profile ({val}) failed: {e.strerror}") from None
            try:
                o = "seccomp=" + json.dumps(json.loads(text), separators=(",", ":"))
            except ValueError as e:
                raise UsageError(
                    f"compacting json for seccomp profile ({val}) failed: {e}") from None
        out.append(o)
    return out, unmask


def _device(spec: str) -> dict:
    parts = spec.split(":")
    src = parts[0]
    dst = parts[1] if len(parts) > 1 and parts[1].startswith("/") else src
    perms = parts[-1] if len(parts) > 1 and not parts[-1].startswith("/") else "rwm"
    return {"PathOnHost": src, "PathInContainer": dst, "CgroupPermissions": perms}


def _healthcheck(ns) -> dict | None:
    if ns.no_healthcheck:
        return {"Test": ["NONE"]}
    hc: dict = {}
    if ns.health_cmd:
        hc["Test"] = ["CMD-SHELL", ns.health_cmd]
    for flag, key in (("health_interval", "Interval"), ("health_timeout", "Timeout"),
                      ("health_start_period", "StartPeriod")):
        if ns.get(flag):
            hc[key] = parse_duration(ns[flag], "--" + flag.replace("_", "-"))
    if ns.health_retries is not None:
        hc["Retries"] = ns.health_retries
    return hc or None
