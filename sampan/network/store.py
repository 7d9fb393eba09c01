"""Networking state in SQLite: networks, attachments, endpoints, sandboxes.

- `networks`: one row per network (Docker's JSON plus our `bridge` name).
- `net_attachments`: what a container asked for on a network (aliases, --ip, links, MAC);
  kept while the container exists, running or not.
- `net_endpoints`: a running container's live presence on a network: its address (UNIQUE per
  network, so the database itself refuses a double allocation), MAC, veth name.
- `net_sandboxes`: a running container's namespace path and published ports.

Every change is one transaction; memory mirrors the tables for the hot paths (DNS, inspect).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from ..metadata import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS net_attachments (
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS net_endpoints (
    id TEXT PRIMARY KEY,
    container_id TEXT NOT NULL,
    network_id TEXT NOT NULL,
    address TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (network_id, address)
);
CREATE TABLE IF NOT EXISTS net_sandboxes (
    container_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"""


@dataclass
class Endpoint:
    id: str
    container_id: str
    network_id: str
    address: str
    prefixlen: int
    gateway: str
    mac: str
    host_veth: str
    ifname: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class Sandbox:
    container_id: str
    netns: str
    ports: list[dict] = field(default_factory=list)
    dns: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.migrate(SCHEMA)
        self.networks: dict[str, dict[str, Any]] = {}
        self.attachments: dict[str, dict[str, dict[str, Any]]] = {}   # cid -> nid -> cfg
        self._seq: dict[tuple[str, str], int] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.sandboxes: dict[str, Sandbox] = {}
        for r in db.query("SELECT data FROM networks"):
            n = json.loads(r["data"])
            self.networks[n["Id"]] = n
        for r in db.query("SELECT container_id, network_id, seq, data FROM net_attachments ORDER BY seq"):
            self.attachments.setdefault(r["container_id"], {})[r["network_id"]] = json.loads(r["data"])
            self._seq[(r["container_id"], r["network_id"])] = r["seq"]
        for r in db.query("SELECT data FROM net_endpoints"):
            e = Endpoint(**json.loads(r["data"]))
            self.endpoints[e.id] = e
        for r in db.query("SELECT data FROM net_sandboxes"):
            s = Sandbox(**json.loads(r["data"]))
            self.sandboxes[s.container_id] = s

    # -- networks ----------------------------------------------------------------------------
    def save_network(self, n: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO networks (id, name, data) VALUES (?, ?, ?)",
                         (n["Id"], n["Name"], json.dumps(n)))
        self.networks[n["Id"]] = n

    def delete_network(self, nid: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM networks WHERE id = ?", (nid,))
            conn.execute("DELETE FROM net_attachments WHERE network_id = ?", (nid,))
        self.networks.pop(nid, None)
        for att in self.attachments.values():
            att.pop(nid, None)

    # -- attachments -------------------------------------------------------------------------
    def attached(self, cid: str) -> list[tuple[str, dict[str, Any]]]:
        """(network id, config) in the order they were attached (the first is primary)."""
        att = self.attachments.get(cid, {})
        return sorted(att.items(), key=lambda kv: self._seq.get((cid, kv[0]), 0))

    def set_attachments(self, cid: str, items: list[tuple[str, dict[str, Any]]]) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM net_attachments WHERE container_id = ?", (cid,))
            for i, (nid, cfg) in enumerate(items):
                conn.execute("INSERT INTO net_attachments (container_id, network_id, seq, data) "
                             "VALUES (?, ?, ?, ?)", (cid, nid, i, json.dumps(cfg)))
        self.attachments[cid] = {nid: cfg for nid, cfg in items}
        for k in [k for k in self._seq if k[0] == cid]:
            del self._seq[k]
        for i, (nid, _) in enumerate(items):
            self._seq[(cid, nid)] = i

    def add_attachment(self, cid: str, nid: str, cfg: dict[str, Any]) -> None:
        items = self.attached(cid) + [(nid, cfg)]
        self.set_attachments(cid, items)

    def remove_attachment(self, cid: str, nid: str) -> None:
        self.set_attachments(cid, [(n, c) for n, c in self.attached(cid) if n != nid])

    def forget_container(self, cid: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM net_attachments WHERE container_id = ?", (cid,))
        self.attachments.pop(cid, None)
        for k in [k for k in self._seq if k[0] == cid]:
            del self._seq[k]

    # -- endpoints and sandboxes -------------------------------------------------------------
    def endpoints_of(self, cid: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.container_id == cid]

    def endpoints_on(self, nid: str) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.network_id == nid]

    def used_addresses(self, nid: str) -> set[str]:
        return {e.address for e in self.endpoints.values() if e.network_id == nid}

    def add_endpoints(self, eps: list[Endpoint], networks: list[dict[str, Any]],
                      sandbox: "Sandbox | None" = None) -> None:
        """Endpoints, the networks' allocation cursors (and the sandbox) in one transaction."""
        with self.db.transaction() as conn:
            if sandbox is not None:
                conn.execute("INSERT OR REPLACE INTO net_sandboxes (container_id, data) VALUES (?, ?)",
                             (sandbox.container_id, sandbox.to_json()))
            for e in eps:
                conn.execute("INSERT INTO net_endpoints (id, container_id, network_id, address, data) "
                             "VALUES (?, ?, ?, ?, ?)", (e.id, e.container_id, e.network_id, e.address, e.to_json()))
            for n in networks:
                conn.execute("UPDATE networks SET data = ? WHERE id = ?", (json.dumps(n), n["Id"]))
        for e in eps:
            self.endpoints[e.id] = e
        if sandbox is not None:
            self.sandboxes[sandbox.container_id] = sandbox

    def delete_endpoints(self, ids: list[str]) -> None:
        with self.db.transaction() as conn:
            for i in ids:
                conn.execute("DELETE FROM net_endpoints WHERE id = ?", (i,))
        for i in ids:
            self.endpoints.pop(i, None)

    def save_sandbox(self, s: Sandbox) -> None:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO net_sandboxes (container_id, data) VALUES (?, ?)",
                         (s.container_id, s.to_json()))
        self.sandboxes[s.container_id] = s

    def drop_sandbox(self, cid: str) -> None:
        """The sandbox and all its endpoints (their addresses freed) in one transaction."""
        ids = [e.id for e in self.endpoints_of(cid)]
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM net_sandboxes WHERE container_id = ?", (cid,))
            conn.execute("DELETE FROM net_endpoints WHERE container_id = ?", (cid,))
        self.sandboxes.pop(cid, None)
        for i in ids:
            self.endpoints.pop(i, None)

    def all_ports(self) -> Iterator[dict]:
        for s in self.sandboxes.values():
            yield from s.ports
