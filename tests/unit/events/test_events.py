"""EventService: Docker's message shape, ring + SQLite replay, filters, subscriptions."""

from __future__ import annotations

import asyncio
import json
import types

import pytest

from sampan.errors import InvalidParameter
from sampan.events import EventService, message
from sampan.events.filters import EventFilter, parse_time_ns
from sampan.metadata import Database


def _container(cid="c" * 64, name="web", image="busybox", labels=None):
    return types.SimpleNamespace(id=cid, name=name, image=image, config={"Labels": labels or {}})


def test_message_shape_matches_docker():
    ev = message("container", "die", "abc", {"image": "busybox", "name": "x", "exitCode": 3},
                 time_nano=1_700_000_000_123_456_789)
    assert ev == {"status": "die", "id": "abc", "from": "busybox", "Type": "container",
                  "Action": "die", "Actor": {"ID": "abc", "Attributes": {
                      "image": "busybox", "name": "x", "exitCode": "3"}},
                  "scope": "local", "time": 1_700_000_000, "timeNano": 1_700_000_000_123_456_789}
    net = message("network", "create", "n1", {"name": "net", "type": "bridge"})
    assert "status" not in net and "id" not in net and "from" not in net


def test_container_event_carries_labels_image_name_and_extras():
    bus = EventService()
    ev = bus.container(_container(labels={"app": "x"}), "kill", signal=9)
    assert ev["Actor"]["Attributes"] == {"app": "x", "image": "busybox", "name": "web", "signal": "9"}


def test_times_strictly_increase():
    bus = EventService()
    evs = [bus.emit("container", "start", str(i)) for i in range(200)]
    ts = [e["timeNano"] for e in evs]
    assert ts == sorted(set(ts))


def test_replay_from_sqlite_survives_a_new_service(tmp_path):
    db = Database(tmp_path / "s.db")
    bus = EventService(db, ring_size=4)
    evs = [bus.emit("container", "start", f"id{i}") for i in range(10)]
    bus.flush()
    # Older than the ring holds: read from SQLite.
    got = bus.replay(evs[0]["timeNano"], 0)
    assert [e["Actor"]["ID"] for e in got] == [f"id{i}" for i in range(10)]
    got = bus.replay(evs[3]["timeNano"], evs[5]["timeNano"])
    assert [e["Actor"]["ID"] for e in got] == ["id3", "id4", "id5"]
    db.close()
    db2 = Database(tmp_path / "s.db")
    bus2 = EventService(db2, ring_size=4)
    assert [e["Actor"]["ID"] for e in bus2.replay(1, 0)] == [f"id{i}" for i in range(10)]
    assert json.loads(json.dumps(bus2.replay(1, 0)[-1])) == evs[-1]


def test_sqlite_is_bounded(tmp_path):
    db = Database(tmp_path / "s.db")
    bus = EventService(db, ring_size=8, keep=50)
    for i in range(1200):
        bus.emit("image", "tag", f"i{i}")
    bus.flush()
    n = db.query_one("SELECT COUNT(*) AS n FROM events")["n"]
    assert n <= 250  # trimmed to `keep` at each 1000 written
    assert bus.replay(1, 0)[-1]["Actor"]["ID"] == "i1199"


def test_writes_are_batched_per_loop_turn(tmp_path):
    db = Database(tmp_path / "s.db")
    bus = EventService(db)

    async def burst():
        for i in range(500):
            bus.emit("container", "start", f"c{i}")
        assert db.query_one("SELECT COUNT(*) AS n FROM events")["n"] == 0
        await asyncio.sleep(0)
        return db.query_one("SELECT COUNT(*) AS n FROM events")["n"]

    assert asyncio.run(burst()) == 500


def test_subscription_gets_only_matching_events_and_loses_none():
    bus = EventService()

    async def go():
        with bus.subscribe(EventFilter({"type": ["container"]})) as sub:
            for i in range(5000):
                bus.emit("container" if i % 2 else "image", "x", str(i))
            got = []
            while not sub.queue.empty():
                got.append(sub.queue.get_nowait())
            return got

    got = asyncio.run(go())
    assert len(got) == 2500 and all(e["Type"] == "container" for e in got)
    assert not bus._subs


def ev(type_="container", action="start", id_="abcdef", **attrs):
    return message(type_, action, id_, attrs)


@pytest.mark.parametrize("filters,event,want", [
    ({"type": ["container"]}, ev(), True),
    ({"type": ["image"]}, ev(), False),
    ({"event": ["start"]}, ev(), True),
    ({"event": ["die"]}, ev(), False),
    ({"event": ["exec_start"]}, ev(action="exec_start: sh -c true"), True),
    ({"event": ["health_status"]}, ev(action="health_status: healthy"), True),
    ({"event": ["health_status: unhealthy"]}, ev(action="health_status: healthy"), False),
    ({"container": ["abc"]}, ev(), True),                 # ID prefix
    ({"container": ["web"]}, ev(name="web"), True),       # name
    ({"container": ["other"]}, ev(name="web"), False),
    ({"container": ["abc"]}, ev(type_="image", id_="sha256:1"), False),
    ({"image": ["busybox"]}, ev(image="busybox:latest"), True),   # tag stripped
    ({"image": ["busybox:latest"]}, ev(image="busybox:latest"), True),
    ({"image": ["alpine"]}, ev(image="busybox"), False),
    ({"image": ["busybox"]}, ev(type_="image", action="tag", id_="sha256:1", name="busybox:v1"), True),
    ({"image": ["localhost:5000/x"]}, ev(image="localhost:5000/x:1"), True),
    ({"label": ["app"]}, ev(app="1"), True),
    ({"label": ["app=1"]}, ev(app="1"), True),
    ({"label": ["app=2"]}, ev(app="1"), False),
    ({"label": ["app"]}, ev(), False),
    ({"volume": ["v1"]}, ev(type_="volume", action="create", id_="v1", driver="local"), True),
    ({"network": ["n"]}, ev(type_="network", action="create", id_="x1", name="n"), True),
    ({"type": ["container"], "event": ["die", "start"]}, ev(), True),
    ({"scope": ["local"]}, ev(), True),
    ({"scope": ["swarm"]}, ev(), False),
])
def test_filters(filters, event, want):
    assert EventFilter(filters).include(event) is want


def test_unknown_filter_key_is_refused():
    with pytest.raises(InvalidParameter, match="invalid filter 'bogus'"):
        EventFilter({"bogus": ["x"]})


def test_parse_time_ns():
    assert parse_time_ns("") == 0
    assert parse_time_ns("1700000000") == 1_700_000_000_000_000_000
    assert parse_time_ns("1700000000.5") == 1_700_000_000_500_000_000
    assert parse_time_ns("2023-11-14T22:13:20Z") == 1_700_000_000_000_000_000
    assert parse_time_ns("10m", now=1000.0) == 400_000_000_000
    for bad in ("yesterday", "10x", "-5", "1e9"):
        with pytest.raises(InvalidParameter):
            parse_time_ns(bad)
