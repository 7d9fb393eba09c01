"""DistributionService: what the Engine API's pull, push, login, search and distribution
routes call. Blocking: the API runs these in worker threads.

Registry settings come from daemon.json as in Docker: `insecure-registries`,
`registry-mirrors` (tried first for docker.io, in order, falling back to Docker Hub),
`max-concurrent-downloads` (3) and `max-concurrent-uploads` (5).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import reference as refs
from ..errors import InvalidParameter, NotFound, SampanError, Unavailable
from ..images.service import ImageService
from ..metadata import Database
from . import manifest as mf
from .auth import Credentials
from .progress import Reporter, status
from .pull import Puller, Resolved, resolve
from .push import BlobSources, Pusher, push_scopes
from .spool import Transfers
from .transport import Registry, RegistryDenied, RegistryError, RegistryOptions
from ..events.hooks import image_transferred

HUB_HOST = "registry-1.docker.io"
HUB_INDEX = "index.docker.io"


def registry_host(domain: str) -> str:
    return HUB_HOST if domain == refs.DEFAULT_DOMAIN else domain


@dataclass
class PullPlan:
    reg: Registry
    res: Resolved
    tag_ref: str | None


class DistributionService:
    def __init__(self, images: ImageService, db: Database, tmp_dir: Path,
                 extra: dict[str, Any] | None = None) -> None:
        extra = extra or {}
        self.images = images
        self.options = RegistryOptions(insecure=[str(x) for x in extra.get("insecure-registries") or []],
                                       mirrors=[str(x) for x in extra.get("registry-mirrors") or []])
        self.tmp_dir = Path(tmp_dir)
        self.transfers = Transfers(self.tmp_dir)
        self.sources = BlobSources(db)
        self.puller = Puller(images, self.transfers, int(extra.get("max-concurrent-downloads") or 3))
        self.pusher = Pusher(images, self.sources, self.tmp_dir, int(extra.get("max-concurrent-uploads") or 5))
        self._regs: dict[tuple, Registry] = {}
        self._lock = threading.Lock()
        self.events: Any = None  # the engine's EventService: pull/push events

    # -- registries -------------------------------------------------------------------------------
    def registry(self, host: str, creds: Credentials, base_url: str | None = None) -> Registry:
        """A cached client per (endpoint, identity): pings, tokens and connections are reused."""
        key = (host, base_url, creds.username, creds.password, creds.identity_token, creds.registry_token)
        with self._lock:
            reg = self._regs.get(key)
            if reg is None:
                if len(self._regs) > 64:
                    for r in self._regs.values():
                        r.close()
                    self._regs.clear()
                reg = Registry(host, creds, self.options, base_url)
                self._regs[key] = reg
            return reg

    def _endpoints(self, ref: refs.Reference, creds: Credentials) -> list[Registry]:
        out = []
        if ref.domain == refs.DEFAULT_DOMAIN:
            # a mirror is anonymous: Hub credentials are not sent to it
            out += [self.registry(urllib.parse.urlsplit(m).netloc or m, Credentials(), m.rstrip("/"))
                    for m in self.options.mirrors]
        out.append(self.registry(registry_host(ref.domain), creds))
        return out

    # -- pull -------------------------------------------------------------------------------------
    def prepare_pull(self, from_image: str, tag: str | None, platform: str | None,
                     creds: Credentials) -> PullPlan:
        """Everything that can fail before progress starts: reference, endpoint, manifest."""
        ref = refs.parse(from_image)
        if tag:
            if tag.startswith("sha256:"):
                ref = refs.Reference(ref.domain, ref.path, None, refs.validate_digest(tag))
            else:
                ref = ref.with_tag(tag)
        ref = ref.with_default_tag()
        last: Exception | None = None
        for reg in self._endpoints(ref, creds):
            try:
                res = resolve(reg, ref, ref.path, platform)
            except (Unavailable, RegistryError, OSError) as e:
                last = e
                continue
            except NotFound as e:
                last = e
                if reg.host == registry_host(ref.domain) or not reg.creds.empty:
                    raise
                continue  # a mirror without the image: next one
            tag_ref = str(ref) if ref.tag is not None and ref.digest is None else None
            return PullPlan(reg, res, tag_ref)
        if isinstance(last, SampanError):
            raise last
        raise Unavailable(f"Error response from registry: {last}")

    def run_pull(self, plan: PullPlan, emit: Reporter) -> str:
        res = plan.res
        label = res.ref.tag or res.ref.digest or refs.DEFAULT_TAG
        emit(status(f"Pulling from {res.ref.familiar_name}", label))
        image_id, new = self.puller.run(plan.reg, res, emit, plan.tag_ref)
        self.images.add_repo_digest(image_id, f"{res.ref.name}@{res.top_digest}")
        for l, d in zip(res.manifest.layers, self.images.record(image_id).diff_ids):
            self.sources.add(d, l, plan.reg.host if plan.reg.host != HUB_HOST else HUB_HOST, res.repo)
        emit(status(f"Digest: {res.top_digest}"))
        shown = res.ref.familiar()
        emit(status(f"Status: {'Downloaded newer image' if new else 'Image is up to date'} for {shown}"))
        image_transferred(self.events, self.images, "pull", res.ref, image_id)
        return image_id

    def list_tags(self, reg: Registry, repo: str, limit: int = 10000) -> list[str]:
        tags: list[str] = []
        path = f"/v2/{repo}/tags/list?n=1000"
        while path and len(tags) < limit:
            r = reg.request("GET", path, [f"repository:{repo}:pull"])
            link = r.header("Link")
            try:
                obj = json.loads(r.read_small())
            except ValueError:
                raise InvalidParameter("registry sent an invalid tags list") from None
            got = obj.get("tags") if isinstance(obj, dict) else None
            tags += [t for t in got or [] if isinstance(t, str)]
            path = ""
            if link and "<" in link:
                path = link[link.index("<") + 1:link.index(">")]
        return tags

    def pull_all_tags(self, from_image: str, platform: str | None, creds: Credentials,
                      emit: Reporter) -> None:
        ref = refs.parse(from_image)
        if not ref.name_only:
            raise InvalidParameter("tag can't be used with --all-tags/-a")
        reg = self._endpoints(ref, creds)[-1]
        try:
            tags = self.list_tags(reg, ref.path)
        except RegistryError as e:
            if e.status in (401, 403, 404):
                raise NotFound(f"pull access denied for {ref.familiar_name}, repository does not "
                               f"exist or may require 'docker login': {e}") from None
            raise
        for t in sorted(tags):
            plan = self.prepare_pull(from_image, t, platform, creds)
            self.run_pull(plan, emit)

    # -- push -------------------------------------------------------------------------------------
    def prepare_push(self, name: str, tag: str | None) -> list[tuple[refs.Reference, str]]:
        """The local (reference, image ID) pairs a push sends; NotFound before any output."""
        ref = refs.parse(name)
        if ref.digest is not None:
            raise InvalidParameter("cannot push a digest reference")
        if tag:
            ref = ref.with_tag(tag)
        if ref.tag is not None:
            try:
                return [(ref, self.images.lookup_id(str(ref)))]
            except NotFound:
                raise NotFound(f"tag does not exist: {ref.familiar()}") from None
        out = [(refs.parse(t), i) for t, i in self.images.tags_of_repo(ref.name)]
        if not out:
            raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name}")
        return out

    def run_push(self, items: list[tuple[refs.Reference, str]], creds: Credentials, emit: Reporter) -> None:
        ref0 = items[0][0]
        emit(status(f"The push refers to repository [{ref0.name if ref0.domain != refs.DEFAULT_DOMAIN else 'docker.io/' + ref0.path}]"))
        reg = self.registry(registry_host(ref0.domain), creds)
        for ref, image_id in items:
            try:
                digest, size = self.pusher.push_image(reg, ref.path, ref.tag or "latest", image_id, emit)
            except RegistryError as e:
                if e.status in (401, 403):
                    raise type(e)(e.status, e.code, f"{e.message}") from None
                raise
            self.images.add_repo_digest(image_id, f"{ref.name}@{digest}")
            emit(status(f"{ref.tag}: digest: {digest} size: {size}"))
            emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": size}})
            image_transferred(self.events, self.images, "push", ref, image_id)

    # -- login, search, inspect -------------------------------------------------------------------
    def login(self, creds: Credentials, server: str) -> dict[str, str]:
        host = (server or "").strip()
        host = urllib.parse.urlsplit(host).netloc if "://" in host else host.split("/", 1)[0]
        if not host or host in ("docker.io", HUB_INDEX):
            host = HUB_HOST
        reg = Registry(host, creds, self.options)
        try:
            reg.ping()
            scheme, _ = reg._challenge or ("", {})
            if scheme == "bearer":
                reg._auth_header([], fresh=True)  # the token server checks the password
            elif scheme == "basic":
                r = reg.request("GET", "/v2/", [])
                r.read_small()
        except RegistryError as e:
            if e.status in (401, 403):
                raise RegistryDenied(e.status, "", f"login attempt to {reg.base()}/v2/ failed with "
                                     f"status: {e.status} Unauthorized") from None
            raise
        finally:
            reg.close()
        return {"Status": "Login Succeeded", "IdentityToken": ""}

    def search(self, term: str, limit: int, filters: dict[str, list[str]], creds: Credentials) -> list[dict]:
        if not term:
            raise InvalidParameter("term is required")
        host, _, q = term.rpartition("/") if "/" in term and ("." in term.split("/")[0] or ":" in term.split("/")[0]
                                                            or term.split("/")[0] == "localhost") else ("", "", term)
        host = host or HUB_INDEX
        limit = limit or 25
        if limit < 1 or limit > 100:
            raise InvalidParameter("limit must be between 1 and 100")
        reg = self.registry(host, creds)
        try:
            r = reg.request("GET", f"/v1/search?{urllib.parse.urlencode({'q': q, 'n': limit})}", [])
            obj = json.loads(r.read_small())
        except RegistryError as e:
            raise Unavailable(f"Unexpected status code {e.status}: search is not available on {host}") from None
        except ValueError:
            raise InvalidParameter("registry sent an invalid search result") from None
        results = obj.get("results") if isinstance(obj, dict) else None
        out = []
        for it in results or []:
            if not isinstance(it, dict):
                continue
            e = {"name": str(it.get("name", "")), "description": str(it.get("description", "")),
                 "star_count": int(it.get("star_count") or 0), "is_official": bool(it.get("is_official")),
                 "is_automated": bool(it.get("is_automated"))}
            if not _search_match(e, filters):
                continue
            out.append(e)
        return out[:limit]

    def inspect(self, name: str, creds: Credentials) -> dict[str, Any]:
        """GET /distribution/{name}/json: the descriptor a tag names and its platforms."""
        ref = refs.parse(name).with_default_tag()
        reg = self._endpoints(ref, creds)[-1]
        from .pull import fetch_manifest
        try:
            raw, ctype, digest = fetch_manifest(reg, ref.path, ref.digest or ref.tag or "latest")
        except RegistryError as e:
            if e.status in (401, 403, 404):
                raise NotFound(f"{ref.familiar()}: not found: {e}") from None
            raise
        m = mf.parse(raw, ctype)
        platforms = []
        if m.is_index:
            for d in m.manifests:
                if d.platform and d.platform.get("os") != "unknown":
                    platforms.append({k: d.platform[k] for k in ("architecture", "os", "variant",
                                                                 "os.version", "os.features")
                                      if d.platform.get(k)})
        else:
            assert m.config is not None
            from .pull import fetch_small_blob
            cfg = json.loads(fetch_small_blob(reg, ref.path, m.config.digest))
            platforms.append({k: cfg[k] for k in ("architecture", "os", "variant") if cfg.get(k)})
        return {"Descriptor": {"mediaType": m.media_type, "digest": digest, "size": len(raw)},
                "Platforms": platforms}


def _search_match(e: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for k, vals in filters.items():
        for v in vals:
            if k == "stars":
                try:
                    if e["star_count"] < int(v):
                        return False
                except ValueError:
                    raise InvalidParameter(f"invalid filter 'stars={v}'") from None
            elif k == "is-official":
                if e["is_official"] != (v.lower() == "true"):
                    return False
            elif k == "is-automated":
                if e["is_automated"] != (v.lower() == "true"):
                    return False
            else:
                raise InvalidParameter(f"invalid filter '{k}'")
    return True


def new_service(engine: Any) -> DistributionService:
    cfg = engine.config
    db = getattr(engine, "db", None) or engine.images.db
    svc = DistributionService(engine.images, db, cfg.tmp_dir, getattr(cfg, "extra", {}))
    svc.events = getattr(engine, "events", None)
    return svc


__all__ = ["DistributionService", "PullPlan", "Reporter", "new_service", "push_scopes"]
