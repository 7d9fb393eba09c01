"""Docker's JSON shapes for images: `/images/json`, `/images/{name}/json`, `/history`, filters."""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Any

from .. import reference as refs
from ..errors import InvalidParameter
from .timefmt import parse_until

if TYPE_CHECKING:
    from .service import ImageRecord, ImageService

LIST_FILTERS = {"dangling", "label", "before", "since", "reference", "until"}
PRUNE_FILTERS = {"dangling", "label", "label!", "until"}

# Docker's container Config as image inspect shows it: every key present.
_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None,
    "Cmd": None, "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
    "OnBuild": None, "Labels": None,
}


def _bool_filter(name: str, values: list[str]) -> bool:
    v = values[-1].lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise InvalidParameter(f"Invalid filter '{name}={values[-1]}'")


def _check_keys(filters: dict[str, list[str]], allowed: set[str]) -> None:
    for k in filters:
        if k not in allowed:
            raise InvalidParameter(f"invalid filter '{k}'")


def _labels_match(labels: dict[str, str], wanted: list[str], negate: bool = False) -> bool:
    for w in wanted:
        k, sep, v = w.partition("=")
        hit = k in labels and (not sep or labels[k] == v)
        if hit == negate:
            return False
    return True


def _familiar_match(pattern: str, full_ref: str) -> bool:
    """Docker's FamiliarMatch: the pattern against `name:tag` and against `name`."""
    fam = refs.familiar(full_ref)
    name = fam.split("@")[0]
    if "@" not in fam and ":" in name.rsplit("/", 1)[-1]:
        name = name[:name.rfind(":")]
    return fnmatch.fnmatchcase(fam, pattern) or fnmatch.fnmatchcase(name, pattern)


def _image_labels(svc: "ImageService", image_id: str) -> dict[str, str]:
    return (svc.load_config(image_id).get("config") or {}).get("Labels") or {}


def list_images(svc: "ImageService", all_: bool = False,
                filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    filters = filters or {}
    _check_keys(filters, LIST_FILTERS)
    dangling = _bool_filter("dangling", filters["dangling"]) if filters.get("dangling") else None
    before = since = until = None
    if filters.get("before"):
        before = svc.record(svc.lookup_id(filters["before"][-1])).created
    if filters.get("since"):
        since = svc.record(svc.lookup_id(filters["since"][-1])).created
    if filters.get("until"):
        until = parse_until(filters["until"][-1])
    patterns = filters.get("reference") or []
    rows = svc.db.query("SELECT * FROM images WHERE hidden = 0")
    parents = {r["parent"] for r in rows if r["parent"]}
    out: list[tuple[float, dict[str, Any]]] = []
    for row in rows:
        image_id = row["id"]
        if before is not None and not row["created"] < before:
            continue
        if since is not None and not row["created"] > since:
            continue
        if until is not None and not row["created"] < until:
            continue
        if filters.get("label") and not _labels_match(_image_labels(svc, image_id), filters["label"]):
            continue
        tags, digests = [], []
        for r in svc._refs_of(image_id):
            if patterns and not any(_familiar_match(p, r) for p in patterns):
                continue
            (digests if "@" in r else tags).append(refs.familiar(r))
        if not tags and not digests:
            if patterns or dangling is False:
                continue
            if not all_ and image_id in parents:
                continue  # an intermediate image: `docker images -a` shows it
        elif dangling is True and tags:
            continue
        labels = _image_labels(svc, image_id)
        out.append((row["created"], {
            "Containers": -1,
            "Created": int(row["created"]),
            "Id": image_id,
            "Labels": labels or None,
            "ParentId": row["parent"],
            "RepoDigests": digests,
            "RepoTags": tags,
            "SharedSize": -1,
            "Size": row["size"],
        }))
    out.sort(key=lambda x: (-x[0], x[1]["Id"]))  # newest first, by the precise time
    return [d for _, d in out]


def inspect(svc: "ImageService", ref: str) -> dict[str, Any]:
    rec = svc.resolve(ref)
    cfg = rec.config
    ccfg = dict(_CONFIG_DEFAULTS)
    ccfg.update(cfg.get("config") or {})
    dirs = [str(d) for d in rec.layer_dirs]
    graph: dict[str, Any] = {"Name": "overlay2", "Data": None}
    if dirs:
        data = {"UpperDir": dirs[0], "WorkDir": str(rec.layer_dirs[0].parent / "work"),
                "MergedDir": str(rec.layer_dirs[0].parent / "merged")}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(dirs[1:])
        graph["Data"] = data
    out: dict[str, Any] = {
        "Id": rec.id,
        "RepoTags": rec.repo_tags,
        "RepoDigests": rec.repo_digests,
        "Parent": rec.parent,
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": ccfg,
        "Architecture": cfg.get("architecture", ""),
        "Os": cfg.get("os", ""),
        "Size": rec.size,
        "GraphDriver": graph,
        "RootFS": {"Type": "layers", "Layers": rec.diff_ids},
        "Metadata": {"LastTagTime": rec.last_tag_time or "0001-01-01T00:00:00Z"},
    }
    if cfg.get("variant"):
        out["Variant"] = cfg["variant"]
    if cfg.get("os.version"):
        out["OsVersion"] = cfg["os.version"]
    return out


def history(svc: "ImageService", ref: str) -> list[dict[str, Any]]:
    from ..snapshots import chain_id
    from .timefmt import parse_rfc3339

    rec = svc.resolve(ref)
    items: list[dict[str, Any]] = []
    chain: str | None = None
    n = 0
    for h in rec.config.get("history") or []:
        size = 0
        if not h.get("empty_layer"):
            if n >= len(rec.diff_ids):
                raise InvalidParameter("too many non-empty layers in History section")
            chain = chain_id(chain, rec.diff_ids[n])
            n += 1
            try:
                size = svc.layers.get(chain).size
            except Exception:
                size = 0
        items.insert(0, {"Id": "<missing>", "Created": int(parse_rfc3339(h.get("created"))),
                         "CreatedBy": h.get("created_by", ""), "Tags": None, "Size": size,
                         "Comment": h.get("comment", "")})
    cur: ImageRecord | None = rec
    for item in items:
        if cur is None:
            break
        item["Id"] = cur.id
        item["Tags"] = cur.repo_tags or None
        try:
            cur = svc.record(cur.parent) if cur.parent else None
        except Exception:
            cur = None
    return items


def validate_prune_filters(filters: dict[str, list[str]]) -> bool:
    """-> dangling only?"""
    _check_keys(filters, PRUNE_FILTERS)
    if filters.get("until"):
        parse_until(filters["until"][-1])
    if filters.get("dangling"):
        return _bool_filter("dangling", filters["dangling"])
    return True


def image_matches_prune_filters(svc: "ImageService", image_id: str,
                                filters: dict[str, list[str]]) -> bool:
    row = svc.db.query_one("SELECT created FROM images WHERE id = ?", (image_id,))
    if row is None:
        return False
    if filters.get("until") and not row["created"] < parse_until(filters["until"][-1]):
        return False
    labels = _image_labels(svc, image_id)
    if filters.get("label") and not _labels_match(labels, filters["label"]):
        return False
    if filters.get("label!") and not _labels_match(labels, filters["label!"], negate=True):
        return False
    return True


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
