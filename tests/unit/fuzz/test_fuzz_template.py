"""Fuzz: the Go template engine behind --format (sampan/cli/template.py): any source either
renders to a string or raises TemplateError (printed by the CLI as docker does) - never a
Python exception from deep inside the parser, never a hang."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sampan.cli.template import Template, TemplateError

_TOKENS = st.sampled_from(
    ["{{", "}}", "{{-", "-}}", ".", ".Name", ".Config.Env", "$", "$x", ":=", "=", "|", "(", ")",
     "range", "if", "else", "end", "with", "break", "continue", "json", "join", "index", "len",
     "printf", "\"%s\"", "\"a\"", "`raw`", "'c'", "1", "-1", "0x1f", "1e3", "true", "nil",
     "eq", "lt", "and", "or", "not", "slice", "upper", "split", "pad", "truncate", " ", "/*",
     "*/", "\\", "\"unterminated", ",", "else if", "table", "{{.}}", "{{range .}}{{end}}"])
_SRC = st.one_of(st.text(max_size=60), st.lists(_TOKENS, max_size=14).map("".join))
_DATA = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
                     lambda i: st.one_of(st.lists(i, max_size=3),
                                         st.dictionaries(st.sampled_from(["Name", "Config", "Env",
                                                                          "x", "Id"]), i,
                                                         max_size=3)), max_leaves=8)


@settings(max_examples=500, deadline=None)
@given(_SRC, _DATA)
def test_template_renders_or_raises_template_error(src, data):
    try:
        out = Template(src).execute(data)
    except TemplateError as e:
        assert str(e)
        return
    assert isinstance(out, str)
