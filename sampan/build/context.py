"""The build context: the client's tar unpacked safely in a private directory.

Docker's daemon unpacks the context tar and then relies on the client having left out what
.dockerignore names. We apply the ignore file again on the daemon side, so a client that sends
ignored files still cannot get them into an image. Ignored entries are not deleted but moved
beside the context (`<private>/ignored/`): COPY never sees them, yet an ignored Dockerfile
(or one the docker CLI added under a random name for `-f` outside the context) can still be
read, as Docker reads it before removing it.

Safety: the tar is first scanned header by header (only files, directories, symlinks and
hardlinks; no `.wh.` names; sizes summed against the cap and the free space), then unpacked by
`sampan.archive.extract_layer`, which confines every entry (`..`, absolute names, symlinked
parents, hardlinks to outside) to the directory.
"""

from __future__ import annotations

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
                reader, kind = open_decompressed(f)
                if kind == "none":
                    # already a plain tar on our disk: scan and extract it in place
                    if os.fstat(f.fileno()).st_size > cap + (1 << 20):
                        _too_big(cap, max_bytes)
                    self._scan_and_extract(Path(src), cap, max_bytes)
                    return
                self._spool_then_extract(reader, cap, max_bytes)
                return
        reader, _kind = open_decompressed(src)
        self._spool_then_extract(reader, cap, max_bytes)

    def _spool_then_extract(self, reader: BinaryIO, cap: int, max_bytes: int | None) -> None:
        """Write the uncompressed tar beside the context (bounded by the cap), then extract."""
        spool = self.private / "context.tar"
        total = 0
        with open(spool, "wb") as out:
            while True:
                data = reader.read(_CHUNK)
                if not data:
                    break
                total += len(data)
                # headers and padding are part of the tar too: allow a little slack over the cap
                if total > cap + (1 << 20) + cap // 8:
                    _too_big(cap, max_bytes)
                out.write(data)
        try:
            self._scan_and_extract(spool, cap, max_bytes)
        finally:
            spool.unlink(missing_ok=True)

    def _scan_and_extract(self, tar_path: Path, cap: int, max_bytes: int | None) -> None:
        total = 0
        try:
            with tarfile.open(tar_path, "r:") as tar:
                for ti in tar:
                    _check_member(ti)
                    if ti.isreg():
                        total += ti.size
                        if total > cap:
                            _too_big(cap, max_bytes)
        except tarfile.ReadError as e:
            if self._dockerfile_body(tar_path):
                return
            raise InvalidParameter(f"invalid build context: not a tar archive ({e})") from None
        except tarfile.TarError as e:
            raise InvalidParameter(f"invalid build context tar: {e}") from None
        if total == 0 and tar_path.stat().st_size == 0:
            return  # an empty body: an empty context
        with open(tar_path, "rb") as f:
            extract_layer(f, self.root, whiteouts="apply")
        self.size = total

    def _dockerfile_body(self, tar_path: Path) -> bool:
        """A body that is text, not a tar: it is the Dockerfile (`docker build - < Dockerfile`
        through a client that does not wrap it)."""
        size = tar_path.stat().st_size
        if size == 0:
            return True
        if size > MAX_DOCKERFILE:
            return False
        data = tar_path.read_bytes()
        if b"\0" in data:
            return False
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        (self.root / DEFAULT_DOCKERFILE).write_bytes(data)
        self.size = size
        return True

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
        with open(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                return None
            if st.st_size > limit:
                raise InvalidParameter(f"{name} is too large ({st.st_size} bytes)")
            return f.read(limit + 1)

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


def _check_member(ti: tarfile.TarInfo) -> None:
    if not (ti.isreg() or ti.isdir() or ti.issym() or ti.islnk()):
        kind = ("a device" if ti.ischr() or ti.isblk() else "a fifo" if ti.isfifo()
                else f"an entry of type {ti.type!r}")
        raise InvalidParameter(f"invalid build context: {ti.name!r} is {kind}")
    parts = clean_name(ti.name)  # refuses names that climb out
    if parts and parts[-1].startswith(WHITEOUT_PREFIX):
        raise InvalidParameter(
            f"invalid build context: {ti.name!r}: names starting with {WHITEOUT_PREFIX!r} are reserved")
    if ti.islnk():
        clean_name(ti.linkname)
    if ti.size < 0:
        raise InvalidParameter(f"invalid build context: {ti.name!r} has a negative size")


__all__ = ["BuildContext", "DEFAULT_DOCKERFILE"]
