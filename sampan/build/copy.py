"""COPY and ADD: which files a step copies (the plan), its cache key, and its layer tar.

Docker's classic builder is the spec:
- a source is relative to the context root (a leading "/" or "./" is dropped); a path that
  climbs out of it lexically (`../x`) is refused ("forbidden path outside the build context");
  symlinks on the way are followed as in a chroot, so they can never lead outside either;
- wildcards follow Go's filepath.Match over the context's paths (`*` never crosses "/");
  no match at all is "no source files were specified";
- a directory source copies its contents, not the directory itself; symlinks inside it are
  copied as links, never followed;
- more than one source needs a destination ending in "/"; a relative destination is relative
  to WORKDIR; a destination that ends in "/" or is an existing directory in the image gets
  the source's base name appended;
- copied files keep their mode, mtime, hard links and extended attributes and belong to
  root (or to --chown); directories that do not exist yet (the destination of a directory
  source included) are made 0755 with the same owner;
- ADD extracts local tar archives (recognised by content: plain, gzip, bzip2, xz, zstd; a
  zstd one without the `zstandard` module is copied as is) into the destination with their
  own owners (a new destination is 0755 root, or takes the archive's "./" entry), and
  downloads http(s) URLs (never extracted, mode 0600, mtime from Last-Modified, optional
  --checksum);
- BuildKit's --parents and --exclude are supported as opt-in keyword arguments.

The cache key is a sha256 over exactly what the layer would hold, minus mtimes (as Docker's
classic builder, which hashes file headers without mtime and contents): paths relative to
the source, types, modes, xattrs, link targets, sizes, content digests, plus the destination
and flags.
Content digests are memoised by (device, inode, size, mtime, ctime), so a file is read once per
build however many steps copy it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidParameter
from .copy_paths import clean_rel, resolve_rel
from .dockerignore import filepath_match, go_clean, has_wildcards

_HASH_CACHE_MAX = 100_000  # ~25 MB at most; cleared whole when full (a build refills it)
_hash_cache: dict[tuple[int, int, int, int, int], str] = {}
_hash_lock = threading.Lock()


@dataclass
class CopyResult:
    tar_path: Path               # a layer tar (uncompressed) holding exactly what the step adds
    cache_key: str               # sha256 over the sources' content+metadata and dest/flags


@dataclass
class Entry:
    """One thing found under a source: `rel` is relative to the source ("" = the source itself)."""
    rel: str
    path: str                    # host path (inside src_root)
    st: os.stat_result
    link: str = ""               # symlink target


@dataclass
class Source:
    name: str                    # the source as written, cleaned (its base name names the copy)
    kind: str                    # "file", "dir", "archive" (ADD extracts it) or "url"
    path: Path                   # host path of the source (resolved inside src_root)
    entries: list[Entry] = field(default_factory=list)  # for "dir": everything below it
    url: str = ""
    prefix: str = ""             # COPY --parents: the source's parent path, kept under dest

    @property
    def base(self) -> str:
        b = self.name.rstrip("/").rsplit("/", 1)[-1]
        return b or "."


@dataclass
class CopyPlan:
    src_root: Path
    dest: str                    # absolute, cleaned, keeps a trailing "/"
    add: bool
    sources: list[Source]
    chown: tuple[int, int] | None = None
    chmod: int | None = None
    tmp: Path | None = None      # our downloads (ADD URL), removed by cleanup()
    parents: bool = False        # COPY --parents
    exclude: tuple[str, ...] = ()  # COPY/ADD --exclude patterns (.dockerignore syntax)
    _key: str | None = None

    @property
    def cmd(self) -> str:
        return "ADD" if self.add else "COPY"

    def cache_key(self) -> str:
        """sha256 over what the copy would write (contents hashed once, memoised)."""
        if self._key is None:
            self._key = _plan_key(self)
        return self._key

    def cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


# -- content digests ---------------------------------------------------------------------------
def file_digest(path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
    """sha256 hex of a regular file's bytes, memoised on its identity and times (`st`, when
    the caller has just lstat'ed the file, saves opening it on a memo hit)."""
    if st is not None and stat.S_ISREG(st.st_mode):
        with _hash_lock:
            got = _hash_cache.get((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                                   st.st_ctime_ns))
        if got is not None:
            return got
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidParameter(f"{os.fspath(path)!r} is not a regular file")
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with _hash_lock:
            got = _hash_cache.get(key)
        if got is not None:
            return got
        with open(fd, "rb", closefd=False) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
    finally:
        os.close(fd)
    with _hash_lock:
        if len(_hash_cache) >= _HASH_CACHE_MAX:
            _hash_cache.clear()
        _hash_cache[key] = digest
    return digest


def remember_digest(st: os.stat_result, digest: str) -> None:
    """Record a digest computed elsewhere (the context stream) for the file `st` describes."""
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _hash_lock:
        if len(_hash_cache) >= _HASH_CACHE_MAX:
            _hash_cache.clear()
        _hash_cache[key] = digest


def _plan_key(plan: CopyPlan) -> str:
    h = hashlib.sha256()

    def put(*parts: object) -> None:
        for p in parts:
            b = str(p).encode("utf-8", "surrogateescape")
            h.update(len(b).to_bytes(4, "big"))
            h.update(b)

    put("sampan-copy-v1", plan.cmd, plan.dest, plan.chown, plan.chmod, plan.parents,
        plan.exclude)
    for src in plan.sources:
        put("source", src.kind, src.base, src.prefix)
        if src.kind in ("file", "archive", "url"):
            st = os.stat(src.path)
            put(stat.S_IMODE(st.st_mode) if src.kind != "url" else 0o600, st.st_size,
                file_digest(src.path))
            xa = read_xattrs(src.path) if src.kind == "file" else {}
            if xa:
                put("x", sorted(xa.items()))
            continue
        for e in src.entries:
            _entry_key(put, e)
    return "sha256:" + h.hexdigest()


def read_xattrs(path: str | os.PathLike[str]) -> dict[str, bytes]:
    """A file's extended attributes (file capabilities, ACLs...), as a layer tar carries them;
    overlay's own `trusted.overlay.*` bookkeeping is not content."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in sorted(names):
        if n.startswith("trusted.overlay."):
            continue
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            continue
    return out


def _entry_key(put, e: Entry) -> None:  # type: ignore[no-untyped-def]
    mode = e.st.st_mode
    perm = stat.S_IMODE(mode)
    if stat.S_ISREG(mode):
        put("f", e.rel, perm, e.st.st_size, file_digest(e.path, e.st))
        xa = read_xattrs(e.path)
        if xa:
            put("x", sorted(xa.items()))
    elif stat.S_ISDIR(mode):
        put("d", e.rel, perm)
        xa = read_xattrs(e.path)
        if xa:
            put("x", sorted(xa.items()))
    elif stat.S_ISLNK(mode):
        put("l", e.rel, e.link)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        put("n", e.rel, mode, e.st.st_rdev)


# -- walking -----------------------------------------------------------------------------------
def walk_tree(top: str) -> Iterator[Entry]:
    """Everything below `top` (depth-first, name-sorted, symlinks not followed; sockets
    skipped as Docker's tar does), paths relative to `top`."""
    stack: list[tuple[str, str]] = [("", top)]
    while stack:
        rel, path = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            raise InvalidParameter(f"cannot read {rel or '.'}: {err.strerror}") from None
        subdirs: list[tuple[str, str]] = []
        for d in entries:
            r = f"{rel}/{d.name}" if rel else d.name
            st = d.stat(follow_symlinks=False)
            if stat.S_ISSOCK(st.st_mode):
                continue
            link = os.readlink(d.path) if stat.S_ISLNK(st.st_mode) else ""
            yield Entry(r, d.path, st, link)
            if stat.S_ISDIR(st.st_mode):
                subdirs.append((r, d.path))
        stack.extend(reversed(subdirs))


def _wildcard_matches(root: str, pattern: str) -> list[str]:
    """Paths under root matching pattern (Go filepath.Match), in Docker's walk order. A match
    has as many components as the pattern, so the walk stops at that depth."""
    depth = pattern.count("/") + 1
    out: list[str] = []
    stack: list[tuple[str, str, int]] = [("", root, 1)]
    while stack:
        rel, path, level = stack.pop()
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        subdirs = []
        for d in entries:
            r = f"{rel}/{d.name}" if rel else d.name
            if filepath_match(pattern, r):
                out.append(r)
            if level < depth and d.is_dir(follow_symlinks=False):
                subdirs.append((r, d.path, level + 1))
        stack.extend(reversed(subdirs))
    return out


# -- planning ----------------------------------------------------------------------------------
def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def normalize_dest(workdir: str, dest: str) -> str:
    """Docker's normalizeDest: relative to WORKDIR, cleaned, a trailing "/" kept."""
    if not dest:
        raise InvalidParameter("destination path cannot be empty")
    slash = dest.endswith("/") or dest.endswith("/.") or dest in (".", "..")
    full = dest if dest.startswith("/") else "/" + (workdir or "/").strip("/") + "/" + dest
    full = go_clean(full)
    if slash and not full.endswith("/"):
        full += "/"
    return full


def plan_copy(src_root: Path, sources: list[str], dest: str, *, workdir: str, add: bool,
              follow_from_image: bool = False, chown: tuple[int, int] | None = None,
              chmod: int | None = None, tmp_dir: Path | None = None,
              checksum: str | None = None, parents: bool = False,
              exclude: list[str] | None = None) -> CopyPlan:
    """Resolve the sources of a COPY/ADD against src_root (the context, or with
    follow_from_image a stage's/image's rootfs) and decide the destination.

    ADD URLs are downloaded here (into tmp_dir, or a private temp dir), since their content is
    part of the cache key; call plan.cleanup() when done. Errors are InvalidParameter with
    Docker's messages, prefixed "COPY failed: " / "ADD failed: ".

    BuildKit's `--parents` keeps each source's parent path under dest (a "/./" in a source
    marks where the kept part starts); `--exclude` patterns (.dockerignore syntax) drop
    matching files: paths below a directory source are matched relative to it, a file
    source by its path and its base name."""
    cmd = "ADD" if add else "COPY"
    root = Path(src_root)
    plan = CopyPlan(root, normalize_dest(workdir, dest), add, [], chown, chmod,
                    parents=parents, exclude=tuple(exclude or ()))
    if parents and not plan.dest.endswith("/"):
        plan.dest += "/"  # the kept parents always go below dest
    try:
        for raw in sources:
            if is_url(raw):
                if not add:
                    raise InvalidParameter(f"{cmd} failed: source can't be a URL for COPY")
                from .copy_fetch import fetch_url
                if plan.tmp is None:
                    if tmp_dir is not None:
                        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
                    plan.tmp = Path(tempfile.mkdtemp(prefix="build-add-", dir=tmp_dir))
                where = Path(tempfile.mkdtemp(dir=plan.tmp))
                got = fetch_url(raw, where, checksum)
                plan.sources.append(Source(got.name, "url", got, url=raw))
                continue
            if checksum and add:
                raise InvalidParameter(f"{cmd} failed: checksum can't be specified for non-HTTP(S) sources")
            _add_local(plan, raw, follow_from_image)
        if not plan.sources:
            raise InvalidParameter(f"{cmd} failed: no source files were specified")
        if len(plan.sources) > 1 and not plan.dest.endswith("/"):
            raise InvalidParameter(
                f"When using {cmd} with more than one source file, the destination must be a "
                "directory and end with a /")
    except BaseException:
        plan.cleanup()
        raise
    return plan


def _add_local(plan: CopyPlan, raw: str, from_image: bool) -> None:
    p = raw
    if p.startswith("/"):
        p = p[1:]
    if p.startswith("./"):
        p = p[2:]
    pivot = ""
    if plan.parents and "/./" in "/" + p:
        pivot = clean_rel(("/" + p).split("/./", 1)[0])
    if has_wildcards(p):
        pattern = p.replace("/./", "/", 1) if pivot else p  # Docker matches it as written
        for rel in _wildcard_matches(os.fspath(plan.src_root), pattern):
            _add_one(plan, rel, from_image, pivot)
        return
    _add_one(plan, p, from_image, pivot)


def _excluded(plan: CopyPlan, rel: str) -> bool:
    if not plan.exclude:
        return False
    from .dockerignore import IgnoreMatcher
    m = IgnoreMatcher(list(plan.exclude))
    return m.ignored(rel) or m.ignored(rel.rsplit("/", 1)[-1])


def _add_one(plan: CopyPlan, p: str, from_image: bool, pivot: str = "") -> None:
    cleaned = go_clean(p)
    if cleaned == ".." or cleaned.startswith("../"):
        raise InvalidParameter(
            f"{plan.cmd} failed: forbidden path outside the build context: {p} ()")
    rel = resolve_rel(plan.src_root, cleaned)
    full = plan.src_root / rel if rel else plan.src_root
    try:
        st = os.stat(full, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is None or stat.S_ISLNK(st.st_mode):  # a dangling link resolves to nothing
        if from_image:
            raise InvalidParameter(f"{plan.cmd} failed: stat {p}: file does not exist")
        raise InvalidParameter(
            f"{plan.cmd} failed: file not found in build context or excluded by .dockerignore: "
            f"stat {p}: file does not exist")
    name = clean_rel(cleaned) or "."
    prefix = ""
    if plan.parents:
        kept = clean_rel(cleaned)
        if pivot and (kept + "/").startswith(pivot + "/"):
            kept = kept[len(pivot) + 1:]
        prefix = kept.rsplit("/", 1)[0] if "/" in kept else ""
        if stat.S_ISDIR(st.st_mode):
            prefix = kept  # a directory keeps its own path too
    if not stat.S_ISDIR(st.st_mode) and _excluded(plan, name):
        return
    if stat.S_ISDIR(st.st_mode):
        src = Source(name, "dir", full, prefix=prefix)
        walked = walk_tree(os.fspath(full))
        if plan.exclude:
            from .dockerignore import IgnoreMatcher
            m = IgnoreMatcher(list(plan.exclude))
            walked = (e for e in walked if not m.ignored(e.rel))
        src.entries = [Entry("", os.fspath(full), st)] + list(walked)
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
        if plan.add:
            from .copy_layer import is_archive
            if is_archive(full):
                kind = "archive"
        src = Source(name, kind, full, prefix=prefix)
    else:
        src = Source(name, "file", full, [Entry("", os.fspath(full), st)])
        src.kind = "special"
    plan.sources.append(src)


__all__ = ["CopyPlan", "CopyResult", "Entry", "Source", "file_digest", "normalize_dest",
           "plan_copy", "read_xattrs", "remember_digest", "walk_tree"]


def __getattr__(name: str):  # the layer writers live in copy_layer.py / copy_fetch.py
    if name in ("write_copy_layer", "write_heredoc_layer", "is_archive"):
        from . import copy_layer
        return getattr(copy_layer, name)
    if name in ("fetch_url", "resolve_chown"):
        from . import copy_fetch
        return getattr(copy_fetch, name)
    raise AttributeError(name)
