"""The Dockerfile grammar: directives, continuations, forms, heredocs, flags, errors."""

from __future__ import annotations

import pytest

from sampan.build.dockerfile import (
    EXPANDED, Dockerfile, DockerfileError, Instruction, copy_sources, duration_ns, expand_args, expand_kv, flag_true, parse,
    parse_heredoc_word, parse_kv, parse_line,
)
from sampan.errors import InvalidParameter


def insts(text: str) -> list[Instruction]:
    """The first stage's instructions of `FROM x` + text."""
    return parse("FROM busybox\n" + text).stages[0].instructions


def one(text: str) -> Instruction:
    got = insts(text)
    assert len(got) == 1, got
    return got[0]


def error(text: str | bytes, filename: str = "Dockerfile") -> str:
    with pytest.raises(InvalidParameter) as err:
        parse(text, filename)
    return str(err.value)


# --- directives -------------------------------------------------------------------------

def test_directives_at_the_top() -> None:
    df = parse("# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# check=skip=all\nFROM x\nRUN a `\n b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1.7", "escape": "`", "check": "skip=all"}
    assert df.escape == "`"
    assert df.stages[0].instructions[0].args == ["a  b"]


@pytest.mark.parametrize("text", [
    "\n# escape=`\nFROM x\nRUN a `\n",          # after an empty line
    "# comment\n# escape=`\nFROM x\nRUN a `\n",  # after another comment
    "FROM x\n# escape=`\nRUN a `\n",             # after an instruction
    "# unknown=1\n# escape=`\nFROM x\nRUN a `\n",  # an unknown directive is a comment
])
def test_directives_ignored_once_other_lines_appear(text: str) -> None:
    df = parse(text)
    assert df.escape == "\\"
    assert df.stages[0].instructions[-1].args == ["a `"]


def test_directive_errors() -> None:
    assert error("# escape=\\\n# escape=`\nFROM x\n") == (
        "Dockerfile:2: only one escape parser directive can be used")
    assert "invalid escape token 'x' does not match ` or \\" in error("# escape=x\nFROM x\n")
    assert error("#syntax=a\n# SYNTAX=b\nFROM x\n").endswith("only one syntax parser directive can be used")


def test_bom_crlf_and_indentation() -> None:
    df = parse(b"\xef\xbb\xbf# escape=`\r\nFROM x\r\n  RUN a `\r\n    b\r\n\tCMD c\r\n")
    assert df.escape == "`"
    assert [(i.cmd, i.args) for i in df.stages[0].instructions] == [("RUN", ["a     b"]), ("CMD", ["c"])]


# --- lines, continuations, comments -------------------------------------------------------

def test_continuations_drop_comments_and_empty_lines() -> None:
    df = parse(
        "FROM debian\n"
        "RUN apt-get update \\\n"
        "    # a comment inside\n"
        "\n"
        "  # indented comment\n"
        "    && apt-get install -y curl \\\n"
        "    && rm -rf /var/lib/apt/lists/*\n"
        "# a comment\n"
        "CMD [\"bash\"]\n")
    run, cmd = df.stages[0].instructions
    # Docker joins the physical lines as they are, leading blanks of continuation lines kept.
    assert run.args == ["apt-get update     && apt-get install -y curl     && rm -rf /var/lib/apt/lists/*"]
    assert run.original == "RUN " + run.args[0]
    assert (run.line, run.end_line) == (2, 7)
    assert (cmd.line, cmd.args, cmd.json) == (9, ["bash"], True)
    assert df.warnings and "Empty continuation line" in df.warnings[0]


def test_continuation_at_eof_and_escaped_escape() -> None:
    assert one("RUN echo a \\").args == ["echo a"]
    assert one("RUN echo a \\\\").args == ["echo a \\\\"]     # escaped: not a continuation
    assert one("RUN echo a \\   \t\n  b").args == ["echo a   b"]  # blanks after \ allowed
    assert insts("RUN a\\\n\\\nb")[0].args == ["ab"]           # a lone \ line continues


def test_keywords_are_case_insensitive() -> None:
    df = parse("from busybox as Base\nrun echo\nCopy a b\n")
    assert df.stages[0].name == "base"
    assert [i.cmd for i in df.stages[0].instructions] == ["RUN", "COPY"]


def test_unknown_instruction_names_file_and_line() -> None:
    assert error("FROM x\n\nRUN a\nFOO bar\n", "Dockerfile.prod") == (
        "Dockerfile.prod:4: unknown instruction: FOO (did you mean FROM?)")
    assert error("FROM x\nrunn a\n").endswith("unknown instruction: runn (did you mean run?)")


def test_empty_and_stageless_files() -> None:
    assert error("") == "Dockerfile:1: file with no instructions"
    assert "file with no instructions" in error("# only\n\n# comments\n")
    assert error("ARG A=1\n").endswith("dockerfile contains no stages to build")
    assert error("RUN x\nFROM y\n") == "Dockerfile:1: no build stage in current context"


def test_line_too_long() -> None:
    assert "dockerfile line greater than max allowed size of 65535" in error(
        "FROM x\nRUN " + "a" * 70000 + "\n")


# --- stages -----------------------------------------------------------------------------

def test_stages_meta_args_and_platform() -> None:
    df = parse(
        "ARG GO=1.22\nARG BASE\n"
        "FROM --platform=$BUILDPLATFORM golang:${GO} AS Build\n"
        "RUN go build\n"
        "FROM scratch\n"
        "COPY --from=build /out /app\n")
    assert [a.args for a in df.meta_args] == [["GO=1.22"], ["BASE"]]
    b, final = df.stages
    assert (b.index, b.name, b.base, b.platform, b.line) == (0, "build", "golang:${GO}", "$BUILDPLATFORM", 3)
    assert b.original == "FROM --platform=$BUILDPLATFORM golang:${GO} AS Build"
    assert (final.index, final.name, final.base, final.platform) == (1, None, "scratch", None)
    assert final.instructions[0].flags == {"from": "build"}


@pytest.mark.parametrize("line, message", [
    ("FROM", "FROM requires either one or three arguments"),
    ("FROM a b", "FROM requires either one or three arguments"),
    ("FROM a AS b c", "FROM requires either one or three arguments"),
    ("FROM a AS 1x", 'invalid name for build stage: "1x", name can\'t start with a number or contain symbols'),
    ("FROM a AS b$c", "invalid name for build stage"),
    ("FROM --plaform=x a", "unknown flag: --plaform"),
])
def test_from_errors(line: str, message: str) -> None:
    assert message in error(line + "\n")


# --- exec (JSON) and shell forms -------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["RUN", "CMD", "ENTRYPOINT"])
def test_json_and_shell_forms(cmd: str) -> None:
    i = one(f'{cmd} ["/bin/sh", "-c", "echo \\"hi\\" \\u00e9"]')
    assert (i.args, i.json) == (["/bin/sh", "-c", 'echo "hi" é'], True)
    i = one(f"{cmd} echo $HOME  'x'")
    assert (i.args, i.json) == (["echo $HOME  'x'"], False)      # shell form: raw, unexpanded


@pytest.mark.parametrize("text", [
    "['single', 'quotes']",          # not JSON
    '["unterminated"',
    '["a"] trailing',
    '[NaN]',
    "[ \"a\", ]",
])
def test_invalid_json_falls_back_to_shell_form(text: str) -> None:
    i = one("CMD " + text)
    assert (i.args, i.json) == ([text], False)


def test_json_array_of_non_strings_is_an_error() -> None:
    assert "when using JSON array syntax, arrays must be comprised of strings only" in error(
        'FROM x\nCMD ["a", 1]\n')
    assert "comprised of strings only" in error('FROM x\nCOPY ["a", null]\n')


def test_empty_json_and_empty_commands() -> None:
    assert (one("CMD []").args, one("CMD []").json) == ([], True)
    assert one("ENTRYPOINT").args == []


def test_copy_add_volume_forms() -> None:
    c = one('COPY ["a b", "c", "/d e/"]')
    assert (c.args, c.json) == (["a b", "c", "/d e/"], True)
    c = one("COPY a  b\t/dst/")
    assert (c.args, c.json) == (["a", "b", "/dst/"], False)
    v = one("VOLUME /data /logs")
    assert v.args == ["/data", "/logs"]
    assert one('VOLUME ["/var/lib/x", "/y"]').args == ["/var/lib/x", "/y"]
    assert "VOLUME specified can not be an empty string" in error('FROM x\nVOLUME [" "]\n')
    assert "COPY requires at least two arguments, but only one was provided" in error("FROM x\nCOPY a\n")
    assert "ADD requires at least two arguments" in error("FROM x\nADD\n")


def test_shell_requires_json() -> None:
    assert one('SHELL ["powershell", "-command"]').args == ["powershell", "-command"]
    assert error("FROM x\nSHELL /bin/bash -c\n").endswith("SHELL requires the arguments to be in JSON form")
    assert error("FROM x\nSHELL []\n").endswith("SHELL requires at least one argument")


# --- flags ----------------------------------------------------------------------------------

def test_flags() -> None:
    c = one("COPY --from=build --chown=app:app --chmod=0755 --link src /dst")
    assert c.flags == {"from": "build", "chown": "app:app", "chmod": "0755", "link": ""}
    assert c.args == ["src", "/dst"]
    assert flag_true(c, "link") and not flag_true(c, "parents")
    a = one("ADD --checksum=sha256:abc --keep-git-dir=true --link=false https://x/y.tgz /z")
    assert a.flags == {"checksum": "sha256:abc", "keep-git-dir": "true", "link": "false"}
    assert not flag_true(a, "link")
    r = one("RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none make")
    assert r.flags == {"mount": "type=cache,target=/root/.cache\ntype=secret,id=x", "network": "none"}
    assert r.args == ["make"]


@pytest.mark.parametrize("line, message", [
    ("COPY --form=x a b", "unknown flag: --form (did you mean from?)"),
    ("RUN --help", "unknown flag: --help"),
    ("ENV --x=1 a=b", "unknown flag: --x"),
    ("WORKDIR --y /x", "unknown flag: --y"),
    ("MAINTAINER --boo joe@example.com", "unknown flag: --boo"),
    ("COPY --from a b", "missing a value on flag: --from"),
    ("COPY --link= a b", "missing a value on flag: --link"),
    ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
    ("COPY --from=a --from=b c d", "duplicate flag specified: --from"),
    ("RUN --network=a --network=b x", "duplicate flag specified: --network"),
])
def test_flag_errors(line: str, message: str) -> None:
    assert error("FROM x\n" + line + "\n") == f"Dockerfile:2: {message}"


def test_flags_ignored_where_docker_ignores_them() -> None:
    assert one("ARG --x=1 A").args == ["A"]
    assert one("STOPSIGNAL --x SIGTERM").args == ["SIGTERM"]


# --- heredocs -----------------------------------------------------------------------------------

def test_run_heredoc() -> None:
    r = one("RUN <<EOF\napt-get update\napt-get install -y vim\nEOF")
    assert r.args == ["<<EOF"] and not r.json
    (h,) = r.heredocs
    assert (h.name, h.content, h.expand, h.chomp) == ("EOF", "apt-get update\napt-get install -y vim\n", True, False)
    assert (r.line, r.end_line) == (2, 5)


def test_heredoc_chomp_quote_and_program() -> None:
    r, p = insts("RUN <<-'EOT' bash -e\n\techo $HOME\n\t\tindented\n\tEOT\n"
                 "RUN python3 <<PY\nprint('hi')\nPY\n")
    (h,) = r.heredocs
    assert (h.name, h.content, h.expand, h.chomp) == ("EOT", "echo $HOME\nindented\n", False, True)
    assert r.args == ["<<-'EOT' bash -e"]
    assert p.args == ["python3 <<PY"] and p.heredocs[0].content == "print('hi')\n"


def test_multiple_heredocs_and_copy() -> None:
    c, n = insts("COPY <<one <<\"two\" /dest/\nfirst\none\nsecond $X\ntwo\n"
                 "RUN cat <<A > /a && cat <<B > /b\nA\nalpha\nB\n")
    assert c.args == ["<<one", '<<"two"', "/dest/"]
    assert [(h.name, h.content, h.expand) for h in c.heredocs] == [
        ("one", "first\n", True), ("two", "second $X\n", False)]
    assert [(h.name, h.content) for h in n.heredocs] == [("A", ""), ("B", "alpha\n")]


def test_heredoc_body_is_verbatim() -> None:
    # Comments, continuations and would-be instructions inside a body are body text.
    r = one("RUN <<EOF\n# not a comment\nFROM nothing \\\n\nEOF")
    assert r.heredocs[0].content == "# not a comment\nFROM nothing \\\n\n"


def test_heredoc_not_recognised() -> None:
    assert one('RUN ["<<EOF"]').heredocs == []            # exec form
    assert one('RUN echo "<<EOF"').heredocs == []          # quoted
    assert one("USER <<x").heredocs == []                  # only RUN/COPY/ADD
    assert one("RUN echo a<<b").heredocs == []             # not a word on its own


def test_heredoc_errors() -> None:
    assert error("FROM x\nRUN <<EOF\necho\n") == "Dockerfile:2: unterminated heredoc"
    assert "COPY cannot accept a heredoc as a destination" in error("FROM x\nCOPY a <<EOF\nx\nEOF\n")


@pytest.mark.parametrize("word, name, expand, chomp", [
    ("<<EOF", "EOF", True, False),
    ("<<-EOF", "EOF", True, True),
    ("<<'EOF'", "EOF", False, False),
    ('<<-"EOF"', "EOF", False, True),
    ('<<EO"F"', "EOF", False, False),
    ("<< EOF", "EOF", True, False),
    ("3<<X", "X", True, False),
])
def test_parse_heredoc_word(word: str, name: str, expand: bool, chomp: bool) -> None:
    h = parse_heredoc_word(word)
    assert h is not None and (h.name, h.expand, h.chomp) == (name, expand, chomp)


@pytest.mark.parametrize("word", ["", "EOF", "<<", "<EOF", "<<'EOF", "a<<EOF", "<<EOF<<"])
def test_not_heredoc_words(word: str) -> None:
    assert parse_heredoc_word(word) is None


# --- ENV / LABEL / ARG ---------------------------------------------------------------------

def test_env_forms_and_expansion_order() -> None:
    new, legacy, quoted = insts('ENV a=b c="d e" f=g\\ h\nENV PATH /usr/local/bin:$PATH  x\nENV "k"="v"\n')
    assert parse_kv(new.args, "ENV") == [("a", "b"), ("c", '"d e"'), ("f", "g\\ h")]
    assert expand_kv(new, {}) == [("a", "b"), ("c", "d e"), ("f", "g h")]
    assert parse_kv(legacy.args, "ENV") == [("PATH", "/usr/local/bin:$PATH  x")]
    assert expand_kv(legacy, {"PATH": "/bin"}) == [("PATH", "/usr/local/bin:/bin  x")]
    assert expand_kv(quoted, {}) == [("k", "v")]
    # Pairs are split before substitution: a value with blanks or "=" stays one value.
    e = one("ENV A=$V B=2")
    assert expand_kv(e, {"V": "x y=z"}) == [("A", "x y=z"), ("B", "2")]


def test_label_and_arg() -> None:
    lbl = one('LABEL org.opencontainers.image.title="My app" version=1.0 "com.x"="y z"')
    assert expand_kv(lbl, {}) == [("org.opencontainers.image.title", "My app"), ("version", "1.0"), ("com.x", "y z")]
    arg = one("ARG A B=1 C= D=${A:-x}")
    assert parse_kv(arg.args, "ARG") == [("A", None), ("B", "1"), ("C", ""), ("D", "${A:-x}")]
    assert expand_kv(arg, {"A": "a"}) == [("A", None), ("B", "1"), ("C", ""), ("D", "a")]
    # ARG defaults see the ARGs before them; ENV pairs all see the env from before the ENV.
    assert expand_kv(one("ARG X=1 Y=${X}2"), {}) == [("X", "1"), ("Y", "12")]
    assert expand_kv(one("ENV X=1 Y=${X}2"), {"X": "0"}) == [("X", "1"), ("Y", "02")]
    assert expand_kv(one("ARG $K=v"), {"K": "k"}) == [("$K", "v")]


@pytest.mark.parametrize("line, message", [
    ("ENV", "ENV requires at least one argument"),
    ("ENV a", "ENV must have two arguments"),
    ("ENV =x", "ENV names can not be blank"),
    ("ENV a=b c", 'Syntax error - can\'t find = in "c". Must be of the form: name=value'),
    ("LABEL", "LABEL requires at least one argument"),
    ("LABEL a=1 b", "Syntax error - can't find = in \"b\". Must be of the form: name=value"),
    ("LABEL =v", "LABEL names can not be blank"),
    ("ARG", "ARG requires at least one argument"),
    ("ARG =x", "ARG names can not be blank"),
])
def test_kv_errors(line: str, message: str) -> None:
    assert error("FROM x\n" + line + "\n") == f"Dockerfile:2: {message}"


def test_parse_kv_on_expanded_words() -> None:
    assert parse_kv(["a=1", "b=x y"], "env") == [("a", "1"), ("b", "x y")]
    assert parse_kv(["name", "some", "value"], "ENV") == [("name", "some value")]
    with pytest.raises(InvalidParameter, match="can't find = in"):
        parse_kv(["a=1", "b"], "ENV")


# --- the other instructions ----------------------------------------------------------------------

def test_single_string_instructions() -> None:
    w, u, s, m = insts("WORKDIR /a b/$X\nUSER app:app\nSTOPSIGNAL SIGKILL\nMAINTAINER Jo <jo@x.org>\n")
    assert (w.args, u.args, s.args, m.args) == (["/a b/$X"], ["app:app"], ["SIGKILL"], ["Jo <jo@x.org>"])
    for line in ("WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER"):
        assert error(f"FROM x\n{line}\n").endswith(f"{line} requires exactly one argument")


def test_expose_and_expand_args() -> None:
    e = one("EXPOSE 80/tcp $PORTS 9000")
    assert e.args == ["80/tcp", "$PORTS", "9000"]
    assert expand_args(e, {"PORTS": "443 8080/udp"}) == ["80/tcp", "443", "8080/udp", "9000"]
    assert error("FROM x\nEXPOSE\n").endswith("EXPOSE requires at least one argument")
    c = one("COPY $SRC ${DST:-/app}/")
    assert expand_args(c, {"SRC": "a b"}) == ["a b", "/app/"]
    r = one("RUN echo $X")
    assert expand_args(r, {"X": "1"}) == ["echo $X"]   # RUN is never substituted by the builder
    assert EXPANDED >= {"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
                        "VOLUME", "WORKDIR"}
    assert not EXPANDED & {"RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ONBUILD", "MAINTAINER"}


def test_healthcheck() -> None:
    h1, h2, h3 = insts(
        "HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=2s --retries=3 \\\n"
        "  CMD curl -f http://localhost/ || exit 1\n"
        'HEALTHCHECK cmd ["/bin/check", "--fast"]\n'
        "HEALTHCHECK none\n")
    assert h1.args == ["CMD-SHELL", "curl -f http://localhost/ || exit 1"] and not h1.json
    assert h1.flags == {"interval": "30s", "timeout": "3s", "start-period": "1m",
                        "start-interval": "2s", "retries": "3"}
    assert (h2.args, h2.json) == (["CMD", "/bin/check", "--fast"], True)
    assert h3.args == ["NONE"]


@pytest.mark.parametrize("line, message", [
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=5 CMD x", 'time: missing unit in duration "5"'),
    ("HEALTHCHECK --timeout=1y CMD x", 'time: unknown unit "y" in duration "1y"'),
    ("HEALTHCHECK --interval=10us CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
    ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("HEALTHCHECK --retries=9999999999 CMD x", 'strconv.ParseInt: parsing "9999999999": value out of range'),
    ("HEALTHCHECK --foo=1 CMD x", "unknown flag: --foo"),
])
def test_healthcheck_errors(line: str, message: str) -> None:
    assert error("FROM x\n" + line + "\n") == f"Dockerfile:2: {message}"


@pytest.mark.parametrize("text, ns", [
    ("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9), ("300ms", 3 * 10**8),
    ("2us", 2000), ("2\u00b5s", 2000), (".5s", 5 * 10**8), ("1h2m3s4ms5us6ns", 3723004005006),
    ("-1s", -(10**9)),
])
def test_duration_ns(text: str, ns: int) -> None:
    assert duration_ns(text) == ns


@pytest.mark.parametrize("text", ["", "s", "1", ".s", "1x", "9999999999h", "-", "1s2"])
def test_duration_errors(text: str) -> None:
    with pytest.raises(InvalidParameter, match="^time: "):
        duration_ns(text)


def test_onbuild_and_parse_line() -> None:
    o1, o2 = insts("ONBUILD COPY --chown=1:1 . /app\nONBUILD RUN <<EOF\necho built\nEOF\n")
    assert (o1.cmd, o1.args) == ("ONBUILD", ["COPY --chown=1:1 . /app"])
    assert o2.args == ["RUN <<EOF\necho built\nEOF"]
    t1 = parse_line(o1.args[0])
    assert (t1.cmd, t1.args, t1.flags) == ("COPY", [".", "/app"], {"chown": "1:1"})
    t2 = parse_line(o2.args[0])
    assert (t2.cmd, t2.args, t2.heredocs[0].content) == ("RUN", ["<<EOF"], "echo built\n")
    assert parse_line("add a b", "`").cmd == "ADD"
    with pytest.raises(InvalidParameter, match="unknown instruction: BOGUS"):
        parse_line("BOGUS x")
    with pytest.raises(InvalidParameter, match="expected one instruction"):
        parse_line("RUN a\nRUN b")


@pytest.mark.parametrize("line, message", [
    ("ONBUILD", "ONBUILD requires at least one argument"),
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD FROM x", "FROM isn't allowed as an ONBUILD trigger"),
    ("onbuild maintainer me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
])
def test_onbuild_errors(line: str, message: str) -> None:
    assert error("FROM x\n" + line + "\n") == f"Dockerfile:2: {message}"


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    i = parse(b"FROM x\nRUN echo \xff\n").stages[0].instructions[0]
    assert i.args == ["echo \ufffd"]


def test_result_types() -> None:
    df = parse("FROM x\n")
    assert isinstance(df, Dockerfile) and df.filename == "Dockerfile" and df.stages[0].instructions == []


def test_hostile_sizes_and_types() -> None:
    big = b"FROM x\n" + b"# pad\n" * (3 * 1024 * 1024)
    assert "Dockerfile too large" in error(big)
    assert "must be text" in error(12)  # type: ignore[arg-type]
    i = one('CMD ["\\ud800x"]')
    assert i.args == ["\ufffdx"]                 # a lone surrogate can't reach a UTF-8 writer


def test_did_you_mean() -> None:
    assert error("FROM x\nRUNN a\n").endswith("unknown instruction: RUNN (did you mean RUN?)")
    assert error("FROM x\ncopyy a b\n").endswith("unknown instruction: copyy (did you mean copy?)")
    assert error("FROM x\nXYZZY a\n").endswith("unknown instruction: XYZZY")
    assert error("FROM x\nCOPY --chownn=1 a b\n").endswith("unknown flag: --chownn (did you mean chown?)")


def test_long_onbuild_chain_is_refused_cleanly() -> None:
    assert error("FROM x\n" + "ONBUILD " * 5000 + "RUN x\n").endswith(
        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")


def test_backtick_escape_everywhere() -> None:
    df = parse("# escape=`\nFROM x\nENV p=c:\\dir q=a` b\nCOPY --chown=a`:b x y\nRUN <<EOF\nline `\nEOF\n")
    env, copy, run = df.stages[0].instructions
    assert expand_kv(env, {}, df.escape) == [("p", "c:\\dir"), ("q", "a b")]
    assert copy.flags == {"chown": "a:b"}
    assert run.heredocs[0].content == "line `\n"


def test_step_text_is_dockers() -> None:
    # `original` is what "Step N/M : ..." prints: the continuation lines joined as written.
    (r,) = insts("RUN apt-get update && \\\n    apt-get install -y curl  \n")
    assert r.original == "RUN apt-get update &&     apt-get install -y curl"


def test_copy_sources_split() -> None:
    c = one('COPY <<a.txt ./local <<-"b.sh" /dst/\nalpha $X\na.txt\n\tbeta\n\tb.sh\n')
    paths, inline, dest = copy_sources(c)
    assert (paths, dest) == (["./local"], "/dst/")
    assert [(h.name, h.content, h.expand, h.chomp) for h in inline] == [
        ("a.txt", "alpha $X\n", True, False), ("b.sh", "beta\n", False, True)]
    assert copy_sources(one("ADD a b /c/")) == (["a", "b"], [], "/c/")


def test_error_carries_line_and_detail() -> None:
    with pytest.raises(DockerfileError) as err:
        parse("FROM x\n\nFOO bar\n", "Dockerfile.dev")
    e = err.value
    assert isinstance(e, InvalidParameter)
    assert (e.filename, e.line, e.detail) == ("Dockerfile.dev", 3, "unknown instruction: FOO (did you mean FROM?)")
