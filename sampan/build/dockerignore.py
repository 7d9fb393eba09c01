""".dockerignore: Docker's pattern rules, and Go's `path/filepath.Match` for COPY wildcards.

The rules are moby's `patternmatcher` (what both the docker CLI and the daemon use):

- the file: a UTF-8 BOM dropped, lines starting with `#` are comments, whitespace trimmed,
  each pattern cleaned like Go's `filepath.Clean` and a leading `/` dropped, `!` marks an
  exception;
- a path is ignored when the LAST pattern that matches it (or matches one of its parent
  directories) is not an exception; `**` matches any number of directories, `*` and `?` never
  cross a `/`;
- walking a tree (the docker CLI's context walk): an ignored directory is skipped whole unless
  some exception pattern starts with that directory's path, in which case its children are
  considered one by one and the directory itself is not sent.

Matching is per path component and cached per directory, so a walk costs about one regex per
pattern per entry; `exact`, `prefix` and `suffix` patterns need no regex at all.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..errors import InvalidParameter

_BOM = "\ufeff"
_REGEX_ESCAPE = set(".+()|{}$")


class BadPattern(InvalidParameter):
    """Go's filepath.ErrBadPattern."""

    def __init__(self, pattern: str) -> None:
        super().__init__(f"syntax error in pattern: {pattern!r}")


# -- Go's path/filepath (with '/' as the separator) ----------------------------------------------
def go_clean(path: str) -> str:
    """Go's filepath.Clean: lexical, `..` pops a real element, "" -> ".", "/.." -> "/"."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(p)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern and pattern[0] == "*":
        pattern = pattern[1:]
        star = True
    inrange = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif c == "[":
            inrange = True
        elif c == "]":
            inrange = False
        elif c == "*" and not inrange:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_esc(chunk: str, whole: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern(whole)
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern(whole)
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise BadPattern(whole)
    return r, rest


def _match_chunk(chunk: str, s: str, whole: str) -> tuple[str, bool]:
    """Go's matchChunk: (rest of s, ok); keeps checking the chunk's syntax after a mismatch."""
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = False
            if chunk and chunk[0] == "^":
                negated, chunk = True, chunk[1:]
            match = False
            nrange = 0
            while True:
                if chunk and chunk[0] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk, whole)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:], whole)
                if not failed and lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                if s[0] == "/":
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern(whole)
            if not failed:
                if chunk[0] != s[0]:
                    failed = True
                s = s[1:]
            chunk = chunk[1:]
    if failed:
        return "", False
    return s, True


def filepath_match(pattern: str, name: str) -> bool:
    """Go's path/filepath.Match on Linux: `*` and `?` never match '/', `[^a-z]` classes, `\\`
    escapes. A malformed pattern raises BadPattern (an InvalidParameter)."""
    whole = pattern
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # trailing * matches the rest unless it has a '/'
        t, ok = _match_chunk(chunk, name, whole)
        if ok and (not t or pattern):
            name = t
            continue
        if star:
            i, matched = 0, False
            while i < len(name) and name[i] != "/":
                t, ok = _match_chunk(chunk, name[i + 1:], whole)
                if ok:
                    if not pattern and t:
                        i += 1
                        continue
                    name, matched = t, True
                    break
                i += 1
            if matched:
                continue
        while pattern:  # a mismatch still reports a malformed rest of the pattern
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "", whole)
        return False
    return not name


def has_wildcards(path: str) -> bool:
    """What Docker's classic builder treats as a wildcard source (`*`, `?`, `[`, or `\\`)."""
    return any(c in "*?[\\" for c in path)


# -- patterns ------------------------------------------------------------------------------------
def read_patterns(text: str | bytes) -> list[str]:
    """The lines of a .dockerignore file as moby's ignorefile.ReadAll returns them."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    out: list[str] = []
    for n, line in enumerate(text.splitlines()):
        if n == 0 and line.startswith(_BOM):
            line = line[1:]
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line[0] == "!"
        if invert:
            line = line[1:].strip()
        if line:
            line = go_clean(line)
            if len(line) > 1 and line[0] == "/":
                line = line[1:]
        out.append("!" + line if invert else line)
    return out


_EXACT, _PREFIX, _SUFFIX, _REGEX = range(4)


class _Pattern:
    __slots__ = ("text", "exclusion", "kind", "regex", "_arg")

    def __init__(self, raw: str) -> None:
        p = go_clean(raw.strip())
        self.exclusion = p[0] == "!"
        if self.exclusion:
            if len(p) == 1:
                raise InvalidParameter('illegal exclusion pattern: "!"')
            p = p[1:]
        filepath_match(p, ".")  # syntax check, as moby does
        self.text = p
        self.regex: re.Pattern[str] | None = None
        self._compile()

    def _compile(self) -> None:
        """moby's Pattern.compile, producing the same regex (Python's `re` spelling)."""
        p = self.text
        reg = ["^"]
        kind = _EXACT
        i = n = 0
        while i < len(p):
            ch = p[i]
            i += 1
            if ch == "*":
                if i < len(p) and p[i] == "*":
                    i += 1
                    if i < len(p) and p[i] == "/":
                        i += 1  # "**/" is "**"
                    if i >= len(p):
                        if kind == _EXACT:
                            kind = _PREFIX
                        else:
                            reg.append(".*")
                            kind = _REGEX
                    else:
                        reg.append("(.*/)?")
                        kind = _REGEX
                    if n == 0:
                        kind = _SUFFIX
                else:
                    reg.append("[^/]*")
                    kind = _REGEX
            elif ch == "?":
                reg.append("[^/]")
                kind = _REGEX
            elif ch in _REGEX_ESCAPE:
                reg.append("\\" + ch)
            elif ch == "\\":
                if i < len(p):
                    reg.append(re.escape(p[i]))
                    i += 1
                    kind = _REGEX
                else:
                    reg.append("\\\\")
            elif ch in "[]":
                reg.append(ch)
                kind = _REGEX
            else:
                reg.append(ch)
            n += 1
        self.kind = kind
        if kind == _PREFIX:
            self._arg = p[:-2]
        elif kind == _SUFFIX:
            self._arg = p[2:]
        else:
            self._arg = p
        if kind == _REGEX:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "possible nested set": same as RE2 here
                    self.regex = re.compile("".join(reg) + r"\Z")
            except re.error:
                raise BadPattern(self.text) from None

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return path == self._arg
        if kind == _PREFIX:
            return path.startswith(self._arg)
        if kind == _SUFFIX:
            suffix = self._arg
            if path.endswith(suffix):
                return True
            return bool(suffix) and suffix[0] == "/" and path == suffix[1:]  # **/foo matches foo
        return self.regex.match(path) is not None  # type: ignore[union-attr]


class IgnoreMatcher:
    """A compiled .dockerignore. `ignored()` is moby's MatchesOrParentMatches (a path on its
    own, as the daemon judges the Dockerfile); `walk()` is the docker CLI's tree walk."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [_Pattern(p) for p in patterns if p.strip()]
        self.exclusions = any(p.exclusion for p in self.patterns)
        # dir relpath -> per pattern: does the dir itself or one of its parents match it?
        self._dirs: dict[str, tuple[bool, ...]] = {".": (False,) * len(self.patterns)}

    @classmethod
    def from_text(cls, text: str | bytes) -> "IgnoreMatcher":
        return cls(read_patterns(text))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _parents(self, d: str) -> tuple[bool, ...]:
        got = self._dirs.get(d)
        if got is not None:
            return got
        up = self._parents(_dirname(d))
        got = tuple(u or p.match(d) for u, p in zip(up, self.patterns))
        if len(self._dirs) > 65536:
            self._dirs = {".": self._dirs["."]}
        self._dirs[d] = got
        return got

    def ignored(self, relpath: str, is_dir: bool = False) -> bool:
        """Whether the path (relative to the context root) is excluded. `is_dir` is accepted
        for symmetry with walkers; Docker's rules do not depend on it."""
        del is_dir
        if not self.patterns:
            return False
        path = go_clean(relpath.lstrip("/"))
        if path in (".", ".."):
            return False  # never the whole context
        parents = self._parents(_dirname(path))
        matched = False
        for up, p in zip(parents, self.patterns):
            if p.exclusion != matched:
                continue  # cannot change the outcome
            if up or p.match(path):
                matched = not p.exclusion
        return matched

    def can_skip_dir(self, relpath: str) -> bool:
        """For an ignored directory: True when no exception can re-include something below it
        (the docker CLI's test: an exception pattern that starts with "<dir>/")."""
        if not self.exclusions:
            return True
        prefix = relpath.strip("/") + "/"
        return not any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)

    def match_with_parent(self, path: str, parent: tuple[bool, ...] | None
                          ) -> tuple[bool, tuple[bool, ...]]:
        """moby's MatchesUsingParentResults, what the docker CLI's context walk uses: each
        pattern's result for the parent directory is reused instead of re-matching the
        parents; a pattern skipped for the parent (it could not change the outcome there)
        counts as not matched. Returns (ignored, this path's results, for its children)."""
        matched = False
        info: list[bool] = []
        for i, p in enumerate(self.patterns):
            match = parent[i] if parent else False
            if not match:
                if p.exclusion != matched:
                    info.append(False)
                    continue
                match = p.match(path)
                if not match and not parent:
                    d = _dirname(path)
                    if d != ".":
                        dirs = d.split("/")
                        match = any(p.match("/".join(dirs[:j + 1])) for j in range(len(dirs)))
            info.append(match)
            if match:
                matched = not p.exclusion
        return matched, tuple(info)

    def walk(self, root: Path | str) -> Iterator[tuple[str, os.DirEntry[str], bool]]:
        """The docker CLI's context walk: depth-first, name-sorted, symlinks not followed,
        yielding (relpath, entry, included) with moby's MatchesUsingParentResults (which can
        differ from `ignored()` on pattern sets mixing exceptions and parents). Ignored
        directories that can be skipped are yielded once (included=False) and not entered;
        other ignored directories are yielded with included=False and entered, their
        re-included children yielded as included."""
        stack: list[tuple[str, str, tuple[bool, ...] | None]] = [("", os.fspath(root), None)]
        while stack:
            rel, path, parent = stack.pop()
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
            subdirs: list[tuple[str, str, tuple[bool, ...] | None]] = []
            for e in entries:
                r = f"{rel}/{e.name}" if rel else e.name
                is_dir = e.is_dir(follow_symlinks=False)
                if self.patterns:
                    skip, info = self.match_with_parent(r, parent)
                else:
                    skip, info = False, ()
                yield r, e, not skip
                if is_dir and (not skip or not self.can_skip_dir(r)):
                    subdirs.append((r, e.path, info))
            stack.extend(reversed(subdirs))


def _dirname(path: str) -> str:
    i = path.rfind("/")
    return path[:i] if i > 0 else "."
