"""Facts about a build context that depend only on its bytes, kept across builds.

A rebuild whose context tar is byte-identical to an earlier one (the common no-op rebuild)
needs neither to unpack it nor to hash what COPY copies: the Dockerfile text and each COPY's
content key are remembered under the tar's sha256 (Builder.memo_key). In memory, per daemon:
a restart only costs the next build an unpack.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class Memo:
    """A small LRU of facts derived from context bytes (see Builder.run); per daemon, in
    memory: a restart only costs the first rebuild an unpack."""

    def __init__(self, size: int = 1024) -> None:
        from collections import OrderedDict
        self._d: Any = OrderedDict()
        self.size = size

    def get(self, key: tuple | None) -> Any:
        if key is None or key not in self._d:
            return None
        self._d.move_to_end(key)
        return self._d[key]

    def put(self, key: tuple | None, value: Any) -> None:
        if key is None:
            return
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)


def memo(engine: Any) -> Memo:
    m = getattr(engine, "build_memo", None)
    if m is None:
        m = engine.build_memo = Memo()
    return m


def pad_tar(path: Path) -> None:
    """The docker CLI's rewritten context (a Dockerfile from outside the context or stdin) ends
    right after its last member's data: no padding, no end-of-archive blocks. Go's reader
    accepts that; completing the archive lets a strict reader accept it too. Only plain tars
    are touched (compressed ones end with their own trailer)."""
    with open(path, "rb+") as f:
        head = f.read(512)
        if len(head) < 512 or head[257:262] != b"ustar":
            return
        size = f.seek(0, os.SEEK_END)
        if size % 512:
            f.write(b"\0" * (512 - size % 512) + b"\0" * 1024)
