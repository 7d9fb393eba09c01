"""The engine's event call sites that need more than one line: what dockerd logs for networks
and volumes around a container's start and exit, and for pull and push.

Each takes the engine (or the event service) and never raises: losing an event must not fail
the action it reports. As dockerd:

- network `connect` (Actor.ID = network ID, `name`, `type` = the driver, `container`) for each
  network a container joins when it starts (also `host` and `none`, whose types are `host` and
  `null`); `disconnect` likewise when it exits (daemon/container_operations.go).
- volume `mount` (`driver`, `container`, `destination`, `read/write`, `propagation`) for each
  named or anonymous volume at start (daemon/volumes_unix.go setupMounts); `unmount`
  (`driver`, `container`) at exit (container.UnmountVolumes).
- image `pull` / `push`: Actor.ID = the familiar reference with its tag
  (`busybox:latest`), `name` = the familiar name (`busybox`), plus the image's labels
  (daemon/images LogImageEvent).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("sampan.events")


def _events(engine: Any) -> Any:
    return getattr(engine, "events", None)


def _networks(engine: Any, c: Any) -> list[tuple[str, str, str]]:
    """(network ID, name, driver) of each network the container is on."""
    nets = getattr(engine, "networks", None)
    if nets is None:
        return []
    out = []
    for name, entry in (nets.networks_of(c) or {}).items():
        nid = entry.get("NetworkID") or ""
        rec = getattr(getattr(nets, "store", None), "networks", {}).get(nid) or {}
        out.append((nid, name, rec.get("Driver") or "bridge"))
    return out


def network_joined(engine: Any, c: Any) -> None:
    """The container started: `connect` for each of its networks."""
    _network_event(engine, c, "connect")


def network_left(engine: Any, c: Any) -> None:
    """The container exited (or its start was undone): `disconnect` for each network."""
    _network_event(engine, c, "disconnect")


def _network_event(engine: Any, c: Any, action: str) -> None:
    ev = _events(engine)
    if ev is None:
        return
    try:
        for nid, name, driver in _networks(engine, c):
            ev.network(nid, action, name, driver, container=c.id)
    except Exception:  # noqa: BLE001 - an event lost, the action goes on
        log.exception("network %s events of %s", action, c.id)


def _volume_mounts(c: Any) -> list[dict]:
    return [m for m in getattr(c, "mounts", None) or [] if m.get("Type") == "volume" and m.get("Name")]


def volumes_mounted(engine: Any, c: Any) -> None:
    ev = _events(engine)
    if ev is None:
        return
    try:
        for m in _volume_mounts(c):
            ev.volume(m["Name"], "mount", m.get("Driver") or "local", container=c.id,
                      destination=m.get("Destination") or "",
                      **{"read/write": "true" if m.get("RW", True) else "false",
                         "propagation": m.get("Propagation") or ""})
    except Exception:  # noqa: BLE001
        log.exception("volume mount events of %s", c.id)


def volumes_unmounted(engine: Any, c: Any) -> None:
    ev = _events(engine)
    if ev is None:
        return
    try:
        for m in _volume_mounts(c):
            ev.volume(m["Name"], "unmount", m.get("Driver") or "local", container=c.id)
    except Exception:  # noqa: BLE001
        log.exception("volume unmount events of %s", c.id)


def image_transferred(events: Any, images: Any, action: str, ref: Any, image_id: str) -> None:
    """`pull` or `push` of `ref` (a sampan.reference.Reference) done; safe from a worker
    thread (EventService.emit hands the event to the loop)."""
    if events is None:
        return
    try:
        shown = ref.familiar()
        labels: dict[str, str] = {}
        try:
            cfg = images.resolve(image_id).config.get("config") or {}
            labels = {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()}
        except Exception:  # noqa: BLE001 - no labels then
            pass
        events.image(shown, action, ref.familiar_name, labels)
    except Exception:  # noqa: BLE001
        log.exception("%s event of %s", action, ref)
