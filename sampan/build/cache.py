"""The build cache: (parent image, step signature) -> the image that step made.

A step's signature is what decides its result given its parent: the instruction after
substitution (plus the build args in effect for RUN), or for COPY/ADD the content hash of what
is copied. An entry is only a hint: it is used while the image it names still exists (a removed
image makes its entries dead, and `prune` drops them), so the cache never keeps an image alive
and never needs a reference count of its own.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable

from ..metadata import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS build_cache (
    parent   TEXT NOT NULL,
    key      TEXT NOT NULL,
    image_id TEXT NOT NULL,
    created  REAL NOT NULL,
    PRIMARY KEY (parent, key)
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
"""


def step_key(signature: str) -> str:
    return "sha256:" + hashlib.sha256(signature.encode("utf-8", "surrogateescape")).hexdigest()


class BuildCache:
    def __init__(self, db: Database, image_exists: Callable[[str], bool]) -> None:
        self.db = db
        self._exists = image_exists
        db.migrate(SCHEMA)

    def get(self, parent: str, signature: str) -> str | None:
        row = self.db.query_one("SELECT image_id FROM build_cache WHERE parent = ? AND key = ?",
                                (parent or "", step_key(signature)))
        if row is None:
            return None
        if not self._exists(row["image_id"]):
            self.db.execute("DELETE FROM build_cache WHERE parent = ? AND key = ?",
                            (parent or "", step_key(signature)))
            return None
        return row["image_id"]

    def put(self, parent: str, signature: str, image_id: str) -> None:
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO build_cache(parent, key, image_id, created) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(parent, key) DO UPDATE SET image_id = excluded.image_id, "
                       "created = excluded.created",
                       (parent or "", step_key(signature), image_id, time.time()))

    def forget_images(self, image_ids: list[str]) -> None:
        with self.db.transaction() as tx:
            for i in image_ids:
                tx.execute("DELETE FROM build_cache WHERE image_id = ? OR parent = ?", (i, i))

    def prune(self, all_: bool = False) -> tuple[list[str], int]:
        """Drop entries (all of them, or those whose image is gone); returns (keys, count)."""
        rows = self.db.query("SELECT parent, key, image_id FROM build_cache")
        dead = [(r["parent"], r["key"]) for r in rows if all_ or not self._exists(r["image_id"])]
        with self.db.transaction() as tx:
            for p, k in dead:
                tx.execute("DELETE FROM build_cache WHERE parent = ? AND key = ?", (p, k))
        return [k for _, k in dead], len(dead)

    def count(self) -> int:
        row = self.db.query_one("SELECT COUNT(*) AS n FROM build_cache")
        return int(row["n"]) if row else 0
