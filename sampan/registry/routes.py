"""The distribution-spec endpoints (and Docker Hub's `/v1/search`, and `/token`).

Each handler takes the server's request handler `h` (server.Handler): `h.query`, `h.body()`,
`h.read_body(limit)`, `h.send(...)`, `h.send_json(...)`, `h.authorize(...)`.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from ..distribution import manifest as mf
from .auth import parse_basic
from .storage import MAX_MANIFEST, RegistryAPIError, check_digest, check_name, err

_ROUTES: list[tuple[re.Pattern[str], str]] = [(re.compile(p), n) for p, n in [
    (r"^/v2/?$", "base"),
    (r"^/v2/_catalog$", "catalog"),
    (r"^/v2/(?P<name>.+)/tags/list$", "tags"),
    (r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$", "manifest"),
    (r"^/v2/(?P<name>.+)/blobs/uploads/?$", "upload_start"),
    (r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$", "upload"),
    (r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$", "blob"),
    (r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$", "referrers"),
    (r"^/v1/search$", "search"),
    (r"^/token$", "token"),
]]

_METHODS = {
    "base": ("GET", "HEAD"), "catalog": ("GET",), "tags": ("GET",),
    "manifest": ("GET", "HEAD", "PUT", "DELETE"), "upload_start": ("POST",),
    "upload": ("GET", "PATCH", "PUT", "DELETE"), "blob": ("GET", "HEAD", "DELETE"),
    "referrers": ("GET",), "search": ("GET",), "token": ("GET", "POST"),
}
_ACTION = {"GET": "pull", "HEAD": "pull", "PUT": "push", "POST": "push", "PATCH": "push", "DELETE": "delete"}


def dispatch(h: Any, method: str, path: str) -> None:
    for rx, name in _ROUTES:
        m = rx.match(path)
        if m is None:
            continue
        if method not in _METHODS[name]:
            raise err(405, "UNSUPPORTED", "the operation is unsupported")
        args = m.groupdict()
        if "name" in args:
            check_name(args["name"])
            if name not in ("search", "token"):
                h.authorize(args["name"], [_ACTION[method]])
        globals()["_" + name](h, method, **args)
        return
    raise err(404, "NOT_FOUND", "page not found")


def _paginate(items: list[str], h: Any, path: str) -> tuple[list[str], dict[str, str]]:
    """`n`/`last` pagination with a `Link: <...>; rel="next"` header, as the spec says."""
    last = h.query.get("last")
    if last:
        items = [i for i in items if i > last]
    n_s = h.query.get("n")
    headers: dict[str, str] = {}
    if n_s is not None and n_s != "":
        try:
            n = int(n_s)
        except ValueError:
            raise err(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested") from None
        if n < 0:
            raise err(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        if len(items) > n:
            items = items[:n]
            if items:
                q = urllib.parse.urlencode({"n": n, "last": items[-1]})
                headers["Link"] = f'<{path}?{q}>; rel="next"'
    return items, headers


# -- base, catalog, tags, search, token ------------------------------------------------------------

def _base(h: Any, method: str) -> None:
    h.authorize(None, [])
    h.send_json(200, {})


def _catalog(h: Any, method: str) -> None:
    h.authorize(None, [], [("_catalog", "*")])
    repos, headers = _paginate(h.app.storage.repositories(), h, "/v2/_catalog")
    h.send_json(200, {"repositories": repos}, headers)


def _tags(h: Any, method: str, name: str) -> None:
    st = h.app.storage
    all_tags = h.app.proxy.tags(name) if h.app.proxy is not None else None
    if all_tags is None:
        all_tags = st.tags(name)
    tags, headers = _paginate(all_tags, h, f"/v2/{name}/tags/list")
    h.send_json(200, {"name": name, "tags": tags}, headers)


def _search(h: Any, method: str) -> None:
    h.authorize(None, [])
    q = (h.query.get("q") or "").lower()
    try:
        n = max(1, min(int(h.query.get("n") or 25), 100))
        page = max(1, int(h.query.get("page") or 1))
    except ValueError:
        raise err(400, "PAGINATION_NUMBER_INVALID", "invalid n or page") from None
    hits = [r for r in h.app.storage.repositories() if q in r.lower()]
    chunk = hits[(page - 1) * n: page * n]
    h.send_json(200, {"num_pages": (len(hits) + n - 1) // n or 1, "num_results": len(hits),
                      "page": page, "page_size": n, "query": q,
                      "results": [{"name": r, "description": "", "star_count": 0,
                                   "is_official": False, "is_automated": False} for r in chunk]})


def _token(h: Any, method: str) -> None:
    app = h.app
    if app.issuer is None:
        raise err(404, "NOT_FOUND", "this registry does not issue tokens")
    user = ""
    creds = parse_basic(h.headers.get("Authorization", ""))
    if creds is not None:
        if not app.htpasswd.check(*creds):
            h.send_json(401, {"details": "invalid username or password"},
                        {"WWW-Authenticate": f'Basic realm="{app.cfg.realm}"'})
            return
        user = creds[0]
    if method == "POST":  # OAuth2 form (password grant), as docker may use with identity tokens
        form = urllib.parse.parse_qs(h.read_body(64 * 1024).decode(errors="replace"))
        if form.get("grant_type", [""])[0] == "password":
            u, p = form.get("username", [""])[0], form.get("password", [""])[0]
            if not app.htpasswd.check(u, p):
                h.send_json(401, {"details": "invalid username or password"})
                return
            user = u
        scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
    else:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
    tok = app.issuer.issue(user, scopes, app.cfg.anonymous_pull)
    h.send_json(200, {"token": tok, "access_token": tok, "expires_in": 300})


# -- manifests -------------------------------------------------------------------------------------

def _manifest(h: Any, method: str, name: str, ref: str) -> None:
    st = h.app.storage
    if method in ("GET", "HEAD"):
        if h.app.proxy is not None:
            raw, ctype, digest = h.app.proxy.manifest(name, ref)
        else:
            raw, ctype, digest = st.get_manifest(name, ref)
        headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Content-Length": str(len(raw))}
        h.send(200, raw, headers, ctype)
        return
    if method == "DELETE":
        st.delete_manifest(name, ref)
        h.send(202)
        return
    cl = h.content_length()
    if cl is not None and cl > MAX_MANIFEST:
        raise err(413, "MANIFEST_INVALID", "manifest too big")
    raw = h.read_body(MAX_MANIFEST)
    digest, subject = st.put_manifest(name, ref, raw, h.headers.get("Content-Type", ""))
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
    if subject:
        headers["OCI-Subject"] = subject
    h.send(201, b"", headers)


def _referrers(h: Any, method: str, name: str, digest: str) -> None:
    check_digest(digest)
    found = h.app.storage.referrers(name, digest)
    headers = {}
    at = h.query.get("artifactType")
    if at:
        found = [d for d in found if d.get("artifactType") == at]
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": found}
    h.send_json(200, body, headers)


# -- blobs -----------------------------------------------------------------------------------------

def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if m.group(1):
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
    else:  # suffix: the last N bytes
        start, end = max(size - int(m.group(2)), 0), size - 1
    end = min(end, size - 1)
    if start > end or start >= size:
        return None
    return start, end


def _blob(h: Any, method: str, name: str, digest: str) -> None:
    st = h.app.storage
    check_digest(digest)
    if method == "DELETE":
        if not st.unlink_blob(name, digest):
            raise err(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
        h.send(202)
        return
    size = st.blob_size(name, digest)
    if size is None and h.app.proxy is not None:
        size = h.app.proxy.blob(name, digest)
    if size is None:
        raise err(404, "BLOB_UNKNOWN", "blob unknown to registry", {"digest": digest})
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Accept-Ranges": "bytes",
               "Cache-Control": "max-age=31536000"}
    start, end, status = 0, size - 1, 200
    rng = h.headers.get("Range")
    if rng and method == "GET":
        got = _parse_range(rng, size)
        if got is None:
            h.send(416, b"", {"Content-Range": f"bytes */{size}"})
            return
        start, end = got
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1 if size else 0
    headers["Content-Length"] = str(length)
    h.send(status, b"", headers, "application/octet-stream")
    if method == "HEAD" or not length:
        return
    with st.open_blob(digest) as f:
        h.wfile.flush()
        sent = h.connection.sendfile(f, start, length)
        if sent != length:
            h.close_connection = True


def _upload_headers(name: str, uuid: str, size: int) -> dict[str, str]:
    return {"Location": f"/v2/{name}/blobs/uploads/{uuid}", "Docker-Upload-UUID": uuid,
            "Range": f"0-{max(size - 1, 0)}"}


def _upload_start(h: Any, method: str, name: str) -> None:
    st = h.app.storage
    mount, src = h.query.get("mount"), h.query.get("from")
    if mount and src:
        check_digest(mount)
        check_name(src)
        try:
            h.authorize(src, ["pull"])
            ok = st.blob_size(src, mount) is not None and st.link_blob(name, mount)
        except RegistryAPIError:
            ok = False  # no access to the source: fall back to an upload, as the spec says
        if ok:
            h.send(201, b"", {"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount})
            return
    digest = h.query.get("digest")
    uuid = st.start_upload(name)
    if digest:  # monolithic: the whole blob in this POST
        check_digest(digest)
        try:
            st.append_upload(name, uuid, h.body(), None)
            st.finish_upload(name, uuid, digest)
        except BaseException:
            try:
                st.cancel_upload(name, uuid)
            except RegistryAPIError:
                pass
            raise
        h.send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})
        return
    h.send(202, b"", _upload_headers(name, uuid, 0))


def _content_range(h: Any) -> tuple[int | None, int | None]:
    cr = h.headers.get("Content-Range")
    if not cr:
        return None, None
    m = re.fullmatch(r"\s*(?:bytes )?(\d+)-(\d+)\s*", cr)
    if not m or int(m.group(2)) < int(m.group(1)):
        raise err(416, "BLOB_UPLOAD_INVALID", "invalid Content-Range", {"Content-Range": cr[:100]})
    start, end = int(m.group(1)), int(m.group(2))
    cl = h.content_length()
    if cl is not None and cl != end - start + 1:
        raise err(416, "BLOB_UPLOAD_INVALID", "Content-Range does not match Content-Length")
    return start, end - start + 1


def _upload(h: Any, method: str, name: str, uuid: str) -> None:
    st = h.app.storage
    if method == "GET":
        size = st.upload_size(name, uuid)
        h.send(204, b"", _upload_headers(name, uuid, size))
        return
    if method == "DELETE":
        st.cancel_upload(name, uuid)
        h.send(204)
        return
    if method == "PATCH":
        start, length = _content_range(h)
        size = st.append_upload(name, uuid, h.body(), start, length)
        h.send(202, b"", _upload_headers(name, uuid, size))
        return
    digest = h.query.get("digest")
    if not digest:
        raise err(400, "DIGEST_INVALID", "digest missing from the upload's final PUT")
    check_digest(digest)
    start, length = _content_range(h)
    if h.content_length() != 0:
        st.append_upload(name, uuid, h.body(), start, length)
    st.finish_upload(name, uuid, digest)
    h.send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})
