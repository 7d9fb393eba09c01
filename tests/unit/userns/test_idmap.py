"""Id maps, `--userns-remap` values and /etc/subuid parsing (moby idtools' rules)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from sampan.errors import InvalidParameter
from sampan.userns.idmap import (IdMap, IdRange, free_range, parse_proc_map, parse_remap,
                                 parse_subid, ranges_from_subid)


def test_parse_remap_values():
    assert parse_remap("default") == ("dockremap", "dockremap")
    assert parse_remap("alice") == ("alice", "alice")
    assert parse_remap("alice:staff") == ("alice", "staff")
    assert parse_remap("1000:1000") == ("1000", "1000")
    for bad in ("", "  ", "a:", ":b", "a:b:c", "a/b", "../x", "a b", None, 5):
        with pytest.raises(InvalidParameter):
            parse_remap(bad)  # type: ignore[arg-type]


def test_parse_subid_by_name_or_uid_in_file_order():
    text = "# comment\nbob:1:5\ndockremap:100000:65536\n1001:300000:10\ndockremap:200000:5\nbad\nx:y:z\n"
    assert parse_subid(text, ("dockremap",)) == [(100000, 65536), (200000, 5)]
    assert parse_subid(text, ("carol", "1001")) == [(300000, 10)]
    assert parse_subid("dockremap:-1:5\ndockremap:5:0\ndockremap:4294967290:100\n", ("dockremap",)) == []


def test_ranges_are_consecutive_container_ids():
    r = ranges_from_subid([(100000, 65536), (200000, 5)], "uid", "u")
    assert r == (IdRange(0, 100000, 65536), IdRange(65536, 200000, 5))
    with pytest.raises(InvalidParameter, match="no subordinate uid ranges"):
        ranges_from_subid([], "uid", "u")
    with pytest.raises(InvalidParameter, match="too many"):
        ranges_from_subid([(i * 10 + 100000, 1) for i in range(400)], "uid", "u")


def test_translation_both_ways_and_unmapped():
    m = IdMap((IdRange(0, 100000, 65536), IdRange(65536, 200000, 5)),
              (IdRange(0, 300000, 10),))
    assert m.root == (100000, 300000)
    assert m.to_host(5, 9) == (100005, 300009)
    assert m.to_host(65538, 0) == (200002, 300000)
    assert m.to_container(200004, 300001) == (65540, 1)
    with pytest.raises(InvalidParameter, match="uid 70000 is not mapped"):
        m.to_host(70000, 0)
    with pytest.raises(InvalidParameter, match="gid 10 is not mapped"):
        m.to_host(0, 10)
    with pytest.raises(InvalidParameter):
        m.to_container(0, 300000)
    assert m.key() == "100000.300000"
    assert m.uid_map_text() == "0 100000 65536\n65536 200000 5\n"
    assert m.oci()["gidMappings"] == [{"containerID": 0, "hostID": 300000, "size": 10}]
    assert IdMap.from_json(m.to_json()) == m
    assert parse_proc_map("         0     100000      65536\n") == (IdRange(0, 100000, 65536),)


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_round_trip(uid, gid):
    m = IdMap((IdRange(0, 100000, 65536),), (IdRange(0, 165536, 65536),))
    assert m.to_container(*m.to_host(uid, gid)) == (uid, gid)


def test_free_range_skips_used():
    assert free_range([""]) == 100000
    assert free_range(["a:100000:65536\n", "b:165536:10\n"]) == 165546
    assert free_range(["a:0:99999\nb:300000:5\n"]) == 100000
    assert free_range(["a:120000:10\n"]) == 120010
    with pytest.raises(InvalidParameter):
        free_range(["a:100000:4294867000\n"])
