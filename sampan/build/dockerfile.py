"""Dockerfile parser: text -> stages of instructions, with Docker's grammar and errors.

Follows BuildKit's `frontend/dockerfile/parser` + `instructions` (which Docker's classic builder
uses too): parser directives, line continuations, comments, JSON vs shell form, heredocs, flags,
and the per-instruction argument checks. Variables are NOT substituted here: which words get
substituted, and with which environment, depends on build state (ARG scoping, ENV), so the
engine calls `expand`, `expand_words`, `expand_args` or `expand_kv` while it executes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InvalidParameter
from . import dockerfile_rules as _rules
from .dockerfile_rules import duration_ns, extract_flags, parse_words
from .shellwords import (
    GO_SPACE, Lexer, expand, expand_heredoc, expand_words, is_space,
)

__all__ = [
    "Heredoc", "Instruction", "Stage", "Dockerfile", "DockerfileError", "parse", "parse_line",
    "expand", "expand_words", "expand_heredoc", "expand_args", "expand_kv", "parse_kv",
    "parse_heredoc_word", "copy_sources", "flag_true", "duration_ns", "EXPANDED", "INSTRUCTIONS",
]

INSTRUCTIONS = frozenset({
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
})

# The Dockerfile reference's "Environment replacement" list, plus ARG (its name and default
# are substituted too, e.g. `ARG B=${A}-x`). ONBUILD is absent: its trigger is substituted
# when it runs in the child build, as that instruction. RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK
# are never substituted by the builder (the shell in the container does it).
EXPANDED = frozenset({
    "ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
    "WORKDIR",
})

# Docker reads a Dockerfile with bufio.Scanner's default 64 KiB token: a longer physical line
# is an error. The whole-file cap is ours, against absurd inputs.
MAX_LINE_BYTES = 64 * 1024
MAX_DOCKERFILE_BYTES = 16 * 1024 * 1024

_BOM = "\ufeff"
_WS_SPLIT = re.compile(r"[\t\v\f\r ]+")  # Docker's reWhitespace (ASCII only)
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*")
_DIRECTIVE_KEYS = frozenset({"syntax", "escape", "check"})
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)")
_SURROGATE = re.compile("[\ud800-\udfff]")
_LEADING_TABS = re.compile(r"^\t+", re.M)
_HEREDOC_CMDS = frozenset({"ADD", "COPY", "RUN"})
_JSON_FORM = frozenset({"CMD", "ENTRYPOINT", "RUN", "SHELL"})
_LIST_FORM = frozenset({"ADD", "COPY", "VOLUME"})
_STRING_FORM = frozenset({"MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"})


@dataclass
class Heredoc:
    name: str          # the delimiter word, e.g. "EOF"
    content: str       # body, with the final newline, after <<- tab stripping
    expand: bool       # False when the delimiter was quoted ('EOF' / "EOF"): no substitution
    chomp: bool        # True for <<-


@dataclass
class Instruction:
    """One instruction, unexpanded. `args` by instruction:
    RUN CMD ENTRYPOINT SHELL  the JSON list (json=True) or [the shell text]
    HEALTHCHECK               ["CMD", *list] / ["CMD-SHELL", text] / ["NONE"]
    COPY ADD VOLUME           the JSON list or the blank-separated words (quotes not special)
    FROM EXPOSE               the blank-separated words
    ENV LABEL                 "k=v" words, quotes kept (or legacy [name, rest of line])
    ARG                       "name" / "name=default" words, quotes kept
    USER WORKDIR STOPSIGNAL MAINTAINER   [the whole text]
    ONBUILD                   [the trigger as text, heredoc bodies re-attached] (parse_line)
    """

    cmd: str                     # upper-case keyword
    args: list[str]              # see above
    json: bool                   # written in exec/JSON form
    flags: dict[str, str]        # "--from=x" -> {"from": "x"}; repeated flags joined with "\n"
    heredocs: list[Heredoc]
    original: str                # as written, continuation lines joined (Docker's "Step" text)
    line: int                    # 1-based line where it starts
    end_line: int = 0            # last line (heredoc bodies included)


@dataclass
class Stage:
    index: int
    name: str | None             # lower-cased AS name
    base: str                    # FROM's image word, unexpanded
    platform: str | None         # FROM --platform, unexpanded
    instructions: list[Instruction]
    line: int
    original: str = ""           # the FROM line as written (for "Step 1/N : FROM ...")


@dataclass
class Dockerfile:
    filename: str
    escape: str
    meta_args: list[Instruction]
    stages: list[Stage]
    directives: dict[str, str] = field(default_factory=dict)   # syntax / check / escape
    warnings: list[str] = field(default_factory=list)          # empty continuation lines


class DockerfileError(InvalidParameter):
    """A Dockerfile Docker would refuse: str() is "<file>:<line>: <message>"; `line` and
    `detail` let a caller word it as dockerd does ("dockerfile parse error on line N: ...")."""

    def __init__(self, filename: str, line: int, detail: str) -> None:
        super().__init__(f"{filename}:{line}: {detail}")
        self.filename = filename
        self.line = line
        self.detail = detail


class _Fail(Exception):
    """Internal: an error at a line, turned into InvalidParameter with the file name."""

    def __init__(self, line: int, msg: str) -> None:
        super().__init__(msg)
        self.line = line
        self.msg = msg


class _Directives:
    """Parser directives: only in the leading run of `# key=value` comment lines; the first
    other line (a blank, another comment, an instruction) ends the run for good."""

    def __init__(self, escape: str = "\\") -> None:
        self.done = False
        self.seen: dict[str, str] = {}
        self.set_escape(escape)

    def set_escape(self, token: str) -> None:
        if token not in ("`", "\\"):
            raise InvalidParameter(f"invalid escape token '{token}' does not match ` or \\")
        self.escape = token
        e = re.escape(token)
        # The escape char as the last non-blank char continues the line, unless it is itself
        # escaped; a line holding only the escape char continues too.
        self.continuation = re.compile(rf"([^{e}]){e}[ \t]*\Z|^{e}[ \t]*\Z")

    def feed(self, line: str) -> None:
        if self.done:
            return
        if not line.startswith("#"):
            self.done = True
            return
        m = _DIRECTIVE.fullmatch(line[1:].lstrip(_SPACES))
        key = m.group(1).lower() if m else ""
        if key not in _DIRECTIVE_KEYS:
            self.done = True
            return
        if key in self.seen:
            raise InvalidParameter(f"only one {key} parser directive can be used")
        self.seen[key] = m.group(2)
        if key == "escape":
            self.set_escape(m.group(2))


_SPACES = "".join(sorted(GO_SPACE))  # Go's strings.TrimSpace set


def _lstrip_go(s: str) -> str:
    i = 0
    while i < len(s) and is_space(s[i]):
        i += 1
    return s[i:]


def _is_comment(raw: str) -> bool:
    return _lstrip_go(raw).startswith("#")


def _split_lines(text: str) -> list[str]:
    """Lines with their endings kept (heredoc bodies are taken verbatim, \\r\\n included)."""
    lines = text.split("\n")
    out = [ln + "\n" for ln in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _check_line_size(raw: str, lineno: int) -> None:
    # Cheap pre-check on characters; only long lines pay for the UTF-8 length.
    if len(raw) * 4 > MAX_LINE_BYTES and len(raw.encode("utf-8", "surrogatepass")) > MAX_LINE_BYTES:
        raise _Fail(lineno, f"dockerfile line greater than max allowed size of {MAX_LINE_BYTES - 1}")


@dataclass
class _Node:
    cmd: str            # keyword as written
    rest: str           # arguments after the flags
    flags: list[str]    # raw "--x=y" words
    original: str
    line: int
    end_line: int = 0
    heredocs: list[Heredoc] = field(default_factory=list)
    sub: _Node | None = None    # ONBUILD's trigger
    args: list[str] = field(default_factory=list)
    json: bool = False


def _scan(text: str, d: _Directives, warnings: list[str]) -> list[_Node]:
    """Physical lines -> logical instructions (BuildKit's parser.Parse)."""
    lines = _split_lines(text)
    nodes: list[_Node] = []
    i = 0
    n = len(lines)
    while i < n:
        raw = lines[i]
        _check_line_size(raw, i + 1)
        i += 1
        start = i
        tok = _lstrip_go(raw.rstrip("\r\n"))
        try:
            d.feed(tok)
        except InvalidParameter as err:
            raise _Fail(start, str(err)) from None
        if tok.startswith("#"):
            tok = ""
        line, eol = _trim_continuation(tok, d)
        if eol and not line:
            continue
        parts = [line]
        empty_cont = False
        while not eol and i < n:
            raw = lines[i]
            _check_line_size(raw, i + 1)
            i += 1
            tok = raw.rstrip("\r\n")
            d.feed(tok)
            if _is_comment(raw):
                continue  # comments inside a continuation are dropped
            if not _lstrip_go(tok):
                empty_cont = True  # so are empty lines (with a warning)
                continue
            tok, eol = _trim_continuation(tok, d)
            parts.append(tok)
        line = "".join(parts)
        if empty_cont:
            warnings.append(f"Empty continuation line found in: {line}")
        try:
            node = _node_from_line(line, d.escape, start)
        except InvalidParameter as err:
            raise _Fail(start, str(err)) from None
        target = node.sub if node.sub is not None else node
        if target.cmd.upper() in _HEREDOC_CMDS and not target.json and "<<" in line:
            try:
                docs = _heredocs_from_line(line)
            except InvalidParameter as err:
                raise _Fail(start, str(err)) from None
            for name, expand_, chomp in docs:
                body: list[str] = []
                terminated = False
                while i < n:
                    raw = lines[i]
                    _check_line_size(raw, i + 1)
                    i += 1
                    end = raw.rstrip("\r\n")
                    if chomp:
                        end = end.lstrip("\t")
                    if end == name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise _Fail(start, "unterminated heredoc")
                content = "".join(body)
                if chomp:
                    content = _LEADING_TABS.sub("", content)
                node.heredocs.append(Heredoc(name, content, expand_, chomp))
        node.end_line = i
        nodes.append(node)
    return nodes


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    if d.continuation.search(line):
        return d.continuation.sub(r"\1", line), False
    return line, True


def _node_from_line(line: str, escape: str, lineno: int, nested: bool = False) -> _Node:
    stripped = line.strip(_SPACES)
    parts = _WS_SPLIT.split(stripped, maxsplit=1)
    cmd = parts[0]
    rest, flags = "", []
    if len(parts) == 2:
        rest, flags = extract_flags(parts[1], escape)
    rest = rest.strip(_SPACES)
    node = _Node(cmd, rest, flags, line.strip(_SPACES), lineno)
    if cmd.upper() == "ONBUILD":
        # One level is enough: ONBUILD ONBUILD is refused anyway, and a long chain of them
        # must not recurse without bound.
        if rest and not nested:
            node.sub = _node_from_line(rest, escape, lineno, nested=True)
    elif cmd.upper() in INSTRUCTIONS:
        # Line-level argument errors (non-string JSON arrays, ENV/LABEL syntax) are raised
        # here, while scanning, as Docker's parser does before it checks instructions.
        node.args, node.json = _args(cmd.upper(), rest, escape)
    return node


def _reject_constant(name: str) -> None:
    raise ValueError(name)  # Go's encoding/json has no NaN/Infinity


def _json_list(rest: str) -> list[str] | None:
    """The JSON array of strings `rest` holds, None when it is not JSON (shell form then);
    an array holding anything but strings is an error, as in Docker."""
    rest = _lstrip_go(rest)
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise InvalidParameter("when using JSON array syntax, arrays must be comprised of strings only")
    # Go decodes a lone "\ud800" escape to U+FFFD; Python keeps a surrogate that no UTF-8
    # writer downstream could encode.
    return [_SURROGATE.sub("\ufffd", v) for v in value]


def parse_heredoc_word(word: str) -> Heredoc | None:
    """The heredoc a word like `<<EOF`, `<<-"EOF"` or `<< EOF` opens (content empty), or None.
    COPY/ADD use it to tell inline sources from paths (Docker's MustParseHeredoc)."""
    try:
        return _parse_heredoc_word(word)
    except InvalidParameter:
        return None


def _parse_heredoc_word(word: str) -> Heredoc | None:
    m = _HEREDOC.fullmatch(word)
    if not m or not m.group(3):
        return None
    rest = m.group(3)
    words = Lexer(skip_unset=True).process(rest, {})[1]
    if len(words) != 1:
        return None
    raw = Lexer(raw_quotes=True, skip_unset=True).process(rest, {})[1]
    if len(raw) != 1:
        raise InvalidParameter(f"internal lexing of heredoc produced inconsistent results: {rest}")
    # Any quoting in the delimiter (the quote counts differ) turns expansion off.
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(words[0], "", quotes == raw_quotes, m.group(2) == "-")


def _heredocs_from_line(line: str) -> list[tuple[str, bool, bool]]:
    try:
        words = Lexer(raw_quotes=True, raw_escapes=True, skip_unset=True).process(line, {})[1]
    except InvalidParameter:
        words = []  # Docker ignores a line it cannot lex here
    out = []
    for w in words:
        doc = _parse_heredoc_word(w)
        if doc is not None:
            out.append((doc.name, doc.expand, doc.chomp))
    return out


def _instruction(node: _Node) -> Instruction:
    """Apply the instruction's own argument rules (BuildKit's instructions.Parse*)."""
    cmd = node.cmd.upper()
    if cmd not in INSTRUCTIONS:
        hint = _rules.suggest(node.cmd, sorted(INSTRUCTIONS), False)
        raise InvalidParameter(f"unknown instruction: {node.cmd}{hint}")
    if cmd == "ONBUILD":
        return _onbuild(node)
    args, flags = _rules.check(cmd, node.args, node.json, node.flags)
    if cmd in ("ADD", "COPY") and parse_heredoc_word(args[-1]) is not None:
        raise InvalidParameter(f"{cmd} cannot accept a heredoc as a destination")
    return Instruction(cmd, args, node.json, flags, node.heredocs, node.original, node.line,
                       node.end_line or node.line)


def _args(cmd: str, rest: str, escape: str) -> tuple[list[str], bool]:
    if cmd in _JSON_FORM:
        if not rest:
            return [], False
        value = _json_list(rest)
        return (value, True) if value is not None else ([rest], False)
    if cmd in _LIST_FORM:
        value = _json_list(rest)
        if value is not None:
            return value, True
        return _WS_SPLIT.split(rest) if rest else [], False
    if cmd in ("FROM", "EXPOSE"):
        return _WS_SPLIT.split(rest) if rest else [], False
    if cmd in _STRING_FORM:
        return ([rest] if rest else []), False
    if cmd == "HEALTHCHECK":
        # The type word, then the command in JSON or shell form.
        sep = 0
        while sep < len(rest) and not is_space(rest[sep]):
            sep += 1
        typ, cmdline = rest[:sep], _lstrip_go(rest[sep:])
        if not typ:
            return [], False
        sub, is_json = _args("CMD", cmdline, escape)
        return [typ, *sub], is_json
    if cmd in ("ENV", "LABEL"):
        return _rules.name_val(rest, cmd, escape), False
    return parse_words(rest, escape), False  # ARG


def _onbuild(node: _Node) -> Instruction:
    if node.sub is None:
        raise InvalidParameter("ONBUILD requires at least one argument")
    _rules.check("ONBUILD", [node.sub.cmd], False, node.flags)
    trigger = node.sub.cmd.upper()
    if trigger == "ONBUILD":
        raise InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise InvalidParameter(f"{trigger} isn't allowed as an ONBUILD trigger")
    # The trigger is kept as text (Docker stores it so in the image config) with its heredoc
    # bodies re-attached, so parse_line() can parse it again in the child build.
    text = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original, count=1)
    for doc in node.heredocs:
        text += "\n" + doc.content + doc.name
    return Instruction("ONBUILD", [text], False, {}, node.heredocs, node.original, node.line,
                       node.end_line or node.line)


def _decode(text: str | bytes, filename: str = "Dockerfile") -> str:
    if not isinstance(text, (str, bytes)):
        raise InvalidParameter(f"{filename}: a Dockerfile must be text")
    if len(text) > MAX_DOCKERFILE_BYTES:
        raise InvalidParameter(f"{filename}: Dockerfile too large ({len(text)} bytes, limit "
                               f"{MAX_DOCKERFILE_BYTES})")
    if isinstance(text, bytes):
        # Docker passes undecodable bytes through; U+FFFD keeps what follows readable and
        # keeps every later layer (JSON configs, history) valid UTF-8.
        text = text.decode("utf-8", "replace")
    return text[1:] if text.startswith(_BOM) else text


def parse(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse a whole Dockerfile. Errors are InvalidParameter("<file>:<line>: <message>")."""
    src = _decode(text, filename)
    d = _Directives()
    warnings: list[str] = []
    try:
        nodes = _scan(src, d, warnings)
        if not nodes:
            raise _Fail(max(1, src.count("\n")), "file with no instructions")
        meta: list[Instruction] = []
        stages: list[Stage] = []
        for node in nodes:
            try:
                inst = _instruction(node)
            except InvalidParameter as err:
                raise _Fail(node.line, str(err)) from None
            if inst.cmd == "FROM":
                name = inst.args[2].lower() if len(inst.args) == 3 else None
                stages.append(Stage(len(stages), name, inst.args[0], inst.flags.get("platform"),
                                    [], inst.line, inst.original))
            elif not stages:
                if inst.cmd != "ARG":
                    raise _Fail(inst.line, "no build stage in current context")
                meta.append(inst)
            else:
                stages[-1].instructions.append(inst)
        if not stages:
            raise _Fail(nodes[-1].line, "dockerfile contains no stages to build")
    except _Fail as err:
        raise DockerfileError(filename, err.line, err.msg) from None
    return Dockerfile(filename, d.escape, meta, stages, dict(d.seen), warnings)


def parse_line(text: str, escape: str = "\\") -> Instruction:
    """Parse one instruction, e.g. an ONBUILD trigger ("RUN echo hi", or with heredoc bodies
    on the following lines, as ONBUILD stores them)."""
    d = _Directives(escape)
    d.done = True  # a trigger has no directives
    try:
        nodes = _scan(text, d, [])
        if len(nodes) != 1:
            raise _Fail(1, f"expected one instruction, found {len(nodes)}")
        try:
            return _instruction(nodes[0])
        except InvalidParameter as err:
            raise _Fail(nodes[0].line, str(err)) from None
    except _Fail as err:
        raise InvalidParameter(f"line {err.line}: {err.msg}") from None


def parse_kv(words: list[str], instruction: str) -> list[tuple[str, str | None]]:
    """ENV/LABEL `k=v k2=v2` pairs, legacy `ENV k v w` (value "v w"), or ARG `name[=default]`
    (value None when there is no default). Works on Instruction.args (unexpanded: expand each
    key and value afterwards, which is Docker's order; see expand_kv) or on expanded words."""
    return _rules.parse_kv(words, instruction.upper())


def expand_kv(inst: Instruction, env: Mapping[str, str],
              escape: str = "\\") -> list[tuple[str, str | None]]:
    """ENV/LABEL pairs with keys and values substituted as Docker does: the pairs are split
    first, then each key and value is expanded with the env from *before* the instruction
    (`ENV a=1 b=$a` gives b the old $a). ARG is Docker's dispatchArg without build args:
    names are not substituted, each default is, and sees the ARGs before it."""
    out: list[tuple[str, str | None]] = []
    if inst.cmd == "ARG":
        scope = dict(env)
        for key, value in parse_kv(inst.args, "ARG"):
            if value is not None:
                value = expand(value, scope, escape)
                scope[key] = value
            out.append((key, value))
        return out
    for key, value in parse_kv(inst.args, inst.cmd):
        out.append((expand(key, env, escape), None if value is None else expand(value, env, escape)))
    return out


def expand_args(inst: Instruction, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """The instruction's args after Docker's substitution for it: EXPOSE splits each word
    again (`EXPOSE $PORTS`), ADD/COPY/VOLUME/WORKDIR/USER/STOPSIGNAL/FROM expand each arg as one
    word; instructions not in EXPANDED come back unchanged. Use expand_kv for ENV/LABEL/ARG."""
    if inst.cmd == "EXPOSE":
        return [w for a in inst.args for w in expand_words(a, env, escape)]
    if inst.cmd in ("ENV", "LABEL", "ARG"):
        raise InvalidParameter(f"{inst.cmd}: use expand_kv")
    if inst.cmd not in EXPANDED:
        return list(inst.args)
    return [expand(a, env, escape) for a in inst.args]


def copy_sources(inst: Instruction) -> tuple[list[str], list[Heredoc], str]:
    """COPY/ADD's (source paths, inline heredoc sources, destination), unexpanded, split as
    Docker does: a source word that is a heredoc marker (`<<EOF`, `<<-"EOF"`) names one of
    the instruction's heredoc bodies (the file gets the delimiter as its name); the rest are
    paths/URLs. Expand paths and dest with expand(); a body with .expand uses expand_heredoc()."""
    bodies = {h.name: h for h in inst.heredocs}
    paths: list[str] = []
    inline: list[Heredoc] = []
    for word in inst.args[:-1]:
        marker = parse_heredoc_word(word)
        if marker is None:
            paths.append(word)
            continue
        body = bodies.get(marker.name)
        inline.append(Heredoc(marker.name, body.content if body else "", marker.expand, marker.chomp))
    return paths, inline, inst.args[-1]


def flag_true(inst: Instruction, name: str) -> bool:
    """A boolean flag's value: bare `--link` and `--link=true` are true."""
    value = inst.flags.get(name)
    return value is not None and value.lower() in ("", "true")
