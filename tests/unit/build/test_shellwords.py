"""Docker's word lexer: substitution, quotes and escapes (sampan.build.shellwords)."""

from __future__ import annotations

import pytest

from sampan.build.dockerfile_rules import extract_flags, parse_words
from sampan.build.shellwords import expand, expand_heredoc, expand_words, go_quote
from sampan.errors import InvalidParameter

ENV = {"x": "val", "empty": "", "sp": "a  b", "lead": "  a b", "PWD": "/home", "n": "42"}


@pytest.mark.parametrize("word, want", [
    # plain and simple variables
    ("hello", "hello"),
    ("$x", "val"),
    ("${x}", "val"),
    ("pre${x}post", "prevalpost"),
    ("$x.y", "val.y"),
    ("$nope", ""),                 # unknown -> empty
    ("${nope}", ""),
    ("$", "$"),
    ("a$", "a$"),
    ("$.", "$."),
    ("he$1x", "hex"),              # positional params: a digit run, unset
    ("$x$x", "valval"),
    # defaults and alternatives
    ("${x:-d}", "val"),
    ("${empty:-d}", "d"),
    ("${nope:-d}", "d"),
    ("${x-d}", "val"),
    ("${empty-d}", ""),            # set but empty: no default without ':'
    ("${nope-d}", "d"),
    ("${x:+a}", "a"),
    ("${empty:+a}", ""),
    ("${nope:+a}", ""),
    ("${x+a}", "a"),
    ("${empty+a}", "a"),           # set (even empty) -> alternative
    ("${nope+a}", ""),
    ("${x:?msg}", "val"),
    ("${empty?msg}", ""),
    # nesting and words inside defaults
    ("${nope:-${x}}", "val"),
    ("${nope:-${nope2:-deep}}", "deep"),
    ("${nope:-a b}", "a b"),
    ('${nope:-"q u"}', "q u"),
    ("${nope:-$x-$x}", "val-val"),
    # quotes
    ("'$x'", "$x"),                # single quotes: literal
    ('"$x"', "val"),               # double quotes: substituted
    ("he'll'o", "hello"),
    ('"hel\'lo"', "hel'lo"),
    ("'a\\b'", "a\\b"),            # no escapes inside '...'
    ('"a\\"b"', 'a"b'),
    ('"a\\b"', "a\\b"),            # \ only escapes " $ \ inside "..."
    ('"a\\\\b"', "a\\b"),
    ('"a\\$x"', "a$x"),
    ("\"''\"", "''"),
    # escapes outside quotes
    ("\\$x", "$x"),
    ("\\\\$x", "\\val"),
    ("a\\ b", "a b"),
    ("abc\\tdef", "abctdef"),
    ("hello\\", "hello"),          # lone escape at the end is dropped
    ("he\\'llo", "he'llo"),
    # pattern modifiers
    ("${PWD#/}", "home"),
    ("${sp% *}", "a "),
    ("${sp%% *}", "a"),
    ("${sp#* }", " b"),
    ("${sp##* }", "b"),
    ("${x/a/A}", "vAl"),
    ("${sp// /_}", "a__b"),
    ("${x/z/y}", "val"),
    ("${x/v*/[&]}", "[&]"),
])
def test_expand(word: str, want: str) -> None:
    assert expand(word, ENV) == want


@pytest.mark.parametrize("word, message", [
    ("'open", "unexpected end of statement while looking for matching single-quote"),
    ('"open', "unexpected end of statement while looking for matching double-quote"),
    ("${x", "unsupported modifier"),
    ("${", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:x}", "syntax error: bad substitution"),
    ("${{x}", "syntax error: bad substitution"),
    ("${x:-d", "syntax error: missing '}'"),
    ("${x:=d}", "unsupported modifier (:=) in substitution"),
    ("${x=d}", "unsupported modifier (=) in substitution"),
    ("${x:#d}", "unsupported modifier (:#) in substitution"),
    ("${nope:?must be set}", "nope: must be set"),
    ("${nope?}", "nope: is not allowed to be unset"),
    ("${empty:?}", "empty: is not allowed to be empty"),
    ("${x/a", "syntax error: missing '/' in ${}"),
    ("${x#\\x}", "invalid escape"),
])
def test_expand_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        expand(word, ENV)
    assert message in str(err.value)
    assert str(err.value).startswith(f"failed to process {go_quote(word)}: ")


def test_deep_nesting_is_a_clean_error() -> None:
    word = "${a:-" * 500 + "x" + "}" * 500
    with pytest.raises(InvalidParameter, match="nested too deeply"):
        expand(word, {})


@pytest.mark.parametrize("text, want", [
    ("a b  c", ["a", "b", "c"]),
    ("  lead trail  ", ["lead", "trail"]),
    ("$sp", ["a", "b"]),               # unquoted value splits
    ('"$sp"', ["a  b"]),               # quoted value doesn't
    ("x${lead}y", ["x", "a", "by"]),
    ('x"${lead}" y', ["x  a b", "y"]),
    ("a\\ b c", ["a b", "c"]),
    ("'a b' c", ["a b", "c"]),
    ('""', []),                        # an empty quoted word vanishes, as in Docker
    ("", []),
    ("80/tcp $n/udp", ["80/tcp", "42/udp"]),
    ("<< EOF", ["<< EOF"]),            # heredoc marker keeps its blank
])
def test_expand_words(text: str, want: list[str]) -> None:
    assert expand_words(text, ENV) == want


def test_backtick_escape() -> None:
    # Under `# escape=``, backslashes are ordinary (Windows paths) and ` escapes.
    assert expand("c:\\dir\\$x", ENV, "`") == "c:\\dir\\val"
    assert expand("`$x", ENV, "`") == "$x"
    assert expand('"a`"b"', ENV, "`") == 'a"b'
    assert expand_words("a` b c", ENV, "`") == ["a b", "c"]
    with pytest.raises(InvalidParameter, match="invalid escape token"):
        expand("x", ENV, "!")


def test_expand_heredoc_keeps_quotes() -> None:
    body = "name='$x' \"$x\" \\$x ${nope:-d}\n"
    assert expand_heredoc(body, ENV) == "name='val' \"val\" $x d\n"


def test_env_values_are_not_rescanned() -> None:
    # A value holding $ or quotes is inserted as is (no second round of substitution).
    env = {"a": "$b", "b": "no", "q": "'x'"}
    assert expand("$a", env) == "$b"
    assert expand("$q", env) == "'x'"
    assert expand_words("$q", env) == ["'x'"]


@pytest.mark.parametrize("rest, want", [
    ('a=b c="d e"', ["a=b", 'c="d e"']),
    ("a\\ b c", ["a\\ b", "c"]),
    ("'x y' \"z\\\" w\"", ["'x y'", '"z\\" w"']),
    ("a \\", ["a"]),
    ('""', ['""']),
    ("  ", []),
])
def test_parse_words_keeps_quotes(rest: str, want: list[str]) -> None:
    assert parse_words(rest) == want


@pytest.mark.parametrize("line, rest, flags", [
    ("--from=x a b", "a b", ["--from=x"]),
    ("--link --chown=1:2  src dst", "src dst", ["--link", "--chown=1:2"]),
    ('--mount="type=cache,target=/x y" cmd', "cmd", ["--mount=type=cache,target=/x y"]),
    ("-- --notaflag x", " --notaflag x", []),
    ("-x y", "-x y", []),
    ("--a=b", "", ["--a=b"]),
    ("plain", "plain", []),
])
def test_extract_flags(line: str, rest: str, flags: list[str]) -> None:
    assert extract_flags(line) == (rest, flags)


def test_patterns_are_linear_not_backtracking() -> None:
    # A backtracking regex takes ages on these; the NFA answers at once.
    import time
    t0 = time.monotonic()
    assert expand("${x//*a*a*a*a*a*a*a*b/X}", {"x": "a" * 5000}) == "a" * 5000
    assert expand("${x##*a*a*a*a*a*a*a*b}", {"x": "a" * 20000}) == "a" * 20000
    assert expand("${x//a/b}", {"x": "a" * 20000}) == "b" * 20000
    assert time.monotonic() - t0 < 10


def test_replace_all_follows_go_on_empty_matches() -> None:
    env = {"v": "abc", "m": "l1\nl2"}
    assert expand("${v//*/X}", env) == "X"          # Python's re.sub would give "XX"
    assert expand("${v//?/X}", env) == "XXX"
    assert expand("${m//*/X}", env) == "X\nX"       # * doesn't cross a newline (Go's `.`)
    assert expand("${m#*1}", env) == "\nl2"


def test_absurd_growth_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="longer than"):
        expand("$x" * 64, {"x": "y" * 100_000})
    with pytest.raises(InvalidParameter, match="too large"):
        expand("${x#" + "?" * 5000 + "}", {"x": "y" * 10_000})
