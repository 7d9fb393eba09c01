from __future__ import annotations

import json

import pytest

from sampan.monitor.logfile import LogWriter, parse_rfc3339_nano, read_entries, rfc3339_nano
from sampan.monitor.process import parse_detach_keys
from sampan.monitor.protocol import frame


def test_json_file_lines_as_docker_writes_them(tmp_path):
    p = str(tmp_path / "c-json.log")
    w = LogWriter(p)
    w.write("stdout", b"hel")
    w.write("stdout", b"lo\nwor")
    w.write("stderr", b"oops\n")
    w.close()
    lines = [json.loads(ln) for ln in open(p)]
    assert [(e["stream"], e["log"]) for e in lines] == [("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "wor")]
    assert all(e["time"].endswith("Z") and len(e["time"]) == 30 for e in lines)
    entries = list(read_entries(p))
    assert len(entries) == 3
    # Reading on from an offset gives only what came after.
    assert list(read_entries(p, entries[0][0]))[0][1]["stream"] == "stderr"


def test_long_lines_are_split_at_16k(tmp_path):
    p = str(tmp_path / "l.log")
    w = LogWriter(p)
    w.write("stdout", b"x" * 40000)
    w.close()
    sizes = [len(json.loads(ln)["log"]) for ln in open(p)]
    assert sizes == [16384, 16384, 40000 - 32768]


def test_timestamps_round_trip():
    ns = 1_764_342_165_123_456_789
    assert parse_rfc3339_nano(rfc3339_nano(ns)) == ns
    assert parse_rfc3339_nano("2026-11-28T15:02:45Z") % 1_000_000_000 == 0
    assert parse_rfc3339_nano("2026-11-28T15:02:45.5+01:00") == parse_rfc3339_nano("2026-11-28T14:02:45.5Z")


def test_detach_keys():
    assert parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert parse_detach_keys("ctrl-a,x") == b"\x01x"
    with pytest.raises(ValueError):
        parse_detach_keys("ctrl-foo")


def test_frame_header():
    assert frame(1, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
