"""The build engine's pure parts: config-only instructions and their history strings, ARG
scoping, the cache table, the progress stream, WORKDIR's layer and the RUN command line."""

from __future__ import annotations

import tarfile

import pytest

from sampan.build import stage as S
from sampan.build.builder import _pad_tar, _run_argv
from sampan.build.cache import BuildCache
from sampan.build.dockerfile import parse, parse_line
from sampan.build.progress import Progress
from sampan.build.rootfs import resolve_in_root, write_mkdir_layer
from sampan.errors import InvalidParameter
from sampan.metadata import Database


def _apply(st: S.StageState, line: str, build_args=None, meta=None):
    img, comment = S.apply_metadata(parse_line(line), st, build_args or {}, "\\", meta)
    st.image = img
    return img["config"], comment


def _stage() -> S.StageState:
    st = S.StageState(index=0, name=None)
    st.image = S.blank_image()
    return st


def test_metadata_instructions_set_config_and_comment():
    st = _stage()
    cfg, c = _apply(st, 'ENV A=1 B="two words"')
    assert cfg["Env"] == ["A=1", "B=two words"] and c == "ENV A=1 B=two words"
    cfg, c = _apply(st, "ENV A=changed")
    assert cfg["Env"] == ["A=changed", "B=two words"]  # replaced in place
    cfg, c = _apply(st, "LABEL a=$A b=c")
    assert cfg["Labels"] == {"a": "changed", "b": "c"} and c == "LABEL a=changed b=c"
    cfg, c = _apply(st, "EXPOSE 80 53/udp 8000-8001")
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert c == "EXPOSE 80 53/udp 8000-8001"
    cfg, c = _apply(st, 'VOLUME ["/data", "/logs"]')
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}} and c == "VOLUME [/data /logs]"
    cfg, c = _apply(st, "USER ${A}:users")
    assert cfg["User"] == "changed:users"
    cfg, c = _apply(st, "STOPSIGNAL SIGQUIT")
    assert cfg["StopSignal"] == "SIGQUIT"
    cfg, c = _apply(st, "CMD echo hi")
    assert cfg["Cmd"] == ["/bin/sh", "-c", "echo hi"] and c == 'CMD ["/bin/sh" "-c" "echo hi"]'
    st.cmd_set = True
    cfg, c = _apply(st, 'ENTRYPOINT ["tini", "--"]')
    assert cfg["Entrypoint"] == ["tini", "--"] and cfg["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    cfg, c = _apply(st, 'SHELL ["/bin/bash", "-eo", "pipefail", "-c"]')
    assert cfg["Shell"] == ["/bin/bash", "-eo", "pipefail", "-c"]
    assert c == "SHELL [/bin/bash -eo pipefail -c]"
    cfg, c = _apply(st, "CMD run it")
    assert cfg["Cmd"] == ["/bin/bash", "-eo", "pipefail", "-c", "run it"]  # SHELL applies
    cfg, c = _apply(st, "HEALTHCHECK --interval=30s --retries=2 CMD curl -f http://x/")
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://x/"],
                                  "Interval": 30_000_000_000, "Retries": 2}
    assert c == 'HEALTHCHECK &{["CMD-SHELL" "curl -f http://x/"] "30s" "0s" "0s" "0s" \'\\x02\'}'
    cfg, c = _apply(st, "HEALTHCHECK NONE")
    assert cfg["Healthcheck"] == {"Test": ["NONE"]}
    cfg, c = _apply(st, "ONBUILD RUN make")
    assert cfg["OnBuild"] == ["RUN make"] and c == "ONBUILD RUN make"
    img, c = S.apply_metadata(parse_line("MAINTAINER Jane <j@x>"), st, {}, "\\")
    assert img["author"] == "Jane <j@x>" and c == "MAINTAINER Jane <j@x>"


def test_entrypoint_drops_an_inherited_cmd():
    st = _stage()
    st.image["config"]["Cmd"] = ["sh"]
    cfg, c = _apply(st, "ENTRYPOINT exec app")
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "exec app"] and cfg["Cmd"] is None
    assert c == 'ENTRYPOINT ["/bin/sh" "-c" "exec app"]'


@pytest.mark.parametrize("line, msg", [
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
    ("ONBUILD FROM busybox", "FROM isn't allowed as an ONBUILD trigger"),
    ("STOPSIGNAL SIGNOPE", "Invalid signal"),
    ("EXPOSE 80/xtp", "invalid proto"),
    ("EXPOSE 99999", "invalid port"),
    ("HEALTHCHECK --retries=-1 CMD true", "cannot be negative"),
])
def test_metadata_errors(line, msg):
    st = _stage()
    before = dict(st.image["config"])
    with pytest.raises(InvalidParameter, match=msg):
        S.apply_metadata(parse_line(line), st, {}, "\\")
    assert st.image["config"] == before


def test_arg_scoping_and_precedence():
    st = _stage()
    meta = {"GLOBAL": "g"}
    _apply(st, "ARG GLOBAL", meta=meta)          # a global ARG re-declared takes its value
    _apply(st, "ARG LOCAL=l", meta=meta)
    _apply(st, "ARG EMPTY", meta=meta)
    assert st.expansion_env({}) == {"GLOBAL": "g", "LOCAL": "l"}
    assert st.expansion_env({"LOCAL": "given"})["LOCAL"] == "given"
    _apply(st, "ENV LOCAL=from-env")             # ENV wins over an ARG of the same name
    assert st.expansion_env({"LOCAL": "given"})["LOCAL"] == "from-env"
    assert st.run_args({"LOCAL": "given", "EMPTY": "e", "UNDECLARED": "x"}) == [("EMPTY", "e"), ("GLOBAL", "g")]
    _, c = _apply(st, "ARG WITH_DEFAULT=${GLOBAL}-x", meta=meta)
    assert c == "ARG WITH_DEFAULT=g-x"


def test_default_path_at_from():
    img = S.blank_image()
    S.set_default_path(img)
    assert img["config"]["Env"] == ["PATH=" + S.DEFAULT_PATH]
    img = {"config": {"Env": ["A=1", "PATH=/x"]}}
    S.set_default_path(img)
    assert img["config"]["Env"] == ["A=1", "PATH=/x"]


def test_history_strings():
    assert S.nop_created_by(["/bin/sh", "-c"], 'CMD ["sh"]') == '/bin/sh -c #(nop)  CMD ["sh"]'
    assert S.nop_created_by_string(["/bin/sh", "-c"], "COPY file:ab in /x ") == "/bin/sh -c #(nop) COPY file:ab in /x "
    assert S.run_created_by(["/bin/sh", "-c", "make"], [("A", "1"), ("B", "2")]) == "|2 A=1 B=2 /bin/sh -c make"
    assert S.run_created_by(["echo", "hi"], []) == "echo hi"
    assert S.go_duration(90_000_000_000) == "1m30s" and S.go_duration(500_000_000) == "500ms"
    assert S.go_duration(3 * 3600 * 10**9) == "3h0m0s"


def test_workdir_paths():
    assert S.workdir("", "app") == "/app"
    assert S.workdir("/app", "sub/../x") == "/app/x"
    assert S.workdir("/app", "/abs/") == "/abs"
    with pytest.raises(InvalidParameter):
        S.workdir("/", "")


def test_run_argv_forms_and_heredocs():
    df = parse('FROM x\nRUN ["echo", "a b"]\nRUN echo hi\nRUN <<EOF\necho one\necho two\nEOF\n'
               'RUN cat <<EOF > /f\ncontent\nEOF\n')
    ins = df.stages[0].instructions
    sh = ["/bin/sh", "-c"]
    assert _run_argv(ins[0], sh) == ["echo", "a b"]
    assert _run_argv(ins[1], sh) == ["/bin/sh", "-c", "echo hi"]
    assert _run_argv(ins[2], sh) == ["/bin/sh", "-c", "echo one\necho two\n"]
    assert _run_argv(ins[3], sh) == ["/bin/sh", "-c", "cat <<EOF > /f\ncontent\nEOF\n"]


def test_cache_entries_live_only_with_their_image(tmp_path):
    alive = {"sha256:" + "a" * 64}
    cache = BuildCache(Database(tmp_path / "db.sqlite"), lambda i: i in alive)
    parent, child = "sha256:" + "p" * 64, "sha256:" + "a" * 64
    assert cache.get(parent, "run:echo") is None
    cache.put(parent, "run:echo", child)
    assert cache.get(parent, "run:echo") == child
    assert cache.get(parent, "run:other") is None and cache.get("", "run:echo") is None
    alive.clear()
    assert cache.get(parent, "run:echo") is None  # the image is gone: so is the entry
    assert cache.count() == 0
    cache.put(parent, "k", child)
    keys, n = cache.prune()
    assert n == 1 and keys


def test_progress_messages():
    got = []
    p = Progress(got.append)
    p.step(1, 3, "FROM busybox")
    p.image("sha256:" + "1" * 64)
    p.output(b"out\n")
    p.aux("sha256:" + "2" * 64)
    p.final("sha256:" + "2" * 64, ["x:latest"])
    p.error("boom", 3)
    assert got == [{"stream": "Step 1/3 : FROM busybox\n"}, {"stream": " ---> 111111111111\n"},
                   {"stream": "out\n"}, {"aux": {"ID": "sha256:" + "2" * 64}},
                   {"stream": "Successfully built 222222222222\n"},
                   {"stream": "Successfully tagged x:latest\n"},
                   {"errorDetail": {"message": "boom", "code": 3}, "error": "boom"}]
    quiet = []
    q = Progress(quiet.append, quiet=True)
    q.step(1, 1, "FROM x")
    q.output(b"noise")
    q.final("sha256:" + "3" * 64, ["y:1"])
    assert quiet == [{"stream": "sha256:" + "3" * 64 + "\n"}]


def test_workdir_layer_resolves_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "local").mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    (root / "var").symlink_to("/usr/local")          # absolute: resolved inside root
    (root / "esc").symlink_to("../../../../outside")  # cannot leave the root
    assert resolve_in_root(root, "/usr/local") == (["usr", "local"], [])
    assert resolve_in_root(root, "/var/app") == (["usr", "local"], ["app"])
    assert resolve_in_root(root, "/esc/x") == ([], ["outside", "x"])
    out = tmp_path / "l.tar"
    assert write_mkdir_layer(root, "/usr/local", out) is False and not out.exists()
    assert write_mkdir_layer(root, "/var/app/data", out) is True
    with tarfile.open(out) as tf:
        members = {m.name: m for m in tf.getmembers()}
    assert list(members) == ["usr", "usr/local", "usr/local/app", "usr/local/app/data"]
    assert all(m.isdir() for m in members.values())
    assert members["usr/local/app"].mode == 0o755 and members["usr/local/app"].uid == 0
    assert not (tmp_path / "outside").exists()


def test_pad_tar_completes_a_truncated_plain_tar(tmp_path):
    p = tmp_path / "ctx.tar"
    with tarfile.open(p, "w", format=tarfile.USTAR_FORMAT) as tf:
        ti = tarfile.TarInfo("Dockerfile")
        data = b"FROM busybox\n"
        ti.size = len(data)
        import io
        tf.addfile(ti, io.BytesIO(data))
    raw = p.read_bytes()
    p.write_bytes(raw[:512 + 13])  # what the docker CLI sends: no padding, no end blocks
    _pad_tar(p)
    with tarfile.open(p) as tf:
        assert tf.extractfile("Dockerfile").read() == b"FROM busybox\n"
    gz = tmp_path / "c.tar.gz"
    gz.write_bytes(b"\x1f\x8b" + b"x" * 600)
    _pad_tar(gz)
    assert gz.stat().st_size == 602  # compressed input is left alone
