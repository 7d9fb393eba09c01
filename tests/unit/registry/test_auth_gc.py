"""Registry auth (htpasswd basic, self-issued bearer tokens, read-only) and garbage collection."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse

from sampan.distribution.auth import parse_challenge
from sampan.registry.gc import collect


def _htpasswd(tmp_path, hp):
    p = tmp_path / "htpasswd"
    p.write_text(hp.bcrypt_line("ann", "secret"))
    return p


def test_basic_auth(make_registry, tmp_path, hp):
    c, _ = make_registry(htpasswd=_htpasswd(tmp_path, hp))
    r = c.req("GET", "/v2/")
    assert r.status == 401 and r.code == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Basic realm=")
    assert c.req("GET", "/v2/", headers={"Authorization": hp.basic("ann", "wrong")}).status == 401
    assert c.req("GET", "/v2/", headers={"Authorization": hp.basic("bob", "secret")}).status == 401
    assert c.req("POST", "/v2/a/blobs/uploads/").status == 401
    c.auth = hp.basic("ann", "secret")
    assert c.req("GET", "/v2/").status == 200
    c.push_image("a", "1")


def test_token_flow(make_registry, tmp_path, hp):
    c, _ = make_registry(htpasswd=_htpasswd(tmp_path, hp), token_auth=True)
    r = c.req("POST", "/v2/team/app/blobs/uploads/")
    assert r.status == 401
    scheme, params = parse_challenge(r.headers["www-authenticate"])
    assert scheme == "bearer" and params["scope"] == "repository:team/app:push"
    realm = urllib.parse.urlsplit(params["realm"])
    assert realm.path == "/token"
    q = urllib.parse.urlencode({"service": params["service"], "scope": "repository:team/app:pull,push"})
    # wrong password: no token
    assert c.req("GET", f"/token?{q}", headers={"Authorization": hp.basic("ann", "nope")}).status == 401
    # anonymous: a token that grants nothing
    anon = c.req("GET", f"/token?{q}").json()["token"]
    assert c.req("POST", "/v2/team/app/blobs/uploads/", headers={"Authorization": "Bearer " + anon}).status == 401
    tok = c.req("GET", f"/token?{q}", headers={"Authorization": hp.basic("ann", "secret")}).json()["token"]
    c.auth = "Bearer " + tok
    c.push_image("team/app", "1")
    assert c.req("GET", "/v2/team/app/tags/list").json()["tags"] == ["1"]
    # the token is scoped: another repository needs another token
    assert c.req("GET", "/v2/other/tags/list").status == 401
    # a forged token is refused
    h, claims, sig = tok.split(".")
    assert c.req("GET", "/v2/team/app/tags/list", headers={"Authorization": f"Bearer {h}.{claims}.x{sig[1:]}"}).status == 401


def test_anonymous_pull_with_tokens(make_registry, tmp_path, hp):
    c, _ = make_registry(htpasswd=_htpasswd(tmp_path, hp), token_auth=True, anonymous_pull=True)
    q = urllib.parse.urlencode({"service": "sampan-registry", "scope": "repository:a:pull,push"})
    anon = c.req("GET", f"/token?{q}").json()["token"]
    assert c.req("GET", "/v2/a/tags/list", headers={"Authorization": "Bearer " + anon}).code == "NAME_UNKNOWN"
    assert c.req("POST", "/v2/a/blobs/uploads/", headers={"Authorization": "Bearer " + anon}).status == 401


def test_read_only(make_registry):
    c, _ = make_registry(read_only=True)
    r = c.req("POST", "/v2/a/blobs/uploads/")
    assert r.status == 405 and r.code == "UNSUPPORTED"
    assert c.req("GET", "/v2/_catalog").json() == {"repositories": []}


def test_gc_sweeps_only_unreferenced(reg, hp):
    c, app = reg
    st = app.storage
    keep, keep_blobs = c.push_image("a", "keep")
    gone, gone_blobs = c.push_image("a", "gone")
    orphan = c.push_blob("a", b"never referenced")
    assert c.req("DELETE", f"/v2/a/manifests/{gone}").status == 202
    dry = collect(st, dry_run=True)
    assert set(dry.blobs) == set(gone_blobs) | {orphan, gone}
    assert all(st.has_blob(d) for d in dry.blobs)  # dry run deletes nothing
    res = collect(st)
    assert set(res.blobs) == set(gone_blobs) | {orphan, gone}
    for d in keep_blobs + [keep]:
        assert st.has_blob(d)
    assert c.req("GET", "/v2/a/manifests/keep").status == 200
    for d in keep_blobs:
        assert c.req("GET", f"/v2/a/blobs/{d}").status == 200
    assert c.req("GET", f"/v2/a/blobs/{orphan}").status == 404


def test_gc_delete_untagged_and_grace(reg):
    c, app = reg
    layer = os.urandom(50)
    first, _ = c.push_image("a", "t", layer)
    second, _ = c.push_image("a", "t", os.urandom(50))  # the tag moves: `first` is untagged
    assert collect(app.storage, grace=3600).blobs == []  # everything is recent
    res = collect(app.storage, delete_untagged=True)
    assert res.manifests == [f"a@{first}"]
    assert c.req("GET", f"/v2/a/manifests/{first}").status == 404
    assert c.req("GET", "/v2/a/manifests/t").status == 200
    assert c.req("GET", f"/v2/a/manifests/{second}").status == 200


def test_gc_racing_pushes_never_breaks_a_pushed_manifest(reg, hp):
    """Pushes run while GC loops; every manifest whose PUT succeeded keeps all its blobs."""
    c, app = reg
    pushed: list[tuple[str, str, list[str]]] = []
    errors: list[str] = []
    stop = threading.Event()

    def pusher(n: int) -> None:
        for i in range(15):
            layer = os.urandom(3000)
            cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [hp.sha(layer)]}, "n": [n, i]}).encode()
            try:
                blobs = [c.push_blob(f"r{n}", cfg), c.push_blob(f"r{n}", layer)]
            except AssertionError as e:
                errors.append(str(e))
                continue
            m = hp.manifest(cfg, [layer])
            r = c.req("PUT", f"/v2/r{n}/manifests/t{i}", m, {"Content-Type": hp.DOCKER_MANIFEST})
            if r.status == 201:
                pushed.append((f"r{n}", f"t{i}", blobs))
            else:  # GC took a blob between upload and manifest: refused, never half-stored
                assert r.code == "MANIFEST_BLOB_UNKNOWN", r.body

    def gc_loop() -> None:
        # Sweeps keep interleaving with the pushes; the short pause between them only leaves
        # a busy host room for some pushes to finish (the safety property is checked below).
        while not stop.is_set():
            collect(app.storage)
            stop.wait(0.02)

    g = threading.Thread(target=gc_loop)
    g.start()
    ts = [threading.Thread(target=pusher, args=(n,)) for n in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    g.join()
    collect(app.storage)
    assert not errors
    assert pushed, "no push got through"
    for repo, tag, blobs in pushed:
        r = c.req("GET", f"/v2/{repo}/manifests/{tag}")
        assert r.status == 200
        for d in blobs:
            assert c.req("HEAD", f"/v2/{repo}/blobs/{d}").status == 200, (repo, tag, d)
