"""A small pflag-like option parser (what the docker CLI's cobra/pflag accept).

Why not argparse: docker's grammar differs (`-it`, `-p80:80`, `--rm=false`, options stop at the
image name for `run`/`exec`, repeated `-e`), and argparse's import costs a few ms of a ~15 ms
budget. Each command declares its options as a list of `Opt`.
"""

from __future__ import annotations


class UsageError(Exception):
    """Bad flags or arguments; the CLI prints it with a `See '... --help'` hint."""


class HelpRequested(Exception):
    pass


BOOL, STR, LIST, INT, FLOAT = "bool", "str", "list", "int", "float"


class Opt:
    __slots__ = ("names", "kind", "dest", "default", "help", "metavar", "hidden")

    def __init__(self, names: str, kind: str = BOOL, help: str = "", default=None,
                 dest: str | None = None, metavar: str | None = None, hidden: bool = False) -> None:
        self.names = tuple(names.split())
        self.kind = kind
        long = [n for n in self.names if n.startswith("--")]
        self.dest = dest or (long[0] if long else self.names[0]).lstrip("-").replace("-", "_")
        if default is None:
            default = {BOOL: False, LIST: None, STR: None, INT: None, FLOAT: None}[kind]
        self.default = default
        self.help = help
        self.metavar = metavar or {STR: "string", LIST: "list", INT: "int", FLOAT: "decimal"}.get(kind, "")
        self.hidden = hidden


class Namespace(dict):
    """Parsed options; `ns.x` reads, `ns.changed` names the options given explicitly."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError:
            raise AttributeError(k) from None

    changed: set


_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _parse_bool(name: str, v: str) -> bool:
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise UsageError(f'invalid argument "{v}" for "{name}" flag: strconv.ParseBool: parsing "{v}": invalid syntax')


def _convert(opt: Opt, name: str, v: str):
    if opt.kind == INT:
        try:
            return int(v, 0) if v.lower().startswith(("0x", "0o", "0b")) else int(v)
        except ValueError:
            raise UsageError(f'invalid argument "{v}" for "{name}" flag: strconv.ParseInt: parsing "{v}": invalid syntax') from None
    if opt.kind == FLOAT:
        try:
            return float(v)
        except ValueError:
            raise UsageError(f'invalid argument "{v}" for "{name}" flag: strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    return v


def parse(argv: list[str], opts: list[Opt], interspersed: bool = True,
          help_short: bool = True) -> tuple[Namespace, list[str]]:
    """Parse `argv`; return (options, positional arguments).

    interspersed=False stops at the first positional (docker `run IMAGE CMD -x`: `-x` is the
    command's). `--help` (and `-h` unless a command uses it) raises HelpRequested.
    """
    by_name: dict[str, Opt] = {}
    for o in opts:
        for n in o.names:
            by_name[n] = o
    ns = Namespace({o.dest: (list(o.default) if isinstance(o.default, list) else o.default) for o in opts})
    ns.changed = set()
    pos: list[str] = []

    def store(o: Opt, name: str, v) -> None:
        ns.changed.add(o.dest)
        if o.kind == LIST:
            cur = ns.get(o.dest) or []
            ns[o.dest] = cur + [v]
        else:
            ns[o.dest] = _convert(o, name, v) if isinstance(v, str) and o.kind != STR else v

    i = 0
    n = len(argv)
    while i < n:
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a.partition("=")
            if name == "--help":
                raise HelpRequested()
            o = by_name.get(name)
            if o is None:
                raise UsageError(f"unknown flag: {name}")
            if o.kind == BOOL:
                store(o, name, _parse_bool(name[2:], val) if eq else True)
            elif eq:
                store(o, name, val)
            else:
                if i >= n:
                    raise UsageError(f"flag needs an argument: {name}")
                store(o, name, argv[i])
                i += 1
            continue
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = "-" + a[j]
                j += 1
                o = by_name.get(c)
                if o is None:
                    if c == "-h" and help_short:
                        raise HelpRequested()
                    raise UsageError(f"unknown shorthand flag: '{c[1]}' in {a}")
                if o.kind == BOOL:
                    if j < len(a) and a[j] == "=":
                        store(o, c, _parse_bool(c[1:], a[j + 1:]))
                        break
                    store(o, c, True)
                    continue
                rest = a[j:]
                if rest.startswith("="):
                    rest = rest[1:]
                if rest:
                    store(o, c, rest)
                else:
                    if i >= n:
                        raise UsageError(f"flag needs an argument: '{c[1]}' in {a}")
                    store(o, c, argv[i])
                    i += 1
                break
            continue
        pos.append(a)
        if not interspersed:
            pos.extend(argv[i:])
            break
    return ns, pos


def usage_text(prog: str, usage: str, desc: str, opts: list[Opt], aliases: str = "",
               commands: list[tuple[str, str]] | None = None) -> str:
    """Docker-style help: Usage, description, aliases, commands and an aligned options table."""
    out = [f"\nUsage:  {prog} {usage}".rstrip(), "", desc, ""]
    if aliases:
        out += ["Aliases:", f"  {aliases}", ""]
    if commands:
        out.append("Commands:")
        w = max(len(c) for c, _ in commands)
        out += [f"  {c.ljust(w)}   {d}" for c, d in commands]
        out.append("")
    rows = []
    for o in opts:
        if o.hidden:
            continue
        short = [x for x in o.names if not x.startswith("--")]
        long = [x for x in o.names if x.startswith("--")]
        left = (short[0] + ", " if short else "    ") + (long[0] if long else "")
        if o.metavar:
            left += " " + o.metavar
        h = o.help
        if o.kind != BOOL and o.default not in (None, "", []) and "(default" not in h:
            h += f' (default {o.default!r})'.replace("'", '"') if o.kind == STR else f" (default {o.default})"
        rows.append((left, h))
    if not any("--help" in r[0] for r in rows):
        rows.append(("    --help", "Print usage"))
    if rows:
        out.append("Options:")
        w = max(len(r[0]) for r in rows)
        out += [f"  {left.ljust(w)}   {h}".rstrip() for left, h in rows]
        out.append("")
    return "\n".join(out)
