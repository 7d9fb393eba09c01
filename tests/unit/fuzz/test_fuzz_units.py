"""Fuzz: the CLI's size, duration, ulimit, restart, port and mount parsers
(sampan/cli/runopts.py): a value, or UsageError - never anything else."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sampan.cli import runopts
from sampan.cli.args import UsageError

_S = settings(max_examples=300, deadline=None)
_NUMS = st.sampled_from(["0", "1", "-1", "65535", "65536", "99999999999999999999", "1.5", "1e9",
                         "-", "+1", "0x10", " ", ""])
_UNITS = st.sampled_from(["", "b", "k", "kb", "KiB", "m", "g", "gb", "t", "p", "x", "ms", "s",
                          "h", "m30s", "µs", "ns", "us"])
_SIZEISH = st.one_of(st.text(max_size=20), st.tuples(_NUMS, _UNITS).map("".join))


def _ok_or_usage(fn, *args):
    try:
        return fn(*args)
    except UsageError as e:
        assert str(e)
        return None


@_S
@given(_SIZEISH)
def test_parse_bytes(s):
    v = _ok_or_usage(runopts.parse_bytes, s, "--memory")
    assert v is None or isinstance(v, int) and v >= -1


@_S
@given(st.one_of(st.text(max_size=20), st.lists(st.tuples(_NUMS, _UNITS).map("".join),
                                                 max_size=4).map("".join)))
def test_parse_duration(s):
    v = _ok_or_usage(runopts.parse_duration, s, "--health-interval")
    assert v is None or isinstance(v, int) and v >= 0


_ULIMIT = st.tuples(st.sampled_from(["nofile", "nproc", "core", "bogus", "", "NOFILE", "as"]),
                    st.sampled_from(["=", "", "=="]), _NUMS, st.sampled_from(["", ":"]),
                    _NUMS).map("".join)


@_S
@given(st.one_of(st.text(max_size=30), _ULIMIT))
def test_parse_ulimit(s):
    v = _ok_or_usage(runopts.parse_ulimit, s)
    if v is not None:
        assert v["Soft"] <= v["Hard"] or v["Hard"] == -1


@_S
@given(st.one_of(st.text(max_size=30), st.tuples(
    st.sampled_from(["no", "always", "on-failure", "unless-stopped", "bogus", ""]),
    st.sampled_from(["", ":", "::"]), _NUMS).map("".join)))
def test_parse_restart(s):
    _ok_or_usage(runopts.parse_restart, s)


_PORTISH = st.lists(st.sampled_from(["80", "8080", "65535", "65536", "0", "-1", "1-3", "3-1",
                                     "127.0.0.1", "[::1]", "::1", ":", "/tcp", "/udp", "/sctp",
                                     "/bogus", "a", "", "99999999999999999999"]),
                    max_size=6).map("".join)


@_S
@given(st.one_of(st.text(max_size=40), _PORTISH))
def test_parse_port_spec(s):
    v = _ok_or_usage(runopts.parse_port_spec, s)
    for key, binding in v or []:
        port = int(key.split("/")[0])
        assert 0 <= port <= 65535, (s, v)  # go-connections lets 0 through too
        if binding and binding.get("HostPort"):
            for hp in binding["HostPort"].split("-"):
                assert 0 <= int(hp) <= 65535, (s, v)


_MOUNTISH = st.lists(st.sampled_from(
    ["type=bind", "type=volume", "type=tmpfs", "type=bogus", "src=/x", "source=vol", "dst=/y",
     "target=../../etc", "target=/", "readonly", "ro=true", "ro=maybe", "tmpfs-size=1g",
     "tmpfs-size=-5", "tmpfs-mode=777", "tmpfs-mode=x", "bind-propagation=rshared",
     "bind-propagation=nope", "volume-opt=a=b", "consistency=cached", "=", "x", "\x00",
     '"quoted,field"']), max_size=6).map(",".join)


@_S
@given(st.one_of(st.text(max_size=60), _MOUNTISH))
def test_parse_mount(s):
    v = _ok_or_usage(runopts.parse_mount, s)
    if v is not None:
        assert v.get("Target")
