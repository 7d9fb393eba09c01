"""Fuzz: COPY over hostile trees. Contexts and image rootfs full of symlinks pointing out
(absolute, `..` chains, loops), sources and destinations with `..`, wildcards and links: the
plan and the layer either succeed or raise InvalidParameter, and a layer never holds a byte of
any file outside the source root, never names a path that climbs out, and never a whiteout."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile

from hypothesis import HealthCheck, given, settings, strategies as st

from sampan.build.copy import plan_copy, write_copy_layer
from sampan.errors import InvalidParameter

SECRET = b"HOST-SECRET-" + os.urandom(8).hex().encode()

_PATHS = st.sampled_from(["a", "b/c", "b/d", "e", "f/g/h", "l1", "b/l2", "f/l3", "loop"])
_LINKS = st.sampled_from(["/", "/etc", "..", "../..", "../outside", "../outside/secret",
                          "../../../../../outside/secret", "a", "b", "/b/c", "f/g", "loop",
                          "l1", "/../outside", "b/../../outside"])
_TREE = st.lists(st.tuples(_PATHS, st.sampled_from(["file", "dir", "link"]), _LINKS),
                 min_size=1, max_size=10)
_SOURCES = st.lists(st.sampled_from(["a", "b", "b/c", ".", "*", "b/*", "l1", "b/l2", "f/l3/h",
                                     "../outside/secret", "f/../../x", "/a", "./b", "loop",
                                     "l1/c", "?", "[ab]"]), min_size=1, max_size=3)
_DESTS = st.sampled_from(["/x", "/x/", ".", "rel/", "/l1/", "/b/l2/z", "/../../x", "/loop/"])


def _make(root, tree):
    root.mkdir(parents=True, exist_ok=True)
    for path, kind, target in tree:
        p = root / path
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(p):
                continue
            if kind == "file":
                p.write_bytes(b"inside:" + path.encode())
            elif kind == "dir":
                p.mkdir()
            else:
                os.symlink(target, p)
        except OSError:
            continue  # a parent became a file or a link: fine, the tree is just smaller


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TREE, _TREE, _SOURCES, _DESTS, st.booleans())
def test_copy_never_reads_outside(ctx_tree, img_tree, sources, dest, from_image):
    top = tempfile.mkdtemp(prefix="copyfuzz-")
    try:
        from pathlib import Path
        base = Path(top)
        (base / "outside").mkdir()
        (base / "outside/secret").write_bytes(SECRET)
        src = base / "ctx"
        img = base / "img"
        _make(src, ctx_tree)
        _make(img, img_tree)
        out = base / "layer.tar"
        try:
            plan = plan_copy(src, sources, dest, workdir="/w", add=False,
                             follow_from_image=from_image)
            plan.cache_key()
            write_copy_layer(plan, out, dest_rootfs=img)
        except InvalidParameter:
            return
        with tarfile.open(out) as t:
            for m in t:
                assert not m.name.startswith("/") and ".." not in m.name.split("/"), m.name
                assert not m.name.rsplit("/", 1)[-1].startswith(".wh."), m.name
                if m.isreg():
                    data = t.extractfile(m).read()
                    assert SECRET not in data, m.name
                    assert data.startswith(b"inside:"), (m.name, data)
        assert (base / "outside/secret").read_bytes() == SECRET
        assert sorted(os.listdir(base / "outside")) == ["secret"]
    finally:
        shutil.rmtree(top, ignore_errors=True)
