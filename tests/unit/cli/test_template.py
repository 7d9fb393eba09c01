"""Go text/template subset used by --format and inspect -f."""

import pytest

from sampan.cli.format import ContainerCtx
from sampan.cli.template import Template, TemplateError, go_str, render, to_json

DATA = {
    "Id": "abc123",
    "Name": "/web",
    "State": {"Pid": 4242, "Running": True, "ExitCode": 0, "Health": None},
    "Config": {"Labels": {"b": "2", "a": "1"}, "Env": ["A=1", "B=2"], "Cmd": ["sh", "-c", "x"]},
    "Mounts": [],
    "Ratio": 0.5,
    "Big": 1e21,
    "Html": "<a&b>",
}


@pytest.mark.parametrize("src,want", [
    ("plain text", "plain text"),
    ("{{.Id}}", "abc123"),
    ("{{.State.Pid}}", "4242"),
    ("{{.State.Running}}", "true"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Nope}}", "<no value>"),
    ("{{.Config.Labels}}", "map[a:1 b:2]"),
    ("{{.Config.Env}}", "[A=1 B=2]"),
    ("{{.Ratio}}", "0.5"),
    ("{{json .Config.Cmd}}", '["sh","-c","x"]'),
    ("{{json .Html}}", '"\\u003ca\\u0026b\\u003e"'),
    ("{{json .State.Health}}", "null"),
    ("{{json .Nope}}", "null"),
    ("{{upper .Id}}", "ABC123"),
    ("{{lower \"ABC\"}}", "abc"),
    ("{{title \"hello world\"}}", "Hello World"),
    ("{{join .Config.Env \",\"}}", "A=1,B=2"),
    ("{{index .Config.Labels \"a\"}}", "1"),
    ("{{index .Config.Labels \"zz\"}}", "<no value>"),
    ("{{index .Config.Env 1}}", "B=2"),
    ("{{len .Config.Env}}", "2"),
    ("{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]"),
    ("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", "0:A=1 1:B=2 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a=1;b=2;"),
    ("{{range .Mounts}}x{{else}}none{{end}}", "none"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
    ("{{if .Mounts}}m{{else if .State.Running}}r{{else}}n{{end}}", "r"),
    ("{{if not .State.Running}}a{{else}}b{{end}}", "b"),
    ("{{if and .State.Running .Id}}yes{{end}}", "yes"),
    ("{{if or .Mounts .Id}}yes{{end}}", "yes"),
    ("{{if eq .Id \"x\" \"abc123\"}}eq{{end}}", "eq"),
    ("{{if ne .State.Pid 1}}ne{{end}}", "ne"),
    ("{{if gt .State.Pid 100}}gt{{end}}", "gt"),
    ("{{with .State}}{{.Pid}}{{end}}", "4242"),
    ("{{with .Mounts}}x{{else}}empty{{end}}", "empty"),
    ("{{.Id | upper}}", "ABC123"),
    ("{{.Id | printf \"%s!\"}}", "abc123!"),
    ("{{printf \"%d-%s-%v\" .State.Pid .Id .State.Running}}", "4242-abc123-true"),
    ("{{printf \"%5s|%-4s|\" \"a\" \"b\"}}", "    a|b   |"),
    ("{{printf \"%q\" .Id}}", '"abc123"'),
    ("{{println .Id}}", "abc123\n"),
    ("{{print \"a\" 1 2 \"b\"}}", "a1 2b"),
    ("{{$x := .State.Pid}}{{$x}}", "4242"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", "2"),
    ("{{$.Id}}", "abc123"),
    ("{{range .Config.Env}}{{$.Id}}{{end}}", "abc123abc123"),
    ("{{(index .Config.Env 0)}}", "A=1"),
    ("{{(.State).Pid}}", "4242"),
    ("a {{- \" b \" -}} c", "a b c"),
    ("x  {{- .Id}}", "xabc123"),
    ("{{.Id -}}   \n y", "abc123y"),
    ("{{/* a comment */}}z", "z"),
    ("{{split \"a,b\" \",\"}}", "[a b]"),
    ("{{truncate .Id 3}}", "abc"),
    ("{{pad .Id 1 2}}", " abc123  "),
    ("{{range .Config.Env}}{{if eq . \"B=2\"}}{{break}}{{end}}{{.}}{{end}}", "A=1"),
    ("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}", "B=2"),
    ("{{slice .Id 1 3}}", "bc"),
    ("{{`raw \\n`}}", "raw \\n"),
    ("{{\"esc\\tx\"}}", "esc\tx"),
    ("{{3}} {{-1}} {{true}} {{nil}}", "3 -1 true <nil>"),
    ("{{.Big}}", "1e+21"),
    ("{{\"a}}b\"}}", "a}}b"),
])
def test_render(src, want):
    assert render(src, DATA) == want


def test_json_dot_keeps_object_order_of_raw_api_json():
    assert render("{{json .State}}", DATA) == '{"Pid":4242,"Running":true,"ExitCode":0,"Health":null}'


@pytest.mark.parametrize("src", [
    "{{.Id",                      # unclosed action
    "{{if .Id}}x",                # missing end
    "{{end}}",                    # stray end
    "{{nosuchfunc .Id}}",         # unknown function: a parse error in Go
    "{{\"unterminated}}",
    "{{(.Id}}",
    "{{define \"x\"}}{{end}}",    # not supported: clear error rather than wrong output
])
def test_parse_errors(src):
    with pytest.raises(TemplateError) as e:
        Template(src)
    assert "template" in str(e.value)


@pytest.mark.parametrize("src,needle", [
    ("{{.Nope.Deeper}}", "nil pointer evaluating interface {}.Deeper"),
    ("{{.State.Health.Status}}", "nil pointer"),
    ("{{.Id.Foo}}", "can't evaluate field Foo in type string"),
    ("{{index .Config.Env 9}}", "index out of range"),
    ("{{len .Nope}}", "len of nil"),
    ("{{.Id 1}}", "not a method"),
    ("{{$nope}}", "undefined variable"),
])
def test_exec_errors(src, needle):
    with pytest.raises(TemplateError) as e:
        render(src, DATA)
    assert needle in str(e.value)


def test_template_is_reusable_across_rows():
    t = Template("{{.A}}-")
    assert [t.execute({"A": i}) for i in range(3)] == ["0-", "1-", "2-"]


def test_context_objects_fields_and_methods():
    c = ContainerCtx({"Id": "f" * 64, "Names": ["/web"], "Labels": {"com.x": "y"}, "Command": "sleep 1",
                      "Created": 0, "Image": "busybox", "Status": "Up", "State": "running"}, now=100)
    assert render('{{.ID}} {{.Names}} {{.Label "com.x"}} {{.Command}}', c) == f'{"f" * 12} web y "sleep 1"'
    with pytest.raises(TemplateError):
        render("{{.NoSuchField}}", c)
    assert to_json(c).startswith('{"Command":')


def test_go_str_shapes():
    assert go_str([{"a": [1, 2]}, None]) == "[map[a:[1 2]] <nil>]"
    assert go_str(3.0) == "3"
    assert go_str(False) == "false"


def test_hostile_templates_do_not_escape():
    # no attribute walking into Python internals
    c = ContainerCtx({"Id": "x"})
    for src in ("{{._ID}}", "{{.__class__}}", "{{.__dict__}}"):
        with pytest.raises(TemplateError):
            render(src, c)
    # huge nesting is refused by the parser's recursion limit as a clean error, or works
    deep = "{{" + "(" * 50 + ".Id" + ")" * 50 + "}}"
    assert render(deep, {"Id": "x"}) == "x"
