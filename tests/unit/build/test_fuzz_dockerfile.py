"""Fuzz targets for the Dockerfile parser and the word lexer: any input either parses or is
refused with InvalidParameter; nothing else escapes (no IndexError, RecursionError...)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sampan.build.dockerfile import (
    expand_args, expand_kv, parse, parse_heredoc_word, parse_line,
)
from sampan.build.shellwords import expand, expand_heredoc, expand_words
from sampan.errors import InvalidParameter

SEED = """\
# syntax=docker/dockerfile:1
# escape=\\
ARG BASE=debian:12
FROM --platform=$BUILDPLATFORM ${BASE:-busybox} AS build
ENV A=1 B="two words" C=${A:+set}
LABEL "k"="v" other='x y'
RUN --mount=type=cache,target=/c apt-get update \\
    # comment
    && echo "$A" 'lit'
RUN <<-EOF bash
\techo heredoc $A
\tEOF
COPY --from=build --chown=1:1 ["a", "b c", "/dst/"]
COPY <<one <<"two" /etc/
1
one
2
two
ADD --checksum=sha256:00 https://example.com/x.tgz /x/
HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost || exit 1
ONBUILD RUN echo trigger
EXPOSE 80/tcp ${PORT:-443}
VOLUME ["/data"]
WORKDIR /app
USER app:app
SHELL ["/bin/sh", "-c"]
STOPSIGNAL SIGTERM
CMD ["run"]
"""

ALPHABET = st.sampled_from(list(
    "abcRUNFROMCOPYENV=$`\\'\"{}[]:-+?#%/<> \t\n\r-,.*09") + ["<<EOF", "EOF", "${", "\\\n", "\r\n", "\ufeff", "\x00", "é"])
TEXT = st.lists(ALPHABET, max_size=80).map("".join)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_all_ways(text: str) -> None:
    try:
        df = parse(text)
    except InvalidParameter:
        return
    env = {"A": "1", "PORT": "8080"}
    for stage in df.stages:
        for inst in stage.instructions:
            try:
                if inst.cmd in ("ENV", "LABEL", "ARG"):
                    expand_kv(inst, env, df.escape)
                else:
                    expand_args(inst, env, df.escape)
                if inst.cmd == "ONBUILD":
                    parse_line(inst.args[0], df.escape)
            except InvalidParameter:
                pass


@FUZZ
@given(TEXT)
def test_parse_random_text(text: str) -> None:
    _parse_all_ways(text)


@FUZZ
@given(st.binary(max_size=200))
def test_parse_random_bytes(data: bytes) -> None:
    try:
        parse(data)
    except InvalidParameter:
        pass


@FUZZ
@given(st.data())
def test_parse_mutated_dockerfile(data: st.DataObject) -> None:
    text = SEED
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = data.draw(TEXT)
        if op == "insert":
            text = text[:pos] + chunk + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + data.draw(st.integers(0, 20)):]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk):]
    _parse_all_ways(text)


@FUZZ
@given(TEXT, st.sampled_from(["\\", "`"]))
def test_expand_random(word: str, escape: str) -> None:
    env = {"a": "x y", "b": "", "c": "$a"}
    for fn in (lambda: expand(word, env, escape), lambda: expand_words(word, env, escape),
               lambda: expand_heredoc(word, env), lambda: parse_line(word, escape)):
        try:
            fn()
        except InvalidParameter:
            pass
    parse_heredoc_word(word)  # never raises


def test_seed_parses() -> None:
    df = parse(SEED)
    assert [s.name for s in df.stages] == ["build"]
    assert len(df.stages[0].instructions) == 16


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=6), st.sampled_from(["RUN", "CMD", "ENTRYPOINT"]))
def test_exec_form_round_trips(argv: list[str], cmd: str) -> None:
    import json
    inst = parse(f"FROM x\n{cmd} {json.dumps(argv)}\n").stages[0].instructions[0]
    want = [a.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for a in argv]
    assert (inst.args, inst.json) == (want, True)


VALUE = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20)


@FUZZ
@given(VALUE)
def test_env_single_quoted_value_round_trips(value: str) -> None:
    # Inside '...' nothing is special but the closing quote, so any value without one survives.
    if "'" in value:
        value = value.replace("'", "")
    inst = parse(f"FROM x\nENV k='{value}' other=1\n").stages[0].instructions[0]
    assert expand_kv(inst, {}) == [("k", value), ("other", "1")]
