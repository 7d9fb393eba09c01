"""Log drivers on real files: the local driver's records, json-file and local compression on
rotation, and the reader (engine/logread.py) across plain and gzip files: order, --tail,
--since, following through rotations, damaged input."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
import types

import pytest

from sampan.engine.logread import Filter, LogFiles, log_path, parse_json, read_logs
from sampan.errors import InvalidParameter
from sampan.monitor import locallog
from sampan.monitor.logfile import LogWriter, open_writer
from sampan.monitor.logrotate import log_files, settings, validate


def _lines(w, start, n, stream="stdout"):
    for i in range(start, start + n):
        w.write(stream, f"line {i:05d}\n".encode())


def _nums(entries):
    return [int(e[2].split()[1]) for e in entries]


def _all(files: LogFiles):
    out = []
    for batch in files.iter_rotated():
        out += batch
    files.open_live()
    for batch in files.read_live():
        out += batch
    return out


def test_local_records_round_trip_and_split_long_lines(tmp_path):
    path = str(tmp_path / "local-logs" / "container.log")
    w = locallog.LocalWriter(path, max_size=0, max_file=1, compress=False)
    w.write("stdout", b"a\nb")
    w.write("stderr", b"err\n")
    w.write("stdout", b"c\n" + b"x" * (locallog.MAX_LINE + 10))
    w.close()  # flushes the unterminated tail
    recs = list(locallog.iter_file(path))
    assert [(s, d) for s, _, d in recs] == [
        (1, b"a\n"), (2, b"err\n"), (1, b"bc\n"), (1, b"x" * locallog.MAX_LINE), (1, b"x" * 10)]
    assert all(ns > 0 for _, ns, _ in recs)
    # Framing is 20 bytes a line, less than json-file's for the same output.
    jpath = str(tmp_path / "c-json.log")
    j = LogWriter(jpath)
    l = locallog.LocalWriter(str(tmp_path / "l.log"), max_size=0, max_file=1, compress=False)
    for i in range(1000):
        j.write("stdout", f"{i}\n".encode())
        l.write("stdout", f"{i}\n".encode())
    j.close()
    l.close()
    assert os.path.getsize(str(tmp_path / "l.log")) * 2 < os.path.getsize(jpath)


def test_local_parse_stops_at_damage_and_incomplete(tmp_path):
    good = locallog.encode(1, 5, b"one\n") + locallog.encode(2, 6, b"two\n")
    recs, pos = locallog.parse(good + locallog.encode(1, 7, b"three\n")[:-3])
    assert [r[2] for r in recs] == [b"one\n", b"two\n"] and pos == len(good)
    bad = good + b"\xff" * 40
    recs, pos = locallog.parse(bad)
    assert len(recs) == 2 and pos == len(good)
    assert locallog.parse(b"\x00\x00\x00\x04\x09" + b"\x00" * 30)[0] == []  # bad stream id


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_compressed_rotation_keeps_order_and_reads_transparently(tmp_path, driver):
    path = str(tmp_path / ("c-json.log" if driver == "json-file" else "local-logs/container.log"))
    w = open_writer(path, driver, 2000, 4, True)
    _lines(w, 0, 600)
    w.close()
    files = log_files(path)
    assert [os.path.basename(p) for p in files[:-1]] == [
        os.path.basename(path) + s for s in (".3.gz", ".2.gz", ".1.gz")]
    for p in files[:-1]:
        with gzip.open(p, "rb") as f:
            assert f.read()  # real gzip
        assert not os.path.exists(p[:-3])  # the plain copy is gone
    got = _nums(_all(LogFiles(path, driver)))
    assert got == list(range(got[0], 600)) and got[0] > 0  # in order, newest kept, oldest fell off
    # tail crosses from the live file into the compressed ones
    tail = LogFiles(path, driver)
    t = tail.tail(len(got) - 3)
    tail.close()
    assert _nums(t) == got[3:]


def test_since_skips_rotated_files_older_than_it(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path, 1500, 20, True)
    _lines(w, 0, 100)
    time.sleep(0.05)
    cut = time.time()
    time.sleep(0.05)
    _lines(w, 100, 100)
    w.close()
    files = LogFiles(path, "json-file")
    kept = files.rotated(int(cut * 1e9))
    assert kept and len(kept) < len(log_files(path)) - 1
    flt = Filter(True, True, cut, 0, False, None)
    out = []
    for b in files.iter_rotated(flt.since):
        out += flt.select(b)
    files.open_live()
    for b in files.read_live():
        out += flt.select(b)
    assert [int(d.split()[1]) for _, d in out] == list(range(100, 200))


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_follower_crosses_compressed_rotations(tmp_path, driver):
    path = str(tmp_path / ("c.log" if driver == "json-file" else "ll/container.log"))
    w = open_writer(path, driver, 700, 3, True)
    _lines(w, 0, 5)
    files = LogFiles(path, driver)
    seen = _all(files)
    for k in range(5, 300, 7):
        _lines(w, k, 7)
        for b in files.read_live():
            seen += b
    w.close()
    for b in files.read_live():
        seen += b
    files.close()
    assert _nums(seen) == list(range(0, 306))


def test_json_parse_skips_damaged_lines():
    buf = (b'{"log":"a\\n","stream":"stdout","time":"2024-01-01T00:00:00Z"}\n'
           b'not json\n\n'
           b'{"log":"b\\n","stream":"stderr","time":"2024-01-01T00:00:01Z"}\n{"log":"c')
    entries, used = parse_json(buf)
    assert [(s, d) for s, _, d, _ in entries] == [(1, b"a\n"), (2, b"b\n")]
    assert buf[used:] == b'{"log":"c'


def test_render_frames_timestamps_and_streams():
    entries = [(1, 1_700_000_000_000_000_001, b"out\n", None), (2, 1_700_000_000_000_000_002, b"err\n", None)]
    flt = Filter(True, False, 0, 0, True, False)
    assert flt.render(entries) == b"\x01\x00\x00\x00" + (31 + 4).to_bytes(4, "big") + \
        b"2023-11-14T22:13:20.000000001Z out\n"
    assert Filter(True, True, 0, 0, False, True).render(entries) == b"out\nerr\n"


def test_driver_options_as_docker_checks_them():
    assert settings({"Type": "local", "Config": {}}) == settings(
        {"Type": "local", "Config": {"max-size": "20m", "max-file": "5", "compress": "true"}})
    s = settings({"Type": "local", "Config": {}})
    assert (s.max_size, s.max_file, s.compress) == (20 << 20, 5, True)
    s = settings({"Type": "json-file", "Config": {"max-size": "1k", "max-file": "3", "compress": "true"}})
    assert (s.max_size, s.max_file, s.compress) == (1024, 3, True)
    assert not settings({"Type": "json-file", "Config": {}}).compress
    with pytest.raises(InvalidParameter, match="unknown log opt 'labels' for log driver local"):
        validate({"Type": "local", "Config": {"labels": "x"}})
    with pytest.raises(InvalidParameter, match="unknown log opt 'bogus' for json-file log driver"):
        validate({"Type": "json-file", "Config": {"bogus": "1"}})
    with pytest.raises(InvalidParameter, match="compress cannot be true"):
        validate({"Type": "json-file", "Config": {"compress": "true"}})
    with pytest.raises(InvalidParameter, match="compress"):
        validate({"Type": "local", "Config": {"compress": "maybe"}})
    with pytest.raises(InvalidParameter, match="logging mode not supported"):
        validate({"Type": "local", "Config": {"mode": "fast"}})
    validate({"Type": "local", "Config": {"mode": "non-blocking", "max-buffer-size": "4m"}})
    validate({"Type": "none", "Config": {"anything": "goes"}})


def test_read_logs_api_path_on_a_container_dir(tmp_path):
    c = types.SimpleNamespace(id="f" * 64, dir=str(tmp_path),
                              host_config={"LogConfig": {"Type": "local", "Config": {}}})
    assert log_path(c) == str(tmp_path / "local-logs" / "container.log")
    w = open_writer(log_path(c), "local", 1000, 3, True)
    _lines(w, 0, 50)
    _lines(w, 50, 5, "stderr")
    w.close()

    async def collect(**kw):
        out = []
        async for x in read_logs(c, lambda: False, **kw):
            out.append(x)
        return out

    base = dict(stdout=True, stderr=True, follow=False, since=0, until=0, tail=None, timestamps=False)
    pairs = asyncio.run(collect(**base))
    assert [int(d.split()[1]) for _, d in pairs][-10:] == list(range(45, 55))
    assert asyncio.run(collect(**dict(base, tail=3, stdout=False))) == [
        (2, b"line 00052\n"), (2, b"line 00053\n"), (2, b"line 00054\n")]
    chunks = asyncio.run(collect(**dict(base, tail=2, tty=True)))
    assert b"".join(chunks) == b"line 00053\nline 00054\n"
    c.host_config = {"LogConfig": {"Type": "none"}}
    with pytest.raises(InvalidParameter, match="does not support reading"):
        asyncio.run(collect(**base))


def test_rotation_touches_only_existing_files_even_with_a_huge_max_file(tmp_path):
    path = str(tmp_path / "c-json.log")
    w = LogWriter(path, 300, 10**9, True)
    t = time.perf_counter()
    _lines(w, 0, 60)
    w.close()
    assert time.perf_counter() - t < 5  # no loop over a billion names
    files = log_files(path)
    assert len(files) > 5 and all(p.endswith(".gz") for p in files[:-1])
    assert _nums(_all(LogFiles(path, "json-file"))) == list(range(60))
    # A smaller max-file later drops what lies beyond it.
    w = LogWriter(path, 300, 3, True)
    _lines(w, 60, 10)
    w.close()
    assert len(log_files(path)) == 3


def test_a_local_container_logged_as_json_file_before_stays_readable(tmp_path):
    c = types.SimpleNamespace(id="e" * 64, dir=str(tmp_path),
                              host_config={"LogConfig": {"Type": "local", "Config": {}}})
    w = LogWriter(str(tmp_path / f"{c.id}-json.log"))
    _lines(w, 0, 3)
    w.close()

    async def collect():
        return [x async for x in read_logs(c, lambda: False, stdout=True, stderr=True, follow=False,
                                           since=0, until=0, tail=None, timestamps=False)]
    assert [d for _, d in asyncio.run(collect())] == [b"line 00000\n", b"line 00001\n", b"line 00002\n"]


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_tail_then_follow_with_an_entry_half_written_at_the_end(tmp_path, driver):
    path = str(tmp_path / "log")
    w = open_writer(path, driver, 0, 1, False)
    _lines(w, 0, 100)
    w.close()
    whole = open(path, "rb").read()
    w2 = open_writer(str(tmp_path / "next"), driver, 0, 1, False)
    _lines(w2, 100, 1)
    w2.close()
    nxt = open(str(tmp_path / "next"), "rb").read()
    with open(path, "ab") as f:
        f.write(nxt[:7])  # the monitor's write caught half way
    files = LogFiles(path, driver)
    assert _nums(files.tail(3)) == [97, 98, 99]
    with open(path, "ab") as f:
        f.write(nxt[7:])
    got = [e for b in files.read_live() for e in b]
    files.close()
    assert _nums(got) == [100]  # read whole once complete, nothing lost or garbled
    assert len(whole) > 0
