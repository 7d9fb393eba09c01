"""`GET /containers/json`: Docker's filters over the container records, and sizes."""

from __future__ import annotations

import os
import re
import fnmatch
from typing import Any

from ..errors import InvalidParameter
from .container import Container

FILTER_KEYS = ("id", "name", "label", "status", "ancestor", "exited", "before", "since", "health",
               "network", "volume", "publish", "expose", "isolation", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def list_containers(svc: Any, all: bool, limit: int | None, size: bool,  # noqa: A002
                    filters: dict[str, list[str]]) -> list[dict]:
    for key in filters:
        if key not in FILTER_KEYS:
            raise InvalidParameter(f"invalid filter '{key}'")
    # Values are checked up front, so a bad filter is an error even when nothing is listed.
    for v in filters.get("status", []):
        if v not in STATUSES:
            raise InvalidParameter(f"Invalid filter 'status={v}'")
    for v in filters.get("health", []):
        if v not in ("starting", "healthy", "unhealthy", "none"):
            raise InvalidParameter(f"Unrecognised filter value for health: {v}")
    for v in filters.get("exited", []):
        if not v.lstrip("-").isdigit():
            raise InvalidParameter(f"Invalid filter 'exited={v}'")
    cs = sorted(svc.all(), key=lambda c: c.created, reverse=True)
    if "before" in filters:
        ref = svc.get(filters["before"][0])
        cs = [c for c in cs if c.created < ref.created]
    if "since" in filters:
        ref = svc.get(filters["since"][0])
        cs = [c for c in cs if c.created > ref.created]
    out = []
    for c in cs:
        # As dockerd (daemon/list.go): a positive limit or a status filter includes stopped
        # containers; docker-py sends limit=-1 for "no limit".
        if (not all and not c.state.Running and c.state.Status != "restarting"
                and not (limit and limit > 0) and "status" not in filters):
            continue
        if not matches(svc, c, filters):
            continue
        out.append(c)
    if limit and limit > 0:
        out = out[:limit]
    nets = svc.engine.networks
    res = []
    for c in out:
        item = c.summary(size_of(c) if size else None)
        item["Ports"], item["NetworkSettings"] = nets.summary(c)
        res.append(item)
    return res


def matches(svc: Any, c: Container, f: dict[str, list[str]]) -> bool:
    if "id" in f and not any(c.id.startswith(v) for v in f["id"]):
        return False
    if "name" in f and not any(_name_match(v, c.name) for v in f["name"]):
        return False
    if "status" in f and c.state.Status not in f["status"]:
        return False
    if "health" in f and ((c.state.Health or {}).get("Status") or "none") not in f["health"]:
        return False
    if "exited" in f:
        if c.state.Status != "exited" or str(c.state.ExitCode) not in f["exited"]:
            return False
    if "label" in f and not match_labels(c, f["label"]):
        return False
    if "volume" in f and not any(m.get("Name") in f["volume"] or m.get("Source") in f["volume"]
                                 or m.get("Destination") in f["volume"] for m in c.mounts):
        return False
    if "ancestor" in f and not any(_is_ancestor(svc, c, v) for v in f["ancestor"]):
        return False
    if not svc.engine.networks.matches(c, f):
        return False
    return True


def _is_ancestor(svc: Any, c: Container, v: str) -> bool:
    if v == c.image or c.image_id.startswith(v) or c.image_id.startswith("sha256:" + v):
        return True
    try:
        return svc.images.lookup_id(v) == c.image_id
    except Exception:  # noqa: BLE001 - an unknown image matches nothing
        return False


def match_labels(c: Container, wanted: list[str]) -> bool:
    labels = c.config.get("Labels") or {}
    for w in wanted:
        k, sep, v = w.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    return True


def _name_match(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern.lstrip("/"), name) is not None
    except re.error:
        return fnmatch.fnmatch(name, pattern)


def size_of(c: Container) -> dict[str, int]:
    rw = _du(c.upper_dir)
    return {"SizeRw": rw, "SizeRootFs": rw + sum(_du(d) for d in c.lower_dirs)}


def _du(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total
