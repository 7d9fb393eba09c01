"""EventService from a worker thread (pull/push run in one), and the engine's event hooks
(network connect/disconnect, volume mount/unmount, pull/push) on plain objects."""

from __future__ import annotations

import asyncio
import threading
import types

from sampan import reference as refs
from sampan.events import EventService, EventFilter, hooks
from sampan.metadata import Database


def test_emit_from_a_worker_thread_reaches_subscribers_in_order(tmp_path):
    bus = EventService(Database(tmp_path / "ev.db"))

    async def main():
        with bus.subscribe(EventFilter({"type": ["image"]})) as sub:
            loop = asyncio.get_running_loop()

            def worker():
                for i in range(50):
                    bus.emit("image", "pull", f"img{i}:latest", {"name": f"img{i}"})

            await loop.run_in_executor(None, worker)
            got = [await sub.get(2) for _ in range(50)]
        return got

    got = asyncio.run(main())
    assert [e["Actor"]["ID"] for e in got] == [f"img{i}:latest" for i in range(50)]
    times = [e["timeNano"] for e in got]
    assert times == sorted(set(times))  # strictly increasing
    bus.flush()
    assert len(bus.replay(1, 0, EventFilter({"event": ["pull"]}))) == 50  # stored too


def test_emit_from_a_thread_without_a_loop_still_records(tmp_path):
    bus = EventService(Database(tmp_path / "ev.db"))
    t = threading.Thread(target=lambda: bus.emit("volume", "create", "v1", {"driver": "local"}))
    t.start()
    t.join()
    assert [e["Actor"]["ID"] for e in bus.replay(1, 0)] == ["v1"]


class _Nets:
    def __init__(self, nets):
        self.store = types.SimpleNamespace(networks={n["Id"]: n for n in nets})
        self._nets = nets

    def networks_of(self, c):
        return {n["Name"]: {"NetworkID": n["Id"]} for n in self._nets}


def _engine(nets=()):
    return types.SimpleNamespace(events=EventService(), networks=_Nets(list(nets)))


def test_network_and_volume_hooks_shape_events_as_dockerd():
    eng = _engine([{"Id": "n" * 64, "Name": "none", "Driver": "null"},
                   {"Id": "b" * 64, "Name": "mynet", "Driver": "bridge"}])
    c = types.SimpleNamespace(id="c" * 64, mounts=[
        {"Type": "volume", "Name": "data", "Destination": "/d", "RW": False, "Propagation": "", "Driver": ""},
        {"Type": "bind", "Source": "/x", "Destination": "/x"},
        {"Type": "tmpfs", "Destination": "/t"}])
    hooks.volumes_mounted(eng, c)
    hooks.network_joined(eng, c)
    hooks.network_left(eng, c)
    hooks.volumes_unmounted(eng, c)
    evs = eng.events.replay(1, 0)
    assert [(e["Type"], e["Action"], e["Actor"]["ID"]) for e in evs] == [
        ("volume", "mount", "data"), ("network", "connect", "n" * 64), ("network", "connect", "b" * 64),
        ("network", "disconnect", "n" * 64), ("network", "disconnect", "b" * 64),
        ("volume", "unmount", "data")]
    assert evs[0]["Actor"]["Attributes"] == {"driver": "local", "container": c.id, "destination": "/d",
                                             "read/write": "false", "propagation": ""}
    assert evs[1]["Actor"]["Attributes"] == {"name": "none", "type": "null", "container": c.id}
    assert evs[-1]["Actor"]["Attributes"] == {"driver": "local", "container": c.id}


def test_hooks_never_raise():
    class Broken:
        def networks_of(self, c):
            raise RuntimeError("boom")
    eng = types.SimpleNamespace(events=EventService(), networks=Broken())
    c = types.SimpleNamespace(id="c", mounts=None)
    hooks.network_joined(eng, c)
    hooks.volumes_mounted(eng, c)
    hooks.network_left(types.SimpleNamespace(), c)  # no events at all: nothing to do
    assert eng.events.replay(1, 0) == []


def test_pull_push_event_actor_is_the_reference():
    bus = EventService()

    class Images:
        def resolve(self, image_id):
            return types.SimpleNamespace(config={"config": {"Labels": {"org.x": "1"}}})

    hooks.image_transferred(bus, Images(), "pull", refs.parse("busybox:latest"), "sha256:" + "a" * 64)
    hooks.image_transferred(bus, Images(), "push", refs.parse("127.0.0.1:5000/a/b:v1"), "sha256:" + "a" * 64)
    hooks.image_transferred(None, Images(), "push", refs.parse("x"), "y")  # no bus: nothing
    evs = bus.replay(1, 0)
    assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in evs] == [
        ("pull", "busybox:latest", {"org.x": "1", "name": "busybox"}),
        ("push", "127.0.0.1:5000/a/b:v1", {"org.x": "1", "name": "127.0.0.1:5000/a/b"})]
    assert evs[0]["id"] == "busybox:latest" and evs[0]["status"] == "pull"
