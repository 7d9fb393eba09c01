"""`--cache-from`: images (pulled, loaded) whose history can stand in for build steps.

An image built elsewhere has no parent links and no entries in this daemon's build cache, but
its history says what made each layer. As dockerd's classic builder (image/cache/cache.go): a
source image serves step N when its first N history entries and layers are exactly the
current image's and its entry N was made by the same command (`created_by`). The step's
image is then rebuilt from the parent plus that one history entry and layer, which exists
locally already as part of the source image.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import NotFound, SampanError


def _valid_parent(target: dict[str, Any], parent: dict[str, Any] | None) -> bool:
    th = target.get("history") or []
    if not th:
        return False
    if parent is None:
        return True
    ph = parent.get("history") or []
    pd = (parent.get("rootfs") or {}).get("diff_ids") or []
    td = (target.get("rootfs") or {}).get("diff_ids") or []
    if not ph and not pd:
        return True
    if len(ph) >= len(th) or len(pd) > len(td):
        return False
    return ph == th[:len(ph)] and pd == td[:len(pd)]


def _layer_at(target: dict[str, Any], index: int) -> str | None:
    """The diff ID made by history entry `index` (None for an empty_layer entry)."""
    hist = target.get("history") or []
    if hist[index].get("empty_layer"):
        return None
    n = sum(1 for h in hist[:index] if not h.get("empty_layer"))
    diffs = (target.get("rootfs") or {}).get("diff_ids") or []
    return diffs[n] if n < len(diffs) else None


def lookup(images: Any, sources: list[str], parent_id: str, parent: dict[str, Any] | None,
           created_by: str, result: dict[str, Any]) -> str | None:
    """The image for this step from a cache source, registered if need be; else None."""
    n = len((parent or {}).get("history") or [])
    for ref in sources:
        try:
            target_id = images.lookup_id(ref)
        except SampanError:
            continue  # dockerd only warns about a cache source it cannot find
        target = images.load_config(target_id)
        hist = target.get("history") or []
        if len(hist) <= n or not _valid_parent(target, parent if parent_id else None):
            continue
        if (hist[n].get("created_by") or "") != created_by:
            continue
        if len(hist) == n + 1:
            return target_id  # the source image itself is this step's result
        img = copy.deepcopy(result)
        img["history"] = list((parent or {}).get("history") or []) + [hist[n]]
        diffs = list(((parent or {}).get("rootfs") or {}).get("diff_ids") or [])
        layer = _layer_at(target, n)
        if layer is not None:
            diffs.append(layer)
        img["rootfs"] = {"type": "layers", "diff_ids": diffs}
        img["created"] = hist[n].get("created") or img.get("created")
        for k in ("architecture", "os", "variant"):
            if target.get(k):
                img[k] = target[k]
        try:
            return images.create_image(img, parent=parent_id or "")
        except NotFound:
            continue  # a layer of the source is not stored after all
    return None
