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
import queue
import tarfile
import threading
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
_READ_CHUNK = 1024 * 1024

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

    def adopt(self, parts: tuple[str, ...], fd: int) -> None:
        """Cache an fd the caller opened safely (a directory just made): its children follow."""
        if len(self._cache) >= _DIR_CACHE_MAX:
            self.invalidate()
        old = self._cache.pop(parts, None)
        if old is not None:
            os.close(old)
        self._cache[parts] = fd

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


class _Prefetch:
    """Reads the source in a helper thread, a few chunks ahead.

    Decompression, sha256 and the tee's writes all release the GIL on big buffers, so they run
    alongside the main thread's file creation instead of between it. Only the byte stream is
    overlapped; every filesystem change stays on the caller's thread, in tar order."""

    _DEPTH = 8

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._q: queue.Queue[object] = queue.Queue(self._DEPTH)
        self._stop = False
        self._eof = False
        self._t = threading.Thread(target=self._run, name="layer-read", daemon=True)
        self._t.start()

    def _run(self) -> None:
        try:
            while not self._stop:
                data = self._f.read(_READ_CHUNK)
                self._q.put(data)
                if not data:
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._q.put(e)

    def read(self, n: int = -1) -> bytes:
        del n  # always a whole chunk
        if self._eof:
            return b""
        item = self._q.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item:
            self._eof = True
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the thread; it must be gone before the caller touches the tee again."""
        self._stop = True
        while self._t.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass
        self._t.join()

    def drain(self) -> None:
        while self.read():
            pass


class _Stream:
    """Buffered forward-only reader over the (hashed) tar bytes.

    tarfile's own stream mode re-joins and re-slices a 10 KiB buffer for every read and wraps
    each member in an ExFileObject; this reads 1 MiB at a time and hands file data out as
    memoryviews of that buffer, so a member's bytes are copied once, into the kernel.
    """

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._buf = b""
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]

    def tell(self) -> int:
        return self._base + self._pos

    def _fill(self) -> bool:  # only when the buffer is used up
        data = self._f.read(_READ_CHUNK)
        if not data:
            return False
        self._base += len(self._buf)
        self._buf, self._pos = data, 0
        return True

    def read(self, n: int = -1) -> bytes:
        end = self._pos + n
        if 0 <= n and end <= len(self._buf):
            out = self._buf[self._pos:end]
            self._pos = end
            return out
        parts = [self._buf[self._pos:]]
        got = len(parts[0])
        self._pos = len(self._buf)
        while (n < 0 or got < n) and self._fill():
            take = len(self._buf) if n < 0 else min(n - got, len(self._buf))
            parts.append(self._buf[:take])
            self._pos = take
            got += take
        return b"".join(parts)

    def peek(self, n: int) -> bytes | None:
        """The next n bytes if already buffered (None otherwise), not consumed."""
        end = self._pos + n
        return self._buf[self._pos:end] if end <= len(self._buf) else None

    def chunks(self, n: int):  # type: ignore[no-untyped-def]
        """Yield exactly n bytes as memoryviews (valid until the next call); short -> error."""
        while n > 0:
            if self._pos >= len(self._buf) and not self._fill():
                raise InvalidParameter("invalid tar: unexpected end of data")
            take = min(n, len(self._buf) - self._pos)
            yield memoryview(self._buf)[self._pos:self._pos + take]
            self._pos += take
            n -= take

    def skip_to(self, offset: int) -> None:
        if offset < self.tell():
            raise InvalidParameter("invalid tar: member data out of order")
        for _ in self.chunks(offset - self.tell()):
            pass


class _Headers:
    """The part of a TarFile that the documented TarInfo.fromtarfile() reads; header parsing
    (ustar, GNU long names, pax, sparse maps) stays tarfile's, the data path is ours."""

    def __init__(self, stream: _Stream) -> None:
        self.fileobj = stream
        self.offset = 0  # of the next header
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}

    def __iter__(self):  # type: ignore[no-untyped-def]
        # Mirrors TarFile.next(): a bad first header is an error, a zero block or a bad header
        # later ends the archive.
        while True:
            if self.offset != self.fileobj.tell():
                self.fileobj.skip_to(self.offset)  # unread data and padding of the last member
            ti = None if self.pax_headers else self._plain()
            try:
                if ti is None:
                    ti = tarfile.TarInfo.fromtarfile(self)  # type: ignore[arg-type]
            except tarfile.EOFHeaderError:
                return
            except tarfile.EmptyHeaderError:
                if self.offset == 0:
                    raise tarfile.ReadError("empty file") from None
                return
            except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as e:
                if self.offset == 0:
                    raise tarfile.ReadError(str(e)) from None
                return
            except tarfile.SubsequentHeaderError as e:
                raise tarfile.ReadError(str(e)) from None
            yield ti


    def _plain(self) -> tarfile.TarInfo | None:
        """Fast path for the common header: a ustar/GNU block of a plain type, octal numbers,
        unsigned checksum right. Builds exactly what frombuf()+_proc_builtin() would; anything
        else (pax, long names, sparse, base-256, bad fields, end blocks) returns None and goes
        to tarfile, which then reads the same block."""
        buf = self.fileobj.peek(tarfile.BLOCKSIZE)
        if buf is None or buf[156:157] not in _PLAIN_TYPES:
            return None
        try:
            chksum = _octal(buf[148:156])
            if chksum != sum(buf) - sum(buf[148:156]) + 256:
                return None
            ti = tarfile.TarInfo()
            ti.mode = _octal(buf[100:108])
            ti.uid = _octal(buf[108:116])
            ti.gid = _octal(buf[116:124])
            ti.size = _octal(buf[124:136])
            ti.mtime = _octal(buf[136:148])
            ti.devmajor = _octal(buf[329:337])
            ti.devminor = _octal(buf[337:345])
        except ValueError:
            return None
        enc, err = self.encoding, self.errors
        ti.chksum = chksum
        ti.type = buf[156:157]
        ti.name = _nts(buf[0:100], enc, err)
        ti.linkname = _nts(buf[157:257], enc, err)
        ti.uname = _nts(buf[265:297], enc, err)
        ti.gname = _nts(buf[297:329], enc, err)
        prefix = _nts(buf[345:500], enc, err)
        if ti.type == tarfile.AREGTYPE and ti.name.endswith("/"):
            ti.type = tarfile.DIRTYPE  # V7 directories
        if ti.type == tarfile.DIRTYPE:
            ti.name = ti.name.rstrip("/")
        if prefix:
            ti.name = prefix + "/" + ti.name
        if ti.type == tarfile.DIRTYPE:
            ti.name = ti.name.rstrip("/")
        self.fileobj.skip_to(self.fileobj.tell() + tarfile.BLOCKSIZE)
        ti.offset = self.offset
        ti.offset_data = self.offset + tarfile.BLOCKSIZE
        self.offset = ti.offset_data
        if ti.type in tarfile.REGULAR_TYPES:
            self.offset += ti._block(ti.size)
        return ti


_PLAIN_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.LNKTYPE,
                          tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE,
                          tarfile.FIFOTYPE))


def _octal(field: bytes) -> int:
    if field[0] in (0o200, 0o377):
        raise ValueError("base-256")  # rare: tarfile's nti handles it
    p = field.find(b"\0")
    return int((field[:p] if p >= 0 else field).strip() or b"0", 8)


def _nts(field: bytes, encoding: str, errors: str) -> str:
    p = field.find(b"\0")
    return (field[:p] if p >= 0 else field).decode(encoding, errors)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


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

    def _clear(self, pdir: tuple[str, ...], leaf: str, keep_dir: bool = False) -> tuple[bool, int]:
        """_remove_existing, then the parent's fd again: removing a directory resets the cache.

        Creation is tried first with O_EXCL/mkdir/symlink/link (all fail with EEXIST and never
        follow a final symlink), so only names that already exist pay for this."""
        pfd = self.tree.dir_fd(pdir, create=True)
        kept = self._remove_existing(pfd, leaf, keep_dir)
        return kept, self.tree.dir_fd(pdir, create=True)

    def _owner(self, ti: tarfile.TarInfo) -> tuple[int, int]:
        return (ti.uid, ti.gid) if self.same_owner else (-1, -1)

    def _set_meta_fd(self, fd: int, ti: tarfile.TarInfo) -> None:
        uid, gid = self._owner(ti)
        if uid >= 0:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, ti.mode & 0o7777)  # after chown, which clears set-id bits
        if not ti.pax_headers:
            return  # xattrs only come in pax headers
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
    def entry(self, stream: _Stream, ti: tarfile.TarInfo) -> None:
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
        pdir = parts[:-1]
        pfd = self.tree.dir_fd(pdir, create=True)
        if self.whiteouts == "apply":
            self.created.add(parts)
        if ti.isreg():
            self._file(stream, ti, pdir, pfd, leaf)
        elif ti.isdir():
            try:
                os.mkdir(leaf, 0o700, dir_fd=pfd)
            except FileExistsError:
                kept, pfd = self._clear(pdir, leaf, keep_dir=True)
                if not kept:
                    os.mkdir(leaf, 0o700, dir_fd=pfd)
            fd = os.open(leaf, _O_DIR, dir_fd=pfd)
            try:
                self._set_meta_fd(fd, ti)
            except BaseException:
                os.close(fd)
                raise
            self.tree.adopt(parts, fd)  # its children usually come next
            self.dir_times.append((parts, *self._times(ti)))
        elif ti.issym():
            try:
                os.symlink(ti.linkname, leaf, dir_fd=pfd)
            except FileExistsError:
                _, pfd = self._clear(pdir, leaf)
                os.symlink(ti.linkname, leaf, dir_fd=pfd)
            uid, gid = self._owner(ti)
            if uid >= 0:
                os.chown(leaf, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.utime(leaf, ns=self._times(ti), dir_fd=pfd, follow_symlinks=False)
        elif ti.islnk():
            self._hardlink(ti, parts, pfd, leaf)
        elif ti.ischr() or ti.isblk() or ti.isfifo():
            kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK if ti.isblk() else stat.S_IFIFO
            dev = os.makedev(ti.devmajor, ti.devminor) if kind != stat.S_IFIFO else 0
            try:
                os.mknod(leaf, kind | 0o600, dev, dir_fd=pfd)
            except FileExistsError:
                _, pfd = self._clear(pdir, leaf)
                os.mknod(leaf, kind | 0o600, dev, dir_fd=pfd)
            uid, gid = self._owner(ti)
            if uid >= 0:
                os.chown(leaf, uid, gid, dir_fd=pfd, follow_symlinks=False)
            os.chmod(leaf, ti.mode & 0o7777, dir_fd=pfd)
            os.utime(leaf, ns=self._times(ti), dir_fd=pfd, follow_symlinks=False)
        else:
            raise InvalidParameter(f"unhandled tar header type {ti.type!r} for {ti.name!r}")

    def _file(self, stream: _Stream, ti: tarfile.TarInfo, pdir: tuple[str, ...], pfd: int,
              leaf: str) -> None:
        if ti.size < 0 or ti.size > self.max_entry:
            raise InvalidParameter(f"tar entry {ti.name!r} has an absurd size ({ti.size} bytes)")
        if ti.size > self.space_left:
            raise InvalidParameter(
                f"tar entry {ti.name!r} ({ti.size} bytes) does not fit in the space left")
        self.space_left -= ti.size
        try:
            fd = os.open(leaf, _O_NEWFILE, 0o600, dir_fd=pfd)
        except FileExistsError:
            _, pfd = self._clear(pdir, leaf)
            fd = os.open(leaf, _O_NEWFILE, 0o600, dir_fd=pfd)
        try:
            stream.skip_to(ti.offset_data)  # a no-op unless a sparse map came first
            if ti.sparse is not None:
                # (offset, length) regions of a sparse file, stored back to back
                for off, length in ti.sparse:
                    if off < 0 or length < 0 or off + length > ti.size:
                        raise InvalidParameter(f"tar entry {ti.name!r} has a bad sparse map")
                    os.lseek(fd, off, os.SEEK_SET)
                    for chunk in stream.chunks(length):
                        _write_all(fd, chunk)
                os.ftruncate(fd, ti.size)
            else:
                for chunk in stream.chunks(ti.size):
                    _write_all(fd, chunk)
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
        # dup: fetching the other fd may evict this one from the cache
        sfd = os.dup(self.tree.dir_fd(target[:-1], create=False))
        try:
            pfd = self.tree.dir_fd(parts[:-1], create=True)
            try:
                os.link(target[-1], leaf, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileExistsError:
                _, pfd = self._clear(parts[:-1], leaf)
                os.link(target[-1], leaf, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(sfd)

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
            pre = _Prefetch(hashed)  # type: ignore[arg-type]
            try:
                stream = _Stream(pre)  # type: ignore[arg-type]
                for ti in _Headers(stream):
                    try:
                        ex.entry(stream, ti)
                    except OSError as e:
                        raise _os_error(ti.name, e) from None
                pre.drain()  # tar padding after the end-of-archive blocks is in the diff ID
            finally:
                pre.close()
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
