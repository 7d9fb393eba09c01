"""Remove every kernel object a daemon made: for test teardown and uninstall.

The daemon itself never does this on exit (containers outlive it, and so must their network),
so whoever throws a data root away calls `purge` with the roots it ran on.
"""

from __future__ import annotations

import json
import os
import sqlite3

from . import firewall, netlink
from .service import daemon_tag, table_name


def purge(data_root: str, exec_root: str) -> None:
    exec_root = os.path.realpath(exec_root)
    tag = daemon_tag(exec_root)
    bridges: list[str] = []
    veths: list[str] = []
    # A --userns-remap daemon keeps its database in <data-root>/<uid>.<gid>/ (sampan.userns).
    dbs = [os.path.join(data_root, "sampan.db")]
    try:
        dbs += [os.path.join(data_root, d, "sampan.db") for d in sorted(os.listdir(data_root))
                if d.replace(".", "").isdigit() and d.count(".") == 1]
    except OSError:
        pass
    for db in dbs:
        if not os.path.exists(db):
            continue
        conn = sqlite3.connect(db)
        try:
            for (data,) in conn.execute("SELECT data FROM networks"):
                b = json.loads(data).get("bridge")
                if b:
                    bridges.append(b)
            for (data,) in conn.execute("SELECT data FROM net_endpoints"):
                veths.append(json.loads(data)["host_veth"])
        except sqlite3.Error:
            pass
        finally:
            conn.close()
    try:
        firewall.remove(firewall.Ruleset(table_name(tag)))
    except Exception:  # noqa: BLE001 - no libnftables: nothing of ours can be there either
        pass
    for name in veths + bridges:
        try:
            netlink.delete_link(name)
        except Exception:  # noqa: BLE001
            pass
    netns_dir = os.path.join(exec_root, "netns")
    if os.path.isdir(netns_dir):
        for name in os.listdir(netns_dir):
            netlink.delete_netns(os.path.join(netns_dir, name))
        try:
            from ..linux import syscalls as sc
            sc.umount2(netns_dir, sc.MNT_DETACH)
        except OSError:
            pass


if __name__ == "__main__":
    import sys
    purge(sys.argv[1], sys.argv[2])
