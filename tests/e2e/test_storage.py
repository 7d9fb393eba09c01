"""Storage end to end (issue 4): volumes, binds, tmpfs, cp, diff, export, commit, df, prune —
through the real docker CLI, docker-py and sampan's CLI, each line of the issue's example."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest


def _name(prefix: str = "st") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout!r}\nstderr: {r.stderr!r}"
    return r.stdout


def _inspect(sampand, *ref: str) -> dict:
    return json.loads(_ok(sampand.docker("inspect", *ref)))[0]


# -- volumes ------------------------------------------------------------------------------------------

def test_named_volume_persists_across_containers(sampand):
    vol = _name("data")
    assert _ok(sampand.docker("volume", "create", vol)).strip() == vol
    _ok(sampand.docker("run", "--rm", "-v", f"{vol}:/d", "busybox", "sh", "-c", "echo hi > /d/f"))
    assert _ok(sampand.docker("run", "--rm", "-v", f"{vol}:/d", "busybox", "cat", "/d/f")) == "hi\n"
    info = json.loads(_ok(sampand.docker("volume", "inspect", vol)))[0]
    assert info["Name"] == vol and info["Driver"] == "local" and info["Scope"] == "local"
    assert Path(info["Mountpoint"], "f").read_text() == "hi\n"
    assert vol in _ok(sampand.docker("volume", "ls", "-q")).split()
    _ok(sampand.docker("volume", "rm", vol))
    r = sampand.docker("volume", "inspect", vol)
    assert r.returncode == 1 and "no such volume" in r.stderr


def test_volume_in_use_is_409_and_rm_v_removes_anonymous(sampand):
    vol, name = _name("busy"), _name("a")
    _ok(sampand.docker("run", "-d", "--name", name, "-v", f"{vol}:/named", "-v", "/srv",
                       "busybox", "sh", "-c", "echo x > /srv/y; sleep 1000"))
    try:
        status, body = sampand.api_json("DELETE", f"/volumes/{vol}")
        assert status == 409 and "volume is in use" in body["message"]
        mounts = {m["Destination"]: m for m in _inspect(sampand, name)["Mounts"]}
        anon = mounts["/srv"]
        assert anon["Type"] == "volume" and re.fullmatch(r"[0-9a-f]{64}", anon["Name"])
        assert anon["Driver"] == "local" and anon["RW"] is True and anon["Source"].endswith("/_data")
        assert mounts["/named"]["Name"] == vol and mounts["/named"]["Mode"] == "z"
        # --volumes-from: the other container's volumes, at the same paths
        out = _ok(sampand.docker("run", "--rm", "--volumes-from", name, "busybox", "cat", "/srv/y"))
        assert out == "x\n"
        r = sampand.docker("run", "--rm", "--volumes-from", f"{name}:ro", "busybox", "touch", "/srv/z")
        assert r.returncode != 0 and "Read-only file system" in r.stderr
        ps = json.loads(_ok(sampand.docker("ps", "--filter", f"name={name}", "--format", "{{json .}}")))
        assert anon["Name"][:14] in ps["Mounts"] and vol in ps["Mounts"]  # docker truncates
    finally:
        _ok(sampand.docker("rm", "-f", "-v", name))
    names = _ok(sampand.docker("volume", "ls", "-q")).split()
    assert anon["Name"] not in names  # rm -v: the anonymous volume went with the container
    assert vol in names               # a named one stays
    _ok(sampand.docker("volume", "rm", vol))


def test_copy_up_and_nocopy(sampand):
    cu, nc = _name("cu"), _name("nc")
    out = _ok(sampand.docker("run", "--rm", "-v", f"{cu}:/etc", "busybox", "cat", "/etc/passwd"))
    assert out.startswith("root:")
    mp = json.loads(_ok(sampand.docker("volume", "inspect", cu)))[0]["Mountpoint"]
    assert Path(mp, "passwd").read_text().startswith("root:")
    _ok(sampand.docker("run", "--rm", "-v", f"{nc}:/home:nocopy", "busybox", "true"))
    mp = json.loads(_ok(sampand.docker("volume", "inspect", nc)))[0]["Mountpoint"]
    assert os.listdir(mp) == []
    _ok(sampand.docker("volume", "rm", cu, nc))


def test_volume_options_labels_filters_and_prune(sampand):
    t = _name("tmpfsvol")
    _ok(sampand.docker("volume", "create", "--label", "team=storage", "-o", "type=tmpfs",
                       "-o", "device=tmpfs", "-o", "o=size=8m", t))
    out = _ok(sampand.docker("run", "--rm", "-v", f"{t}:/t", "busybox", "df", "-k", "/t"))
    assert "8192" in out
    assert _ok(sampand.docker("volume", "ls", "-q", "--filter", "label=team=storage")).split() == [t]
    assert t in _ok(sampand.docker("volume", "ls", "-q", "--filter", "dangling=true")).split()
    r = sampand.docker("volume", "create", "-o", "bogus=1", _name("bad"))
    assert r.returncode != 0 and "invalid option key" in r.stderr
    anon_c = _name("anon")
    _ok(sampand.docker("create", "--name", anon_c, "-v", "/x", "busybox", "true"))
    anon = _inspect(sampand, anon_c)["Mounts"][0]["Name"]
    _ok(sampand.docker("rm", anon_c))  # without -v the anonymous volume stays, dangling
    out = _ok(sampand.docker("volume", "prune", "-f"))
    assert anon in out and t not in out  # prune takes anonymous volumes only, unless --all
    out = _ok(sampand.docker("volume", "prune", "-f", "--all", "--filter", "label=team=storage"))
    assert t in out
    assert t not in _ok(sampand.docker("volume", "ls", "-q")).split()


def test_bind_type_volume_and_ps_volume_filter(sampand, tmp_path):
    vol, name = _name("bindvol"), _name("pv")
    _ok(sampand.docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={tmp_path}", vol))
    _ok(sampand.docker("run", "-d", "--name", name, "-v", f"{vol}:/b", "busybox", "sh", "-c",
                       "echo via-volume > /b/f; sleep 1000"))
    try:
        for _ in range(50):
            if (tmp_path / "f").exists():
                break
            import time
            time.sleep(0.1)
        assert (tmp_path / "f").read_text() == "via-volume\n"
        out = _ok(sampand.docker("ps", "-q", "--no-trunc", "--filter", f"volume={vol}"))
        assert out.split() == [_inspect(sampand, name)["Id"]]
    finally:
        sampand.docker("rm", "-f", name)
    _ok(sampand.docker("volume", "rm", vol))
    assert (tmp_path / "f").exists()  # removing the volume unmounts it; the host dir stays


def test_volume_persists_across_daemon_restart(sampand_factory):
    d = sampand_factory()
    vol = _name("keep")
    _ok(d.docker("volume", "create", vol))
    _ok(d.docker("run", "--rm", "-v", f"{vol}:/d", "busybox", "sh", "-c", "echo kept > /d/f"))
    d.restart()
    assert _ok(d.docker("run", "--rm", "-v", f"{vol}:/d", "busybox", "cat", "/d/f")) == "kept\n"
    assert vol in _ok(d.docker("volume", "ls", "-q")).split()


# -- binds, tmpfs ----------------------------------------------------------------------------------------

def test_bind_mounts(sampand, tmp_path):
    (tmp_path / "hello.txt").write_text("from host")
    out = _ok(sampand.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/w,readonly",
                             "busybox", "ls", "/w"))
    assert out.split() == ["hello.txt"]
    r = sampand.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/w,readonly",
                       "busybox", "touch", "/w/x")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    _ok(sampand.docker("run", "--rm", "-v", f"{tmp_path}:/w", "busybox", "sh", "-c", "echo back > /w/out"))
    assert (tmp_path / "out").read_text() == "back\n"
    # --mount refuses a missing source; -v creates it (Docker's two behaviours)
    missing = tmp_path / "not" / "there"
    r = sampand.docker("run", "--rm", "--mount", f"type=bind,src={missing},dst=/m", "busybox", "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr
    _ok(sampand.docker("run", "--rm", "-v", f"{missing}:/m", "busybox", "true"))
    assert missing.is_dir()
    name = _name("b")
    _ok(sampand.docker("create", "--name", name, "-v", f"{tmp_path}:/w:ro,rslave", "busybox", "true"))
    (m,) = _inspect(sampand, name)["Mounts"]
    assert m == {"Type": "bind", "Source": str(tmp_path), "Destination": "/w", "Mode": "ro,rslave",
                 "RW": False, "Propagation": "rslave"}
    _ok(sampand.docker("rm", name))
    r = sampand.docker("run", "--rm", "-v", "data:/d", "-v", "/x:/d", "busybox", "true")
    assert r.returncode == 125 and "Duplicate mount point" in r.stderr


def test_tmpfs_and_shm(sampand):
    out = _ok(sampand.docker("run", "--rm", "--tmpfs", "/scratch:size=16m", "busybox", "df", "-k", "/scratch"))
    assert "tmpfs" in out and "16384" in out
    out = _ok(sampand.docker("run", "--rm", "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m",
                             "busybox", "df", "-k", "/t"))
    assert "1024" in out
    out = _ok(sampand.docker("run", "--rm", "--shm-size", "8m", "busybox", "df", "-k", "/dev/shm"))
    assert "8192" in out


# -- cp ------------------------------------------------------------------------------------------------

def test_cp_both_ways_running_and_stopped(sampand, tmp_path):
    name = _name("cp")
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "mkdir -p /data/sub; echo one > /data/sub/f; ln -sf /data/sub/f /data/link; sleep 1000"))
    try:
        cid = _inspect(sampand, name)["Id"]
        for state in ("running", "stopped"):
            out_dir = tmp_path / state
            out_dir.mkdir()
            _ok(sampand.docker("cp", f"{name}:/etc/hostname", str(out_dir)))
            assert (out_dir / "hostname").read_text().strip() == cid[:12]
            _ok(sampand.docker("cp", f"{name}:/data", str(out_dir / "copy")))
            assert (out_dir / "copy" / "sub" / "f").read_text() == "one\n"
            assert os.readlink(out_dir / "copy" / "link") == "/data/sub/f"
            _ok(sampand.docker("cp", "-L", f"{name}:/data/link", str(out_dir / "followed")))
            assert (out_dir / "followed").read_text() == "one\n"
            src = tmp_path / f"in-{state}.txt"
            src.write_text(state)
            _ok(sampand.docker("cp", str(src), f"{name}:/tmp/"))
            _ok(sampand.docker("cp", str(src), f"{name}:/tmp/renamed-{state}"))
            tar = _ok(sampand.docker("cp", f"{name}:/tmp", "-", binary=True))
            names = tarfile.open(fileobj=io.BytesIO(tar)).getnames()
            assert f"tmp/in-{state}.txt" in names and f"tmp/renamed-{state}" in names
            r = sampand.docker("cp", f"{name}:/nope", str(out_dir))
            assert r.returncode != 0 and "Could not find the file /nope" in r.stderr
            if state == "running":
                _ok(sampand.docker("stop", "-t", "0", name))
        # what was copied into the stopped container is there when it runs again
        _ok(sampand.docker("start", name))
        out = _ok(sampand.docker("exec", name, "cat", "/tmp/in-running.txt", "/tmp/in-stopped.txt"))
        assert out == "runningstopped"
    finally:
        sampand.docker("rm", "-f", name)


def test_cp_is_confined_to_the_container(sampand, tmp_path):
    name = _name("conf")
    victim = tmp_path / "victim"
    victim.mkdir()
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       f"ln -s / /escape && ln -s {victim} /abs && ln -s ../../../../../../etc /rel && sleep 1000"))
    try:
        (tmp_path / "f.txt").write_text("x")
        # links in the container resolve inside it: these land in the container's /tmp and
        # under its own {victim} path, never on the host
        _ok(sampand.docker("cp", str(tmp_path / "f.txt"), f"{name}:/escape/tmp/"))
        _ok(sampand.docker("exec", name, "test", "-f", "/tmp/f.txt"))
        sampand.docker("exec", name, "mkdir", "-p", str(victim))
        _ok(sampand.docker("cp", str(tmp_path / "f.txt"), f"{name}:/abs/"))
        assert os.listdir(victim) == []
        out = _ok(sampand.docker("cp", f"{name}:/rel/passwd", "-", binary=True))
        member = tarfile.open(fileobj=io.BytesIO(out)).extractfile("passwd").read()
        assert b"www-data" in member  # the busybox image's passwd, not the host's
        # hostile tars through the raw API: refused, nothing outside changes
        for entries in ([(f"../../../../../../..{victim}/a", b"x")], [(f"{victim}/b", b"x")]):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                for n, data in entries:
                    ti = tarfile.TarInfo(n)
                    ti.size = len(data)
                    t.addfile(ti, io.BytesIO(data))
            sampand.api("PUT", f"/containers/{name}/archive?path=/tmp", buf.getvalue(),
                        headers={"Content-Type": "application/x-tar"})
            assert os.listdir(victim) == []
        status, body = sampand.api_json("PUT", f"/containers/{name}/archive?path=/tmp")
        assert status == 400
    finally:
        sampand.docker("rm", "-f", name)


# -- diff, commit, export -------------------------------------------------------------------------------

def test_commit_workflow(sampand, tmp_path):
    b1, image = _name("b1"), f"me/httpd-{uuid.uuid4().hex[:6]}:v0.2"
    _ok(sampand.docker("run", "--name", b1, "busybox", "sh", "-c",
                       "mkdir -p /data/html && echo hello > /data/html/index.html && rm /etc/group"))
    try:
        diff = _ok(sampand.docker("diff", b1)).splitlines()
        assert "A /data" in diff and "A /data/html/index.html" in diff
        assert "D /etc/group" in diff and "C /etc" in diff
        image_id = _ok(sampand.docker(
            "commit", "-a", "Ann <ann@example.com>", "-m", "first",
            "-c", 'CMD ["/usr/sbin/httpd","-f","-h","/data/html"]', "-c", "EXPOSE 80", "-p", b1, image)).strip()
        assert image_id.startswith("sha256:")
        info = _inspect(sampand, "--type", "image", image)
        assert info["Id"] == image_id and info["Author"] == "Ann <ann@example.com>"
        assert info["Comment"] == "first"
        assert info["Config"]["Cmd"] == ["/usr/sbin/httpd", "-f", "-h", "/data/html"]
        assert "80/tcp" in info["Config"]["ExposedPorts"]
        hist = _ok(sampand.docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Comment}}", image))
        assert hist.splitlines()[0].startswith("sh -c mkdir") and hist.splitlines()[0].endswith("|first")
        out = _ok(sampand.docker("run", "--rm", "--entrypoint", "", image, "sh", "-c",
                                 "cat /data/html/index.html; test -e /etc/group || echo nogroup"))
        assert out == "hello\nnogroup\n"
        # the new image runs its committed CMD (busybox httpd in the foreground)
        web = _name("web")
        _ok(sampand.docker("run", "-d", "--name", web, image))
        assert _inspect(sampand, web)["State"]["Running"]
        sampand.docker("rm", "-f", web)
        exported = tmp_path / "b1.tar"
        _ok(sampand.docker("export", "-o", str(exported), b1))
        names = tarfile.open(exported).getnames()
        assert "data/html/index.html" in names and "bin/busybox" in names and "etc/group" not in names
        assert not any(".wh." in n for n in names)
    finally:
        sampand.docker("rm", "-f", b1)
        sampand.docker("rmi", image)


# -- docker-py and sampan's CLI ---------------------------------------------------------------------------

def test_docker_sdk_volumes_archive_commit(sampand, docker_client):
    v = docker_client.volumes.create(name=_name("sdk"), labels={"k": "v"})
    assert v.attrs["Labels"] == {"k": "v"}
    assert v.name in [x.name for x in docker_client.volumes.list()]
    c = docker_client.containers.run("busybox", "sleep 1000", detach=True,
                                     volumes={v.name: {"bind": "/v", "mode": "rw"}})
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("note.txt")
            ti.size = 3
            t.addfile(ti, io.BytesIO(b"abc"))
        assert c.put_archive("/v", buf.getvalue())
        stream, stat = c.get_archive("/v/note.txt")
        assert stat["name"] == "note.txt" and stat["size"] == 3
        data = b"".join(stream)
        assert tarfile.open(fileobj=io.BytesIO(data)).extractfile("note.txt").read() == b"abc"
        c.exec_run("sh -c 'echo z > /z'")
        assert {"Path": "/z", "Kind": 1} in c.diff()
        img = c.commit(repository="sdk-commit", tag="t1", changes=["ENV A=1"])
        assert "A=1" in img.attrs["Config"]["Env"]
        exported = b"".join(c.export())
        assert "z" in tarfile.open(fileobj=io.BytesIO(exported)).getnames()
        docker_client.images.remove(img.id, force=True)
    finally:
        c.remove(force=True, v=True)
    v.remove()


def test_sampan_cli(sampand, tmp_path):
    vol, name = _name("cli"), _name("c")
    assert _ok(sampand.cli("volume", "create", vol)).strip() == vol
    assert vol in _ok(sampand.cli("volume", "ls")).split()
    _ok(sampand.cli("run", "--name", name, "-v", f"{vol}:/d", "busybox", "sh", "-c", "echo 1 > /d/x; touch /new"))
    try:
        assert "A /new" in _ok(sampand.cli("diff", name))
        _ok(sampand.cli("cp", f"{name}:/d/x", str(tmp_path / "x")))
        assert (tmp_path / "x").read_text() == "1\n"
        (tmp_path / "up.txt").write_text("u")
        _ok(sampand.cli("cp", str(tmp_path / "up.txt"), f"{name}:/"))
        img = _ok(sampand.cli("commit", "-c", "ENV B=2", name, "cli-commit:1")).strip()
        assert img.startswith("sha256:")
        out = _ok(sampand.cli("run", "--rm", "cli-commit:1", "cat", "/up.txt"))
        assert out == "u"
        tar = _ok(sampand.cli("export", name, binary=True))
        assert "up.txt" in tarfile.open(fileobj=io.BytesIO(tar)).getnames()
        df = _ok(sampand.cli("system", "df"))
        assert "Local Volumes" in df and "Images" in df
        r = sampand.cli("volume", "rm", vol)
        assert r.returncode == 1 and "volume is in use" in r.stderr
        json.loads(_ok(sampand.cli("volume", "inspect", vol)))
    finally:
        sampand.cli("rm", "-f", name)
        sampand.cli("rmi", "cli-commit:1")
    _ok(sampand.cli("volume", "rm", vol))
    assert "Total reclaimed space" in _ok(sampand.cli("container", "prune", "-f"))


def test_system_df_api(sampand):
    status, df = sampand.api_json("GET", "/system/df")
    assert status == 200 and df["LayersSize"] > 0
    assert {"Images", "Containers", "Volumes", "BuildCache"} <= set(df)
    assert all("UsageData" in v for v in df["Volumes"])


def test_image_volume_gets_an_anonymous_volume_with_the_image_content(sampand):
    src, image = _name("vsrc"), f"volimg-{uuid.uuid4().hex[:6]}:1"
    # rm -rf then recreate: the rw layer holds an opaque directory, which commit must keep
    _ok(sampand.docker("run", "--name", src, "busybox", "sh", "-c",
                       "mkdir -p /srv/www && echo page > /srv/www/index.html && rm -rf /home && mkdir /home && echo only > /home/new"))
    try:
        _ok(sampand.docker("commit", "-c", "VOLUME /srv/www", src, image))
        cfg = _inspect(sampand, "--type", "image", image)["Config"]
        assert cfg["Volumes"] == {"/srv/www": {}}
        name = _name("vuser")
        out = _ok(sampand.docker("run", "--name", name, image, "sh", "-c", "cat /srv/www/index.html; ls /home"))
        assert out == "page\nnew\n"  # copy-up filled the anonymous volume; /home/user is gone
        (m,) = _inspect(sampand, name)["Mounts"]
        assert m["Type"] == "volume" and m["Destination"] == "/srv/www" and m["Mode"] == ""
        assert Path(m["Source"], "index.html").read_text() == "page\n"
        _ok(sampand.docker("rm", "-v", name))
        assert not Path(m["Source"]).exists()
    finally:
        sampand.docker("rm", "-f", src)
        sampand.docker("rmi", image)


def test_volume_api_bad_input(sampand):
    for body in ({"Name": "../escape"}, {"Name": "a"}, {"Name": "ok1", "DriverOpts": {"x": "1"}},
                 {"Name": "ok2", "Labels": ["not", "a", "map"]}, ["not an object"]):
        status, data = sampand.api_json("POST", "/volumes/create", body)
        assert status == 400, (body, data)
    status, data = sampand.api_json("POST", "/volumes/create", {"Name": "x1", "Driver": "nfs-magic"})
    assert status == 404
    status, _ = sampand.api_json("GET", "/volumes/..%2f..%2fetc")
    assert status == 404
    status, data = sampand.api_json("GET", "/volumes?filters=" + "%7B%22bogus%22%3A%5B%221%22%5D%7D")
    assert status == 400
    assert not (sampand.data_root.parent / "escape").exists()
    for args in (["-v", "bad name:/d"], ["-v", "/h:relative"], ["--mount", "type=bind,dst=/x"],
                 ["-v", "v1:/d:bogusmode"]):
        r = sampand.docker("run", "--rm", *args, "busybox", "true")
        assert r.returncode != 0, args


def test_system_prune_and_df(sampand_factory):
    d = sampand_factory()
    _ok(d.docker("run", "--name", "stopped1", "-v", "/anon", "-v", "named1:/n", "busybox", "true"))
    df = _ok(d.docker("system", "df"))
    assert re.search(r"Local Volumes\s+2\s+2", df) and re.search(r"Containers\s+1\s+0", df)
    out = _ok(d.cli("system", "prune", "-f", "--volumes"))
    assert "Deleted Containers:" in out and "Deleted Volumes:" in out and "Total reclaimed space" in out
    assert _ok(d.docker("ps", "-aq")) == ""
    assert _ok(d.docker("volume", "ls", "-q")).split() == ["named1"]  # named: kept without --all
    assert "busybox" in _ok(d.docker("images"))                     # not dangling: kept without -a
    if d.api("POST", "/networks/prune")[0] == 200:  # the docker CLI also prunes networks
        _ok(d.docker("run", "--name", "stopped2", "busybox", "true"))
        _ok(d.docker("system", "prune", "-f"))
        assert _ok(d.docker("ps", "-aq")) == ""


def test_vfs_driver_cp_diff_commit_export(sampand_factory, tmp_path):
    d = sampand_factory(config={"storage-driver": "vfs"})
    assert _ok(d.docker("info", "--format", "{{.Driver}}")).strip() == "vfs"
    _ok(d.docker("run", "--name", "v1", "-v", "vfsvol:/etc", "busybox", "sh", "-c",
                 "echo new > /added; rm /bin/ls; echo x >> /root/.profile"))
    diff = _ok(d.docker("diff", "v1")).splitlines()
    assert "A /added" in diff and "D /bin/ls" in diff and "A /root/.profile" in diff
    (tmp_path / "in.txt").write_text("in")
    _ok(d.docker("cp", str(tmp_path / "in.txt"), "v1:/"))
    _ok(d.docker("cp", "v1:/added", str(tmp_path / "out.txt")))
    assert (tmp_path / "out.txt").read_text() == "new\n"
    _ok(d.docker("commit", "v1", "vfs-commit:1"))
    out = _ok(d.docker("run", "--rm", "vfs-commit:1", "sh", "-c", "cat /added /in.txt; test -e /bin/ls || echo nols"))
    assert out == "new\nin" + "nols\n"
    tf = tarfile.open(fileobj=io.BytesIO(_ok(d.docker("export", "v1", binary=True))))
    assert "added" in tf.getnames() and "bin/ls" not in tf.getnames()
    mp = json.loads(_ok(d.docker("volume", "inspect", "vfsvol")))[0]["Mountpoint"]
    assert Path(mp, "passwd").exists()  # copy-up on vfs too


def test_commit_pauses_a_running_container_and_rm_anonymous_on_autoremove(sampand):
    name, image = _name("live"), f"live-{uuid.uuid4().hex[:6]}:1"
    _ok(sampand.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                       "while true; do date > /tmp/t.new; mv /tmp/t.new /tmp/t; sleep 0.01; done"))
    try:
        # The file is replaced by rename, so a freeze can never catch it half-written;
        # wait for the first one so the commit has something to keep.
        deadline = time.monotonic() + 10
        while sampand.docker("exec", name, "test", "-s", "/tmp/t").returncode != 0:
            assert time.monotonic() < deadline, "the loop never wrote /tmp/t"
            time.sleep(0.02)
        _ok(sampand.docker("commit", "-p", name, image))
        st = _inspect(sampand, name)["State"]
        assert st["Running"] and not st["Paused"]  # frozen only during the commit
        assert _ok(sampand.docker("run", "--rm", image, "cat", "/tmp/t")).strip()
    finally:
        sampand.docker("rm", "-f", name)
        sampand.docker("rmi", image)
    before = set(_ok(sampand.docker("volume", "ls", "-q")).split())
    _ok(sampand.docker("run", "--rm", "-v", "/scratch", "busybox", "touch", "/scratch/x"))
    assert set(_ok(sampand.docker("volume", "ls", "-q")).split()) == before  # --rm took it
