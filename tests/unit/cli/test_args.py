"""The pflag-like parser: docker's flag grammar."""

import pytest

from sampan.cli.args import BOOL, FLOAT, INT, LIST, STR, HelpRequested, Opt, UsageError, parse, usage_text

OPTS = [Opt("-d --detach", BOOL), Opt("-i --interactive", BOOL), Opt("-t --tty", BOOL),
        Opt("-e --env", LIST), Opt("--name", STR), Opt("-p --publish", LIST), Opt("-n --last", INT),
        Opt("--cpus", FLOAT), Opt("--sig-proxy", BOOL, default=True), Opt("-h --hostname", STR)]


def test_combined_short_flags_and_attached_values():
    ns, pos = parse(["-it", "-p80:80", "-e", "A=1", "--env=B=2", "img", "cmd"], OPTS, interspersed=False)
    assert ns.interactive and ns.tty and not ns.detach
    assert ns.publish == ["80:80"] and ns.env == ["A=1", "B=2"]
    assert pos == ["img", "cmd"]


def test_stops_at_first_positional_for_run():
    ns, pos = parse(["--name", "x", "img", "ls", "-la", "--tty"], OPTS, interspersed=False)
    assert pos == ["img", "ls", "-la", "--tty"] and not ns.tty


def test_interspersed_for_other_commands():
    ns, pos = parse(["a", "-d", "b"], OPTS)
    assert ns.detach and pos == ["a", "b"]


def test_bool_with_value_and_defaults():
    ns, _ = parse(["--sig-proxy=false", "-d=true"], OPTS)
    assert ns.sig_proxy is False and ns.detach is True
    ns, _ = parse([], OPTS)
    assert ns.sig_proxy is True and ns.env is None and "sig_proxy" not in ns.changed


def test_numbers():
    ns, _ = parse(["-n", "3", "--cpus", "1.5"], OPTS)
    assert ns.last == 3 and ns.cpus == 1.5
    with pytest.raises(UsageError, match="invalid argument"):
        parse(["-n", "x"], OPTS)


def test_double_dash_ends_flags():
    ns, pos = parse(["--", "-d"], OPTS)
    assert pos == ["-d"] and not ns.detach


@pytest.mark.parametrize("argv,msg", [
    (["--nope"], "unknown flag: --nope"),
    (["-z"], "unknown shorthand flag: 'z' in -z"),
    (["--name"], "flag needs an argument: --name"),
    (["-e"], "flag needs an argument: 'e' in -e"),
    (["--detach=maybe"], "invalid argument"),
])
def test_errors(argv, msg):
    with pytest.raises(UsageError, match=msg):
        parse(argv, OPTS)


def test_help():
    with pytest.raises(HelpRequested):
        parse(["--help"], OPTS)
    with pytest.raises(HelpRequested):
        parse(["-h"], [Opt("-a --all", BOOL)])
    # -h is hostname where a command defines it
    ns, _ = parse(["-h", "box"], OPTS, help_short=False)
    assert ns.hostname == "box"


def test_usage_text_lists_options():
    text = usage_text("sampan ps", "[OPTIONS]", "List containers", [Opt("-a --all", BOOL, "Show all")])
    assert "Usage:  sampan ps [OPTIONS]" in text
    assert "-a, --all" in text and "--help" in text
