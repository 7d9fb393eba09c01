"""json-file rotation: the writer's max-size/max-file, reading and following across rotations."""

from __future__ import annotations

import os

import pytest

from sampan.errors import InvalidParameter
from sampan.monitor.logfile import LogWriter
from sampan.monitor.logrotate import (Follower, log_files, parse_size, read_and_follow, rotation,
                                      validate)


def test_parse_size_and_rotation_opts():
    assert parse_size("100") == 100
    assert parse_size("10k") == 10240
    assert parse_size("1m") == 1 << 20
    assert parse_size("1.5g") == int(1.5 * (1 << 30))
    assert parse_size("2MB") == 2 << 20
    assert rotation({}) == (0, 1)
    assert rotation({"max-size": "1k", "max-file": "3"}) == (1024, 3)
    for bad in ({"max-size": "lots"}, {"max-size": "1k", "max-file": "0"},
                {"max-file": "3"}, {"max-size": "1k", "max-file": "x"}):
        with pytest.raises(InvalidParameter):
            rotation(bad)
    validate({"Type": "json-file", "Config": {"max-size": "1m"}})
    validate({"Type": "none", "Config": {}})
    with pytest.raises(InvalidParameter, match="unknown log opt"):
        validate({"Type": "json-file", "Config": {"bogus": "1"}})
    with pytest.raises(InvalidParameter, match="no log driver named"):
        validate({"Type": "syslogx", "Config": {}})


def _write_lines(w: LogWriter, start: int, n: int) -> None:
    for i in range(start, start + n):
        w.write("stdout", f"line {i:05d}\n".encode())


def test_writer_rotates_and_reader_sees_everything_kept(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path, max_size=1000, max_file=3)
    _write_lines(w, 0, 200)
    w.close()
    files = log_files(path)
    assert files == [path + ".2", path + ".1", path]
    assert all(os.path.getsize(p) <= 1000 for p in files)
    entries, fol = read_and_follow(path)
    fol.close()
    nums = [int(e["log"].split()[1]) for e in entries]
    assert nums == list(range(nums[0], 200))  # in order, no gaps, the newest kept
    assert len(nums) < 200  # the oldest fell off
    assert not os.path.exists(path + ".3")


def test_max_file_one_truncates(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path, max_size=500, max_file=1)
    _write_lines(w, 0, 100)
    w.close()
    assert log_files(path) == [path]
    assert os.path.getsize(path) <= 500


def test_unbounded_by_default(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path)
    _write_lines(w, 0, 500)
    w.close()
    assert log_files(path) == [path] and os.path.getsize(path) > 10000


def test_follower_crosses_rotations_without_loss(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path, max_size=700, max_file=2)
    _write_lines(w, 0, 5)
    entries, fol = read_and_follow(path)
    seen = [e["log"] for e in entries]
    for k in range(5, 300, 7):
        _write_lines(w, k, 7)  # several rotations between polls are not possible with max-file 2,
        seen += [e["log"] for e in fol.poll()]  # so poll after each small batch
    w.close()
    seen += [e["log"] for e in fol.poll()]
    fol.close()
    assert [int(s.split()[1]) for s in seen] == list(range(0, 306))


def test_follower_partial_line_is_read_once_complete(tmp_path):
    path = str(tmp_path / "c-json.log")
    with open(path, "wb") as f:
        f.write(b'{"log":"a\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n{"log":"b')
    entries, fol = read_and_follow(path)
    assert [e["log"] for e in entries] == ["a\n"]
    with open(path, "ab") as f:
        f.write(b'\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n')
    assert [e["log"] for e in fol.poll()] == ["b\n"]
    fol.close()
