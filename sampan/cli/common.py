"""What every command module shares: the command spec, the invocation context, output helpers."""

from __future__ import annotations

import json
import os
import sys

from .args import Opt, UsageError

PROG = "sampan"


class CliError(Exception):
    """Print `message` to stderr and exit with `code` (no prefix is added)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Spec:
    """A command: its usage line, description, options and argument count."""

    def __init__(self, fn, usage: str, desc: str, opts: list[Opt] | None = None, *,
                 min_args: int = 0, max_args: int | None = None, interspersed: bool = True,
                 help_short: bool = True, aliases: str = "", error_code: int = 1) -> None:
        self.fn = fn
        self.usage = usage
        self.desc = desc
        self.opts = opts or []
        self.min_args = min_args
        self.max_args = max_args
        self.interspersed = interspersed
        self.help_short = help_short
        self.aliases = aliases
        self.error_code = error_code  # exit code for daemon errors (run/create: 125)


class Ctx:
    """Per-invocation state: the daemon address and a lazily made API client."""

    def __init__(self, host: str, path: str = PROG) -> None:
        self.host = host
        self.path = path  # "sampan container ls": for usage and error messages
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from .client import Client
            self._client = Client(self.host)
        return self._client


def filters_json(items: list[str] | None, extra: dict | None = None) -> str | None:
    """`--filter k=v` flags -> docker's filters JSON ({"k": {"v": true}})."""
    f: dict = {}
    for item in items or []:
        k, eq, v = item.partition("=")
        if not eq:
            raise UsageError("bad format of filter (expected name=value)")
        f.setdefault(k.strip(), {})[v] = True
    for k, v in (extra or {}).items():
        f.setdefault(k, {})[v] = True
    return json.dumps(f) if f else None


def out(s: str) -> None:
    sys.stdout.write(s)


def err(s: str) -> None:
    sys.stderr.write(s)


def q(name: str) -> str:
    """A container/image name as one URL path segment."""
    from .client import quote
    return quote(name, safe=":@")


def qimg(name: str) -> str:
    """Image references keep their `/` (the API routes match `{name:.*}`)."""
    from .client import quote
    return quote(name, safe=":@/")


def read_stdin_tty() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def api_error_text(e) -> str:
    return f"Error response from daemon: {e.message}"


def write_tar(resp, output: str | None, what: str) -> None:
    """A tar response (save, export) to stdout, or to `output`: written beside it, synced and
    renamed into place, so a failure never leaves a truncated tar behind."""
    if not output:
        from .stream import write_all
        sys.stdout.flush()
        for chunk in resp.chunks():
            write_all(1, chunk)
        return
    target = os.path.abspath(output)
    d = os.path.dirname(target)
    if not os.path.isdir(d):
        raise CliError(f"failed to {what}: invalid output path: directory {d!r} does not exist")
    tmp = os.path.join(d, f".{os.path.basename(target)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            for chunk in resp.chunks():
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
