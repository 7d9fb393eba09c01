"""`sampan`: the command-line client of the Docker Engine API.

Start-up cost matters (`sampan ps` should cost little more than Python itself), so this module
imports nothing heavy: command modules are imported only when their command runs.
"""

from __future__ import annotations

import sys

from .args import LIST, STR, BOOL, HelpRequested, Opt, UsageError, parse, usage_text
from .common import PROG, CliError, Ctx, err, out

# command -> (module, name in its SPECS)
_TOP = {
    "run": "containers", "create": "containers", "start": "containers", "stop": "containers",
    "kill": "containers", "restart": "containers", "rm": "containers", "ps": "containers",
    "logs": "containers", "exec": "containers", "attach": "containers", "wait": "containers",
    "rename": "containers", "stats": "stats", "update": "stats",
    "images": "images", "import": "images", "load": "images", "save": "images", "tag": "images",
    "rmi": "images", "history": "images",
    "version": "system", "info": "system", "inspect": "system",
    "events": "events", "top": "events", "pause": "events", "unpause": "events",
    "pull": "registry", "push": "registry", "login": "registry", "logout": "registry",
    "search": "registry",
    "cp": "storage", "diff": "storage", "export": "storage", "commit": "storage",
    "port": "network",
    "build": "build",
}

_GROUPS = {
    "container": ("Manage containers", {
        "ls": ("containers", "ps"), "list": ("containers", "ps"), "ps": ("containers", "ps"),
        "run": ("containers", "run"), "create": ("containers", "create"),
        "start": ("containers", "start"), "stop": ("containers", "stop"),
        "kill": ("containers", "kill"), "restart": ("containers", "restart"),
        "rm": ("containers", "rm"), "remove": ("containers", "rm"), "logs": ("containers", "logs"),
        "exec": ("containers", "exec"), "attach": ("containers", "attach"),
        "wait": ("containers", "wait"), "rename": ("containers", "rename"),
        "inspect": ("system", "container inspect"),
        "top": ("events", "top"), "pause": ("events", "pause"), "unpause": ("events", "unpause"),
        "stats": ("stats", "stats"), "update": ("stats", "update"),
        "cp": ("storage", "cp"), "diff": ("storage", "diff"), "export": ("storage", "export"),
        "commit": ("storage", "commit"), "prune": ("storage", "container prune"),
    }),
    "image": ("Manage images", {
        "ls": ("images", "images"), "list": ("images", "images"), "import": ("images", "import"),
        "load": ("images", "load"), "save": ("images", "save"), "tag": ("images", "tag"),
        "rm": ("images", "rmi"), "remove": ("images", "rmi"), "prune": ("images", "image prune"),
        "history": ("images", "history"), "inspect": ("system", "image inspect"),
        "pull": ("registry", "pull"), "push": ("registry", "push"),
        "build": ("build", "build"),
    }),
    "builder": ("Manage builds", {
        "build": ("build", "build"), "prune": ("build", "builder prune"),
    }),
    "registry": ("Run sampan's own registry server", {
        "serve": ("registry", "registry serve"), "gc": ("registry", "registry gc"),
    }),
    "volume": ("Manage volumes", {
        "create": ("volume", "volume create"), "ls": ("volume", "volume ls"),
        "list": ("volume", "volume ls"), "inspect": ("volume", "volume inspect"),
        "rm": ("volume", "volume rm"), "remove": ("volume", "volume rm"),
        "prune": ("volume", "volume prune"),
    }),
    "network": ("Manage networks", {
        "create": ("network", "network create"), "ls": ("network", "network ls"),
        "list": ("network", "network ls"), "inspect": ("network", "network inspect"),
        "rm": ("network", "network rm"), "remove": ("network", "network rm"),
        "prune": ("network", "network prune"), "connect": ("network", "network connect"),
        "disconnect": ("network", "network disconnect"),
    }),
    "system": ("Manage sampan", {
        "info": ("system", "info"),
        "df": ("storage", "system df"), "prune": ("storage", "system prune"),
    }),
}

_DESCRIPTIONS = [
    ("run", "Create and run a new container from an image"),
    ("exec", "Execute a command in a running container"),
    ("ps", "List containers"),
    ("images", "List images"),
    ("version", "Show the sampan version information"),
    ("info", "Display system-wide information"),
    ("build", "Build an image from a Dockerfile"),
    ("attach", "Attach local standard input, output, and error streams to a running container"),
    ("commit", "Create a new image from a container's changes"),
    ("cp", "Copy files/folders between a container and the local filesystem"),
    ("create", "Create a new container"),
    ("events", "Get real time events from the server"),
    ("diff", "Inspect changes to files or directories on a container's filesystem"),
    ("export", "Export a container's filesystem as a tar archive"),
    ("history", "Show the history of an image"),
    ("import", "Import the contents from a tarball to create a filesystem image"),
    ("inspect", "Return low-level information on sampan objects"),
    ("kill", "Kill one or more running containers"),
    ("load", "Load an image from a tar archive or STDIN"),
    ("login", "Log in to a registry"),
    ("logout", "Log out from a registry"),
    ("logs", "Fetch the logs of a container"),
    ("pause", "Pause all processes within one or more containers"),
    ("pull", "Download an image from a registry"),
    ("push", "Upload an image to a registry"),
    ("port", "List port mappings or a specific mapping for the container"),
    ("rename", "Rename a container"),
    ("restart", "Restart one or more containers"),
    ("rm", "Remove one or more containers"),
    ("rmi", "Remove one or more images"),
    ("save", "Save one or more images to a tar archive (streamed to STDOUT by default)"),
    ("search", "Search registries for images"),
    ("start", "Start one or more stopped containers"),
    ("stats", "Display a live stream of container(s) resource usage statistics"),
    ("stop", "Stop one or more running containers"),
    ("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"),
    ("top", "Display the running processes of a container"),
    ("unpause", "Unpause all processes within one or more containers"),
    ("update", "Update configuration of one or more containers"),
    ("wait", "Block until one or more containers stop, then print their exit codes"),
]

_GLOBAL_OPTS = [
    Opt("-H --host", LIST, "Daemon socket to connect to"),
    Opt("-v --version", BOOL, "Print version information and quit"),
    Opt("-D --debug", BOOL, "Enable debug mode"),
    Opt("-l --log-level", STR, 'Set the logging level ("debug", "info", "warn", "error", "fatal")'),
    Opt("--config", STR, "Location of client config files"),
    Opt("-c --context", STR, "Name of the context to use to connect to the daemon"),
    Opt("--tls", BOOL, "Use TLS; implied by --tlsverify", hidden=True),
    Opt("--tlsverify", BOOL, "Use TLS and verify the remote", hidden=True),
]


def _root_help() -> str:
    text = usage_text(PROG, "[OPTIONS] COMMAND", "A self-sufficient runtime for containers",
                      _GLOBAL_OPTS, commands=None)
    w = max(len(c) for c, _ in _DESCRIPTIONS)
    lines = ["Commands:"] + [f"  {c.ljust(w)}   {d}" for c, d in _DESCRIPTIONS]
    lines += ["", "Management Commands:"] + [f"  {g.ljust(w)}   {d}" for g, (d, _) in _GROUPS.items()]
    return text + "\n" + "\n".join(lines) + f"\n\nRun '{PROG} COMMAND --help' for more information on a command.\n"


def _load(module: str):
    if module == "containers":
        from . import containers as m
    elif module == "images":
        from . import images as m
    elif module == "events":
        from . import events as m
    elif module == "registry":
        from . import registry as m
    elif module == "stats":
        from . import stats as m
    elif module == "volume":
        from . import volume as m
    elif module == "storage":
        from . import storage as m
    elif module == "network":
        from . import network as m
    elif module == "build":
        from . import build as m
    else:
        from . import system as m
    return m


def _usage_error(ctx: Ctx, msg: str, code: int = 125) -> int:
    err(f"{msg}\nSee '{ctx.path} --help'.\n")
    return code


def run_spec(ctx: Ctx, spec, argv: list[str]) -> int:
    """Parse argv for one command, check its arity and run it with the error conventions."""
    from .client import APIError, ConnectError, ProtocolError
    try:
        ns, args = parse(argv, spec.opts, spec.interspersed, spec.help_short)
    except HelpRequested:
        out(usage_text(ctx.path, spec.usage, spec.desc, spec.opts, spec.aliases) + "\n")
        return 0
    except UsageError as e:
        return _usage_error(ctx, str(e))
    n = len(args)
    msg = None
    if spec.max_args == 0 and n:
        msg = f'"{ctx.path}" accepts no arguments.'
    elif spec.min_args == spec.max_args and n != spec.min_args:
        s = "s" if spec.min_args != 1 else ""
        msg = f'"{ctx.path}" requires exactly {spec.min_args} argument{s}.'
    elif n < spec.min_args:
        s = "s" if spec.min_args != 1 else ""
        msg = f'"{ctx.path}" requires at least {spec.min_args} argument{s}.'
    elif spec.max_args is not None and n > spec.max_args:
        s = "s" if spec.max_args != 1 else ""
        msg = f'"{ctx.path}" accepts at most {spec.max_args} argument{s}.'
    if msg:
        err(f"{msg}\nSee '{ctx.path} --help'.\n\nUsage:  {ctx.path} {spec.usage}\n\n{spec.desc}\n")
        return 1
    try:
        return spec.fn(ctx, ns, args) or 0
    except UsageError as e:
        return _usage_error(ctx, str(e))
    except CliError as e:
        if e.message:
            err(e.message.rstrip("\n") + "\n")
        return e.code
    except APIError as e:
        err(f"Error response from daemon: {e.message}\n")
        return spec.error_code
    except ConnectError as e:
        err(f"Cannot connect to the sampan daemon at {e.host}: Is the sampan daemon running?\n")
        return 1
    except ProtocolError as e:
        err(f"error during connect: {e}\n")
        return 1
    except BrokenPipeError:
        # `sampan ps | head -1`: stop quietly as Go programs do on EPIPE
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    import os
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.close(fd)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns, rest = parse(argv, _GLOBAL_OPTS, interspersed=False)
    except HelpRequested:
        out(_root_help())
        return 0
    except UsageError as e:
        err(f"{e}\nSee '{PROG} --help'.\n")
        return 125
    if ns.version:
        from .. import __version__
        out(f"sampan version {__version__}\n")
        return 0
    from .client import resolve_host
    try:
        host = resolve_host(ns.host[-1] if ns.host else None)
    except ValueError as e:
        err(f"{e}\n")
        return 1
    if not rest:
        out(_root_help())
        return 0
    name, argv = rest[0], rest[1:]
    ctx = Ctx(host, f"{PROG} {name}")
    try:
        if name in _GROUPS:
            desc, subs = _GROUPS[name]
            if not argv or argv[0] in ("--help", "-h"):
                w = max(len(s) for s in subs)
                out(f"\nUsage:  {PROG} {name} COMMAND\n\n{desc}\n\nCommands:\n"
                    + "".join(f"  {s.ljust(w)}\n" for s in subs)
                    + f"\nRun '{PROG} {name} COMMAND --help' for more information on a command.\n")
                return 0
            sub = argv[0]
            if sub not in subs:
                err(f"{PROG} {name}: '{sub}' is not a {PROG} {name} command.\nSee '{PROG} {name} --help'\n")
                return 1
            module, key = subs[sub]
            ctx.path = f"{PROG} {name} {sub}"
            return run_spec(ctx, _load(module).SPECS[key], argv[1:])
        module = _TOP.get(name)
        if module is None:
            err(f"{PROG}: '{name}' is not a {PROG} command.\nSee '{PROG} --help'\n")
            return 1
        return run_spec(ctx, _load(module).SPECS[name], argv)
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
        except (ValueError, AttributeError):
            pass


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
