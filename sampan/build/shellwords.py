"""Docker's shell-word lexer: variable substitution, quotes and escapes in Dockerfile words.

Behaves like BuildKit's `frontend/dockerfile/shell` lexer (used by Docker's classic builder
too), which is *not* a POSIX shell: only `$x`, `${x}` and the `${x:-d}` family of modifiers,
single and double quotes and the escape character are understood; there is no command
substitution, globbing or arithmetic. Unknown variables expand to "".

`expand` is Docker's ProcessWord (one string out, quotes removed, inner whitespace kept);
`expand_words` is ProcessWords (split into words on unquoted whitespace *after* substitution,
so `EXPOSE $PORTS` with PORTS="80 443" gives two words, while `"$PORTS"` stays one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..errors import InvalidParameter

# Go's unicode.IsSpace: the Latin-1 spaces plus the White_Space property. Python's isspace()
# also counts \x1c-\x1f, which Go does not, so the set is spelled out.
GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
# Nested ${a:-${b:-...}} recurses; hostile input must get a clean error, not RecursionError.
_MAX_NESTING = 64
# A word can't grow past this by substitution (`ENV x=$x$x` doubling, huge build args):
# Linux caps one environment string at 128 KiB anyway, so nothing real comes close.
MAX_WORD = 1 << 20
# Pattern matching (${x#p}, ${x/p/r}) costs len(value) * len(pattern) steps at most.
_MAX_GLOB_WORK = 20_000_000
# Go prints string(rune(-1)) (EOF) as the replacement character in "unsupported modifier".
_EOF_CHAR = "\ufffd"


def is_space(ch: str) -> bool:
    """Go's unicode.IsSpace for one character."""
    return ch in GO_SPACE


def go_quote(s: str) -> str:
    """Go's %q of a string (strconv.Quote), for error messages that quote the input."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


class LexError(InvalidParameter):
    """A word Docker's lexer refuses (unterminated quote, bad ${...})."""


class _Words:
    """Accumulates the words of ProcessWords: whitespace coming from the source or from a
    variable's value splits, quoted text never does (Docker's wordsStruct)."""

    __slots__ = ("buf", "size", "words", "in_word")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.size = 0
        self.words: list[str] = []
        self.in_word = False

    def _flush(self) -> None:
        self.words.append("".join(self.buf))
        self.buf = []
        self.size = 0
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACE:
            if self.in_word and self.size:
                self._flush()
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)
        self.size += 1
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.buf.append(s)
        self.size += len(s)
        self.in_word = True

    def get(self) -> list[str]:
        # An empty quoted word ("") adds nothing: Docker drops it too.
        if self.size:
            self._flush()
        return self.words


class Lexer:
    """One pass over one word. The switches are those of BuildKit's Lex:

    raw_quotes   keep the quote characters in the result (used to find heredoc markers)
    raw_escapes  keep the escape characters in the result
    skip_quotes  quotes are ordinary characters (heredoc bodies are expanded this way)
    skip_unset   leave `$x` / `${x...}` untouched when x is not set
    """

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_quotes: bool = False, skip_unset: bool = False) -> None:
        if escape not in ("\\", "`"):
            raise InvalidParameter(f"invalid escape token '{escape}' does not match ` or \\")
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_quotes = skip_quotes
        self.skip_unset = skip_unset

    def process(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        """(ProcessWord's result, ProcessWords' words) for `word`."""
        scan = _Scan(self, word, env)
        try:
            return scan.stop_on(None, self.raw_escapes)
        except LexError as err:
            raise LexError(f"failed to process {go_quote(word)}: {err}") from None


class _Scan:
    __slots__ = ("lex", "src", "pos", "env", "raw_escapes", "depth", "size")

    def __init__(self, lex: Lexer, src: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.src = src
        self.pos = 0
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.depth = 0
        self.size = 0

    def peek(self) -> str | None:
        return self.src[self.pos] if self.pos < len(self.src) else None

    def next(self) -> str | None:
        if self.pos < len(self.src):
            self.pos += 1
            return self.src[self.pos - 1]
        return None

    def stop_on(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Read up to `stop` (consumed) or the end; stop=None means the end of the word."""
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise LexError("substitutions nested too deeply")
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            return self._stop_on(stop)
        finally:
            self.raw_escapes = saved
            self.depth -= 1

    def _stop_on(self, stop: str | None) -> tuple[str, list[str]]:
        lex = self.lex
        result: list[str] = []
        words = _Words()
        while (ch := self.peek()) is not None:
            if stop is not None and ch == stop:
                self.pos += 1
                return "".join(result), words.get()
            if ch == "$":
                tmp = self.dollar()
                self.size += len(tmp)
                if self.size > MAX_WORD:
                    raise LexError(f"substitution result longer than {MAX_WORD} characters")
                result.append(tmp)
                words.add_string(tmp)
            elif ch == "<":
                tmp = self.possible_heredoc()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif ch in "'\"" and not lex.skip_quotes:
                tmp = self.single_quote() if ch == "'" else self.double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                self.pos += 1
                if ch == lex.escape:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch is None:  # a lone escape at the end is dropped
                        break
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop is not None:
            raise LexError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def single_quote(self) -> str:
        # Everything up to the next ' is literal; a ' cannot be escaped inside.
        raw = self.lex.raw_quotes
        out = ["'"] if raw else []
        self.pos += 1
        while True:
            ch = self.next()
            if ch is None:
                raise LexError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if raw:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        # Literal except $ substitutions; the escape char only escapes " $ and itself.
        raw = self.lex.raw_quotes
        esc = self.lex.escape
        out = ['"'] if raw else []
        self.pos += 1
        while True:
            ch = self.peek()
            if ch is None:
                raise LexError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self.pos += 1
                if raw:
                    out.append(ch)
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.pos += 1
            if ch == esc:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if nxt is None:
                    continue
                if nxt in ('"', "$", esc):
                    ch = nxt
                    self.pos += 1
            out.append(ch)

    def possible_heredoc(self) -> str:
        # "<<" and the blanks after it stay glued to the next word, so "<< EOF" reads as
        # one heredoc marker (BuildKit 0.21+ allows the blank).
        self.pos += 1
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.peek() in ("\t", "\r", " "):
            self.pos += 1
        return "<<" + self.src[start:self.pos]

    def name(self) -> str:
        # A run of letters/digits/_ ; a leading digit takes only digits; or one special param.
        start = self.pos
        ch = self.peek()
        if ch is None:
            return ""
        if ch.isdecimal():
            while (c := self.peek()) is not None and c.isdecimal():
                self.pos += 1
            return self.src[start:self.pos]
        if ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        while (c := self.peek()) is not None and (c.isalpha() or c.isdecimal() or c == "_"):
            self.pos += 1
        return self.src[start:self.pos]

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def dollar(self) -> str:
        self.pos += 1  # the $
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            if not found and self.lex.skip_unset:
                return "$" + name
            return value
        self.pos += 1  # the {
        ch = self.peek()
        if ch is None:
            raise LexError("syntax error: missing '}'")
        if ch in "{}:":
            raise LexError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        chs = ch if ch is not None else _EOF_CHAR
        if ch == "}":
            value, found = self.lookup(name)
            if not found and self.lex.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self._replace(name)
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch if ch is not None else _EOF_CHAR
        elif ch not in ("+", "-", "?", "#", "%"):
            raise LexError(f"unsupported modifier ({chs}) in substitution")
        pattern_op = ch in ("#", "%")
        if null_is_unset and pattern_op:
            raise LexError(f"unsupported modifier ({chs}) in substitution")
        try:
            word, _ = self.stop_on("}", pattern_op)
        except LexError:
            if self.peek() is None:
                raise LexError("syntax error: missing '}'") from None
            raise
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${" + name + chs + word + "}"
        empty = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not found:
                raise LexError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise LexError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("#", "%"):
            # #/% remove the shortest matching prefix/suffix, ##/%% the longest.
            greedy = word[:1] == ch
            if greedy:
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise LexError(f"unsupported modifier ({chs}) in substitution")

    def _replace(self, name: str) -> str:
        # ${x/pattern/replacement} (first match) and ${x//pattern/replacement} (all).
        replace_all = self.peek() == "/"
        if replace_all:
            self.pos += 1
        try:
            pattern, _ = self.stop_on("/", True)
        except LexError:
            if self.peek() is None:
                raise LexError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.stop_on("}", True)
        except LexError:
            if self.peek() is None:
                raise LexError("syntax error: missing '}'") from None
            raise
        value, found = self.lookup(name)
        if self.lex.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        tokens = _glob_tokens(pattern)
        _check_glob_work(tokens, value)
        if not replace_all:
            hit = _glob_find(tokens, value, 0)
            if hit is None:
                return value
            return value[:hit[0]] + _go_expand(replacement, value[hit[0]:hit[1]]) + value[hit[1]:]
        return _glob_replace_all(tokens, value, replacement)


_DIGITS = re.compile("[0-9]+")
_STAR, _ANY = object(), object()


def _check_glob_work(tokens: list[object], value: str) -> None:
    if len(tokens) * len(value) > _MAX_GLOB_WORK:
        raise LexError("pattern substitution too large")


def _glob_tokens(pattern: str) -> list[object]:
    """A ${x#pattern} shell pattern: `*` any run, `?` any one char (neither crosses a newline,
    as with Go's regexp `.`), `\\*` `\\?` `\\\\` literals; `\\}` and `\\/` drop the backslash.
    Matched by a small NFA instead of a backtracking regex, so a hostile pattern such as
    `*a*a*a*a*b` cannot make the daemon spin (Go's RE2 is linear; Python's re is not)."""
    out: list[object] = []
    i, n = 0, len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(_STAR)
        elif tok == "?":
            out.append(_ANY)
        elif tok == "\\":
            if i < n and pattern[i] in "}/":
                continue
            tok = pattern[i] if i < n else ""
            i += 1
            if tok not in ("*", "?", "\\"):
                raise LexError(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{tok}'")
            out.append(tok)
        else:
            out.append(tok)
    return out


def _closure(tokens: list[object], states: set[int]) -> set[int]:
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(tokens) and tokens[i] is _STAR and i + 1 not in states:
            states.add(i + 1)
            todo.append(i + 1)
    return states


def _glob_ends(tokens: list[object], value: str, start: int) -> list[int]:
    """Every end e such that the pattern matches value[start:e], ascending."""
    m = len(tokens)
    cur = _closure(tokens, {0})
    ends = [start] if m in cur else []
    for k in range(start, len(value)):
        ch = value[k]
        nxt: set[int] = set()
        for i in cur:
            if i == m:
                continue
            t = tokens[i]
            if t is _STAR:
                if ch != "\n":
                    nxt.add(i)
            elif (t is _ANY and ch != "\n") or t == ch:
                nxt.add(i + 1)
        if not nxt:
            break
        cur = _closure(tokens, nxt)
        if m in cur:
            ends.append(k + 1)
    return ends


def _glob_starts(tokens: list[object], value: str) -> list[bool]:
    """can[k]: the pattern matches some value[k:e] (one backward pass, O(len * tokens))."""
    m, n = len(tokens), len(value)
    col = [False] * m + [True]  # at the end of the value only trailing stars can still match
    for i in range(m - 1, -1, -1):
        col[i] = tokens[i] is _STAR and col[i + 1]
    can = [False] * (n + 1)
    can[n] = col[0]
    for k in range(n - 1, -1, -1):
        ch = value[k]
        new = [False] * m + [True]
        for i in range(m - 1, -1, -1):
            t = tokens[i]
            if t is _STAR:
                new[i] = new[i + 1] or (ch != "\n" and col[i])
            elif (t is _ANY and ch != "\n") or t == ch:
                new[i] = col[i + 1]
        col = new
        can[k] = col[0]
    return can


def _glob_find(tokens: list[object], value: str, pos: int,
               can: list[bool] | None = None) -> tuple[int, int] | None:
    """Leftmost match at or after pos, longest from there (Go's leftmost-first, greedy)."""
    can = can if can is not None else _glob_starts(tokens, value)
    for s in range(pos, len(value) + 1):
        if can[s]:
            return s, _glob_ends(tokens, value, s)[-1]
    return None


def _glob_replace_all(tokens: list[object], value: str, replacement: str) -> str:
    # Go's ReplaceAllString: an empty match right after a match is not replaced, and the
    # search always advances by at least one character.
    can = _glob_starts(tokens, value)
    out: list[str] = []
    last = search = 0
    while search <= len(value):
        hit = _glob_find(tokens, value, search, can)
        if hit is None:
            break
        s, e = hit
        out.append(value[last:s])
        if e > last or s == 0:
            out.append(_go_expand(replacement, value[s:e]))
        last = e
        search = search + 1 if search + 1 > e else e
    out.append(value[last:])
    return "".join(out)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    tokens = _glob_tokens(pattern)
    _check_glob_work(tokens, value)
    ends = _glob_ends(tokens, value, 0)
    if not ends:
        return value
    return value[ends[-1] if greedy else ends[0]:]


def _reverse_pattern(pattern: str) -> str:
    # Reverse, but keep each "\x" escape pair in order ("a\*c" -> "c\*a").
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # A regex can't find the shortest rightmost match, so search the reversed string.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_expand(template: str, match: str) -> str:
    """Go's Regexp.Expand: $$ is "$", $0/${0} the match, other $name/${name} refer to groups
    the pattern never has (it escapes parentheses), so they are empty."""
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        brace = i < n and template[i] == "{"
        k = i + 1 if brace else i
        start = k
        while k < n and (template[k].isalpha() or template[k].isdecimal() or template[k] == "_"):
            k += 1
        name = template[start:k]
        if not name or (brace and (k >= n or template[k] != "}")):
            out.append("$")  # malformed: the $ is literal
            continue
        i = k + 1 if brace else k
        if _DIGITS.fullmatch(name) and int(name) == 0:
            out.append(match)
    out.append(template[i:])
    return "".join(out)


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Docker's ProcessWord: substitute variables, remove quotes and escapes."""
    return Lexer(escape).process(word, env)[0]


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Docker's ProcessWords: substitute, then split on unquoted whitespace."""
    return Lexer(escape).process(text, env)[1]


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """Substitution inside an expanding heredoc body (`COPY <<EOF`): quotes are ordinary text,
    `\\` still escapes (BuildKit uses a `\\` lexer with SkipProcessQuotes for this)."""
    return Lexer("\\", skip_quotes=True).process(content, env)[0]
