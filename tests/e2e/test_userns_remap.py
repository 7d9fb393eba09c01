"""`--userns-remap` end to end (issue 9): a daemon with `userns-remap: default` runs every
container in a user namespace where root is an unprivileged host uid, through the real docker
CLI: processes, files in binds and volumes, image layers, cp, export, commit, exec, networking
and the refusals Docker makes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest


def _name(prefix: str = "un") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"
    return r.stdout


def _subid_start(name: str, path: str) -> int:
    for line in Path(path).read_text().splitlines():
        f = line.strip().split(":")
        if len(f) == 3 and f[0] == name:
            return int(f[1])
    raise AssertionError(f"{name} not in {path}")


@pytest.fixture(scope="module")
def remapped(busybox_tar):
    """A private daemon with `userns-remap: default`. Its base directory is opened to o+x
    first: the remapped root must be able to reach the data root (dockerd refuses to start
    otherwise, as sampand does — see test_unreachable_data_root_is_refused)."""
    from .conftest import Sampand, _short_base
    d = Sampand(_short_base("sdu-"))
    os.chmod(d.base, 0o711)
    # A pool of its own: Docker's default pools are shared with every other daemon on the
    # host (and with what crashed test runs leaked).
    d.config_file.write_text(json.dumps({
        "userns-remap": "default",
        "default-address-pools": [{"base": f"10.{200 + os.getpid() % 50}.0.0/16", "size": 24}],
    }) + "\n")
    try:
        d.start()
        d.import_image(busybox_tar, "busybox", "latest")
        yield d
    finally:
        d.destroy()


def test_unreachable_data_root_is_refused(sampand_factory):
    with pytest.raises(pytest.fail.Exception) as e:
        sampand_factory(with_busybox=False, config={"userns-remap": "default"})
    assert "restricts access to the remapped root" in str(e.value)


@pytest.fixture(scope="module")
def base_ids(remapped):
    return _subid_start("dockremap", "/etc/subuid"), _subid_start("dockremap", "/etc/subgid")


def test_default_creates_dockremap_and_per_mapping_root(remapped, base_ids):
    uid, gid = base_ids
    import pwd
    pwd.getpwnam("dockremap")
    info = json.loads(_ok(remapped.docker("info", "--format", "{{json .}}")))
    assert "name=userns" in info["SecurityOptions"]
    root = Path(info["DockerRootDir"])
    assert root == remapped.data_root.resolve() / f"{uid}.{gid}"
    st = root.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid, 0o710)
    # A layer is stored shifted: busybox's files belong to the mapped root on the host.
    layers = root / "layers"
    some = next(p for p in layers.iterdir() if not p.name.startswith("tmp"))
    assert (some / "diff" / "bin").stat().st_uid == uid
    assert "Security Options" in _ok(remapped.docker("info")) and "userns" in _ok(remapped.docker("info"))


def test_container_root_is_subordinate_uid_on_host(remapped, base_ids):
    uid, gid = base_ids
    name = _name()
    _ok(remapped.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    try:
        pid = int(_ok(remapped.docker("inspect", "-f", "{{.State.Pid}}", name)).strip())
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1:]
        gids = next(ln for ln in status.splitlines() if ln.startswith("Gid:")).split()[1:]
        assert set(uids) == {str(uid)} and set(gids) == {str(gid)}
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(uid), "65536"]
        # Inside: root, with its map visible; exec joins the same user namespace.
        assert _ok(remapped.docker("exec", name, "id", "-u")).strip() == "0"
        assert _ok(remapped.docker("exec", name, "cat", "/proc/self/uid_map")).split() == \
            ["0", str(uid), "65536"]
        # Root in the container can write what root owns in its image and rw layer.
        _ok(remapped.docker("exec", name, "sh", "-c", "echo x > /etc/x && echo y > /newfile"))
        # ... and /etc/hosts (bind-mounted from the container's dir, owned by its root).
        _ok(remapped.docker("exec", name, "sh", "-c", "echo '10.9.9.9 z' >> /etc/hosts"))
        # ... but not what the host's root owns: e.g. the host's kernel knobs.
        r = remapped.docker("exec", name, "sh", "-c", "echo 1 > /proc/sys/kernel/panic")
        assert r.returncode != 0
        info = json.loads(_ok(remapped.docker("inspect", name)))[0]
        upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
        assert (upper / "newfile").stat().st_uid == uid
    finally:
        remapped.docker("rm", "-f", name)


def test_bind_mount_files_owned_by_mapped_uid(remapped, base_ids):
    uid, gid = base_ids
    # Under the daemon's base (o+x): a bind source must be reachable by the remapped root.
    tmp_path = remapped.base / _name("binds")
    tmp_path.mkdir(mode=0o755)
    d = tmp_path / "bind"
    d.mkdir()
    os.chown(d, uid, gid)  # the container's root must own the directory to write into it
    _ok(remapped.docker("run", "--rm", "-v", f"{d}:/out", "busybox",
                        "sh", "-c", "echo hi > /out/f && mkdir /out/sub && chown 5:6 /out/sub"))
    st = (d / "f").stat()
    assert (st.st_uid, st.st_gid) == (uid, gid)
    st = (d / "sub").stat()
    assert (st.st_uid, st.st_gid) == (uid + 5, gid + 6)
    # A host-root-owned directory is not root's in the container: writing is refused.
    d2 = tmp_path / "hostroot"
    d2.mkdir(mode=0o755)
    r = remapped.docker("run", "--rm", "-v", f"{d2}:/out", "busybox", "touch", "/out/f")
    assert r.returncode != 0 and not (d2 / "f").exists()


def test_volume_owned_by_mapped_root_and_copy_up(remapped, base_ids):
    uid, gid = base_ids
    vol = _name("vol")
    try:
        _ok(remapped.docker("run", "--rm", "-v", f"{vol}:/data", "busybox",
                            "sh", "-c", "echo v > /data/f && ls -ln /data/f"))
        mp = Path(json.loads(_ok(remapped.docker("volume", "inspect", vol)))[0]["Mountpoint"])
        assert mp.stat().st_uid == uid and (mp / "f").stat().st_uid == uid
        # copy-up of image content (busybox /etc) keeps the image's (shifted) owners
        vol2 = _name("vol")
        out = _ok(remapped.docker("run", "--rm", "-v", f"{vol2}:/etc", "busybox", "ls", "-ln", "/etc/passwd"))
        assert out.split()[2:4] == ["0", "0"], out
        mp2 = Path(json.loads(_ok(remapped.docker("volume", "inspect", vol2)))[0]["Mountpoint"])
        assert (mp2 / "passwd").stat().st_uid == uid
        _ok(remapped.docker("volume", "rm", vol2))
    finally:
        remapped.docker("volume", "rm", "-f", vol)


def test_ls_shows_root_owned_image_files(remapped):
    out = _ok(remapped.docker("run", "--rm", "busybox", "ls", "-ln", "/bin/busybox"))
    assert out.split()[2:4] == ["0", "0"], out
    # /proc and /sys are there (sysfs bound from the host: the netns is the daemon's)
    out = _ok(remapped.docker("run", "--rm", "busybox", "sh", "-c",
                              "cat /proc/1/status | grep ^Uid; ls /sys/class/net"))
    assert "Uid:\t0" in out and set(out.split()[-2:]) == {"eth0", "lo"}, out


def test_network_none_and_bridge(remapped):
    out = _ok(remapped.docker("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert "lo" in out and "eth0" not in out
    out = _ok(remapped.docker("run", "--rm", "busybox", "ip", "-o", "-4", "addr"))
    assert "eth0" in out
    out = _ok(remapped.docker("run", "--rm", "--network", "host", "busybox", "cat", "/proc/self/uid_map"))
    assert out.split()[:2] == ["0", str(_subid_start("dockremap", "/etc/subuid"))]


def test_network_namespace_is_the_containers_own(remapped):
    """The daemon makes a bridge container's network namespace inside the container's user
    namespace (as runc does for Docker): root in it binds port 80, opens raw sockets (ping),
    and the published port and the embedded DNS work."""
    import urllib.request
    net, web, port = _name("net"), _name("web"), 18000 + os.getpid() % 1000
    _ok(remapped.docker("network", "create", net))
    try:
        _ok(remapped.docker("run", "-d", "--name", web, "--network", net, "-p", f"127.0.0.1:{port}:80",
                            "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"))
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=3) as r:
                    assert r.read().decode().strip() == web[:12] or r.status == 200
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        out = _ok(remapped.docker("run", "--rm", "--network", net, "busybox", "sh", "-c",
                                  f"wget -qO- http://{web}/passwd | head -1 && ping -c1 -W5 {web}"))
        assert out.startswith("root:") and "1 packets received" in out
    finally:
        remapped.docker("rm", "-f", web)
        remapped.docker("network", "rm", net)


def test_exec_after_daemon_restart(remapped, base_ids):
    uid, _ = base_ids
    name = _name()
    _ok(remapped.docker("run", "-d", "--name", name, "busybox", "sleep", "300"))
    try:
        remapped.restart()
        assert _ok(remapped.docker("exec", name, "cat", "/proc/self/uid_map")).split()[:2] == \
            ["0", str(uid)]
    finally:
        remapped.docker("rm", "-f", name)


def test_cp_export_commit_use_container_ids(remapped, base_ids, tmp_path):
    uid, gid = base_ids
    name = _name()
    _ok(remapped.docker("create", "--name", name, "busybox", "sh", "-c",
                        "mkdir -p /w && echo a > /w/a && chown 7:8 /w/a"))
    try:
        _ok(remapped.docker("start", "-a", name))
        # cp out of a stopped container: the tar carries the container's ids
        data = subprocess.run(["/usr/local/bin/docker", "cp", f"{name}:/w", "-"], env=remapped.env,
                              capture_output=True, timeout=30, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            m = {x.name: x for x in t.getmembers()}
        assert (m["w/a"].uid, m["w/a"].gid) == (7, 8)
        assert (m["w"].uid, m["w"].gid) == (0, 0)
        # cp in: files land owned by the container's root (host: the mapped uid)
        src = tmp_path / "in.txt"
        src.write_text("in\n")
        _ok(remapped.docker("cp", str(src), f"{name}:/w/in.txt"))
        info = json.loads(_ok(remapped.docker("inspect", name)))[0]
        upper = Path(info["GraphDriver"]["Data"]["UpperDir"])
        st = (upper / "w" / "in.txt").stat()
        assert (st.st_uid, st.st_gid) == (uid, gid)
        assert (upper / "w" / "a").stat().st_uid == uid + 7
        # export: container view
        data = subprocess.run(["/usr/local/bin/docker", "export", name], env=remapped.env,
                              capture_output=True, timeout=60, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            m = {x.name.lstrip("./"): x for x in t.getmembers()}
        assert (m["w/a"].uid, m["w/a"].gid) == (7, 8)
        assert m["bin/busybox"].uid == 0
        # commit: the new layer's tar is in container ids, and the image runs
        img = _name("img")
        _ok(remapped.docker("commit", name, img))
        out = _ok(remapped.docker("run", "--rm", img, "ls", "-ln", "/w"))
        assert any(ln.split()[2:4] == ["7", "8"] for ln in out.splitlines() if ln.endswith(" a"))
        saved = subprocess.run(["/usr/local/bin/docker", "save", img], env=remapped.env,
                               capture_output=True, timeout=60, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
            top = manifest[0]["Layers"][-1]
            with tarfile.open(fileobj=outer.extractfile(top)) as layer:
                lm = {x.name: x for x in layer.getmembers()}
        assert (lm["w/a"].uid, lm["w/a"].gid) == (7, 8)
        assert lm["w/in.txt"].uid == 0
        _ok(remapped.docker("rmi", img))
    finally:
        remapped.docker("rm", "-f", name)


def test_running_container_cp_export_and_user(remapped, base_ids):
    """A running container: the worker joins its user namespace (cp both ways, export without
    /proc's contents), and `-u 1000` is host uid base+1000."""
    uid, _ = base_ids
    name = _name()
    _ok(remapped.docker("run", "-d", "--name", name, "-u", "1000:1000", "busybox", "sleep", "300"))
    try:
        pid = int(_ok(remapped.docker("inspect", "-f", "{{.State.Pid}}", name)).strip())
        uids = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if ln.startswith("Uid:")).split()[1:]
        assert set(uids) == {str(uid + 1000)}
        _ok(remapped.docker("exec", name, "sh", "-c", "mkdir -p /tmp/d && echo a > /tmp/d/a"))
        data = subprocess.run(["/usr/local/bin/docker", "cp", f"{name}:/tmp/d", "-"], env=remapped.env,
                              capture_output=True, timeout=30, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            assert {(m.name, m.uid, m.gid) for m in t.getmembers()} == {("d", 1000, 1000), ("d/a", 1000, 1000)}
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("in.txt")
            ti.size, ti.uid, ti.gid = 3, 42, 43
            t.addfile(ti, io.BytesIO(b"in\n"))
        _ok(remapped.docker("cp", "-a", "-", f"{name}:/tmp/d", input=buf.getvalue(), binary=True))
        out = _ok(remapped.docker("exec", name, "ls", "-ln", "/tmp/d/in.txt"))
        assert out.split()[2:4] == ["42", "43"], out
        data = subprocess.run(["/usr/local/bin/docker", "export", name], env=remapped.env,
                              capture_output=True, timeout=60, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            names = {m.name.lstrip("./"): m for m in t.getmembers()}
        assert (names["tmp/d/a"].uid, names["tmp/d/in.txt"].uid) == (1000, 42)
        assert "proc" in names and not any(n.startswith("proc/") for n in names)
    finally:
        remapped.docker("rm", "-f", name)


def test_runc_refused_and_vfs_driver_works(remapped, busybox_tar, base_ids):
    r = remapped.docker("run", "--rm", "--runtime", "runc", "busybox", "true")
    assert r.returncode != 0 and "not supported with --userns-remap" in r.stderr
    # The vfs driver: the container's rootfs is a copy of shifted layers, its root dir the
    # mapped root's.
    from .conftest import Sampand, _short_base
    d = Sampand(_short_base("sdv-"))
    os.chmod(d.base, 0o711)
    d.config_file.write_text(json.dumps({
        "userns-remap": "default", "storage-driver": "vfs",
        "default-address-pools": [{"base": f"10.{150 + os.getpid() % 50}.0.0/16", "size": 24}],
    }) + "\n")
    try:
        d.start()
        d.import_image(busybox_tar, "busybox", "latest")
        name = _name()
        out = _ok(d.docker("run", "--name", name, "--network", "none", "busybox", "sh", "-c",
                           "touch /made && ls -ln /bin/busybox && id -u"))
        assert out.split()[2:4] == ["0", "0"] and out.splitlines()[-1] == "0", out
        info = json.loads(_ok(d.docker("inspect", name)))[0]
        assert info["GraphDriver"]["Name"] == "vfs"
        root = Path(d.data_root) / f"{base_ids[0]}.{base_ids[1]}" / "containers" / info["Id"]
        made = next(root.rglob("made"))
        assert made.stat().st_uid == base_ids[0]
    finally:
        d.destroy()


def test_build_layers_carry_container_ids(remapped):
    """docker build on a remapped daemon: RUN runs in the user namespace, and every layer the
    build makes (RUN's diff, COPY's tar, WORKDIR's) carries container ids, not host ids."""
    ctx = remapped.base / _name("ctx")
    ctx.mkdir()
    (ctx / "f").write_text("f\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\nRUN mkdir /data && chown 1234:1234 /data\n"
        "COPY --chown=1234:1234 f /data/f\nWORKDIR /data/sub\nUSER 1234\n"
        "RUN touch /data/mine && id -u > /data/who\n")
    img = _name("built")
    r = subprocess.run(["/usr/local/bin/docker", "build", "-q", "-t", img, str(ctx)],
                       env=dict(remapped.env, DOCKER_BUILDKIT="0"), capture_output=True,
                       text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    try:
        assert _ok(remapped.docker("run", "--rm", img, "cat", "/data/who")).strip() == "1234"
        saved = subprocess.run(["/usr/local/bin/docker", "save", img], env=remapped.env,
                               capture_output=True, timeout=60, check=True).stdout
        owners = set()
        with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
            layers = json.load(outer.extractfile("manifest.json"))[0]["Layers"][1:]
            for name in layers:
                with tarfile.open(fileobj=outer.extractfile(name)) as layer:
                    owners |= {(m.uid, m.gid) for m in layer.getmembers()}
        assert owners and all(u < 65536 and g < 65536 for u, g in owners), owners
    finally:
        remapped.docker("rmi", "-f", img)


def test_container_modes_share_the_user_namespace(remapped):
    """--network/--pid container:<x>: the new container joins <x>'s user namespace too (it owns
    the namespaces shared), as Docker does."""
    name = _name()
    _ok(remapped.docker("run", "-d", "--name", name, "busybox", "httpd", "-f", "-p", "80", "-h", "/etc"))
    try:
        theirs = _ok(remapped.docker("exec", name, "readlink", "/proc/self/ns/user")).strip()
        out = _ok(remapped.docker("run", "--rm", "--network", f"container:{name}", "--pid",
                                  f"container:{name}", "busybox", "sh", "-c",
                                  "readlink /proc/self/ns/user; wget -qO- http://127.0.0.1/hostname; ps"))
        cid = _ok(remapped.docker("inspect", "-f", "{{.Id}}", name)).strip()
        lines = out.splitlines()
        assert lines[0] == theirs
        assert lines[1] == cid[:12]  # its /etc/hostname, over its network namespace's loopback
        assert "httpd" in out
    finally:
        remapped.docker("rm", "-f", name)


def test_privileged_refused_unless_userns_host(remapped):
    r = remapped.docker("run", "--rm", "--privileged", "busybox", "true")
    assert r.returncode != 0 and "privileged mode is incompatible with user namespaces" in r.stderr
    r = remapped.docker("run", "--rm", "--pid", "host", "busybox", "true")
    assert r.returncode != 0 and "host PID namespace" in r.stderr
    out = _ok(remapped.docker("run", "--rm", "--privileged", "--userns", "host", "busybox",
                              "cat", "/proc/self/uid_map"))
    assert out.split() == ["0", "0", "4294967295"]
    r = remapped.docker("run", "--rm", "--userns", "bogus", "busybox", "true")
    assert r.returncode != 0 and "invalid USER mode" in r.stderr


def test_userns_host_runs_as_real_root(remapped):
    name = _name()
    _ok(remapped.docker("run", "-d", "--name", name, "--userns", "host", "busybox", "sleep", "300"))
    try:
        pid = int(_ok(remapped.docker("inspect", "-f", "{{.State.Pid}}", name)).strip())
        uids = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                    if ln.startswith("Uid:")).split()[1:]
        assert set(uids) == {"0"}
    finally:
        remapped.docker("rm", "-f", name)


def test_tty_and_interactive_exec(remapped):
    name = _name()
    _ok(remapped.docker("run", "-d", "-t", "--name", name, "busybox", "sh"))
    try:
        out = _ok(remapped.docker("exec", "-t", name, "tty"))
        assert out.strip().startswith("/dev/pts/")
        out = _ok(remapped.docker("exec", "-i", name, "cat", input="through stdin\n"))
        assert out == "through stdin\n"
    finally:
        remapped.docker("rm", "-f", name)


def test_unremapped_daemon_unchanged(sampand):
    info = json.loads(_ok(sampand.docker("info", "--format", "{{json .}}")))
    assert "name=userns" not in (info.get("SecurityOptions") or [])
    out = _ok(sampand.docker("run", "--rm", "busybox", "cat", "/proc/self/uid_map"))
    assert out.split() == ["0", "0", "4294967295"]
