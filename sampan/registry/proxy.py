"""Pull-through cache (`--proxy-remote URL`): serve what is cached, fetch the rest upstream.

Tags are asked upstream each time (they move), falling back to the cached tag when the
upstream cannot be reached; manifests by digest and blobs come from the cache once fetched.
Everything fetched is verified against its digest before it is stored or served, so the
cache can serve as a Docker `registry-mirrors` entry. The cache is read-only for clients.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Iterator

from ..distribution import manifest as mf
from ..distribution.auth import Credentials
from ..distribution.transport import Registry, RegistryError
from ..errors import SampanError
from .storage import RegistryAPIError, Storage, err

log = logging.getLogger("sampan.registry.proxy")
_CHUNK = 1024 * 1024


class Proxy:
    def __init__(self, storage: Storage, remote: str, username: str = "", password: str = "") -> None:
        self.storage = storage
        self.remote = Registry("", Credentials(username, password), base_url=remote.rstrip("/"))

    def manifest(self, name: str, ref: str) -> tuple[bytes, str, str]:
        st = self.storage
        is_digest = ":" in ref
        if is_digest:
            try:
                return st.get_manifest(name, ref)
            except RegistryAPIError:
                pass
        try:
            r = self.remote.request("GET", f"/v2/{name}/manifests/{ref}", [f"repository:{name}:pull"],
                                    {"Accept": mf.ACCEPT})
            raw = r.read_small(4 * 1024 * 1024)
            ctype = r.header("Content-Type").split(";")[0].strip()
        except RegistryError as e:
            if e.status == 404:
                raise err(404, "MANIFEST_UNKNOWN", "manifest unknown", {"ref": ref}) from None
            if not is_digest:
                return self._cached_tag(name, ref, e)
            raise err(502, "UNKNOWN", f"upstream: {e}") from None
        except (SampanError, OSError) as e:
            if not is_digest:
                return self._cached_tag(name, ref, e)
            raise err(502, "UNKNOWN", f"upstream: {e}") from None
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if is_digest and digest != ref:
            raise err(502, "DIGEST_INVALID", "upstream manifest failed verification", {"digest": ref})
        try:
            media = mf.parse(raw, ctype).media_type
        except SampanError:
            raise err(502, "MANIFEST_INVALID", "upstream sent an invalid manifest") from None
        st.cache_manifest(name, None if is_digest else ref, raw, media)
        return raw, media, digest

    def _cached_tag(self, name: str, ref: str, e: Exception) -> tuple[bytes, str, str]:
        log.warning("upstream unreachable for %s:%s (%s); serving the cached tag", name, ref, e)
        return self.storage.get_manifest(name, ref)

    def blob(self, name: str, digest: str) -> int | None:
        """Fetch a blob into the cache; its size, or None if the upstream has none."""
        try:
            r = self.remote.request("GET", f"/v2/{name}/blobs/{digest}", [f"repository:{name}:pull"])
        except RegistryError as e:
            if e.status == 404:
                return None
            raise err(502, "UNKNOWN", f"upstream: {e}") from None

        def chunks() -> Iterator[bytes]:
            try:
                while True:
                    data = r.read(_CHUNK)
                    if not data:
                        return
                    yield data
            finally:
                r.close()

        return self.storage.ingest_blob(name, digest, chunks())

    def tags(self, name: str) -> list[str] | None:
        """The upstream's tags of a repository (None when it cannot say)."""
        import json
        try:
            r = self.remote.request("GET", f"/v2/{name}/tags/list?n=10000", [f"repository:{name}:pull"])
            obj = json.loads(r.read_small())
        except (RegistryError, SampanError, OSError, ValueError):
            return None
        tags = obj.get("tags") if isinstance(obj, dict) else None
        return sorted(t for t in tags or [] if isinstance(t, str))
