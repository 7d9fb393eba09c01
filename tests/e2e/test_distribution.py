"""Pull, push, login, search through sampand with the real docker CLI, docker-py and sampan's
CLI, against sampan's own registry server (`sampan registry serve`) on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Registry:
    def __init__(self, base: Path, *extra: str) -> None:
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.root = base / f"reg{self.port}"
        self.log = open(base / f"reg{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sampan.registry", "serve", "--addr", self.host,
             "--root", str(self.root), *extra], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return
            except urllib.error.HTTPError:
                return  # 401: up, with auth
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError("sampan registry serve did not start: " +
                           (base / f"reg{self.port}.log").read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def registries(tmp_path_factory):
    base = tmp_path_factory.mktemp("registries")
    made = []

    def make(*extra: str) -> Registry:
        r = Registry(base, *extra)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


@pytest.fixture(scope="module")
def registry(registries):
    return registries()


def _ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout:{r.stdout}\nstderr:{r.stderr}"
    return r.stdout


def test_docker_cli_push_pull_run(sampand, registry):
    ref = f"{registry.host}/library/busybox:1.36"
    _ok(sampand.docker("tag", "busybox", ref))
    out = _ok(sampand.docker("push", ref))
    assert f"The push refers to repository [{registry.host}/library/busybox]" in out
    assert "1.36: digest: sha256:" in out
    _ok(sampand.docker("rmi", ref))
    out = _ok(sampand.docker("pull", ref))
    assert f"Status: Downloaded newer image for {ref}" in out
    assert _ok(sampand.docker("run", "--rm", ref, "echo", "pulled")).strip() == "pulled"
    digests = json.loads(_ok(sampand.docker("image", "inspect", ref)))[0]["RepoDigests"]
    assert digests and digests[0].startswith(f"{registry.host}/library/busybox@sha256:")
    out = _ok(sampand.docker("pull", ref))
    assert f"Status: Image is up to date for {ref}" in out
    r = sampand.docker("pull", f"{registry.host}/library/nothing:1")
    assert r.returncode != 0 and ("not found" in r.stderr or "does not exist" in r.stderr)


def test_docker_run_pulls_a_missing_image(sampand, registry):
    ref = f"{registry.host}/team/run:1"
    _ok(sampand.docker("tag", "busybox", ref))
    _ok(sampand.docker("push", ref))
    _ok(sampand.docker("rmi", ref))
    r = sampand.docker("run", "--rm", ref, "echo", "ok")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"
    assert f"Unable to find image '{ref}' locally" in r.stderr


def test_docker_login_push_logout(sampand, registries, tmp_path):
    bcrypt = pytest.importorskip("bcrypt")
    htp = tmp_path / "htpasswd"
    htp.write_text(f"ann:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}\n")
    for extra in ((), ("--token-auth",)):
        reg = registries("--htpasswd", str(htp), *extra)
        ref = f"{reg.host}/team/app:1"
        _ok(sampand.docker("tag", "busybox", ref))
        r = sampand.docker("push", ref)
        assert r.returncode != 0 and "unauthorized" in (r.stderr + r.stdout).lower()
        r = sampand.docker("login", "-u", "ann", "--password-stdin", reg.host, input="wrong\n")
        assert r.returncode != 0
        _ok(sampand.docker("login", "-u", "ann", "--password-stdin", reg.host, input="secret\n"))
        cfg = json.loads((sampand.docker_config / "config.json").read_text())
        assert reg.host in cfg["auths"]
        _ok(sampand.docker("push", ref))
        _ok(sampand.docker("rmi", ref))
        _ok(sampand.docker("pull", ref))
        _ok(sampand.docker("logout", reg.host))
        _ok(sampand.docker("rmi", ref))
        assert sampand.docker("pull", ref).returncode != 0


def test_docker_search(sampand, registry):
    ref = f"{registry.host}/team/searchable:1"
    _ok(sampand.docker("tag", "busybox", ref))
    _ok(sampand.docker("push", ref))
    out = _ok(sampand.docker("search", f"{registry.host}/searcha"))
    assert "team/searchable" in out


def test_docker_sdk_pull_push_registry_data(docker_client, registry):
    img = docker_client.images.get("busybox")
    repo = f"{registry.host}/sdk/bb"
    img.tag(repo, "2")
    lines = list(docker_client.images.push(repo, tag="2", stream=True, decode=True))
    assert any("digest" in (l.get("status") or "") for l in lines), lines
    assert not any("error" in l for l in lines)
    docker_client.images.remove(f"{repo}:2")
    pulled = docker_client.images.pull(repo, tag="2")
    assert pulled.id == img.id
    data = docker_client.images.get_registry_data(f"{repo}:2")
    assert data.id.startswith("sha256:") and data.attrs["Descriptor"]["size"] > 0
    import docker
    with pytest.raises(docker.errors.NotFound):
        docker_client.images.pull(f"{registry.host}/sdk/none", tag="1")


def test_skopeo_and_gc_on_a_served_registry(sampand, registry, tmp_path):
    if not os.access("/usr/bin/skopeo", os.X_OK):
        pytest.skip("skopeo not installed")
    ref = f"{registry.host}/gc/bb:1"
    _ok(sampand.docker("tag", "busybox", ref))
    _ok(sampand.docker("push", ref))
    r = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path}/bb:x"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # a GC beside the running server keeps everything a manifest still needs
    r = subprocess.run([sys.executable, "-m", "sampan.registry", "gc", "--root", str(registry.root)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    _ok(sampand.docker("rmi", ref))
    _ok(sampand.docker("pull", ref))


def test_sampan_cli(sampand, registry):
    ref = f"{registry.host}/cli/bb:1"
    _ok(sampand.cli("tag", "busybox", ref))
    out = _ok(sampand.cli("push", ref))
    assert "1: digest: sha256:" in out
    _ok(sampand.cli("rmi", ref))
    out = _ok(sampand.cli("pull", ref))
    assert out.strip().endswith(ref)
    assert "Pulling from" in out and "Status: Downloaded newer image" in out
    out = _ok(sampand.cli("search", f"{registry.host}/cli"))
    assert "cli/bb" in out
    r = sampand.cli("pull", f"{registry.host}/cli/none:1")
    assert r.returncode == 1 and "Error response from daemon:" in r.stderr
    # run pulls what is missing, its progress on stderr
    _ok(sampand.cli("rmi", ref))
    r = sampand.cli("run", "--rm", ref, "echo", "from-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "from-run"
    assert f"Unable to find image '{ref}' locally" in r.stderr
    _ok(sampand.cli("rmi", ref))
    r = sampand.cli("run", "--rm", "--pull", "never", ref, "true")
    assert r.returncode == 125


def test_sampan_cli_login_logout(sampand, registries, tmp_path):
    bcrypt = pytest.importorskip("bcrypt")
    htp = tmp_path / "htpasswd"
    htp.write_text(f"ann:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}\n")
    reg = registries("--htpasswd", str(htp))
    r = sampand.cli("login", "-u", "ann", "--password-stdin", reg.host, input="nope\n")
    assert r.returncode != 0 and "401" in r.stderr
    assert _ok(sampand.cli("login", "-u", "ann", "--password-stdin", reg.host, input="secret\n")).strip() == "Login Succeeded"
    # docker reads what sampan stored, and the other way round
    ref = f"{reg.host}/team/x:1"
    _ok(sampand.docker("tag", "busybox", ref))
    _ok(sampand.docker("push", ref))
    _ok(sampand.cli("rmi", ref))
    _ok(sampand.cli("pull", ref))
    assert _ok(sampand.cli("logout", reg.host)).strip() == f"Removing login credentials for {reg.host}"
    assert _ok(sampand.cli("logout", reg.host)).strip() == f"Not logged in to {reg.host}"


def _put_blob(host: str, repo: str, data: bytes) -> dict:
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST", data=b"")
    loc = urllib.request.urlopen(req, timeout=10).headers["Location"]
    url = urllib.parse.urljoin(f"http://{host}/", loc)
    url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
    urllib.request.urlopen(urllib.request.Request(url, method="PUT", data=data,
                                                  headers={"Content-Type": "application/octet-stream"}), timeout=10)
    return {"digest": digest, "size": len(data)}


def _put_manifest(host: str, repo: str, tag: str, media_type: str, body: dict) -> dict:
    import hashlib
    raw = json.dumps(body).encode()
    urllib.request.urlopen(urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/{tag}", method="PUT", data=raw,
        headers={"Content-Type": media_type}), timeout=10)
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(raw).hexdigest(), "size": len(raw)}


def test_create_with_another_platform_pulls_it(sampand, registry, tmp_path):
    """`sampan create --platform linux/arm64 ref` when `ref` is an amd64 image here: dockerd's
    404 from create, then the CLI pulls the arm64 entry of the index and creates again."""
    import gzip
    import hashlib
    import io
    import tarfile
    repo, host = "plat/multi", registry.host
    _ok(sampand.cli("tag", "busybox", f"{host}/{repo}:amd"))
    _ok(sampand.cli("push", f"{host}/{repo}:amd"))
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/amd",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    amd_raw = urllib.request.urlopen(req, timeout=10).read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        ti = tarfile.TarInfo("arm-marker")
        ti.size = 3
        tf.addfile(ti, io.BytesIO(b"arm"))
    layer = gzip.compress(buf.getvalue())
    cfg = json.dumps({"architecture": "arm64", "variant": "v8", "os": "linux", "config": {"Cmd": ["/x"]},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + hashlib.sha256(buf.getvalue()).hexdigest()]}}).encode()
    arm = _put_manifest(host, repo, "arm", "application/vnd.docker.distribution.manifest.v2+json", {
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", **_put_blob(host, repo, cfg)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", **_put_blob(host, repo, layer)}]})
    amd = {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
           "digest": "sha256:" + hashlib.sha256(amd_raw).hexdigest(), "size": len(amd_raw)}
    _put_manifest(host, repo, "1", "application/vnd.docker.distribution.manifest.list.v2+json", {
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{**amd, "platform": {"architecture": "amd64", "os": "linux"}},
                      {**arm, "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]})
    ref = f"{host}/{repo}:1"
    _ok(sampand.cli("pull", ref))
    assert _ok(sampand.cli("image", "inspect", "-f", "{{.Architecture}}", ref)).strip() == "amd64"
    r = sampand.cli("create", "--platform", "linux/arm64", ref)
    assert r.returncode == 0, r.stderr
    assert f"Unable to find image '{ref}' locally" in r.stderr
    cid = r.stdout.strip()
    image_id = _ok(sampand.cli("inspect", "-f", "{{.Image}}", cid)).strip()
    assert _ok(sampand.cli("image", "inspect", "-f", "{{.Architecture}}", image_id)).strip() == "arm64"
    _ok(sampand.cli("rm", cid))
