"""Per-instruction argument and flag rules of the Dockerfile parser, with Docker's messages
(BuildKit's instructions/parse.go and bflag.go): argument counts, known flags and their kinds,
HEALTHCHECK's options, ENV/LABEL/ARG pairs, and the raw (pre-substitution) word splitting of
flags and ENV/LABEL/ARG words. Split from dockerfile.py to keep both readable."""

from __future__ import annotations

import re

from ..errors import InvalidParameter
from .shellwords import GO_SPACE, go_quote

_SPACES = "".join(sorted(GO_SPACE))
_WS_SPLIT = re.compile(r"[\t\v\f\r ]+")  # Docker's reWhitespace (ASCII only)


_S, _B, _M = "string", "bool", "strings"   # flag kinds; strings may repeat
_FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": _S, "chmod": _S, "link": _B, "keep-git-dir": _B, "checksum": _S,
            "unpack": _B, "exclude": _M},
    "COPY": {"chown": _S, "from": _S, "chmod": _S, "link": _B, "exclude": _M, "parents": _B},
    "FROM": {"platform": _S},
    "RUN": {"mount": _M, "network": _S, "security": _S, "device": _M},
    "HEALTHCHECK": {"interval": _S, "timeout": _S, "start-period": _S, "start-interval": _S,
                    "retries": _S},
}
_STAGE_NAME = re.compile(r"[a-z][a-z0-9\-_.]*")


def _flags(cmd: str, raw: list[str]) -> dict[str, str]:
    spec = _FLAGS.get(cmd, {})
    out: dict[str, str] = {}
    for word in raw:
        if word == "--":
            break
        if not word.startswith("--"):
            raise InvalidParameter(f"arg should start with -- : {word}")
        flag, has_value, value = word.partition("=")
        name = flag[2:]
        kind = spec.get(name)
        if kind is None:
            raise InvalidParameter(f"unknown flag: {flag}" + suggest(name, sorted(spec), True))
        if name in out and kind != _M:
            raise InvalidParameter(f"duplicate flag specified: {flag}")
        if kind == _B:
            if has_value and value == "":
                raise InvalidParameter(f"missing a value on flag: {flag}")
            if value.lower() not in ("", "true", "false"):
                raise InvalidParameter(f"expecting boolean value for flag {flag}, not: {value}")
        elif not has_value:
            raise InvalidParameter(f"missing a value on flag: {flag}")
        out[name] = out[name] + "\n" + value if name in out else value
    return out


def check(cmd: str, args: list[str], is_json: bool,
          raw_flags: list[str]) -> tuple[list[str], dict[str, str]]:
    """Docker's argument-count and flag rules, in Docker's order; returns (args, flags).
    (A heredoc as COPY/ADD destination is refused by the caller, which knows heredocs.)"""
    n = len(args)
    if cmd in ("MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL") and n != 1:
        raise InvalidParameter(f"{cmd} requires exactly one argument")
    if cmd in ("ADD", "COPY") and n < 2:
        raise InvalidParameter(f"{cmd} requires at least two arguments, but only one was "
                               "provided. Destination could not be determined")
    if cmd in ("ONBUILD", "EXPOSE", "VOLUME", "ARG", "HEALTHCHECK") and n == 0:
        raise InvalidParameter(f"{cmd} requires at least one argument")
    if cmd == "FROM":
        if n == 3 and args[1].lower() == "as":
            if not _STAGE_NAME.fullmatch(args[2].lower()):
                raise InvalidParameter(f"invalid name for build stage: {go_quote(args[2])}, "
                                       "name can't start with a number or contain symbols")
        elif n != 1:
            raise InvalidParameter("FROM requires either one or three arguments")
    if cmd == "HEALTHCHECK":
        return _healthcheck(args, is_json, raw_flags)
    # ARG and STOPSIGNAL never look at their flags (Docker ignores them there).
    flags = {} if cmd in ("ARG", "STOPSIGNAL") else _flags(cmd, raw_flags)
    if cmd in ("ENV", "LABEL", "ARG"):
        parse_kv(args, cmd)
    elif cmd == "VOLUME":
        args = [a.strip(_SPACES) for a in args]
        if any(not a for a in args):
            raise InvalidParameter("VOLUME specified can not be an empty string")
    elif cmd == "SHELL":
        if n == 0:
            raise InvalidParameter("SHELL requires at least one argument")
        if not is_json:
            raise InvalidParameter("SHELL requires the arguments to be in JSON form")
    return args, flags


def _healthcheck(args: list[str], is_json: bool,
                 raw_flags: list[str]) -> tuple[list[str], dict[str, str]]:
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) != 1:
            raise InvalidParameter("HEALTHCHECK NONE takes no arguments")
        return ["NONE"], {}
    flags = _flags("HEALTHCHECK", raw_flags)
    if typ != "CMD":
        raise InvalidParameter(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)")
    if len(args) == 1:
        raise InvalidParameter("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period", "start-interval"):
        value = flags.get(name, "")
        if value and 0 < abs(d := duration_ns(value)) and d < 1_000_000:
            raise InvalidParameter(f"Interval {go_quote(name)} cannot be less than 1ms")
    retries = flags.get("retries", "")
    if retries:
        if not re.fullmatch(r"[+-]?[0-9]+", retries):
            raise InvalidParameter(f"strconv.ParseInt: parsing {go_quote(retries)}: invalid syntax")
        r = int(retries)
        if not -(2**31) <= r < 2**31:
            raise InvalidParameter(f"strconv.ParseInt: parsing {go_quote(retries)}: value out of range")
        if r < 0:
            raise InvalidParameter(f"--retries cannot be negative ({r})")
    if is_json:
        return ["CMD", *args[1:]], flags
    return ["CMD-SHELL", " ".join(args[1:])], flags


_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 10**6, "s": 10**9,
          "m": 60 * 10**9, "h": 3600 * 10**9}
_DUR_NUM = re.compile(r"([0-9]*)(?:\.([0-9]*))?")


def duration_ns(value: str) -> int:
    """Go's time.ParseDuration ("1m30s", "1.5h", "300ms") in nanoseconds, with Go's errors;
    HEALTHCHECK's --interval/--timeout/--start-period/--start-interval use it."""
    s, orig = value, go_quote(value)
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise InvalidParameter(f"time: invalid duration {orig}")
    total = 0
    while s:
        m = _DUR_NUM.match(s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise InvalidParameter(f"time: invalid duration {orig}")
        s = s[m.end():]
        j = 0
        while j < len(s) and s[j] not in ".0123456789":
            j += 1
        unit, s = s[:j], s[j:]
        if not unit:
            raise InvalidParameter(f"time: missing unit in duration {orig}")
        if unit not in _UNITS:
            raise InvalidParameter(f"time: unknown unit {go_quote(unit)} in duration {orig}")
        scale = _UNITS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        if total > 2**63 - (0 if neg else 1):
            raise InvalidParameter(f"time: invalid duration {orig}")
    return -total if neg else total


def name_val(rest: str, cmd: str, escape: str) -> list[str]:
    """ENV/LABEL words: `k=v ...` (each word must hold "=") or the legacy `k v...` (two args:
    the name, and the rest of the line verbatim)."""
    words = parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WS_SPLIT.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise InvalidParameter(f"{cmd} must have two arguments")
        return parts
    for w in words:
        if "=" not in w:
            raise InvalidParameter(f"Syntax error - can't find = in {go_quote(w)}. "
                                   "Must be of the form: name=value")
    return words


def parse_kv(words: list[str], cmd: str) -> list[tuple[str, str | None]]:
    if not words:
        raise InvalidParameter(f"{cmd} requires at least one argument")
    out: list[tuple[str, str | None]] = []
    if cmd == "ARG":
        for w in words:
            name, eq, value = w.partition("=")
            if eq and not name:
                raise InvalidParameter("ARG names can not be blank")
            out.append((name, value if eq else None))
        return out
    if "=" not in words[0]:
        if len(words) < 2:
            raise InvalidParameter(f"{cmd} must have two arguments")
        return [(words[0], " ".join(words[1:]))]
    for w in words:
        name, eq, value = w.partition("=")
        if not eq:
            raise InvalidParameter(f"Syntax error - can't find = in {go_quote(w)}. "
                                   "Must be of the form: name=value")
        if not name:
            raise InvalidParameter(f"{cmd} names can not be blank")
        out.append((name, value))
    return out


def suggest(value: str, options: list[str], case_sensitive: bool) -> str:
    """Docker's " (did you mean x?)" hint: the closest option within edit distance 2."""
    val = value if case_sensitive else value.lower()
    match, best = "", 3
    for opt in options:
        o = opt if case_sensitive else opt.lower()
        if o == val:
            return ""
        d = _distance(val, o)
        if d < best:
            match, best = o, d
    if not match:
        return ""
    if not case_sensitive:
        if value == value.lower():
            match = match.lower()
        elif value == value.upper():
            match = match.upper()
    return f" (did you mean {match}?)"


def _distance(a: str, b: str) -> int:
    if abs(len(a) - len(b)) > 2:
        return 3  # beyond any suggestion; saves the quadratic loop on long hostile words
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


# --- raw word splitting (before any substitution) --------------------------------------

def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes in the words (Docker's
    parseWords, used for ENV/LABEL/ARG before substitution removes them)."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    blank_ok = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch in GO_SPACE:
                i += 1
                continue
            in_word = True
        if not quote:
            if ch in GO_SPACE:
                if blank_ok or word:
                    words.append("".join(word))
                word = []
                blank_ok = False
                in_word = False
                i += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
            elif ch == escape:
                if i + 1 == n:
                    break  # an escape at the very end is dropped
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        # inside quotes: the escape char escapes (kept with its char), except in '...'
        if ch == quote:
            quote = ""
        elif ch == escape and quote != "'":
            if i + 1 == n:
                quote = ""
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def extract_flags(line: str, escape: str = "\\") -> tuple[str, list[str]]:
    """Leading `--flag[=value]` words of an instruction's arguments and the text after them
    (Docker's extractBuilderFlags: quotes and escapes are removed from flag words, `--` ends
    the flags)."""
    flags: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    blank_ok = False
    i = 0
    n = len(line)
    while i <= n:
        ch = line[i] if i < n else ""
        if not in_word:
            if i == n:
                break
            if ch in GO_SPACE:
                i += 1
                continue
            if ch != "-" or i + 1 == n or line[i + 1] != "-":
                return line[i:], flags
            in_word = True
        if i == n:
            w = "".join(word)
            if w != "--" and (blank_ok or w):
                flags.append(w)
            break
        if not quote:
            if ch in GO_SPACE:
                w = "".join(word)
                in_word = False
                if w == "--":
                    return line[i:], flags
                if blank_ok or w:
                    flags.append(w)
                word = []
                blank_ok = False
                i += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
                i += 1
                continue
        elif ch == quote:
            quote = ""
            i += 1
            continue
        if ch == escape:
            if i + 1 == n:
                quote = ""
                i += 1
                continue
            i += 1
            ch = line[i]
        word.append(ch)
        i += 1
    return "", flags
