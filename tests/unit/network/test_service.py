"""NetworkService's create-time validation and shapes, over a real SQLite file, no kernel."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pyroute2")

from sampan.errors import InvalidParameter, NotFound  # noqa: E402
from sampan.metadata import Database  # noqa: E402
from sampan.network.service import NetworkService, daemon_tag, parse_link, table_name  # noqa: E402


class _Containers:
    def __init__(self) -> None:
        self.known = {"web": SimpleNamespace(id="a" * 64, name="web")}

    def get(self, ref):
        if ref in self.known:
            return self.known[ref]
        raise NotFound(f"No such container: {ref}")

    def all(self):
        return list(self.known.values())


@pytest.fixture
def svc(tmp_path: Path) -> NetworkService:
    cfg = SimpleNamespace(exec_root=tmp_path / "run", extra={}, dns=[])
    engine = SimpleNamespace(config=cfg, db=Database(tmp_path / "db"), containers=_Containers())
    s = NetworkService(engine)
    s._ensure_builtin()
    rec = s._record("appnet", "bridge", [{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1"}], {}, {},
                    internal=False, bridge="br-test")
    s.store.save_network(rec)
    yield s
    s.close()


def test_builtin_networks_and_names(svc):
    names = {n["Name"]: n for n in svc.list({})}
    assert set(names) == {"bridge", "host", "none", "appnet"}
    assert names["bridge"]["Options"]["com.docker.network.bridge.name"].startswith("sampan-")
    assert "bridge" not in names["appnet"]  # our private field stays private
    assert svc.list({"type": ["custom"]})[0]["Name"] == "appnet"
    assert daemon_tag("/run/sampan") == "" and table_name("") == "sampan"
    with pytest.raises(InvalidParameter):
        svc.list({"bogus": ["1"]})


def test_validate_create_modes(svc):
    assert svc.validate_create({}, {"NetworkMode": "host"}, None) == []
    assert svc.validate_create({}, {"NetworkMode": "none"}, None) == []
    items = svc.validate_create({}, {"NetworkMode": "default"}, None)
    assert len(items) == 1 and items[0][0] == svc.bridge_network()["Id"]
    with pytest.raises(NotFound):
        svc.validate_create({}, {"NetworkMode": "nope"}, None)
    with pytest.raises(NotFound):
        svc.validate_create({}, {"NetworkMode": "container:ghost"}, None)
    with pytest.raises(InvalidParameter):
        svc.validate_create({}, {"NetworkMode": "container:web", "PortBindings": {"80/tcp": [{}]}}, None)
    with pytest.raises(InvalidParameter):
        svc.validate_create({"Hostname": "x"}, {"NetworkMode": "container:web"}, None)


def test_validate_create_endpoints(svc):
    items = svc.validate_create({"MacAddress": "92:d0:c6:0a:29:33"}, {"NetworkMode": "appnet"},
                                {"EndpointsConfig": {"appnet": {"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.5.0.9"}}}})
    cfg = items[0][1]
    assert cfg["Aliases"] == ["db"] and cfg["IPAMConfig"] == {"IPv4Address": "10.5.0.9"}
    assert cfg["MacAddress"] == "92:d0:c6:0a:29:33"
    bad = [
        {"EndpointsConfig": {"appnet": {"IPAMConfig": {"IPv4Address": "10.6.0.9"}}}},
        {"EndpointsConfig": {"appnet": {"IPAMConfig": {"IPv4Address": "10.5.0.1"}}}},
        {"EndpointsConfig": {"appnet": {"Aliases": "db"}}},
        {"EndpointsConfig": {"appnet": {"MacAddress": "zz"}}},
        {"EndpointsConfig": []},
        "nope",
    ]
    for b in bad:
        with pytest.raises(InvalidParameter):
            svc.validate_create({}, {"NetworkMode": "appnet"}, b)
    # aliases and fixed addresses are for user-defined networks only, as in Docker
    with pytest.raises(InvalidParameter):
        svc.validate_create({}, {"NetworkMode": "bridge"}, {"EndpointsConfig": {"bridge": {"Aliases": ["x"]}}})
    for host in ({"Dns": ["not-ip"]}, {"ExtraHosts": ["bad"]}, {"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}):
        with pytest.raises(InvalidParameter):
            svc.validate_create({}, dict(host, NetworkMode="default"), None)


def test_parse_link():
    assert parse_link("db:alias") == ("db", "alias")
    assert parse_link("/db:/web/alias") == ("db", "alias")
    assert parse_link("db") == ("db", "db")
    for bad in ("", ":x", None):
        with pytest.raises(InvalidParameter):
            parse_link(bad)
