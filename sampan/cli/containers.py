"""Container commands: run, create, start, stop, kill, restart, rm, ps, logs, exec, attach, wait,
rename."""

from __future__ import annotations

import os
import sys
import time

from .args import BOOL, INT, LIST, STR, Opt, UsageError
from .common import CliError, Spec, err, filters_json, out, q


def _name_of(c: dict) -> str:
    return (c.get("Name") or "").lstrip("/")


def _norm_image(image: str) -> str:
    """`busybox` -> `busybox:latest` for messages, as docker shows it."""
    if "@" in image:
        return image
    slash, colon = image.rfind("/"), image.rfind(":")
    return image if colon > slash else image + ":latest"


# -- create / run ------------------------------------------------------------------------------------

def _create(ctx, ns, args) -> str:
    from .client import APIError
    from .runopts import build_create
    image, cmd = args[0], args[1:]
    body, query = build_create(ns, image, cmd)
    if ns.tty:
        from .stream import terminal_size
        size = terminal_size(1) if os.isatty(1) else None
        if size:
            # API 1.42+: the pty gets its size at creation, before the first resize arrives
            body["HostConfig"]["ConsoleSize"] = list(size)
    if ns.cidfile and os.path.exists(ns.cidfile):
        raise CliError(f"Container ID file found, make sure the other container isn't running or delete {ns.cidfile}", 125)
    pull = getattr(ns, "pull", None) or "missing"
    if pull == "always":
        from .registry import pull_image
        pull_image(ctx, image, getattr(ns, "platform", None), getattr(ns, "quiet", False),
                   stream=sys.stderr, announce=False)
    try:
        resp = ctx.client.post("/containers/create", query, body) or {}
    except APIError as e:
        msg = e.message.lower()
        if e.status != 404 or ("no such image" not in msg and "does not match the specified platform" not in msg):
            raise
        # docker's CLI: say so, pull (progress on stderr), create again
        err(f"Unable to find image '{_norm_image(image)}' locally\n")
        if pull == "never":
            raise
        from .registry import pull_image
        pull_image(ctx, image, getattr(ns, "platform", None), getattr(ns, "quiet", False),
                   stream=sys.stderr, announce=False)
        resp = ctx.client.post("/containers/create", query, body) or {}
    for w in resp.get("Warnings") or []:
        err(f"WARNING: {w}\n")
    cid = resp.get("Id", "")
    if ns.cidfile:
        tmp = f"{ns.cidfile}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(cid)
        os.replace(tmp, ns.cidfile)
    return cid


def cmd_create(ctx, ns, args) -> int:
    out(_create(ctx, ns, args) + "\n")
    return 0


def _start(ctx, cid: str) -> None:
    """POST start; a failure exits with docker's 125/126/127."""
    from .client import APIError
    from .session import start_error_code
    try:
        ctx.client.request("POST", f"/containers/{q(cid)}/start")
    except APIError as e:
        raise CliError(f"Error response from daemon: {e.message}", start_error_code(e.message)) from None


def cmd_run(ctx, ns, args) -> int:
    from .client import APIError
    from .session import Session, parse_detach_keys, read_wait
    if ns.tty and ns.interactive and not os.isatty(0):
        raise CliError("the input device is not a TTY", 1)
    try:
        keys = parse_detach_keys(ns.detach_keys)
    except ValueError as e:
        raise UsageError(str(e)) from None
    cid = _create(ctx, ns, args)
    c = ctx.client
    if ns.detach:
        _start(ctx, cid)
        out(cid + "\n")
        return 0
    attach = [a.lower() for a in ns.attach or []]
    a_in = ("stdin" in attach) if attach else bool(ns.interactive)
    a_out = ("stdout" in attach) if attach else True
    a_err = ("stderr" in attach) if attach else True
    # the wait goes out first: with --rm the container may be gone right after it exits
    wconn = c.send("POST", f"/containers/{cid}/wait",
                   {"condition": "removed" if ns.rm else "next-exit"}, fresh=True)
    try:
        query = {"stream": True, "stdin": a_in, "stdout": a_out, "stderr": a_err}
        if ns.detach_keys:
            query["detachKeys"] = ns.detach_keys
        sock, leftover, _ = c.hijack("POST", f"/containers/{cid}/attach", query)
        sess = Session(c, sock, leftover, bool(ns.tty), a_in, f"/containers/{cid}/resize", keys)
        try:
            _start(ctx, cid)
        except BaseException:
            sock.close()
            raise
        sys.stdout.flush()
        sess.monitor_size()
        if ns.sig_proxy and not ns.tty:
            sess.proxy_signals(cid)
        sess.run()
        if sess.detached:
            return 0
        try:
            return read_wait(c, wconn)
        except APIError:
            # the daemon may not know the wait condition or the container vanished: fall back
            info = c.get(f"/containers/{cid}/json")
            return int((info.get("State") or {}).get("ExitCode", 0))
    finally:
        wconn.close()


# -- start / stop / kill / restart / rm / wait / rename --------------------------------------------------

def _each(ctx, names: list[str], fn, fail_prefix: str = "") -> int:
    from .client import APIError
    failed = []
    for name in names:
        try:
            fn(name)
        except APIError as e:
            err(f"Error response from daemon: {e.message}\n")
            failed.append(name)
            continue
        out(name + "\n")
    if failed and fail_prefix:
        err(f"Error: failed to {fail_prefix} containers: {', '.join(failed)}\n")
    return 1 if failed else 0


def cmd_start(ctx, ns, args) -> int:
    from .session import Session, parse_detach_keys, read_wait
    if ns.attach or ns.interactive:
        if len(args) > 1:
            raise CliError("you cannot start and attach multiple containers at once")
        c = ctx.client
        info = c.get(f"/containers/{q(args[0])}/json")
        cid = info["Id"]
        cfg = info.get("Config") or {}
        tty = bool(cfg.get("Tty"))
        a_in = bool(ns.interactive and cfg.get("OpenStdin"))
        try:
            keys = parse_detach_keys(ns.detach_keys)
        except ValueError as e:
            raise UsageError(str(e)) from None
        auto_remove = bool((info.get("HostConfig") or {}).get("AutoRemove"))
        wconn = c.send("POST", f"/containers/{cid}/wait",
                       {"condition": "removed" if auto_remove else "next-exit"}, fresh=True)
        try:
            query = {"stream": True, "stdin": a_in, "stdout": True, "stderr": True}
            if ns.detach_keys:
                query["detachKeys"] = ns.detach_keys
            sock, leftover, _ = c.hijack("POST", f"/containers/{cid}/attach", query)
            sess = Session(c, sock, leftover, tty, a_in, f"/containers/{cid}/resize", keys)
            try:
                _start(ctx, cid)
            except BaseException:
                sock.close()
                raise
            sess.monitor_size()
            if not tty:
                sess.proxy_signals(cid)
            sess.run()
            if sess.detached:
                return 0
            return read_wait(c, wconn)
        finally:
            wconn.close()
    return _each(ctx, args, lambda n: ctx.client.request("POST", f"/containers/{q(n)}/start"), "start")


def cmd_stop(ctx, ns, args) -> int:
    query = {"t": ns.time, "signal": ns.signal}
    return _each(ctx, args, lambda n: ctx.client.request("POST", f"/containers/{q(n)}/stop", query))


def cmd_restart(ctx, ns, args) -> int:
    query = {"t": ns.time, "signal": ns.signal}
    return _each(ctx, args, lambda n: ctx.client.request("POST", f"/containers/{q(n)}/restart", query))


def cmd_kill(ctx, ns, args) -> int:
    query = {"signal": ns.signal or None}
    return _each(ctx, args, lambda n: ctx.client.request("POST", f"/containers/{q(n)}/kill", query))


def cmd_rm(ctx, ns, args) -> int:
    query = {"force": True if ns.force else None, "v": True if ns.volumes else None,
             "link": True if ns.link else None}
    return _each(ctx, args, lambda n: ctx.client.request("DELETE", f"/containers/{q(n)}", query))


def cmd_wait(ctx, ns, args) -> int:
    from .client import APIError
    rc = 0
    for name in args:
        try:
            r = ctx.client.post(f"/containers/{q(name)}/wait") or {}
        except APIError as e:
            err(f"Error response from daemon: {e.message}\n")
            rc = 1
            continue
        out(f"{r.get('StatusCode', 0)}\n")
    return rc


def cmd_rename(ctx, ns, args) -> int:
    old, new = args
    if not new.strip():
        raise CliError("Error: neither old nor new names may be empty")
    ctx.client.request("POST", f"/containers/{q(old)}/rename", {"name": new})
    return 0


# -- ps ------------------------------------------------------------------------------------------------

def cmd_ps(ctx, ns, args) -> int:
    from .format import DEFAULT_PS, ContainerCtx, render_list
    from .template import TemplateError
    fmt = ns.format
    want_size = ns.size or bool(fmt and (".Size" in fmt or "json" in fmt))
    limit = 1 if ns.latest else (ns.last if ns.last is not None and ns.last > 0 else None)
    query = {"all": True if (ns.all or limit) else None, "limit": limit,
             "size": True if want_size else None, "filters": filters_json(ns.filter)}
    items = ctx.client.get("/containers/json", query) or []
    if ns.quiet:
        for c in items:
            i = c.get("Id", "")
            out((i if ns.no_trunc else i[:12]) + "\n")
        return 0
    if not fmt or fmt == "table":
        fmt = DEFAULT_PS + ("\t{{.Size}}" if ns.size else "")
    now = time.time()
    rows = [ContainerCtx(c, trunc=not ns.no_trunc, now=now) for c in items]
    try:
        out(render_list(fmt, rows, ContainerCtx.HEADERS))
    except TemplateError as e:
        raise CliError(str(e)) from None
    return 0


# -- logs ----------------------------------------------------------------------------------------------

def _timestamp(v: str | None, now: float) -> str | None:
    """docker's GetTimestamp: a Go duration ago, a Unix time, or an RFC 3339 date."""
    if not v:
        return None
    from .runopts import parse_duration
    try:
        return "%.9f" % (now - parse_duration(v, "since") / 1e9)
    except UsageError:
        pass
    try:
        float(v)
        return v
    except ValueError:
        pass
    from .format import parse_time
    for candidate in (v, v + "T00:00:00Z" if len(v) == 10 else None, v + "Z" if "T" in v else None):
        if not candidate:
            continue
        try:
            return "%.9f" % parse_time(candidate)
        except ValueError:
            continue
    raise UsageError(f'invalid value for "since"/"until": {v!r}')


def cmd_logs(ctx, ns, args) -> int:
    from .stream import Output, copy_output
    now = time.time()
    query = {"stdout": True, "stderr": True, "follow": True if ns.follow else None,
             "tail": ns.tail or "all", "timestamps": True if ns.timestamps else None,
             "since": _timestamp(ns.since, now), "until": _timestamp(ns.until, now),
             "details": True if ns.details else None}
    c = ctx.client
    resp = c.request("GET", f"/containers/{q(args[0])}/logs", query, stream=True)
    ctype = resp.content_type
    if ctype == "application/vnd.docker.multiplexed-stream":
        tty = False
    elif ctype == "application/vnd.docker.raw-stream":
        tty = True
    else:
        # the content type does not say: ask, as docker's CLI always does
        from .client import Client
        info = Client(c.host).get(f"/containers/{q(args[0])}/json")
        tty = bool((info.get("Config") or {}).get("Tty"))
    o = Output()
    copy_output(resp.chunks(), tty, o)
    if o.system_error:
        raise CliError(o.system_error.decode("utf-8", "replace").strip())
    return 0


# -- exec / attach -------------------------------------------------------------------------------------

def cmd_exec(ctx, ns, args) -> int:
    from .client import APIError
    from .runopts import _env_list, read_kv_file
    from .session import Session, parse_detach_keys, start_error_code
    name, cmd = args[0], args[1:]
    if ns.tty and ns.interactive and not os.isatty(0):
        raise CliError("the input device is not a TTY", 1)
    try:
        keys = parse_detach_keys(ns.detach_keys)
    except ValueError as e:
        raise UsageError(str(e)) from None
    env = []
    for f in ns.env_file or []:
        env += read_kv_file(f, "env")
    env += _env_list(ns.env or [])
    detach = bool(ns.detach)
    body = {"User": ns.user or "", "Privileged": bool(ns.privileged), "Tty": bool(ns.tty),
            "AttachStdin": bool(ns.interactive) and not detach, "AttachStdout": not detach,
            "AttachStderr": not detach, "Detach": detach, "Env": env or None,
            "WorkingDir": ns.workdir or "", "Cmd": cmd}
    if ns.detach_keys:
        body["DetachKeys"] = ns.detach_keys
    if ns.tty and os.isatty(1):
        from .stream import terminal_size
        size = terminal_size(1)
        if size:
            body["ConsoleSize"] = list(size)
    c = ctx.client
    eid = (c.post(f"/containers/{q(name)}/exec", None, body) or {}).get("Id", "")
    start = {"Detach": detach, "Tty": bool(ns.tty)}
    if detach:
        c.request("POST", f"/exec/{eid}/start", None, start)
        return 0
    try:
        sock, leftover, _ = c.hijack("POST", f"/exec/{eid}/start", None, start)
    except APIError as e:
        code = start_error_code(e.message)
        raise CliError(f"Error response from daemon: {e.message}", 1 if code == 125 else code) from None
    sess = Session(c, sock, leftover, bool(ns.tty), body["AttachStdin"], f"/exec/{eid}/resize", keys)
    sess.monitor_size()
    sess.run()
    if sess.detached:
        return 0
    info = c.get(f"/exec/{eid}/json") or {}
    code = info.get("ExitCode")
    return int(code) if code is not None else 0


def cmd_attach(ctx, ns, args) -> int:
    from .session import Session, parse_detach_keys
    c = ctx.client
    info = c.get(f"/containers/{q(args[0])}/json")
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CliError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CliError("You cannot attach to a paused container, unpause it first")
    cid = info["Id"]
    cfg = info.get("Config") or {}
    tty = bool(cfg.get("Tty"))
    a_in = not ns.no_stdin and bool(cfg.get("OpenStdin"))
    if tty and a_in and not os.isatty(0):
        raise CliError("the input device is not a TTY")
    try:
        keys = parse_detach_keys(ns.detach_keys)
    except ValueError as e:
        raise UsageError(str(e)) from None
    query = {"stream": True, "stdin": a_in, "stdout": True, "stderr": True}
    if ns.detach_keys:
        query["detachKeys"] = ns.detach_keys
    sock, leftover, _ = c.hijack("POST", f"/containers/{cid}/attach", query)
    sess = Session(c, sock, leftover, tty, a_in, f"/containers/{cid}/resize", keys)
    sess.monitor_size()
    if ns.sig_proxy and not tty:
        sess.proxy_signals(cid)
    sess.run()
    if sess.detached:
        return 0
    # the stream ended: the container exited, unless the daemon detached us; a short look
    # tells the two apart without blocking on a container that keeps running
    for _ in range(20):
        st = (c.get(f"/containers/{cid}/json").get("State") or {})
        if not st.get("Running"):
            return int(st.get("ExitCode", 0))
        time.sleep(0.025)
    return 0


# -- specs -----------------------------------------------------------------------------------------

def _run_spec(fn, usage, desc, detach: bool):
    from .runopts import RUN_OPTS
    drop = () if detach else ("detach", "sig_proxy", "detach_keys")
    opts = [o for o in RUN_OPTS if o.dest not in drop]
    return Spec(fn, usage, desc, opts, min_args=1, interspersed=False, help_short=False, error_code=125)


_PS_OPTS = [
    Opt("-a --all", BOOL, "Show all containers (default shows just running)"),
    Opt("-f --filter", LIST, "Filter output based on conditions provided", metavar="filter"),
    Opt("--format", STR, "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template"),
    Opt("-n --last", INT, "Show n last created containers (includes all states)", default=-1),
    Opt("-l --latest", BOOL, "Show the latest created container (includes all states)"),
    Opt("--no-trunc", BOOL, "Don't truncate output"),
    Opt("-q --quiet", BOOL, "Only display container IDs"),
    Opt("-s --size", BOOL, "Display total file sizes"),
]

SPECS = {
    "run": _run_spec(cmd_run, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", True),
    "create": _run_spec(cmd_create, "[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", False),
    "start": Spec(cmd_start, "[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers",
                  [Opt("-a --attach", BOOL, "Attach STDOUT/STDERR and forward signals"),
                   Opt("-i --interactive", BOOL, "Attach container's STDIN"),
                   Opt("--detach-keys", STR, "Override the key sequence for detaching a container")], min_args=1),
    "stop": Spec(cmd_stop, "[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers",
                 [Opt("-s --signal", STR, "Signal to send to the container"),
                  Opt("-t --time", INT, "Seconds to wait before killing the container")], min_args=1),
    "restart": Spec(cmd_restart, "[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers",
                    [Opt("-s --signal", STR, "Signal to send to the container"),
                     Opt("-t --time", INT, "Seconds to wait before killing the container")], min_args=1),
    "kill": Spec(cmd_kill, "[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers",
                 [Opt("-s --signal", STR, "Signal to send to the container")], min_args=1),
    "rm": Spec(cmd_rm, "[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers",
               [Opt("-f --force", BOOL, "Force the removal of a running container (uses SIGKILL)"),
                Opt("-l --link", BOOL, "Remove the specified link"),
                Opt("-v --volumes", BOOL, "Remove anonymous volumes associated with the container")],
               min_args=1, aliases="sampan container rm, sampan container remove, sampan rm"),
    "ps": Spec(cmd_ps, "[OPTIONS]", "List containers", _PS_OPTS, max_args=0,
               aliases="sampan container ls, sampan container list, sampan container ps, sampan ps"),
    "logs": Spec(cmd_logs, "[OPTIONS] CONTAINER", "Fetch the logs of a container",
                 [Opt("--details", BOOL, "Show extra details provided to logs"),
                  Opt("-f --follow", BOOL, "Follow log output"),
                  Opt("--since", STR, "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)"),
                  Opt("-n --tail", STR, "Number of lines to show from the end of the logs", default="all"),
                  Opt("-t --timestamps", BOOL, "Show timestamps"),
                  Opt("--until", STR, "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")],
                 min_args=1, max_args=1),
    "exec": Spec(cmd_exec, "[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container",
                 [Opt("-d --detach", BOOL, "Detached mode: run command in the background"),
                  Opt("--detach-keys", STR, "Override the key sequence for detaching a container"),
                  Opt("-e --env", LIST, "Set environment variables"),
                  Opt("--env-file", LIST, "Read in a file of environment variables"),
                  Opt("-i --interactive", BOOL, "Keep STDIN open even if not attached"),
                  Opt("--privileged", BOOL, "Give extended privileges to the command"),
                  Opt("-t --tty", BOOL, "Allocate a pseudo-TTY"),
                  Opt("-u --user", STR, "Username or UID (format: \"<name|uid>[:<group|gid>]\")"),
                  Opt("-w --workdir", STR, "Working directory inside the container")],
                 min_args=2, interspersed=False),
    "attach": Spec(cmd_attach, "[OPTIONS] CONTAINER",
                   "Attach local standard input, output, and error streams to a running container",
                   [Opt("--detach-keys", STR, "Override the key sequence for detaching a container"),
                    Opt("--no-stdin", BOOL, "Do not attach STDIN"),
                    Opt("--sig-proxy", BOOL, "Proxy all received signals to the process", default=True)],
                   min_args=1, max_args=1),
    "wait": Spec(cmd_wait, "CONTAINER [CONTAINER...]",
                 "Block until one or more containers stop, then print their exit codes", [], min_args=1),
    "rename": Spec(cmd_rename, "CONTAINER NEW_NAME", "Rename a container", [], min_args=2, max_args=2),
}
