"""Docker's multiplexed stream framing."""

import pytest

from sampan.cli.session import parse_detach_keys, start_error_code
from sampan.cli.stream import Demuxer, FrameError, Output, copy_output


def frame(stream, data):
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_demux_whole_frames():
    d = Demuxer()
    got = d.feed(frame(1, b"out") + frame(2, b"err") + frame(1, b""))
    assert got == [(1, b"out"), (2, b"err")]
    assert not d.partial


def test_demux_byte_by_byte_and_split_payloads():
    data = frame(1, b"hello") + frame(2, b"x" * 100000)
    d = Demuxer()
    out = {1: b"", 2: b""}
    for i in range(len(data)):
        for s, p in d.feed(data[i:i + 1]):
            out[s] += p
    assert out == {1: b"hello", 2: b"x" * 100000}


def test_demux_rejects_garbage_header():
    with pytest.raises(FrameError):
        Demuxer().feed(b"HTTP/1.1 200 OK\r\n")


def test_demux_huge_announced_size_is_not_buffered():
    d = Demuxer()
    got = d.feed(bytes([1, 0, 0, 0]) + (2**32 - 1).to_bytes(4, "big") + b"abc")
    assert got == [(1, b"abc")] and d.partial


def test_copy_output_routes_streams(tmp_path):
    o_path, e_path = tmp_path / "o", tmp_path / "e"
    with open(o_path, "wb") as o, open(e_path, "wb") as e:
        out = Output(o.fileno(), e.fileno())
        copy_output(iter([frame(1, b"a"), frame(2, b"b") + frame(3, b"boom"), frame(0, b"c")]), False, out)
    assert o_path.read_bytes() == b"ac" and e_path.read_bytes() == b"b"
    assert out.system_error == b"boom"


def test_copy_output_tty_is_raw(tmp_path):
    p = tmp_path / "o"
    with open(p, "wb") as o:
        copy_output(iter([b"\x01\x00raw"]), True, Output(o.fileno(), o.fileno()))
    assert p.read_bytes() == b"\x01\x00raw"


def test_detach_keys():
    assert parse_detach_keys(None) == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-ab")


@pytest.mark.parametrize("msg,code", [
    ('exec: "nope": executable file not found in $PATH', 127),
    ("open /x: no such file or directory", 127),
    ("exec /etc/passwd: permission denied", 126),
    ("something else", 125),
])
def test_start_error_codes(msg, code):
    assert start_error_code(msg) == code
