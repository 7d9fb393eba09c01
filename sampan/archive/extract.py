"""Safe extraction of a layer tar into a directory.

Hostile tars are expected: every entry name is cleaned lexically (absolute names made
relative, `..` that would climb out refused), every parent directory is opened with
O_NOFOLLOW|O_DIRECTORY relative to its own parent's fd (so a symlink planted by an earlier
entry can never be written through, and no per-entry `realpath` is needed), leaves are created
with O_EXCL/O_NOFOLLOW or the `*at` calls, and hardlinks must name something inside the
layer. Docker whiteouts become overlayfs whiteouts (or deletions, in "apply" mode). The diff ID
is the sha256 of the uncompressed tar, computed in the same pass.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import Internal, InvalidParameter
from .compression import HashingReader, open_decompressed

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
MAX_NAME = 4096
MAX_DEPTH = 512
DEFAULT_MAX_ENTRY = 1 << 40  # 1 TiB: anything above is a lie in a header
_DIR_CACHE_MAX = 256
_COPY_CHUNK = 1024 * 1024

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_O_NEWFILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class ExtractResult:
    diff_id: str        # sha256 of the uncompressed tar stream
    tar_size: int       # bytes of the uncompressed tar stream
    content_size: int   # sum of regular file sizes (Docker's layer "size")
    entries: int


def clean_name(name: str) -> tuple[str, ...]:
    """Entry name -> path components inside the root; refuses anything that climbs out."""
    if len(name) > MAX_NAME or "\x00" in name:
        raise InvalidParameter(f"invalid tar entry name {name[:100]!r}...: too long or NUL")
    parts: list[str] = []
    for p in name.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise InvalidParameter(f"invalid tar entry {name!r}: path escapes the layer")
            parts.pop()
            continue
        parts.append(p)
    if len(parts) > MAX_DEPTH:
        raise InvalidParameter(f"invalid tar entry {name[:100]!r}: too deep")
    return tuple(parts)


def _os_error(name: str, e: OSError) -> Exception:
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
        return Internal(f"extracting {name}: {e.strerror}")
    return InvalidParameter(f"cannot extract {name!r}: {e.strerror or e}")


class _Tree:
    """Directory fds under a root, opened without following symlinks, with a small cache."""

    def __init__(self, root: Path) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cache: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        self.invalidate()
        os.close(self.root_fd)

    def invalidate(self) -> None:
        """After removing a directory: cached fds may now point at unlinked directories."""
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def dir_fd(self, parts: tuple[str, ...], create: bool) -> int:
        if not parts:
            return self.root_fd
        fd = self._cache.get(parts)
        if fd is not None:
            return fd
        if len(self._cache) >= _DIR_CACHE_MAX:
            self.invalidate()
        # Find the deepest cached ancestor, then walk down one openat at a time.
        i = len(parts) - 1
        while i > 0 and parts[:i] not in self._cache:
            i -= 1
        cur = self._cache[parts[:i]] if i > 0 else self.root_fd
        for j in range(i, len(parts)):
            name = parts[j]
            try:
                nfd = os.open(name, _O_DIR, dir_fd=cur)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=cur)
                nfd = os.open(name, _O_DIR, dir_fd=cur)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidParameter(
                        f"refusing to write through {'/'.join(parts[:j + 1])!r}: "
                        "it is a symlink or not a directory") from None
                raise
            self._cache[parts[:j + 1]] = nfd
            cur = nfd
        return cur


def _xattrs(ti: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for k, v in ti.pax_headers.items():
        if k.startswith("SCHILY.xattr."):
            name = k[len("SCHILY.xattr."):]
            # overlay's own attributes are ours to set; a layer must not smuggle redirects in
            if name.startswith("trusted.overlay."):
                continue
            out.append((name, v.encode("utf-8", "surrogateescape")))
    return out


class _Extractor:
    def __init__(self, dest: Path, whiteouts: str, max_entry: int, same_owner: bool) -> None:
        if whiteouts not in ("overlay", "apply"):
            raise ValueError(whiteouts)
        self.tree = _Tree(dest)
        self.whiteouts = whiteouts
        self.max_entry = max_entry
        self.same_owner = same_owner
        st = os.statvfs(dest)
        self.space_left = st.f_bavail * st.f_frsize
        self.dir_times: list[tuple[tuple[str, ...], int, int]] = []
        self.created: set[tuple[str, ...]] = set()  # for opaque dirs in apply mode
        self.content_size = 0
        self.entries = 0

    # -- helpers --------------------------------------------------------------------------------
    def _remove_existing(self, pfd: int, leaf: str, keep_dir: bool) -> bool:
        """Clear the way for a new entry; returns True when an existing dir is kept."""
        try:
            st = os.stat(leaf, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            shutil.rmtree(leaf, dir_fd=pfd)
            self.tree.invalidate()
        else:
            os.unlink(leaf, dir_fd=pfd)
        return False

    def _owner(self, ti: tarfile.TarInfo) -> tuple[int, int]:
        return (ti.uid, ti.gid) if self.same_owner else (-1, -1)

    def _set_meta_fd(self, fd: int, ti: tarfile.TarInfo) -> None:
        uid, gid = self._owner(ti)
        if uid >= 0:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, ti.mode & 0o7777)  # after chown, which clears set-id bits
        for name, value in _xattrs(ti):
            try:
                os.setxattr(fd, name, value)
            except OSError as e:
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def _times(self, ti: tarfile.TarInfo) -> tuple[int, int]:
        mtime = int(float(ti.mtime) * 1e9)
        atime = ti.pax_headers.get("atime")
        try:
            a = int(float(atime) * 1e9) if atime else mtime
        except ValueError:
            a = mtime
        return a, mtime

    # -- entries --------------------------------------------------------------------------------
    def entry(self, tar: tarfile.TarFile, ti: tarfile.TarInfo) -> None:
        parts = clean_name(ti.name)
        self.entries += 1
        if not parts:  # the root itself ("./"): take its metadata, keep the directory
            if ti.isdir():
                self._set_meta_fd(self.tree.root_fd, ti)
                self.dir_times.append(((), *self._times(ti)))
            return
        leaf = parts[-1]
        if leaf.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts)
            return
        pfd = self.tree.dir_fd(parts[:-1], create=True)
        if self.whiteouts == "apply":
            self.created.add(parts)
        if ti.isreg():
            self._file(tar, ti, pfd, leaf)
        elif ti.isdir():
            kept = self._remove_existing(pfd, leaf, keep_dir=True)
            if not kept:
                os.mkdir(leaf, 0o700, dir_fd=pfd)
            fd = os.open(leaf, _O_DIR, dir_fd=pfd)
            try:
                self._set_meta_fd(fd, ti)
            finally:
                os.close(fd)
            self.dir_times.append((parts, *self._times(ti)))
        elif ti.issym():
            self._remove_existing(pfd, leaf, keep_dir=False)
            os.symlink(ti.linkname, leaf, dir_fd=pfd)
            uid, gid = self._owner(ti)
            if uid >= 0:
                os.chown(leaf, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(leaf, ns=self._times(ti), dir_fd=pfd, follow_symlinks=False)
        elif ti.islnk():
            self._hardlink(ti, parts, pfd, leaf)
        elif ti.ischr() or ti.isblk() or ti.isfifo():
            kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK if ti.isblk() else stat.S_IFIFO
            self._remove_existing(pfd, leaf, keep_dir=False)
            dev = os.makedev(ti.devmajor, ti.devminor) if kind != stat.S_IFIFO else 0
            os.mknod(leaf, kind | 0o600, dev, dir_fd=pfd)
            uid, gid = self._owner(ti)
            if uid >= 0:
                os.chown(leaf, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(leaf, ti.mode & 0o7777, dir_fd=pfd)
            os.utime(leaf, ns=self._times(ti), dir_fd=pfd, follow_symlinks=False)
        else:
            raise InvalidParameter(f"unhandled tar header type {ti.type!r} for {ti.name!r}")

    def _file(self, tar: tarfile.TarFile, ti: tarfile.TarInfo, pfd: int, leaf: str) -> None:
        if ti.size < 0 or ti.size > self.max_entry:
            raise InvalidParameter(f"tar entry {ti.name!r} has an absurd size ({ti.size} bytes)")
        if ti.size > self.space_left:
            raise InvalidParameter(
                f"tar entry {ti.name!r} ({ti.size} bytes) does not fit in the space left")
        self.space_left -= ti.size
        self._remove_existing(pfd, leaf, keep_dir=False)
        fd = os.open(leaf, _O_NEWFILE, 0o600, dir_fd=pfd)
        try:
            src = tar.extractfile(ti)
            if ti.size:
                assert src is not None
                with open(fd, "wb", closefd=False, buffering=0) as out:
                    while True:
                        chunk = src.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
            self._set_meta_fd(fd, ti)
            os.utime(fd, ns=self._times(ti))
        finally:
            os.close(fd)
        self.content_size += ti.size

    def _hardlink(self, ti: tarfile.TarInfo, parts: tuple[str, ...], pfd: int, leaf: str) -> None:
        target = clean_name(ti.linkname)
        if not target:
            raise InvalidParameter(f"invalid hardlink {ti.name!r}: target is the layer root")
        if target == parts:
            return
        try:
            sfd = self.tree.dir_fd(target[:-1], create=False)
            os.stat(target[-1], dir_fd=sfd, follow_symlinks=False)
        except FileNotFoundError:
            raise InvalidParameter(
                f"invalid hardlink {ti.name!r} -> {ti.linkname!r}: target not in the layer") from None
        self._remove_existing(pfd, leaf, keep_dir=False)
        sfd = self.tree.dir_fd(target[:-1], create=False)  # the removal may have reset the cache
        pfd = self.tree.dir_fd(parts[:-1], create=False)
        os.link(target[-1], leaf, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)

    def _whiteout(self, parts: tuple[str, ...]) -> None:
        leaf = parts[-1]
        pdir = parts[:-1]
        if leaf == WHITEOUT_OPAQUE:
            pfd = self.tree.dir_fd(pdir, create=True)
            if self.whiteouts == "overlay":
                os.setxattr(pfd, OPAQUE_XATTR, b"y")
            else:
                for name in os.listdir(pfd):
                    if pdir + (name,) not in self.created:
                        self._remove_existing(pfd, name, keep_dir=False)
                        pfd = self.tree.dir_fd(pdir, create=True)
            return
        if leaf.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): nothing to materialise
        name = leaf[len(WHITEOUT_PREFIX):]
        if name in ("", ".", ".."):
            raise InvalidParameter(f"invalid whiteout {'/'.join(parts)!r}")
        pfd = self.tree.dir_fd(pdir, create=True)
        self._remove_existing(pfd, name, keep_dir=False)
        if self.whiteouts == "overlay":
            pfd = self.tree.dir_fd(pdir, create=True)
            # overlayfs whiteout: a 0/0 character device with the hidden name
            os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)

    def finish(self) -> None:
        # Directory times last: creating children changed them.
        for parts, atime, mtime in reversed(self.dir_times):
            try:
                if not parts:
                    os.utime(self.tree.root_fd, ns=(atime, mtime))
                    continue
                pfd = self.tree.dir_fd(parts[:-1], create=False)
                os.utime(parts[-1], ns=(atime, mtime), dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, InvalidParameter, NotADirectoryError):
                pass  # removed or replaced by a later entry


def extract_layer(src: BinaryIO, dest: Path | str, *, tee: object | None = None,
                  whiteouts: str = "overlay", max_entry: int = DEFAULT_MAX_ENTRY,
                  same_owner: bool | None = None) -> ExtractResult:
    """Extract a (possibly compressed) layer tar from `src` into the existing dir `dest`.

    `tee` (e.g. a content-store Writer) receives the uncompressed tar bytes. `whiteouts`:
    "overlay" makes overlayfs whiteouts (layer store), "apply" deletes (copying into a tree).
    On error an InvalidParameter is raised and `dest` holds partial output the caller removes;
    nothing outside `dest` is ever written.
    """
    if same_owner is None:
        same_owner = os.geteuid() == 0
    raw, _ = open_decompressed(src)
    hashed = HashingReader(raw, tee)
    ex = _Extractor(Path(dest), whiteouts, max_entry, same_owner)
    try:
        try:
            with tarfile.open(fileobj=hashed, mode="r|") as tar:  # type: ignore[call-overload]
                for ti in tar:
                    try:
                        ex.entry(tar, ti)
                    except OSError as e:
                        raise _os_error(ti.name, e) from None
                    tar.members.clear()  # stream mode keeps every header otherwise
            hashed.drain()
        except tarfile.TarError as e:
            if hashed.size == 0:
                raise InvalidParameter("invalid tar: empty input") from None
            raise InvalidParameter(f"invalid tar: {e}") from None
        except EOFError as e:
            raise InvalidParameter(f"invalid tar: unexpected end of data ({e})") from None
        ex.finish()
    finally:
        ex.tree.close()
    return ExtractResult(hashed.digest, hashed.size, ex.content_size, ex.entries)
