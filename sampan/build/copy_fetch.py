"""ADD <url> downloads and --chown name lookups (both as Docker's classic builder does)."""

from __future__ import annotations

import email.utils
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import InvalidParameter
from .copy_paths import resolve_in_root

_CHUNK = 1 << 20
_TIMEOUT = 60
_MAX_DB = 16 << 20  # /etc/passwd or /etc/group larger than this is not a real one
_SPACE_MARGIN = 64 << 20


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed to http(s) only (urllib would also follow one to ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"redirect to {newurl!r} refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _filename(url: str, resp: object) -> str:
    """Docker's getFilenameForDownload: the URL path's last element, else the
    Content-Disposition filename."""
    path = urllib.parse.urlsplit(url).path
    name = urllib.parse.unquote(path.rsplit("/", 1)[-1]) if path else ""
    if not name or name in (".", ".."):
        cd = resp.headers.get("Content-Disposition", "")  # type: ignore[attr-defined]
        m = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', cd or "")
        name = os.path.basename(urllib.parse.unquote(m.group(1))) if m else ""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise InvalidParameter(f"cannot determine filename from url: {url}")
    return name


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, hexd = checksum.partition(":")
    sizes = {"sha256": 64, "sha384": 96, "sha512": 128}
    if algo not in sizes or len(hexd) != sizes[algo] or not re.fullmatch(r"[0-9a-f]+", hexd):
        raise InvalidParameter(f"invalid checksum digest format: {checksum!r}")
    return algo, hexd


def fetch_url(url: str, dest_dir: Path, checksum: str | None) -> Path:
    """Download an http(s) URL into dest_dir/<filename> (mode 0600, mtime = Last-Modified),
    verifying `checksum` ("sha256:<hex>") when given. Bounded by the free space of dest_dir."""
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"ADD failed: unsupported URL {url!r}")
    want = _parse_checksum(checksum) if checksum else None
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    st = os.statvfs(dest_dir)
    cap = max(0, st.f_bavail * st.f_frsize - _SPACE_MARGIN)
    req = urllib.request.Request(url, headers={"User-Agent": "sampan-builder"})
    try:
        resp = _OPENER.open(req, timeout=_TIMEOUT)
    except urllib.error.HTTPError as e:
        raise InvalidParameter(f"ADD failed: failed to GET {url} with status {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise InvalidParameter(f"ADD failed: failed to GET {url}: {reason}") from None
    with resp:
        name = _filename(url, resp)
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            raise InvalidParameter(f"ADD failed: {url} is too large ({length} bytes) for the space left")
        h = hashlib.new(want[0]) if want else hashlib.sha256()
        out = dest_dir / name
        tmp = dest_dir / (".part-" + name)
        total = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            with open(fd, "wb") as f:
                while True:
                    try:
                        data = resp.read(_CHUNK)
                    except OSError as e:
                        raise InvalidParameter(f"ADD failed: reading {url}: {e}") from None
                    if not data:
                        break
                    total += len(data)
                    if total > cap:
                        raise InvalidParameter(f"ADD failed: {url} is too large for the space left")
                    h.update(data)
                    f.write(data)
            if length and length.isdigit() and total != int(length):
                raise InvalidParameter(f"ADD failed: {url}: short read ({total} of {length} bytes)")
            if want and h.hexdigest() != want[1]:
                raise InvalidParameter(
                    f"ADD failed: checksum mismatch for {url}: expected {want[0]}:{want[1]}, "
                    f"got {want[0]}:{h.hexdigest()}")
            lm = resp.headers.get("Last-Modified")
            if lm:
                try:
                    ts = email.utils.parsedate_to_datetime(lm).timestamp()
                    os.utime(tmp, (ts, ts))
                except (TypeError, ValueError, OverflowError):
                    pass  # a bad date: keep the download time, as Docker does
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return out


# -- --chown -------------------------------------------------------------------------------------
def _read_db(rootfs: Path | None, name: str) -> list[list[str]]:
    if rootfs is None:
        return []
    path = resolve_in_root(rootfs, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return []
    with open(fd, "rb") as f:
        data = f.read(_MAX_DB)
    rows = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split(":"))
    return rows


def _lookup(value: str, rootfs: Path | None, db: str, what: str) -> int:
    if re.fullmatch(r"-?[0-9]+", value):
        n = int(value)
        if not 0 <= n < 2**32 - 1:
            raise InvalidParameter(f"can't find {'uid' if what == 'user' else 'gid'} for {what} "
                                   f"{value}: id out of range")
        return n
    idx = 2
    for row in _read_db(rootfs, db):
        if len(row) > idx and row[0] == value and row[idx].isdigit():
            return int(row[idx])
    raise InvalidParameter(f"can't find {'uid' if what == 'user' else 'gid'} for {what} {value}: "
                           f"no such {what}: {value}")


def resolve_chown(spec: str, rootfs: Path | None) -> tuple[int, int]:
    """--chown=user[:group] with names looked up in the rootfs' /etc/passwd and /etc/group
    (followed inside the rootfs). Without a group the user string is used as the group too,
    as Docker's classic builder does."""
    try:
        parts = spec.split(":")
        if len(parts) > 2:
            raise InvalidParameter(f"invalid chown string format: {spec}")
        user = parts[0]
        group = parts[1] if len(parts) == 2 else parts[0]
        return (_lookup(user, rootfs, "etc/passwd", "user"),
                _lookup(group, rootfs, "etc/group", "group"))
    except InvalidParameter as e:  # dockerd's wording around the lookup error
        raise InvalidParameter(
            f"unable to convert uid/gid chown string to host mapping: {e}") from None


__all__ = ["fetch_url", "resolve_chown"]
