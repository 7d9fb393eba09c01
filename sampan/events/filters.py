"""Docker's event filters (moby daemon/events/filter.go), and `since`/`until` parsing.

A filter key that is given must match; keys not given match everything. Within one key any
value may match. `container`, `network`, `volume`, `daemon` match an actor's ID by prefix or its
`name` attribute; `image` matches the ID or name, with or without the tag; `event` matches the
action (the part before `: ` for `exec_start: sh`, `health_status: healthy`); `label` is
`key` or `key=value` against the attributes.
"""

from __future__ import annotations

import re
import time
from typing import Any

from ..errors import InvalidParameter

KEYS = ("container", "event", "image", "label", "type", "volume", "network", "daemon",
        "plugin", "scope", "node", "service", "secret", "config")
_FUZZY_ACTIONS = {"health_status", "exec_create", "exec_start"}


def validate_filters(filters: dict[str, list[str]]) -> None:
    for key in filters:
        if key not in KEYS:
            raise InvalidParameter(f"invalid filter '{key}'")
    # As dockerd: only the keys are checked; an unknown type or scope just matches nothing.


def _strip_tag(ref: str) -> str:
    """`busybox:latest` -> `busybox`; a registry port (`host:5000/x`) is not a tag."""
    if "@" in ref:
        ref = ref.split("@", 1)[0]
    slash, colon = ref.rfind("/"), ref.rfind(":")
    return ref[:colon] if colon > slash else ref


class EventFilter:
    def __init__(self, filters: dict[str, list[str]] | None = None) -> None:
        self.f = {k: list(v) for k, v in (filters or {}).items() if v}
        validate_filters(self.f)

    def _exact(self, key: str, value: str | None) -> bool:
        vals = self.f.get(key)
        return vals is None or (value is not None and value in vals)

    def _fuzzy(self, key: str, value: str | None) -> bool:
        vals = self.f.get(key)
        return vals is None or (bool(value) and any(value == v or value.startswith(v) for v in vals))

    def _fuzzy_name(self, key: str, ev: dict) -> bool:
        if key not in self.f:
            return True
        actor = ev.get("Actor") or {}
        return (self._fuzzy(key, actor.get("ID")) or
                self._fuzzy(key, (actor.get("Attributes") or {}).get("name")))

    def _event(self, action: str) -> bool:
        vals = self.f.get("event")
        if vals is None:
            return True
        if any(v in _FUZZY_ACTIONS for v in vals):
            return any(action == v or action.startswith(v) for v in vals)
        return action in vals

    def _image(self, ev: dict) -> bool:
        vals = self.f.get("image")
        if vals is None:
            return True
        actor = ev.get("Actor") or {}
        attrs = actor.get("Attributes") or {}
        name = attrs.get("name" if ev.get("Type") == "image" else "image") or ""
        ident = actor.get("ID") or ""
        cands = {ident, name, _strip_tag(ident), _strip_tag(name)} - {""}
        return any(c in vals for c in cands)

    def _labels(self, attrs: dict[str, str]) -> bool:
        for want in self.f.get("label", []):
            k, eq, v = want.partition("=")
            if k not in attrs or (eq and attrs[k] != v):
                return False
        return True

    def include(self, ev: dict[str, Any]) -> bool:
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        return (self._event(ev.get("Action") or "")
                and self._exact("type", ev.get("Type"))
                and self._exact("scope", ev.get("scope") or "local")
                and self._fuzzy_name("daemon", ev)
                and self._fuzzy_name("container", ev)
                and self._fuzzy_name("plugin", ev)
                and self._fuzzy_name("volume", ev)
                and self._fuzzy_name("network", ev)
                and self._image(ev)
                and self._fuzzy_name("node", ev)
                and self._fuzzy_name("service", ev)
                and self._fuzzy_name("secret", ev)
                and self._fuzzy_name("config", ev)
                and self._labels(attrs))


_DUR = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_time_ns(value: str | None, now: float | None = None) -> int:
    """An API `since`/`until`: Unix seconds with an optional fraction (what the docker CLI
    sends), an RFC 3339 date, or a Go duration back from now. Empty: 0 (unbounded)."""
    from ..monitor.logfile import parse_rfc3339_nano

    if value is None or value == "":
        return 0
    v = value.strip()
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", v):
        sec, _, frac = v.partition(".")
        ns = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
        if ns < 0:
            raise InvalidParameter(f"invalid timestamp: {value!r}")
        return ns
    m = [(float(a), u) for a, u in _DUR.findall(v)]
    if m and "".join(a + u for a, u in _DUR.findall(v)) == v:
        secs = sum(a * _UNITS[u] for a, u in m)
        return int(((time.time() if now is None else now) - secs) * 1e9)
    try:
        return parse_rfc3339_nano(v if "T" in v else v + "T00:00:00Z")
    except ValueError:
        raise InvalidParameter(f"invalid timestamp: {value!r}") from None
