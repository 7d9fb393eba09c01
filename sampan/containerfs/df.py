"""`GET /system/df`: what images, containers, volumes (and build cache) use on disk."""

from __future__ import annotations

import asyncio
from typing import Any


def _usage(engine: Any, types: set[str] | None) -> dict[str, Any]:
    want = (lambda t: types is None or t in types)
    out: dict[str, Any] = {"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [],
                           "BuildCache": []}
    if want("image"):
        images = engine.images.list_images(all=True)
        chain_count: dict[str, int] = {}
        chains_of: dict[str, list[str]] = {}
        for im in images:
            rec = engine.images.record(im["Id"])
            chains_of[im["Id"]] = list(rec.chain_ids)
            for ch in rec.chain_ids:
                chain_count[ch] = chain_count.get(ch, 0) + 1
        sizes: dict[str, int] = {}
        for ch in chain_count:
            try:
                sizes[ch] = engine.images.layers.get(ch).size
            except Exception:  # noqa: BLE001 - a layer being removed right now
                sizes[ch] = 0
        out["LayersSize"] = sum(sizes.values())
        for im in images:
            shared = sum(sizes[ch] for ch in chains_of[im["Id"]] if chain_count[ch] > 1)
            im = dict(im)
            im["SharedSize"] = shared
            im["Containers"] = len(engine.containers.users_of_image(im["Id"]))
            out["Images"].append(im)
    if want("container"):
        out["Containers"] = engine.containers.list(all=True, limit=None, size=True, filters={})
    if want("volume"):
        out["Volumes"] = engine.volumes.usage_data()
    return out


async def disk_usage(engine: Any, types: set[str] | None = None) -> dict[str, Any]:
    for t in types or ():
        if t not in ("container", "image", "volume", "build-cache"):
            from ..errors import InvalidParameter
            raise InvalidParameter(f"Unknown object type: {t}")
    # Sizes walk directories: off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, _usage, engine, types)
