"""The registry client (DistributionService over a real image store) against real registries on
loopback: sampan's own server and Debian's `docker-registry` (the CNCF distribution), with and
without auth; skopeo as an independent client of sampan's server; a pull-through mirror."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sampan.daemon.config import DaemonConfig
from sampan.distribution.auth import Credentials
from sampan.distribution.progress import Reporter
from sampan.distribution.service import DistributionService
from sampan.errors import Forbidden, InvalidParameter, NotFound
from sampan.images import ImageService
from sampan.metadata import Database
from sampan.registry.server import RegistryConfig, serve_in_thread

pytestmark = pytest.mark.root

CNCF = shutil.which("docker-registry")
SKOPEO = shutil.which("skopeo")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _htpasswd(path: Path, user: str = "ann", pw: str = "secret") -> Path:
    bcrypt = pytest.importorskip("bcrypt")
    path.write_text(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(4)).decode()}\n")
    return path


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class Client:
    """An image store plus the distribution service, on a temp data root."""

    def __init__(self, root: Path, extra: dict | None = None) -> None:
        self.cfg = DaemonConfig(data_root=root)
        root.mkdir(parents=True)
        self.db = Database(self.cfg.db_path)
        self.images = ImageService(self.cfg, self.db)
        self.dist = DistributionService(self.images, self.db, self.cfg.tmp_dir, extra or {})
        self.messages: list[dict] = []

    def make_image(self, ref: str, payload: bytes = b"") -> str:
        l1 = self.images.add_layer(None, io.BytesIO(gzip.compress(_layer({"a/base.txt": b"base"}))))
        l2 = self.images.add_layer(l1.chain_id, io.BytesIO(_layer({"a/app.bin": payload or os.urandom(300_000)})))
        cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
               "rootfs": {"type": "layers", "diff_ids": [l1.diff_id, l2.diff_id]}}
        return self.images.create_image(cfg, ref=ref)

    def push(self, ref: str, creds: Credentials | None = None) -> None:
        items = self.dist.prepare_push(ref, None)
        self.dist.run_push(items, creds or Credentials(), Reporter(self.messages.append))

    def pull(self, ref: str, creds: Credentials | None = None, platform: str | None = None) -> str:
        plan = self.dist.prepare_pull(ref, None, platform, creds or Credentials())
        return self.dist.run_pull(plan, Reporter(self.messages.append))

    def statuses(self) -> list[str]:
        return [m.get("status", "") for m in self.messages]

    def close(self) -> None:
        self.db.close()


@pytest.fixture
def client(tmp_path):
    c = Client(tmp_path / "c1")
    yield c
    c.close()


@pytest.fixture
def client2(tmp_path):
    c = Client(tmp_path / "c2")
    yield c
    c.close()


@pytest.fixture
def sampan_registry(tmp_path):
    made = []

    def make(**kw):
        cfg = RegistryConfig(root=tmp_path / f"sreg{len(made)}", addr="127.0.0.1:0", **kw)
        srv, app, _ = serve_in_thread(cfg)
        made.append(srv)
        return f"127.0.0.1:{srv.server_address[1]}", app

    yield make
    for s in made:
        s.shutdown()
        s.server_close()


@pytest.fixture
def cncf_registry(tmp_path):
    if CNCF is None:
        pytest.skip("docker-registry (Debian package) not installed: scripts/install.sh installs it")
    procs = []

    def make(htpasswd: Path | None = None) -> str:
        port = _free_port()
        d = tmp_path / f"cncf{port}"
        d.mkdir()
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
        (d / "config.yml").write_text(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {d}/data\n"
            f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}")
        p = subprocess.Popen([CNCF, "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL,
                             stderr=open(d / "log", "wb"))
        procs.append(p)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except urllib.error.HTTPError:
                break  # 401: up, with auth
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("docker-registry did not start:\n" + (d / "log").read_text())
        return f"127.0.0.1:{port}"

    yield make
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


@pytest.fixture(params=["sampan", "cncf"])
def any_registry(request, sampan_registry, cncf_registry):
    if request.param == "sampan":
        return sampan_registry()[0]
    return cncf_registry()


def test_push_then_pull_roundtrip(any_registry, client, client2):
    ref = f"{any_registry}/team/app:1"
    image_id = client.make_image(ref)
    client.push(ref)
    assert "Pushed" in client.statuses()
    assert any(s.startswith("1: digest: sha256:") for s in client.statuses())
    rec = client.images.record(image_id)
    assert rec.repo_digests and rec.repo_digests[0].startswith(f"{any_registry}/team/app@sha256:")
    # pushed again: nothing is uploaded twice
    client.messages.clear()
    client.push(ref)
    assert "Pushed" not in client.statuses() and "Layer already exists" in client.statuses()

    got = client2.pull(ref)
    assert got == image_id
    rec2 = client2.images.record(got)
    assert rec2.repo_tags == [ref] and rec2.repo_digests == rec.repo_digests
    top = rec2.layer_dirs[0]
    assert (top / "a" / "app.bin").stat().st_size == 300_000
    assert (rec2.layer_dirs[1] / "a" / "base.txt").read_bytes() == b"base"
    assert f"Status: Downloaded newer image for {ref}" in client2.statuses()
    client2.messages.clear()
    client2.pull(ref)
    assert f"Status: Image is up to date for {ref}" in client2.statuses()
    assert "Downloading" not in client2.statuses()
    # by digest
    digest = rec.repo_digests[0].split("@")[1]
    client2.images.remove(ref)
    assert client2.pull(f"{any_registry}/team/app@{digest}") == image_id


def test_cross_repository_mount(sampan_registry, client):
    host, _ = sampan_registry()
    client.make_image(f"{host}/a/one:1")
    client.push(f"{host}/a/one:1")
    client.images.tag(f"{host}/a/one:1", f"{host}/b/two", "1")
    client.messages.clear()
    client.push(f"{host}/b/two:1")
    assert [s for s in client.statuses() if s.startswith("Mounted from")] == ["Mounted from a/one"] * 2


def test_unknown_image_and_tag(any_registry, client):
    with pytest.raises(NotFound, match="not found|does not exist"):
        client.pull(f"{any_registry}/nobody/nothing:1")
    client.make_image(f"{any_registry}/x/y:1")
    client.push(f"{any_registry}/x/y:1")
    with pytest.raises(NotFound, match="manifest for .*x/y:2 not found"):
        client.pull(f"{any_registry}/x/y:2")


@pytest.mark.parametrize("mode", ["sampan-basic", "sampan-token", "cncf-basic"])
def test_auth(mode, tmp_path, sampan_registry, cncf_registry, client, client2):
    htp = _htpasswd(tmp_path / "htpasswd")
    if mode == "cncf-basic":
        host = cncf_registry(htp)
    else:
        host = sampan_registry(htpasswd=htp, token_auth=(mode == "sampan-token"))[0]
    ref = f"{host}/team/app:1"
    client.make_image(ref)
    with pytest.raises(Forbidden):
        client.push(ref)
    with pytest.raises(Forbidden, match="login attempt .* failed"):
        client.dist.login(Credentials("ann", "wrong"), host)
    good = Credentials("ann", "secret")
    assert client.dist.login(good, host)["Status"] == "Login Succeeded"
    client.push(ref, good)
    with pytest.raises(NotFound, match="pull access denied|not found"):
        client2.pull(ref)
    assert client2.pull(ref, good)
    assert client2.images.count() == 1


def test_corrupt_blob_leaves_nothing_behind(sampan_registry, client, client2):
    host, app = sampan_registry()
    ref = f"{host}/team/app:1"
    client.make_image(ref)
    client.push(ref)
    manifest = json.loads(app.storage.get_manifest("team/app", "1")[0])
    big = manifest["layers"][1]["digest"]
    p = app.storage.blob_path(big)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    os.chmod(p, 0o644)
    p.write_bytes(bytes(data))
    with pytest.raises(InvalidParameter, match="digest mismatch|invalid gzip"):
        client2.pull(ref)
    assert client2.images.count() == 0
    assert client2.images.layers.all() == []  # the good first layer was collected too
    assert [p.name for p in client2.cfg.tmp_dir.iterdir()] == []


def test_concurrent_pulls_fetch_each_blob_once(sampan_registry, client, client2):
    host, app = sampan_registry()
    ref = f"{host}/team/app:1"
    client.make_image(ref)
    client.push(ref)
    opened: list[str] = []
    real = app.storage.open_blob

    def counting(digest):
        opened.append(digest)
        return real(digest)

    app.storage.open_blob = counting
    plans = [client2.dist.prepare_pull(ref, None, None, Credentials()) for _ in range(2)]
    errors = []

    def go(plan):
        try:
            client2.dist.run_pull(plan, Reporter(None))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=go, args=(p,)) for p in plans]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    manifest = json.loads(app.storage.get_manifest("team/app", "1")[0])
    for l in manifest["layers"]:
        assert opened.count(l["digest"]) <= 1, opened


def test_index_platform_selection_and_all_tags(sampan_registry, client, client2):
    host, app = sampan_registry()
    client.make_image(f"{host}/multi/img:amd")
    client.push(f"{host}/multi/img:amd")
    raw, media, digest = app.storage.get_manifest("multi/img", "amd")
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": media, "digest": digest, "size": len(raw),
                            "platform": {"os": "linux", "architecture": "amd64"}},
                           {"mediaType": media, "digest": digest, "size": len(raw),
                            "platform": {"os": "unknown", "architecture": "unknown"}}]}
    idx = json.dumps(index).encode()
    app.storage.put_manifest("multi/img", "latest", idx, "application/vnd.oci.image.index.v1+json")
    client2.pull(f"{host}/multi/img:latest", platform="linux/amd64")
    rec = client2.images.resolve(f"{host}/multi/img:latest")
    # the RepoDigest is the index's, as Docker records it
    assert rec.repo_digests == [f"{host}/multi/img@sha256:{hashlib.sha256(idx).hexdigest()}"]
    with pytest.raises(NotFound, match="no matching manifest for linux/s390x"):
        client2.pull(f"{host}/multi/img:latest", platform="linux/s390x")
    client2.dist.pull_all_tags(f"{host}/multi/img", None, Credentials(), Reporter(None))
    assert client2.images.exists(f"{host}/multi/img:amd")


def test_mirror_through_pull_through_cache(sampan_registry, client, tmp_path):
    upstream, _ = sampan_registry()
    client.make_image(f"{upstream}/library/busybox:latest")
    client.push(f"{upstream}/library/busybox:latest")
    mirror, mirror_app = sampan_registry(proxy_remote=f"http://{upstream}")
    c3 = Client(tmp_path / "c3", {"registry-mirrors": [f"http://{mirror}"]})
    try:
        image_id = c3.pull("busybox")  # docker.io/library/busybox: served by the mirror
        assert c3.images.record(image_id).repo_tags == ["busybox:latest"]
        assert mirror_app.storage.tags("library/busybox") == ["latest"]  # now cached
    finally:
        c3.close()


@pytest.mark.skipif(SKOPEO is None, reason="skopeo not installed")
def test_skopeo_against_sampan_registry(sampan_registry, client, tmp_path):
    host, _ = sampan_registry()
    client.make_image(f"{host}/library/bb:1")
    client.push(f"{host}/library/bb:1")
    run = lambda *a: subprocess.run([SKOPEO, *a], capture_output=True, text=True, timeout=120)  # noqa: E731
    r = run("inspect", "--tls-verify=false", f"docker://{host}/library/bb:1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["RepoTags"] == ["1"]
    r = run("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
            f"docker://{host}/library/bb:1", f"docker://{host}/other/copy:2")
    assert r.returncode == 0, r.stderr
    r = run("copy", "--src-tls-verify=false", f"docker://{host}/other/copy:2", f"oci:{tmp_path}/oci:x")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "oci" / "index.json").exists()
    r = run("list-tags", "--tls-verify=false", f"docker://{host}/other/copy")
    assert json.loads(r.stdout)["Tags"] == ["2"]
    r = run("delete", "--tls-verify=false", f"docker://{host}/other/copy:2")
    assert r.returncode == 0, r.stderr
    r = run("inspect", "--tls-verify=false", f"docker://{host}/other/copy:2")
    assert r.returncode != 0


def test_zstd_and_uncompressed_layers(sampan_registry, client):
    zstd = pytest.importorskip("zstandard")
    host, app = sampan_registry()
    st = app.storage
    plain = _layer({"p/plain.txt": b"plain"})
    packed = zstd.ZstdCompressor().compress(_layer({"z/zstd.txt": b"zstd"}))
    diff_ids = ["sha256:" + hashlib.sha256(plain).hexdigest(),
                "sha256:" + hashlib.sha256(zstd.ZstdDecompressor().decompressobj().decompress(packed)).hexdigest()]
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    for blob in (plain, packed, cfg):
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        st.put_blob(d, blob)
        assert st.link_blob("oci/zstd", d)
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": "sha256:" + hashlib.sha256(cfg).hexdigest(), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                       "digest": diff_ids[0], "size": len(plain)},
                      {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                       "digest": "sha256:" + hashlib.sha256(packed).hexdigest(), "size": len(packed)}]}
    st.put_manifest("oci/zstd", "1", json.dumps(man).encode(), "application/vnd.oci.image.manifest.v1+json")
    rec = client.images.record(client.pull(f"{host}/oci/zstd:1"))
    assert (rec.layer_dirs[0] / "z" / "zstd.txt").read_bytes() == b"zstd"
    assert (rec.layer_dirs[1] / "p" / "plain.txt").read_bytes() == b"plain"


def _host_ip() -> str | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


def test_tls_registry_verified_with_certs_d(tmp_path):
    """A non-loopback registry is verified: unknown CA refused, certs.d's CA accepted."""
    ip = _host_ip()
    if shutil.which("openssl") is None or ip is None:
        pytest.skip("needs openssl and a non-loopback address")
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={ip}",
                    "-addext", f"subjectAltName=IP:{ip}"], check=True, capture_output=True)
    srv, _, _ = serve_in_thread(RegistryConfig(root=tmp_path / "treg", addr=f"{ip}:0",
                                               tls_cert=crt, tls_key=key))
    c = Client(tmp_path / "c")
    try:
        name = f"{ip}:{srv.server_address[1]}"
        ref = f"{name}/tls/app:1"
        c.make_image(ref)
        certs = tmp_path / "certs.d"
        c.dist.options.certs_dirs = (certs,)
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            c.push(ref)
        (certs / name).mkdir(parents=True)
        shutil.copy(crt, certs / name / "ca.crt")
        c.dist._regs.clear()
        c.push(ref)
        assert "Pushed" in c.statuses()
    finally:
        c.close()
        srv.shutdown()
        srv.server_close()


def test_chunked_push(any_registry, client, client2, monkeypatch):
    from sampan.distribution import push as push_mod
    monkeypatch.setattr(push_mod, "CHUNK_THRESHOLD", 100_000)
    monkeypatch.setattr(push_mod, "CHUNK_SIZE", 64_000)
    ref = f"{any_registry}/chunked/app:1"
    image_id = client.make_image(ref, os.urandom(400_000))  # incompressible: several chunks
    client.push(ref)
    assert client2.pull(ref) == image_id


def test_a_pulled_layer_keeps_the_registry_blob_for_save_and_push(sampan_registry, client, client2):
    """A pull stores each layer's registry blob (no second, uncompressed copy); `save` still
    writes the exact tars and a push sends a gzip blob unchanged (same digest as the source)."""
    zstd = pytest.importorskip("zstandard")
    host, app = sampan_registry()
    st = app.storage
    tars = [_layer({"p/plain.txt": b"plain"}), _layer({"g/gzip.bin": os.urandom(200_000)}),
            _layer({"z/zstd.txt": b"zstd"})]
    # level 9 with a fixed mtime: not what sampan's own compression would produce
    blobs = [tars[0], gzip.compress(tars[1], compresslevel=9, mtime=42),
             zstd.ZstdCompressor().compress(tars[2])]
    types = ["application/vnd.oci.image.layer.v1.tar", "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.v1.tar+zstd"]
    sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()  # noqa: E731
    diff_ids = [sha(t) for t in tars]
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    for b in (*blobs, cfg):
        st.put_blob(sha(b), b)
        assert st.link_blob("oci/mixed", sha(b))
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg),
                      "size": len(cfg)},
           "layers": [{"mediaType": t, "digest": sha(b), "size": len(b)} for t, b in zip(types, blobs)]}
    st.put_manifest("oci/mixed", "1", json.dumps(man).encode(), "application/vnd.oci.image.manifest.v1+json")

    image_id = client.pull(f"{host}/oci/mixed:1")
    content, layers = client.images.content, client.images.layers
    for b, t, d in zip(blobs, tars, diff_ids):
        assert content.exists(sha(b))                      # the registry's blob, as it came
        assert content.exists(d) == (b is t)               # no uncompressed copy of a compressed one
        with layers.open_tar(d) as f:
            assert f.read() == t
    assert not any(client.cfg.tmp_dir.iterdir())           # the spools are gone

    out = io.BytesIO()
    from sampan.images.archives import save
    save(client.images, [f"{host}/oci/mixed:1"], out)
    out.seek(0)
    with tarfile.open(fileobj=out) as ar:
        for t, d in zip(tars, diff_ids):
            assert ar.extractfile(f"blobs/sha256/{d[7:]}").read() == t

    host2, app2 = sampan_registry()
    ref2 = f"{host2}/copy/mixed:1"
    client.images.tag(image_id, f"{host2}/copy/mixed", "1")
    client.push(ref2)
    pushed = json.loads(app2.storage.get_manifest("copy/mixed", "1")[0])
    digests = [l["digest"] for l in pushed["layers"]]
    assert digests[1] == sha(blobs[1])                      # the gzip blob went up unchanged
    assert digests[0] != sha(blobs[0]) and digests[2] != sha(blobs[2])  # gzipped for a schema 2 manifest
    assert {l["mediaType"] for l in pushed["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
    assert client2.pull(ref2) == image_id

    client.images.remove(f"{host}/oci/mixed:1")
    client.images.remove(ref2)
    for b, d in zip(blobs, diff_ids):
        assert not content.exists(sha(b)) and not content.exists(d)
    assert layers.compressed_blob(diff_ids[1]) is None
