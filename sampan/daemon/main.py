"""`sampand`: the daemon. Serves the Docker Engine API on a unix socket (and/or TCP)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from .. import __version__
from ..errors import SampanError
from .config import DaemonConfig

log = logging.getLogger("sampand")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sampand", description="sampan daemon: the Docker Engine API")
    p.add_argument("-H", "--host", action="append", default=None, help="unix:///path or tcp://host:port")
    p.add_argument("--data-root", default=None)
    p.add_argument("--exec-root", default=None)
    p.add_argument("--config-file", default=None)
    p.add_argument("-p", "--pidfile", default=None)
    p.add_argument("-D", "--debug", action="store_true", default=None)
    p.add_argument("-s", "--storage-driver", default=None)
    p.add_argument("--default-runtime", default=None)
    p.add_argument("--cgroup-parent", default=None)
    p.add_argument("--seccomp-profile", default=None,
                   help='default seccomp profile for containers: a JSON file, "builtin" or "unconfined"')
    p.add_argument("--userns-remap", default=None,
                   help="user/group (or `default`) whose subordinate ids containers run as")
    p.add_argument("--rootless", action="store_true", default=False,
                   help="run as an ordinary user (implied when not started as root)")
    p.add_argument("-v", "--version", action="store_true")
    return p.parse_args(argv)


def build_config(ns: argparse.Namespace) -> DaemonConfig:
    cfg = DaemonConfig()
    if ns.config_file:
        cfg.config_file = Path(ns.config_file)
    cfg.load_file(required=bool(ns.config_file))
    from ..monitor.logrotate import validate as validate_log_config
    validate_log_config({"Type": cfg.log_driver, "Config": cfg.log_opts})  # as dockerd: at start
    if ns.host:
        cfg.hosts = ns.host
    if ns.data_root:
        cfg.data_root = Path(ns.data_root)
    if ns.exec_root:
        cfg.exec_root = Path(ns.exec_root)
    if ns.pidfile:
        cfg.pidfile = Path(ns.pidfile)
    elif cfg.pidfile is None:
        cfg.pidfile = cfg.exec_root / "sampand.pid"
    if ns.debug:
        cfg.debug = True
    if ns.storage_driver:
        cfg.storage_driver = ns.storage_driver
    if ns.default_runtime:
        cfg.default_runtime = ns.default_runtime
    if ns.cgroup_parent:
        cfg.extra["cgroup-parent"] = ns.cgroup_parent
    cfg.data_root = cfg.data_root.resolve()
    cfg.exec_root = cfg.exec_root.resolve()
    if ns.userns_remap is not None:
        cfg.extra["userns-remap"] = ns.userns_remap
    if ns.seccomp_profile is not None:
        cfg.extra["seccomp-profile"] = ns.seccomp_profile
    _load_seccomp_profile(cfg)
    return cfg


def _load_seccomp_profile(cfg: DaemonConfig) -> None:
    """`seccomp-profile` (flag or daemon.json), read once at start as dockerd does; a file
    that cannot be read or used stops the start rather than every container's."""
    value = cfg.extra.get("seccomp-profile")
    if value in (None, "", "builtin"):
        return
    if not isinstance(value, str):
        raise SampanError("invalid seccomp-profile: expected a path, \"builtin\" or \"unconfined\"")
    if value == "unconfined":
        cfg.seccomp_profile = cfg.seccomp_profile_name = "unconfined"
        return
    try:
        with open(value, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SampanError(f"opening seccomp profile ({value}) failed: {e}") from None
    from ..linux import caps
    from ..runtime import seccomp_profile
    try:
        seccomp_profile.from_docker_profile(text, caps.tweak(None, None, False))
    except SampanError as e:
        raise SampanError(f"loading seccomp profile ({value}) failed: {e}") from None
    cfg.seccomp_profile, cfg.seccomp_profile_name = text, value


def _setup_userns_remap(cfg: DaemonConfig) -> None:
    """`--userns-remap`: resolve (or create `dockremap`), switch to the per-mapping data root."""
    value = cfg.extra.get("userns-remap")
    if value:
        from ..userns import configure
        configure(cfg, str(value))


def _take_pidfile(path: Path) -> None:
    try:
        old = int(path.read_text().strip())
    except (OSError, ValueError):
        old = 0
    if old and old != os.getpid():
        try:
            os.kill(old, 0)
            with open(f"/proc/{old}/cmdline", "rb") as f:
                if b"sampan" in f.read():
                    raise SampanError(f"pid file found, ensure sampand is not running or delete {path}")
        except (ProcessLookupError, FileNotFoundError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, path)


def _preload() -> None:
    """Import what monitors and container children use, before any fork (see monitor/process)."""
    import sampan.runtime.container  # noqa: F401
    import sampan.runtime.spec  # noqa: F401
    import sampan.runtime.mounts  # noqa: F401
    import sampan.linux.syscalls  # noqa: F401
    import sampan.cgroups.fs  # noqa: F401
    import sampan.userns.hooks  # noqa: F401
    import traceback  # noqa: F401


async def run(cfg: DaemonConfig) -> None:
    from ..api import containers, exec as exec_api, images, networks, system, resources
    from ..api import containerfs as containerfs_api, volumes as volumes_api
    from ..api import events as events_api, lifecycle as lifecycle_api
    from ..api import build as build_api
    from ..api.http import App, Router, serve
    from ..engine.core import Engine

    _preload()
    from ..monitor import zygote
    zygote.start_zygote(str(cfg.monitors_dir))  # ready before the first container
    engine = Engine(cfg)
    if cfg.extra.get("rootless"):
        from ..rootless.cgroups import NoCgroups
        engine.cgroups = NoCgroups()  # no delegated cgroup: limits refused at create
    await engine.start()
    router = Router()
    # build before containerfs: its POST /build/prune wins over containerfs's placeholder
    for mod in (system, build_api, containers, exec_api, images, resources, volumes_api,
                containerfs_api, networks, events_api, lifecycle_api):
        mod.register(router)
    app = App(router, engine)
    servers = [await serve(app, h) for h in cfg.hosts]
    log.info("sampand %s listening on %s (data root %s)", __version__, ", ".join(cfg.hosts), cfg.data_root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down; containers keep running (live restore)")
    for s in servers:
        s.close()
    for h in cfg.hosts:
        if h.startswith("unix://"):
            try:
                os.unlink(h[len("unix://"):])
            except OSError:
                pass
    engine.close()


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    if ns.version:
        print(f"sampand version {__version__}")
        return
    try:
        cfg = build_config(ns)
    except SampanError as e:
        print(f"sampand: {e}", file=sys.stderr)
        sys.exit(1)
    logging.basicConfig(level=logging.DEBUG if cfg.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pyroute2 logs every netlink message at debug level: thousands of lines per container
    # that bury sampan's own debug output. Its import resets its loggers' levels, so it is
    # imported first.
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        pass
    logging.getLogger("pyroute2").setLevel(logging.INFO)
    from .. import rootless
    if rootless.in_child():
        cfg.extra["rootless"] = True
        if cfg.extra.get("userns-remap"):
            print("sampand: --userns-remap is not supported in rootless mode", file=sys.stderr)
            sys.exit(1)
    elif os.geteuid() != 0 or ns.rootless:
        # Rootless: re-executed inside a user namespace of our own (sampan.rootless.reexec).
        if os.geteuid() == 0:
            print("sampand: --rootless is for an ordinary user, not root", file=sys.stderr)
            sys.exit(1)
        from ..rootless import reexec
        try:
            sys.exit(reexec.main(sys.argv[1:] if argv is None else argv))
        except SampanError as e:
            print(f"sampand: {e}", file=sys.stderr)
            sys.exit(1)
    try:
        _take_pidfile(cfg.pidfile)
        _setup_userns_remap(cfg)
    except SampanError as e:
        print(f"sampand: {e}", file=sys.stderr)
        sys.exit(1)
    try:
        asyncio.run(run(cfg))
    except SampanError as e:
        print(f"sampand: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        try:
            if cfg.pidfile and cfg.pidfile.read_text().strip() == str(os.getpid()):
                cfg.pidfile.unlink()
        except OSError:
            pass


if __name__ == "__main__":
    main()
