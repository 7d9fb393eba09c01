"""Values and functions for sampan.cli.template: Go's printing of JSON-decoded values, Go's
template builtins and docker's extra functions (json, join, split, upper, lower, title, pad,
truncate)."""

from __future__ import annotations

import json


class TemplateError(Exception):
    pass


class _Missing:
    """A missing map key: prints `<no value>` as Go does for a nil interface."""

    def __repr__(self) -> str:
        return "<no value>"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


def go_str(v) -> str:
    """fmt.Sprint of a JSON-decoded value, as Go templates print it."""
    if v is MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v).replace("e+0", "e+0").replace("inf", "+Inf") if v == v else "NaN"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    s = getattr(v, "__str__", None)
    return str(v) if s else repr(v)


def to_json(v) -> str:
    """json.Marshal: compact, and `<`, `>`, `&` escaped as Go does by default."""
    if v is MISSING:
        v = None
    elif hasattr(v, "to_dict"):
        v = v.to_dict()
    s = json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _json_default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if o is MISSING:
        return None
    raise TypeError(f"cannot encode {type(o).__name__}")


def truth(v) -> bool:
    if v is MISSING or v is None:
        return False
    if hasattr(v, "to_dict"):
        return True
    return bool(v)


def _index(item, *keys):
    for k in keys:
        if isinstance(item, dict):
            item = item.get(k, MISSING) if isinstance(k, str) else MISSING
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(k, int) or isinstance(k, bool):
                raise TemplateError(f"cannot index slice/array with type {type(k).__name__}")
            if not 0 <= k < len(item):
                raise TemplateError(f"error calling index: index out of range: {k}")
            item = item[k]
        elif item is None or item is MISSING:
            raise TemplateError("error calling index: index of untyped nil")
        else:
            raise TemplateError(f"can't index item of type {type(item).__name__}")
    return item


def _slice(item, *idx):
    if not isinstance(item, (list, tuple, str)):
        raise TemplateError(f"can't slice item of type {type(item).__name__}")
    if len(idx) > 2:
        raise TemplateError("too many slice indexes")
    a = idx[0] if idx else 0
    b = idx[1] if len(idx) > 1 else len(item)
    if not (0 <= a <= b <= len(item)):
        raise TemplateError(f"error calling slice: index out of range: {b}")
    return item[a:b]


def _len(v):
    if v is None or v is MISSING:
        raise TemplateError("error calling len: len of nil pointer")
    try:
        return len(v)
    except TypeError:
        raise TemplateError(f"error calling len: len of type {type(v).__name__}") from None


def _sprint(*args) -> str:
    # fmt.Sprint adds spaces between operands when neither side is a string
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(a))
    return "".join(out)


def _sprintf(fmt: str, *args) -> str:
    out = []
    i, ai, n = 0, 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < n and fmt[j] in "+-# 0123456789.":
            j += 1
        if j >= n:
            out.append("%!(NOVERB)")
            break
        verb, flags = fmt[j], fmt[i + 1:j]
        i = j + 1
        if verb == "%":
            out.append("%")
            continue
        if ai >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[ai]
        ai += 1
        if verb in "vs":
            s = go_str(a)
        elif verb == "q":
            s = json.dumps(go_str(a), ensure_ascii=False)
        elif verb == "d" and isinstance(a, (int, float)) and not isinstance(a, bool):
            s = str(int(a))
        elif verb == "t":
            s = go_str(a)
        elif verb in "xX" and isinstance(a, int):
            s = format(a, verb)
        elif verb in "xX" and isinstance(a, str):
            s = a.encode().hex() if verb == "x" else a.encode().hex().upper()
        elif verb in "feEgG" and isinstance(a, (int, float)):
            s = ("%" + flags + verb) % a
            flags = ""
        else:
            s = f"%!{verb}({type(a).__name__}={go_str(a)})"
        if flags:
            spec = flags.lstrip("+- #")
            zero = spec.startswith("0")
            digits = spec.split(".")[0].lstrip("0")
            w = int(digits) if digits.isdigit() else 0
            s = s.ljust(w) if "-" in flags else s.rjust(w, "0" if zero else " ")
        out.append(s)
    return "".join(out)


def _cmp(name):
    def f(a, *bs):
        if name == "eq":
            if not bs:
                raise TemplateError("missing argument for comparison")
            return any(_eqv(a, b) for b in bs)
        if len(bs) != 1:
            raise TemplateError(f"wrong number of args for {name}: want 2 got {len(bs) + 1}")
        b = bs[0]
        if name == "ne":
            return not _eqv(a, b)
        try:
            return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[name]
        except TypeError:
            raise TemplateError(f"error calling {name}: incompatible types for comparison") from None
    return f


def _eqv(a, b) -> bool:
    if a is MISSING:
        a = None
    if b is MISSING:
        b = None
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return a == b


def _and(*args):
    for a in args:
        if not truth(a):
            return a
    return args[-1]


def _or(*args):
    for a in args:
        if truth(a):
            return a
    return args[-1]


def _title(s) -> str:
    s = go_str(s)
    out, prev = [], " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_") else ch)
        prev = ch
    return "".join(out)


def _join(v, sep) -> str:
    if isinstance(v, str):
        return v
    if v is None or v is MISSING:
        return ""
    if not isinstance(v, (list, tuple)):
        raise TemplateError(f"error calling join: wrong type for value; expected []string; got {type(v).__name__}")
    return go_str(sep).join(go_str(x) for x in v)


def _pad(s, before, after):
    return " " * int(before) + go_str(s) + " " * int(after)


def _truncate(s, n):
    s = go_str(s)
    n = int(n)
    return s[:n] if len(s) > n else s


def _urlquery(*args):
    from .client import quote
    return quote(_sprint(*args)).replace("%20", "+")


def _html(*args):
    s = _sprint(*args)
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


FUNCS = {
    "json": to_json,
    "join": _join,
    "split": lambda s, sep: go_str(s).split(go_str(sep)),
    "upper": lambda s: go_str(s).upper(),
    "lower": lambda s: go_str(s).lower(),
    "title": _title,
    "pad": _pad,
    "truncate": _truncate,
    "print": _sprint,
    "printf": lambda f, *a: _sprintf(go_str(f), *a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "len": _len,
    "index": _index,
    "slice": _slice,
    "not": lambda v: not truth(v),
    "and": _and,
    "or": _or,
    "eq": _cmp("eq"), "ne": _cmp("ne"), "lt": _cmp("lt"), "le": _cmp("le"),
    "gt": _cmp("gt"), "ge": _cmp("ge"),
    "html": _html,
    "js": lambda *a: json.dumps(_sprint(*a))[1:-1],
    "urlquery": _urlquery,
}
