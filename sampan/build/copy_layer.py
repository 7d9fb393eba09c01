"""Writing the layer tar of a COPY/ADD plan (and of `COPY <<EOF` heredocs).

The tar holds the copied entries plus every parent directory of the destination: a parent
that exists in the image is written with its current metadata (an overlay layer that lacks
it would otherwise show a fresh 0755 root-owned directory over the image's own), a parent
that does not exist yet is made 0755 and owned like the copied files, as Docker does.
The destination is resolved through the image's symlinks (`COPY x /bin/` where /bin ->
usr/bin writes usr/bin/x), inside the rootfs only.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..archive import extract_layer, open_decompressed
from ..userns import hooks as userns_hooks
from ..archive.extract import WHITEOUT_PREFIX
from ..errors import Internal, InvalidParameter, Unavailable
from .copy import CopyPlan, CopyResult, Entry, normalize_dest, read_xattrs, walk_tree
from .copy_paths import clean_rel, resolve_rel

_O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass
class _Item:
    kind: str                     # "d", "f" (from path), "b" (bytes), "l", "n" (device/fifo)
    mode: int                     # permission bits (with set-id/sticky)
    uid: int
    gid: int
    mtime: int
    path: str = ""                # "f": host file to read
    data: bytes = b""             # "b"
    link: str = ""                # "l"
    st_mode: int = 0              # "n": full st_mode (type bits)
    rdev: int = 0
    xattrs: dict[str, bytes] | None = None
    ident: tuple[int, int] | None = None  # "f" with other hard links: (dev, ino)
    existing: bool = False        # "d" taken from the image (written to carry its metadata)


class _Layer:
    """Entries by path (components); later sources win, as later copies overwrite earlier."""

    def __init__(self, identity: tuple[int, int], rootfs: Path | None) -> None:
        self.identity = identity
        self.rootfs = rootfs
        self.items: dict[tuple[str, ...], _Item] = {}
        self._dirs: dict[tuple[str, ...], os.stat_result | None] = {}
        self.now = int(time.time())

    def existing_dir(self, parts: tuple[str, ...]) -> os.stat_result | None:
        """The image's directory at `parts`, looked up one component at a time so that no
        symlink in the image is ever followed (it could point at the host's tree)."""
        if self.rootfs is None or not parts:
            return None
        if parts in self._dirs:
            return self._dirs[parts]
        st: os.stat_result | None = None
        if len(parts) == 1 or self.existing_dir(parts[:-1]) is not None:
            try:
                st = os.lstat(os.path.join(self.rootfs, *parts))
            except (FileNotFoundError, NotADirectoryError):
                st = None
            if st is not None and not stat.S_ISDIR(st.st_mode):
                st = None
        self._dirs[parts] = st
        return st

    def is_dir_in_image(self, parts: tuple[str, ...]) -> bool:
        item = self.items.get(parts)
        if item is not None:
            return item.kind == "d"
        return not parts or self.existing_dir(parts) is not None

    def ensure_dir(self, parts: tuple[str, ...], owner: tuple[int, int] | None = None) -> None:
        """`parts` and its parents as directories: existing ones keep their metadata, new ones
        are 0755 and belong to `owner` (default: the copy's owner)."""
        for i in range(1, len(parts) + 1):
            p = parts[:i]
            item = self.items.get(p)
            if item is not None and item.kind == "d":
                continue
            st = self.existing_dir(p)
            if st is not None:
                # --userns-remap: the image's files are owned by host ids; the layer carries
                # the container's (userns.hooks.tar_owner; identity without remapping).
                uid, gid = _container_ids(st.st_uid, st.st_gid)
                self.put(p, _Item("d", stat.S_IMODE(st.st_mode), uid, gid,
                                  int(st.st_mtime), existing=True))
            else:
                uid, gid = owner or self.identity
                self.put(p, _Item("d", 0o755, uid, gid, self.now))

    def put(self, parts: tuple[str, ...], item: _Item) -> None:
        if parts and parts[-1].startswith(WHITEOUT_PREFIX):
            # in a layer tar such a name deletes a file of the image below instead of adding one
            raise InvalidParameter(f"cannot copy {'/'.join(parts)!r}: names starting with "
                                   f"{WHITEOUT_PREFIX!r} are reserved for layer whiteouts")
        old = self.items.get(parts)
        if old is not None and old.kind == "d" and item.kind != "d":
            n = len(parts)
            for k in [k for k in self.items if len(k) > n and k[:n] == parts]:
                del self.items[k]
        self.items[parts] = item

    def _touch_modified_parents(self) -> None:
        """An image directory that gets a new entry has a new mtime, as in Docker's layer
        (its overlay copy-up was modified); one that only leads to deeper changes keeps its own."""
        for parts, item in self.items.items():
            if item.existing or not parts:
                continue
            parent = self.items.get(parts[:-1])
            if parent is not None and parent.existing:
                parent.mtime = self.now

    def write(self, out: Path) -> None:
        self._touch_modified_parents()
        tmp = out.with_name(out.name + ".part")
        try:
            links: dict[tuple[int, int], str] = {}  # hard links stay hard links, as in Docker
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                tar = _TarOut(fd)
                for parts in sorted(self.items):
                    self._add(tar, "/".join(parts), self.items[parts], links)
                tar.close()
            finally:
                os.close(fd)
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _add(tar: "_TarOut", name: str, it: _Item, links: dict[tuple[int, int], str]) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.uid, ti.gid, ti.mtime = it.mode & 0o7777, it.uid, it.gid, it.mtime
        ti.uname = ti.gname = ""
        if it.xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v.decode("utf-8", "surrogateescape")
                              for k, v in it.xattrs.items()}
        if it.kind == "f" and it.ident is not None:
            first = links.get(it.ident)
            if first is not None:
                ti.type, ti.linkname = tarfile.LNKTYPE, first
                tar.add(ti)
                return
            links[it.ident] = name
        if it.kind == "d":
            ti.type = tarfile.DIRTYPE
            ti.name = name + "/"
            tar.add(ti)
        elif it.kind == "l":
            ti.type, ti.linkname = tarfile.SYMTYPE, it.link
            tar.add(ti)
        elif it.kind == "b":
            ti.size = len(it.data)
            tar.add(ti, data=it.data)
        elif it.kind == "n":
            m = it.st_mode
            ti.type = (tarfile.CHRTYPE if stat.S_ISCHR(m) else tarfile.BLKTYPE if stat.S_ISBLK(m)
                       else tarfile.FIFOTYPE)
            if not stat.S_ISFIFO(m):
                ti.devmajor, ti.devminor = os.major(it.rdev), os.minor(it.rdev)
            tar.add(ti)
        else:
            try:
                src = os.open(it.path, _O_READ)
            except OSError as e:
                raise InvalidParameter(f"cannot read {name!r}: {e.strerror}") from None
            try:
                st = os.fstat(src)
                if not stat.S_ISREG(st.st_mode):
                    raise InvalidParameter(f"{name!r} changed while being copied")
                ti.size = st.st_size
                tar.add(ti, src_fd=src)
            finally:
                os.close(src)


class _TarOut:
    """A minimal tar writer: tarfile's own headers (pax where needed), file data moved by
    sendfile(2) inside the kernel instead of through 16 KiB Python buffers."""

    _FLUSH = 1 << 20

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.offset = 0

    def _flush(self) -> None:
        data = bytes(self.buf)  # headers and small data only: at most ~1 MiB
        self.buf.clear()
        done = 0
        while done < len(data):
            done += os.write(self.fd, data[done:])
        self.offset += len(data)

    def add(self, ti: tarfile.TarInfo, *, data: bytes | None = None,
            src_fd: int | None = None) -> None:
        self.buf += ti.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        if data is not None:
            self.buf += data
        elif src_fd is not None and ti.size:
            self._flush()
            left, pos = ti.size, 0
            while left:
                n = os.sendfile(self.fd, src_fd, pos, min(left, 1 << 30))
                if n == 0:
                    raise InvalidParameter(f"{ti.name!r} shrank while being copied")
                pos += n
                left -= n
            self.offset += ti.size
        pad = -(len(self.buf) + self.offset) % tarfile.BLOCKSIZE
        self.buf += bytes(pad)
        if len(self.buf) >= self._FLUSH:
            self._flush()

    def close(self) -> None:
        self.buf += bytes(2 * tarfile.BLOCKSIZE)  # end of archive, as tarfile writes it
        pad = -(len(self.buf) + self.offset) % tarfile.RECORDSIZE
        self.buf += bytes(pad)
        self._flush()


def _container_ids(uid: int, gid: int) -> tuple[int, int]:
    owner = userns_hooks.tar_owner()
    return owner(uid, gid) if owner else (uid, gid)


def _entry_item(e: Entry, uid: int, gid: int, chmod: int | None) -> _Item:
    st = e.st
    perm = stat.S_IMODE(st.st_mode)
    mtime = int(st.st_mtime)
    if stat.S_ISDIR(st.st_mode):
        return _Item("d", chmod if chmod is not None else perm, uid, gid, mtime,
                     xattrs=read_xattrs(e.path) or None)
    if stat.S_ISREG(st.st_mode):
        return _Item("f", chmod if chmod is not None else perm, uid, gid, mtime, path=e.path,
                     xattrs=read_xattrs(e.path) or None,
                     ident=(st.st_dev, st.st_ino) if st.st_nlink > 1 else None)
    if stat.S_ISLNK(st.st_mode):
        return _Item("l", 0o777, uid, gid, mtime, link=e.link)
    return _Item("n", perm, uid, gid, mtime, st_mode=st.st_mode, rdev=st.st_rdev)


def _parts(rel: str) -> tuple[str, ...]:
    return tuple(p for p in rel.split("/") if p)


def is_archive(path: Path | str) -> bool:
    """Docker's IsArchivePath: the (possibly compressed) content starts with a valid tar header.
    zstd without the `zstandard` module counts as "not an archive" (copied as is)."""
    try:
        with open(path, "rb") as f:
            try:
                reader, _kind = open_decompressed(f)
                head = b""
                while len(head) < tarfile.BLOCKSIZE:
                    more = reader.read(tarfile.BLOCKSIZE - len(head))
                    if not more:
                        break
                    head += more
            except (Unavailable, InvalidParameter, EOFError, OSError):
                return False
    except OSError:
        return False
    if len(head) < tarfile.BLOCKSIZE:
        return False
    try:
        tarfile.TarInfo.frombuf(head, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def _dest(layer: _Layer, dest: str) -> tuple[tuple[str, ...], bool]:
    """(resolved destination components, whether it names a directory)."""
    rel = resolve_rel(layer.rootfs, dest) if layer.rootfs is not None else clean_rel(dest)
    parts = _parts(rel)
    is_dir = dest.endswith("/") or not parts or layer.is_dir_in_image(parts)
    return parts, is_dir


def write_copy_layer(plan: CopyPlan, out_tar: Path, *, chown: tuple[int, int] | None = None,
                     chmod: int | None = None, dest_rootfs: Path | None = None,
                     add: bool | None = None) -> CopyResult:
    """Write the layer tar for `plan` to out_tar (atomically). `dest_rootfs` is the stage's
    current rootfs (read-only), used to honour existing directories and symlinks."""
    if plan._key is None:  # flags given only now still count in the key
        plan.chown = chown if chown is not None else plan.chown
        plan.chmod = chmod if chmod is not None else plan.chmod
    chown = chown if chown is not None else plan.chown
    chmod = chmod if chmod is not None else plan.chmod
    if add is not None and add != plan.add:
        raise Internal("write_copy_layer: plan made for a different instruction")
    key = plan.cache_key()
    out_tar = Path(out_tar)
    layer = _Layer(chown or (0, 0), Path(dest_rootfs) if dest_rootfs is not None else None)
    uid, gid = layer.identity
    dparts, dest_is_dir = _dest(layer, plan.dest)
    scratch: list[Path] = []  # extracted ADD archives, read when the tar is written
    try:
        base_parts = dparts
        for src in plan.sources:
            dparts = base_parts + _parts(src.prefix)  # COPY --parents
            if src.kind == "dir":
                if layer.is_dir_in_image(dparts):
                    layer.ensure_dir(dparts)  # an existing directory keeps its metadata
                else:
                    layer.ensure_dir(dparts[:-1])
                    # Docker makes it 0755 (MkdirAllAndChownNew) and copies only the
                    # source's contents into it: the source directory's own mode is not used
                    layer.put(dparts, _Item("d", chmod if chmod is not None else 0o755, uid, gid,
                                            layer.now))
                for e in src.entries[1:]:
                    layer.put(dparts + _parts(e.rel), _entry_item(e, uid, gid, chmod))
            elif src.kind == "archive":
                # Docker's UntarPath: the destination made 0755 root-owned (--chown is not
                # applied to extracted archives; an archive's "./" entry does not change it)
                layer.ensure_dir(dparts, owner=(0, 0))
                scratch.append(_add_archive(layer, src.path, dparts, out_tar.parent, plan.cmd))
            else:
                target = dparts + (src.base,) if dest_is_dir or src.prefix else dparts
                layer.ensure_dir(target[:-1])
                st = os.stat(src.path, follow_symlinks=False)
                if src.kind == "url":
                    mode = chmod if chmod is not None else 0o600
                    layer.put(target, _Item("f", mode, uid, gid, int(st.st_mtime),
                                            path=str(src.path)))
                else:
                    layer.put(target, _entry_item(Entry("", str(src.path), st), uid, gid, chmod))
        layer.write(out_tar)
    finally:
        for d in scratch:
            shutil.rmtree(d, ignore_errors=True)
    return CopyResult(out_tar, key)


def _add_archive(layer: _Layer, path: Path, dparts: tuple[str, ...], scratch: Path,
                 cmd: str) -> Path:
    """ADD of a local archive: extracted (confined, hostile entries refused) into a scratch dir
    beside the output, then its tree laid under the destination with its own owners/modes.
    Returns the scratch dir, for the caller to remove once the tar is written."""
    tmp = Path(tempfile.mkdtemp(prefix="build-add-x-", dir=scratch))
    try:
        with open(path, "rb") as f:
            extract_layer(f, tmp, whiteouts="apply")
        for e in walk_tree(str(tmp)):
            layer.put(dparts + _parts(e.rel), _entry_item(e, e.st.st_uid, e.st.st_gid, None))
    except InvalidParameter as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InvalidParameter(f"{cmd} failed: {e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def write_heredoc_layer(content: str | bytes | list[tuple[str, str | bytes]], dest: str,
                        workdir: str, chown: tuple[int, int] | None, chmod: int | None,
                        out_tar: Path, *, name: str = "EOF",
                        dest_rootfs: Path | None = None) -> CopyResult:
    """`COPY <<EOF /path`: one file per heredoc (content already expanded by the caller).
    A destination ending in "/" (or an existing directory) gets the heredoc's name as file
    name, as BuildKit does; mode 0644 unless --chmod."""
    docs = content if isinstance(content, list) else [(name, content)]
    full = normalize_dest(workdir, dest)
    if len(docs) > 1 and not full.endswith("/"):
        raise InvalidParameter("When using COPY with more than one source file, the destination "
                               "must be a directory and end with a /")
    h = hashlib.sha256()
    h.update(repr(("sampan-heredoc-v1", full, chown, chmod)).encode())
    layer = _Layer(chown or (0, 0), Path(dest_rootfs) if dest_rootfs is not None else None)
    uid, gid = layer.identity
    dparts, dest_is_dir = _dest(layer, full)
    for doc_name, body in docs:
        data = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        h.update(repr((doc_name, len(data))).encode())
        h.update(data)
        target = dparts + (doc_name,) if dest_is_dir else dparts
        if not target:
            raise InvalidParameter("COPY failed: cannot copy to the root as a file")
        layer.ensure_dir(target[:-1])
        layer.put(target, _Item("b", chmod if chmod is not None else 0o644, uid, gid,
                                layer.now, data=data))
    out_tar = Path(out_tar)
    layer.write(out_tar)
    return CopyResult(out_tar, "sha256:" + h.hexdigest())


__all__ = ["is_archive", "write_copy_layer", "write_heredoc_layer"]
