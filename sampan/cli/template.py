"""Go text/template, enough of it for docker's `--format` and `inspect -f`.

Supported: text and `{{pipeline}}` actions with `{{-`/`-}}` trimming and `{{/* comments */}}`;
fields and chains (`.A.B`, `$.A`, `$v.A`, `(pipe).A`), method calls with arguments on the
formatting contexts (`.Label "k"`); literals (strings, raw strings, numbers, true/false/nil);
pipes `|`; variables (`$x := ...`, `$x = ...`, `range $i, $v := ...`); `if`/`else if`/`else`,
`range` (with `else`, `break`, `continue`), `with`, `end`; Go's builtins (and, or, not, len,
index, slice, print, printf, println, eq, ne, lt, le, gt, ge, html, js, urlquery) and docker's
(json, join, split, upper, lower, title, pad, truncate).

Values follow Go's printing of decoded JSON (`map[k:v]`, `[a b]`, `true`, `<no value>` for a
missing key). Non-dict objects expose fields as attributes (see sampan.cli.format contexts).
"""

from __future__ import annotations

from .gofuncs import FUNCS, MISSING, TemplateError, go_str, to_json, truth  # noqa: F401 (re-exported)

__all__ = ["Template", "TemplateError", "render", "go_str", "to_json", "MISSING"]

# ---------------------------------------------------------------------------------------------
# Lexing and parsing
# ---------------------------------------------------------------------------------------------

class _Tok:
    __slots__ = ("kind", "val")

    def __init__(self, kind: str, val) -> None:
        self.kind, self.val = kind, val

    def __repr__(self) -> str:
        return f"{self.kind}:{self.val!r}"


_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
        "f": "\f", "v": "\v", "0": "\0"}


def _lex_action(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
        elif c == '"':
            j, out = i + 1, []
            while True:
                if j >= n:
                    raise TemplateError("unterminated quoted string")
                ch = src[j]
                if ch == '"':
                    break
                if ch == "\\" and j + 1 < n:
                    e = src[j + 1]
                    if e == "x" and j + 3 < n:
                        out.append(chr(int(src[j + 2:j + 4], 16)))
                        j += 4
                        continue
                    if e == "u" and j + 5 < n:
                        out.append(chr(int(src[j + 2:j + 6], 16)))
                        j += 6
                        continue
                    if e not in _ESC:
                        raise TemplateError(f"unknown escape sequence: \\{e}")
                    out.append(_ESC[e])
                    j += 2
                    continue
                out.append(ch)
                j += 1
            toks.append(_Tok("str", "".join(out)))
            i = j + 1
        elif c == "`":
            j = src.find("`", i + 1)
            if j < 0:
                raise TemplateError("unterminated raw quoted string")
            toks.append(_Tok("str", src[i + 1:j]))
            i = j + 1
        elif c == "(":
            toks.append(_Tok("(", c))
            i += 1
        elif c == ")":
            toks.append(_Tok(")", c))
            i += 1
            # `(pipe).Field`: a field chain glued to the closing paren
            j = i
            while j < n and src[j] == "." and j + 1 < n and (src[j + 1].isalnum() or src[j + 1] == "_"):
                k = j + 1
                while k < n and (src[k].isalnum() or src[k] == "_"):
                    k += 1
                toks.append(_Tok("chain", src[j + 1:k]))
                j = k
            i = j
        elif c == "|":
            toks.append(_Tok("|", c))
            i += 1
        elif c == ",":
            toks.append(_Tok(",", c))
            i += 1
        elif c == ":" and src.startswith(":=", i):
            toks.append(_Tok(":=", ":="))
            i += 2
        elif c == "=":
            toks.append(_Tok("=", "="))
            i += 1
        elif c == "." or c == "$":
            j = i + 1
            if c == "$":
                while j < n and (src[j].isalnum() or src[j] == "_"):
                    j += 1
                var = src[i:j]
            else:
                var = None
                j = i
            fields = []
            while j < n and src[j] == ".":
                k = j + 1
                while k < n and (src[k].isalnum() or src[k] == "_"):
                    k += 1
                if k == j + 1:
                    if var is None and not fields:  # bare `.`
                        j = k
                        break
                    raise TemplateError(f"bad character {src[j:j + 2]!r}")
                fields.append(src[j + 1:k])
                j = k
            toks.append(_Tok("var", (var, fields)) if var else _Tok("field", fields))
            i = j
        elif c.isdigit() or (c in "+-" and i + 1 < n and src[i + 1].isdigit()):
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "._+-") and not (
                    src[j] in "+-" and src[j - 1] not in "eEpP"):
                j += 1
            text = src[i:j]
            try:
                val = int(text, 0)
            except ValueError:
                try:
                    val = float(text)
                except ValueError:
                    raise TemplateError(f"bad number syntax: {text!r}") from None
            toks.append(_Tok("num", val))
            i = j
        elif c == "'":
            j = src.find("'", i + 1)
            if j < 0:
                raise TemplateError("unterminated character constant")
            body = src[i + 1:j]
            ch = _ESC.get(body[1], body[1]) if body.startswith("\\") and len(body) > 1 else body
            toks.append(_Tok("num", ord(ch[0]) if ch else 0))
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            word = src[i:j]
            if word in ("true", "false"):
                toks.append(_Tok("lit", word == "true"))
            elif word == "nil":
                toks.append(_Tok("lit", None))
            else:
                toks.append(_Tok("ident", word))
            i = j
        else:
            raise TemplateError(f"unexpected {c!r} in command")
    return toks


def _split(src: str) -> list[tuple[str, str]]:
    """Split into ("text", s) and ("action", s), applying trim markers and dropping comments."""
    parts: list[tuple[str, str]] = []
    i = 0
    trim_next = False
    while True:
        j = src.find("{{", i)
        text = src[i:] if j < 0 else src[i:j]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if j < 0:
            if text:
                parts.append(("text", text))
            return parts
        inner_start = j + 2
        if src.startswith("- ", inner_start) or src.startswith("-\t", inner_start) or \
                src.startswith("-\n", inner_start) or src.startswith("-\r", inner_start):
            text = text.rstrip(" \t\r\n")
            inner_start += 1
        if text:
            parts.append(("text", text))
        # find the closing delimiter, skipping over quoted strings that may contain "}}"
        k = inner_start
        q = None
        while k < len(src):
            ch = src[k]
            if q:
                if ch == "\\" and q == '"':
                    k += 2
                    continue
                if ch == q:
                    q = None
            elif ch in "\"`":
                q = ch
            elif src.startswith("}}", k):
                break
            k += 1
        else:
            raise TemplateError("unclosed action")
        inner = src[inner_start:k]
        trim_next = False
        if inner.endswith((" -", "\t-", "\n-", "\r-")):
            inner = inner[:-1]
            trim_next = True
        stripped = inner.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError("unclosed comment")
        else:
            parts.append(("action", inner))
        i = k + 2


class _P:
    """Recursive-descent parser over the token list of one action."""

    def __init__(self, toks: list[_Tok]) -> None:
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def next(self):
        tok = self.peek()
        self.i += 1
        return tok

    def pipeline(self, allow_decl: bool = True, in_paren: bool = False):
        decl: list[str] = []
        assign = False
        if allow_decl:
            # `$x :=` / `$x =` / `$i, $e :=`
            save = self.i
            names = []
            while True:
                tok = self.peek()
                if tok and tok.kind == "var" and not tok.val[1]:
                    names.append(tok.val[0])
                    self.i += 1
                    nxt = self.peek()
                    if nxt and nxt.kind == ",":
                        self.i += 1
                        continue
                    if nxt and nxt.kind in (":=", "="):
                        assign = nxt.kind == "="
                        self.i += 1
                        decl = names
                    break
                break
            if not decl:
                self.i = save
        cmds = []
        while True:
            cmd = []
            while True:
                tok = self.peek()
                if tok is None or tok.kind in ("|", ")"):
                    break
                cmd.append(self.operand())
            if not cmd:
                raise TemplateError("missing value for command")
            cmds.append(cmd)
            tok = self.peek()
            if tok is None:
                break
            if tok.kind == ")":
                if not in_paren:
                    raise TemplateError("unexpected right paren")
                break
            self.i += 1  # '|'
        return ("pipe", decl, assign, cmds)

    def operand(self):
        tok = self.next()
        k = tok.kind
        if k in ("str", "num", "lit"):
            return ("lit", tok.val)
        if k == "field":
            return ("field", tok.val)
        if k == "var":
            return ("var", tok.val[0], tok.val[1])
        if k == "ident":
            return ("fn", tok.val)
        if k == "(":
            p = self.pipeline(allow_decl=False, in_paren=True)
            close = self.next()
            if close is None or close.kind != ")":
                raise TemplateError("unclosed left paren")
            chain = []
            while self.peek() is not None and self.peek().kind == "chain":
                chain.append(self.next().val)
            return ("paren", p, chain)
        raise TemplateError(f"unexpected {tok.val!r} in operand")


_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block"}


def parse(src: str):
    """Parse into a node list; raises TemplateError."""
    items = _split(src)
    pos = 0

    def parse_list(stop: tuple[str, ...]):
        nonlocal pos
        nodes = []
        while pos < len(items):
            kind, s = items[pos]
            pos += 1
            if kind == "text":
                nodes.append(("text", s))
                continue
            toks = _lex_action(s)
            if not toks:
                raise TemplateError("missing value for command")
            head = toks[0]
            word = head.val if head.kind == "ident" and head.val in _KEYWORDS else None
            if word in ("end", "else"):
                if word not in stop:
                    raise TemplateError(f"unexpected {{{{{word}}}}}")
                return nodes, word, toks[1:]
            if word in ("if", "with", "range"):
                nodes.append(parse_control(word, toks[1:]))
            elif word in ("break", "continue"):
                nodes.append((word,))
            elif word in ("define", "template", "block"):
                raise TemplateError(f"{{{{{word}}}}} is not supported")
            else:
                p = _P(toks)
                pipe = p.pipeline()
                if p.peek() is not None:
                    raise TemplateError(f"unexpected {p.peek().val!r} in command")
                nodes.append(("action", pipe))
        if stop:
            raise TemplateError("unexpected EOF")
        return nodes, None, None

    def parse_control(word: str, toks: list[_Tok]):
        p = _P(toks)
        pipe = p.pipeline()
        if p.peek() is not None:
            raise TemplateError(f"unexpected {p.peek().val!r} in {word}")
        body, ended, rest = parse_list(("end", "else"))
        else_body = None
        if ended == "else":
            if rest and rest[0].kind == "ident" and rest[0].val in ("if", "with"):
                # `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing our {{end}}
                else_body = [parse_control(rest[0].val, rest[1:])]
            else:
                if rest:
                    raise TemplateError("unexpected tokens after else")
                else_body, ended, _ = parse_list(("end",))
        return (word, pipe, body, else_body)

    nodes, _, _ = parse_list(())
    return nodes


# ---------------------------------------------------------------------------------------------
# Execution
# ---------------------------------------------------------------------------------------------

class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _field(v, name: str, args: list, chain_text: str):
    if isinstance(v, dict):
        if args:
            raise TemplateError(f"{name} is not a method but has arguments")
        return v.get(name, MISSING)
    if v is None or v is MISSING:
        raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
    if isinstance(v, (str, int, float, bool, list, tuple)) or name.startswith("_"):
        raise TemplateError(f"can't evaluate field {name} in type {_gotype(v)}")
    try:
        attr = getattr(v, name)
    except AttributeError:
        raise TemplateError(f"can't evaluate field {name} in type {_gotype(v)}") from None
    if callable(attr):
        try:
            return attr(*args)
        except TypeError as e:
            raise TemplateError(f"wrong number of args for {name}: {e}") from None
    if args:
        raise TemplateError(f"{name} is not a method but has arguments")
    return attr


def _gotype(v) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}",
            tuple: "[]interface {}"}.get(type(v), type(v).__name__)


class Template:
    def __init__(self, src: str) -> None:
        self.src = src
        try:
            self.nodes = parse(src)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: template: :1: {e}") from None
        except (ValueError, IndexError) as e:
            raise TemplateError(f"template parsing error: template: :1: {e}") from None
        _check_funcs(self.nodes)

    def execute(self, data) -> str:
        out: list[str] = []
        scope = [{"$": data}]
        try:
            self._run(self.nodes, data, scope, out)
        except TemplateError as e:
            raise TemplateError(f"template: :1: executing \"\" at <{self.src[:40]}>: {e}") from None
        except (_Break, _Continue):
            raise TemplateError("break or continue outside range") from None
        return "".join(out)

    # -- interpreter ---------------------------------------------------------------------------
    def _run(self, nodes, dot, scope, out) -> None:
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                v = self._pipe(node[1], dot, scope)
                if not node[1][1]:  # declarations print nothing
                    out.append(go_str(v))
            elif kind == "if":
                _, pipe, body, els = node
                scope.append({})
                try:
                    if truth(self._pipe(pipe, dot, scope)):
                        self._run(body, dot, scope, out)
                    elif els is not None:
                        self._run(els, dot, scope, out)
                finally:
                    scope.pop()
            elif kind == "with":
                _, pipe, body, els = node
                scope.append({})
                try:
                    v = self._pipe(pipe, dot, scope)
                    if truth(v):
                        self._run(body, v, scope, out)
                    elif els is not None:
                        self._run(els, dot, scope, out)
                finally:
                    scope.pop()
            elif kind == "range":
                self._range(node, dot, scope, out)
            elif kind == "break":
                raise _Break()
            elif kind == "continue":
                raise _Continue()

    def _range(self, node, dot, scope, out) -> None:
        _, pipe, body, els = node
        decl = pipe[1]
        scope.append({})
        try:
            v = self._pipe(("pipe", [], False, pipe[3]), dot, scope)
            if isinstance(v, dict):
                items = [(k, v[k]) for k in sorted(v)]
            elif isinstance(v, (list, tuple, str)):
                items = list(enumerate(v)) if not isinstance(v, str) else []
                if isinstance(v, str):
                    raise TemplateError(f"range can't iterate over {v}")
            elif isinstance(v, int) and not isinstance(v, bool):
                items = [(i, i) for i in range(v)]
            elif v is None or v is MISSING:
                items = []
            else:
                raise TemplateError(f"range can't iterate over {go_str(v)}")
            if not items:
                if els is not None:
                    self._run(els, dot, scope, out)
                return
            for k, elem in items:
                if len(decl) == 1:
                    scope[-1][decl[0]] = elem
                elif len(decl) >= 2:
                    scope[-1][decl[0]] = k
                    scope[-1][decl[1]] = elem
                try:
                    self._run(body, elem, scope, out)
                except _Break:
                    break
                except _Continue:
                    continue
        finally:
            scope.pop()

    def _lookup_var(self, name: str, scope):
        for frame in reversed(scope):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable: {name}")

    def _pipe(self, pipe, dot, scope):
        _, decl, assign, cmds = pipe
        val = _NOFINAL
        for cmd in cmds:
            val = self._cmd(cmd, dot, scope, val)
        if decl:
            if assign:
                for frame in reversed(scope):
                    if decl[0] in frame:
                        frame[decl[0]] = val
                        break
                else:
                    raise TemplateError(f"undefined variable: {decl[0]}")
            else:
                scope[-1][decl[-1] if len(decl) == 1 else decl[0]] = val
        return val

    def _cmd(self, cmd, dot, scope, final):
        head = cmd[0]
        args = [self._arg(a, dot, scope) for a in cmd[1:]]
        if final is not _NOFINAL:
            args.append(final)
        kind = head[0]
        if kind == "fn":
            fn = FUNCS.get(head[1])
            if fn is None:
                raise TemplateError(f'function "{head[1]}" not defined')
            try:
                return fn(*args)
            except TemplateError:
                raise
            except TypeError as e:
                raise TemplateError(f"wrong number of args for {head[1]}: {e}") from None
            except (ValueError, AttributeError) as e:
                raise TemplateError(f"error calling {head[1]}: {e}") from None
        if kind in ("field", "var", "paren"):
            if kind == "field":
                base, chain = dot, head[1]
            elif kind == "var":
                base, chain = self._lookup_var(head[1], scope), head[2]
            else:
                base, chain = self._pipe(head[1], dot, scope), head[2]
            if not chain:
                if args:
                    raise TemplateError("can't give argument to non-function")
                return base
            v = base
            for i, name in enumerate(chain):
                last = i == len(chain) - 1
                v = _field(v, name, args if last else [], ".".join(chain))
            return v
        if args:
            raise TemplateError(f"can't give argument to non-function {go_str(head[1])}")
        return head[1]

    def _arg(self, a, dot, scope):
        if a[0] == "fn":  # a bare function name as an argument is a call without args
            return self._cmd([a], dot, scope, _NOFINAL)
        return self._cmd([a], dot, scope, _NOFINAL)


_NOFINAL = object()


def _check_funcs(nodes) -> None:
    """Unknown functions are a parse-time error in Go, reported before any output."""
    def walk_pipe(p):
        for cmd in p[3]:
            for op in cmd:
                if op[0] == "fn" and op[1] not in FUNCS:
                    raise TemplateError(f'template parsing error: template: :1: function "{op[1]}" not defined')
                if op[0] == "paren":
                    walk_pipe(op[1])

    for n in nodes:
        if n[0] == "action":
            walk_pipe(n[1])
        elif n[0] in ("if", "with", "range"):
            walk_pipe(n[1])
            _check_funcs(n[2])
            if n[3]:
                _check_funcs(n[3])


def render(src: str, data) -> str:
    return Template(src).execute(data)
