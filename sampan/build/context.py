"""The build context: the client's tar unpacked safely in a private directory.

Docker's daemon unpacks the context tar and then relies on the client having left out what
.dockerignore names. We apply the ignore file again on the daemon side, so a client that sends
ignored files still cannot get them into an image. Ignored entries are not deleted but moved
beside the context (`<private>/ignored/`): COPY never sees them, yet an ignored Dockerfile
(or one the docker CLI added under a random name for `-f` outside the context) can still be
read, as Docker reads it before removing it.

Safety and speed: the tar is read once. A guard between the decompressor and
`sampan.archive.extract_layer` judges every header as the bytes go by (only files, directories,
symlinks and hardlinks; no `.wh.` names; sizes summed against the cap and the free space), and
the extractor confines every entry (`..`, absolute names, symlinked parents, hardlinks to
outside) to the directory. Nothing is spooled.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from ..archive import extract_layer, open_decompressed
from ..archive.extract import WHITEOUT_PREFIX, clean_name
from ..errors import InvalidParameter
from .dockerignore import IgnoreMatcher
from .copy_paths import resolve_in_root

DEFAULT_DOCKERFILE = "Dockerfile"
MAX_DOCKERFILE = 16 << 20
_CHUNK = 1 << 20
_SPACE_MARGIN = 64 << 20  # leave the data root this much: images still need room


class BuildContext:
    """The build context unpacked safely under a private directory in sampan's tmp dir."""

    def __init__(self, private: Path) -> None:
        self.private = private
        self.root = private / "context"
        self.ignored_dir = private / "ignored"
        self.ignore = IgnoreMatcher([])
        self.ignore_file: str | None = None
        self.size = 0  # bytes of regular files unpacked
        self._digests: dict[str, tuple[int, str]] = {}

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_tar(cls, fileobj_or_path: BinaryIO | str | os.PathLike[str], workdir: Path, *,
                 max_bytes: int | None = None, dockerfile: str = DEFAULT_DOCKERFILE,
                 ) -> "BuildContext":
        """Unpack a (plain, gzip, bzip2, xz or zstd) context tar, then apply its ignore file.

        `dockerfile` (optional) names the Dockerfile so that `<dockerfile>.dockerignore` can
        take precedence over `.dockerignore`. A body that is not a tar but text is taken as the
        Dockerfile itself (a context holding only it). Raises InvalidParameter for hostile or
        oversized input; nothing is written outside `workdir`."""
        Path(workdir).mkdir(parents=True, exist_ok=True)
        ctx = cls(Path(tempfile.mkdtemp(prefix="build-ctx-", dir=workdir)))
        try:
            ctx.root.mkdir()
            ctx.ignored_dir.mkdir()
            ctx._unpack(fileobj_or_path, max_bytes)
            ctx._apply_ignore(dockerfile)
            ctx._remember_digests()
        except BaseException:
            ctx.cleanup()
            raise
        return ctx

    @classmethod
    def from_dir(cls, src: Path, workdir: Path, *, dockerfile: str = DEFAULT_DOCKERFILE,
                 max_bytes: int | None = None) -> "BuildContext":
        """A context from a local directory (tests, `remote` git checkouts): tarred and unpacked
        through the same safe path."""
        import threading
        r, w = os.pipe()
        rf, wf = os.fdopen(r, "rb"), os.fdopen(w, "wb")

        def produce() -> None:
            try:
                with tarfile.open(fileobj=wf, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    tar.add(src, arcname=".", recursive=True)
            except OSError:
                pass  # the reader side reports the failure
            finally:
                wf.close()

        t = threading.Thread(target=produce, daemon=True)
        t.start()
        try:
            return cls.from_tar(rf, workdir, max_bytes=max_bytes, dockerfile=dockerfile)
        finally:
            rf.close()
            t.join()

    # -- unpacking --------------------------------------------------------------------------------
    def _space_left(self) -> int:
        st = os.statvfs(self.private)
        return max(0, st.f_bavail * st.f_frsize - _SPACE_MARGIN)

    def _unpack(self, src: BinaryIO | str | os.PathLike[str], max_bytes: int | None) -> None:
        cap = self._space_left()
        if max_bytes is not None:
            cap = min(cap, max_bytes)
        if isinstance(src, (str, os.PathLike)):
            with open(src, "rb") as f:
                self._stream(f, cap, max_bytes)
        else:
            self._stream(src, cap, max_bytes)

    def _stream(self, src: BinaryIO, cap: int, max_bytes: int | None) -> None:
        """One pass: decompress, judge every header as the bytes go by (_TarGuard), extract."""
        reader, _kind = open_decompressed(src)
        head = _read_exactly(reader, tarfile.BLOCKSIZE)
        if not head:
            return  # an empty body: an empty context
        if not _looks_like_tar(head):
            if self._dockerfile_body(head, reader):
                return
            raise InvalidParameter("invalid build context: not a tar archive")
        guard = _TarGuard(_Replay(head, reader), cap, max_bytes)
        extract_layer(guard, self.root, whiteouts="apply")  # type: ignore[arg-type]
        self.size = guard.total
        self._digests = guard.digests

    def _dockerfile_body(self, head: bytes, reader: BinaryIO) -> bool:
        """A body that is text, not a tar, is the Dockerfile itself (`docker build - <
        Dockerfile` through a client that does not wrap it in a tar)."""
        data = head + _read_exactly(reader, MAX_DOCKERFILE + 1 - len(head))
        if len(data) > MAX_DOCKERFILE or b"\0" in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        (self.root / DEFAULT_DOCKERFILE).write_bytes(data)
        self.size = len(data)
        return True

    def _remember_digests(self) -> None:
        """Hand the digests taken while streaming to copy.py's memo, keyed by each file's
        identity as it now is on disk. The tree is walked without following symlinks, so a
        name whose parent a later entry turned into a link is never matched to another file."""
        from .copy import remember_digest
        digests, self._digests = self._digests, {}
        if not digests:
            return
        stack = [("", os.fspath(self.root))]
        while stack:
            rel, path = stack.pop()
            with os.scandir(path) as it:
                for e in it:
                    r = f"{rel}/{e.name}" if rel else e.name
                    if e.is_dir(follow_symlinks=False):
                        stack.append((r, e.path))
                        continue
                    got = digests.get(r)
                    if got is None or not e.is_file(follow_symlinks=False):
                        continue
                    st = e.stat(follow_symlinks=False)
                    if st.st_size == got[0] and st.st_nlink == 1:
                        remember_digest(st, got[1])

    # -- .dockerignore ----------------------------------------------------------------------------
    def _apply_ignore(self, dockerfile: str) -> None:
        text = None
        for name in (dockerfile.lstrip("/") + ".dockerignore", ".dockerignore"):
            data = self._read_in_root(self.root, name, MAX_DOCKERFILE)
            if data is not None:
                text, self.ignore_file = data.decode("utf-8", "surrogateescape"), name
                break
        if text is None:
            return
        self.ignore = IgnoreMatcher.from_text(text)
        if not self.ignore:
            return
        entered: list[str] = []  # ignored dirs walked into for possible exceptions
        for rel, entry, included in self.ignore.walk(self.root):
            if included:
                continue
            if entry.is_dir(follow_symlinks=False) and not self.ignore.can_skip_dir(rel):
                entered.append(rel)
                continue
            self._move_aside(rel)
        # an ignored directory left empty after its children were judged is not part of the
        # context (the docker CLI never sends the directory entry itself)
        for rel in sorted(entered, key=lambda r: -r.count("/")):
            try:
                os.rmdir(self.root / rel)
            except OSError:
                pass

    def _move_aside(self, rel: str) -> None:
        dst = self.ignored_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / rel, dst)

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _read_in_root(root: Path, name: str, limit: int) -> bytes | None:
        """Contents of a regular file `name` resolved inside `root` (symlinks followed as in a
        chroot), None when absent or not a regular file."""
        path = resolve_in_root(root, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as e:
            raise InvalidParameter(f"cannot read {name}: {e.strerror}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None  # a directory, fifo...: not a file to read
            if st.st_size > limit:
                raise InvalidParameter(f"{name} is too large ({st.st_size} bytes)")
            with open(fd, "rb", closefd=False) as f:
                return f.read(limit + 1)
        finally:
            os.close(fd)

    def read_dockerfile(self, name: str = DEFAULT_DOCKERFILE) -> tuple[str, str]:
        """(text, filename) of the Dockerfile `name` (a path inside the context), also when the
        ignore file excluded it. "Dockerfile" falls back to "dockerfile", as Docker does."""
        name = name or DEFAULT_DOCKERFILE
        candidates = [name]
        if name == DEFAULT_DOCKERFILE:
            candidates.append("dockerfile")
        for cand in candidates:
            for base in (self.root, self.ignored_dir):
                data = self._read_in_root(base, cand, MAX_DOCKERFILE)
                if data is None:
                    continue
                if not data.strip():
                    raise InvalidParameter(f"the Dockerfile ({cand}) cannot be empty")
                return data.decode("utf-8", "surrogateescape"), cand
        raise InvalidParameter(f"Cannot locate specified Dockerfile: {name}")

    def cleanup(self) -> None:
        shutil.rmtree(self.private, ignore_errors=True)

    def __enter__(self) -> "BuildContext":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _too_big(cap: int, max_bytes: int | None) -> None:
    if max_bytes is not None and cap >= max_bytes:
        raise InvalidParameter(f"build context is too large: over the limit of {max_bytes} bytes")
    raise InvalidParameter(
        f"build context is too large: over the {cap} bytes of free space in the data root")


def _read_exactly(f: BinaryIO, n: int) -> bytes:
    parts, left = [], n
    while left > 0:
        b = f.read(min(left, _CHUNK))
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def _looks_like_tar(block: bytes) -> bool:
    if len(block) < tarfile.BLOCKSIZE:
        return False
    if block == bytes(tarfile.BLOCKSIZE):
        return True  # an empty archive
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


class _Replay:
    """Hands back the sniffed first block, then the rest; never more than asked for (a
    reader given more than it asked may well keep asking, with a negative count)."""

    def __init__(self, head: bytes, f: BinaryIO) -> None:
        self._head, self._f = head, f

    def read(self, n: int = -1) -> bytes:
        if n is None or n <= 0:
            n = _CHUNK
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._f.read(n)


_DATA_TYPES = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE))
_OK_TYPES = _DATA_TYPES | {tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE}
_META_TYPES = frozenset((tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK))
_MAX_META = 1 << 20
MAX_MEMBERS = 1_000_000  # inodes are a resource too: a context of millions of empty files is refused
_EMPTY_SHA256 = hashlib.sha256().hexdigest()


def _block(n: int) -> int:
    return (n + tarfile.BLOCKSIZE - 1) // tarfile.BLOCKSIZE * tarfile.BLOCKSIZE


class _TarGuard:
    """Passes the tar bytes through unchanged while judging every header on the way, before
    the extractor (which reads chunks of it) can act on any byte of a chunk holding a bad one.

    It accepts what clients send as a build context: ustar/pax/GNU headers for files,
    directories, symlinks and hardlinks, with pax or GNU long names. Devices, fifos, sparse
    files, `.wh.` names, names that climb out, and meta headers stacked in ways whose meaning
    differs between tar readers are refused. Its idea of where each header starts is
    tarfile's (the extractor's) own: data follows regular members only, a pax `size`
    replaces the header's, one zero block or an invalid header ends the archive."""

    def __init__(self, f: BinaryIO, cap: int, max_bytes: int | None) -> None:
        self._f = f
        self._cap, self._max_bytes = cap, max_bytes
        self._hdr = bytearray()
        self._skip = 0              # bytes (data + padding) before the next header
        self._meta_kind: bytes | None = None
        self._meta = bytearray()
        self._meta_left = 0
        self._pending: dict[bytes, object] = {}  # meta headers seen for the next member
        self._done = False
        self.total = 0              # bytes of regular files
        self.members = 0
        # sha256 of each regular file's bytes as they stream by, by cleaned name: COPY's cache
        # key then needs no second read of the context
        self.digests: dict[str, tuple[int, str]] = {}
        self._hash: "hashlib._Hash | None" = None
        self._hash_name = ""
        self._hash_size = self._data_left = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n if n and n > 0 else _CHUNK)
        if data and not self._done:
            self._feed(memoryview(data))
        return data

    def _feed(self, view: memoryview) -> None:
        pos, end = 0, len(view)
        while pos < end and not self._done:
            if self._skip:
                take = min(self._skip, end - pos)
                if self._meta_kind is not None and self._meta_left:
                    keep = min(take, self._meta_left)
                    self._meta += view[pos:pos + keep]
                    self._meta_left -= keep
                elif self._hash is not None and self._data_left:
                    keep = min(take, self._data_left)
                    self._hash.update(view[pos:pos + keep])
                    self._data_left -= keep
                    if not self._data_left:
                        self.digests[self._hash_name] = (self._hash_size, self._hash.hexdigest())
                        self._hash = None
                self._skip -= take
                pos += take
                if not self._skip and self._meta_kind is not None:
                    self._end_meta()
                continue
            need = tarfile.BLOCKSIZE - len(self._hdr)
            self._hdr += view[pos:pos + need]
            pos += min(need, end - pos)
            if len(self._hdr) == tarfile.BLOCKSIZE:
                block = bytes(self._hdr)
                self._hdr.clear()
                self._header(block)

    def _header(self, block: bytes) -> None:
        fast = _plain_header(block)
        if fast is not None:
            type_, name, link, size = fast
        else:
            try:
                ti = tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
            except tarfile.EOFHeaderError:
                if self._pending:
                    raise InvalidParameter("invalid build context: archive ends after a pax or "
                                           "long-name header") from None
                self._done = True  # a zero block: the end of the archive (maybe an empty one)
                return
            except tarfile.HeaderError:
                if self.members == 0 and not self._pending:
                    raise InvalidParameter("invalid build context: not a tar archive") from None
                if self._pending:
                    raise InvalidParameter("invalid build context: bad header after a pax or "
                                           "long-name header") from None
                self._done = True  # where tarfile (the extractor) stops too
                return
            if ti.type in _META_TYPES:
                self._start_meta(ti)
                return
            type_, name, link, size = ti.type, ti.name, ti.linkname, ti.size
        if self._pending:
            pax = self._pending.get(tarfile.XHDTYPE, {})
            assert isinstance(pax, dict)
            name = self._pending.get(tarfile.GNUTYPE_LONGNAME) or pax.get("path") or name
            link = self._pending.get(tarfile.GNUTYPE_LONGLINK) or pax.get("linkpath") or link
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise InvalidParameter("invalid build context: bad pax size") from None
            self._pending = {}
        self.members += 1
        if self.members > MAX_MEMBERS:
            raise InvalidParameter(f"build context has too many entries (over {MAX_MEMBERS})")
        assert isinstance(name, str) and isinstance(link, str)
        key = "/".join(_check_member(type_, name, link, size))
        self.digests.pop(key, None)  # a later entry of the same name replaces the file
        if type_ in _DATA_TYPES:
            self.total += size
            if self.total > self._cap:
                _too_big(self._cap, self._max_bytes)
            self._skip = _block(size)
            if size:
                self._hash, self._hash_name = hashlib.sha256(), key
                self._hash_size = self._data_left = size
            else:
                self.digests[key] = (0, _EMPTY_SHA256)

    def _start_meta(self, ti: tarfile.TarInfo) -> None:
        kind = ti.type
        if kind in self._pending or (kind == tarfile.XGLTYPE and self._pending) or (
                kind == tarfile.XHDTYPE and (tarfile.GNUTYPE_LONGNAME in self._pending or
                                             tarfile.GNUTYPE_LONGLINK in self._pending)) or (
                kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK) and
                tarfile.XHDTYPE in self._pending):
            raise InvalidParameter("invalid build context: ambiguous stacked tar headers")
        if ti.size < 0 or ti.size > _MAX_META:
            raise InvalidParameter("invalid build context: oversized pax or long-name header")
        self._meta_kind, self._meta_left = kind, ti.size
        self._meta.clear()
        self._skip = _block(ti.size)
        if not self._skip:
            self._end_meta()

    def _end_meta(self) -> None:
        kind, data = self._meta_kind, bytes(self._meta)
        self._meta_kind = None
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            self._pending[kind] = data.split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")
            return
        recs = _pax_records(data)
        if any(k.startswith("GNU.sparse") for k in recs):
            raise InvalidParameter("invalid build context: sparse files are not supported")
        if kind == tarfile.XGLTYPE:
            # global headers apply to every later member: only harmless keys (git archive's
            # commit comment) are accepted
            if any(k in recs for k in ("path", "linkpath", "size")):
                raise InvalidParameter("invalid build context: global pax header sets names or sizes")
            return
        self._pending[tarfile.XHDTYPE] = recs  # type: ignore[index]


_PLAIN = frozenset((tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE, tarfile.DIRTYPE,
                    tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
                    tarfile.FIFOTYPE))


def _nts(field: bytes) -> str:
    p = field.find(b"\0")
    return (field[:p] if p >= 0 else field).decode(tarfile.ENCODING, "surrogateescape")


def _plain_header(b: bytes) -> tuple[bytes, str, str, int] | None:
    """(type, name, linkname, size) of a common header exactly as tarfile.frombuf reads it,
    or None for anything less common (pax, GNU long names, base-256 numbers, bad checksum,
    end blocks), which then goes through frombuf itself."""
    t = b[156:157]
    if t not in _PLAIN:
        return None
    try:
        f = b[148:156]
        p = f.find(b"\0")
        chk = int((f[:p] if p >= 0 else f).strip() or b"0", 8)
        f = b[124:136]
        if f[0] in (0o200, 0o377):
            return None
        p = f.find(b"\0")
        size = int((f[:p] if p >= 0 else f).strip() or b"0", 8)
    except ValueError:
        return None
    if chk != sum(b) - sum(b[148:156]) + 256:
        return None
    name = _nts(b[0:100])
    if t == tarfile.AREGTYPE and name.endswith("/"):
        t = tarfile.DIRTYPE  # V7 directory: no data follows, as in tarfile
    if t == tarfile.DIRTYPE:
        name = name.rstrip("/")
    prefix = _nts(b[345:500])
    if prefix:
        name = prefix + "/" + name
    return t, name, _nts(b[157:257]), size


def _pax_records(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise InvalidParameter("invalid build context: bad pax header") from None
        rec = data[sp + 1:pos + length]
        if sp < 0 or length <= 0 or pos + length > len(data) or not rec.endswith(b"\n") \
                or b"=" not in rec:
            raise InvalidParameter("invalid build context: bad pax header")
        k, _, v = rec[:-1].partition(b"=")
        out[k.decode("utf-8", "surrogateescape")] = v.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _check_member(type_: bytes, name: str, link: str, size: int) -> tuple[str, ...]:
    if type_ not in _OK_TYPES:
        kind = ("a device" if type_ in (tarfile.CHRTYPE, tarfile.BLKTYPE) else
                "a fifo" if type_ == tarfile.FIFOTYPE else f"an entry of type {type_!r}")
        raise InvalidParameter(f"invalid build context: {name!r} is {kind}")
    parts = clean_name(name)  # refuses names that climb out
    if parts and parts[-1].startswith(WHITEOUT_PREFIX):
        raise InvalidParameter(
            f"invalid build context: {name!r}: names starting with {WHITEOUT_PREFIX!r} are reserved")
    if type_ == tarfile.LNKTYPE:
        clean_name(link)
    if size < 0:
        raise InvalidParameter(f"invalid build context: {name!r} has a negative size")
    return parts


__all__ = ["BuildContext", "DEFAULT_DOCKERFILE"]
