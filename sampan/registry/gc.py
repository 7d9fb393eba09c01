"""Registry garbage collection: mark every blob a manifest needs, sweep the rest.

Safe beside a running server (and pushes in flight): the mark and the sweep happen under the
storage's exclusive `gc.lock`, and every writer that makes a blob reachable (finishing an
upload, a cross-repository mount, a manifest put that checks its blobs) holds the shared
lock while it does, and touches those blobs. So a manifest is either committed before the
mark (and its blobs are marked) or after the sweep (and its blob check sees what the sweep
left, refusing the manifest rather than storing one with missing blobs). Blobs modified within
`grace` seconds are kept, so an image being pushed (blobs first, manifest last) is not
undone half-way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from ..distribution import manifest as mf
from .storage import Storage


@dataclass
class GCResult:
    marked: set[str] = field(default_factory=set)
    blobs: list[str] = field(default_factory=list)       # deleted (or would be)
    manifests: list[str] = field(default_factory=list)   # `repo@digest` deleted (untagged)
    freed: int = 0


def _children(st: Storage, digest: str) -> list[str]:
    try:
        with st.open_blob(digest) as f:
            raw = f.read(4 * 1024 * 1024 + 1)
        m = mf.parse(raw)
    except (OSError, ValueError, Exception):  # noqa: BLE001 - a non-manifest blob has no children
        return []
    return [d.digest for d in m.references()]


def _tagged(st: Storage, repo: str) -> set[str]:
    out = set()
    for t in st.tags(repo):
        try:
            out.add(st.resolve(repo, t))
        except Exception:  # noqa: BLE001 - a tag pointing at nothing keeps nothing
            pass
    return out


def collect(st: Storage, dry_run: bool = False, delete_untagged: bool = False,
            grace: float = 0.0) -> GCResult:
    res = GCResult()
    with st.gc_lock(exclusive=True):
        started = time.time()
        for repo in st.repositories():
            revisions = st.revisions(repo)
            keep_roots = set(revisions)
            if delete_untagged:
                tagged = _tagged(st, repo)
                # untagged manifests stay when a kept index or a referrer's subject needs them
                reach: set[str] = set()
                stack = list(tagged)
                while stack:
                    d = stack.pop()
                    if d in reach:
                        continue
                    reach.add(d)
                    stack += [c for c in _children(st, d) if c in revisions]
                for d in revisions:
                    sub = _subject(st, d)
                    if sub is not None and sub in reach:
                        reach.add(d)
                keep_roots = reach
                for d in sorted(set(revisions) - reach):
                    res.manifests.append(f"{repo}@{d}")
                    if not dry_run:
                        st.remove_revision(repo, d)
            for d in keep_roots:
                stack = [d]
                while stack:
                    x = stack.pop()
                    if x in res.marked:
                        continue
                    res.marked.add(x)
                    stack += _children(st, x)
        for digest, mtime in st.all_blobs():
            if digest in res.marked or mtime > started - grace:
                continue
            try:
                res.freed += st.blob_path(digest).stat().st_size
            except FileNotFoundError:
                continue
            res.blobs.append(digest)
            if not dry_run:
                st.remove_blob(digest)
        if not dry_run:
            for p in st.stale_uploads(older_than=max(grace, 7 * 24 * 3600)):
                p.unlink(missing_ok=True)
    return res


def _subject(st: Storage, digest: str) -> str | None:
    try:
        with st.open_blob(digest) as f:
            obj = json.loads(f.read(4 * 1024 * 1024))
        s = obj.get("subject") if isinstance(obj, dict) else None
        return s.get("digest") if isinstance(s, dict) else None
    except (OSError, ValueError):
        return None
