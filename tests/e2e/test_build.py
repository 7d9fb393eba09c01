"""The classic builder end to end: `sampan build` and `DOCKER_BUILDKIT=0 docker build` against a
private sampand, the results inspected and run (issue 8)."""

from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.parse
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ALL_INSTRUCTIONS = '''# syntax=docker/dockerfile:1
ARG BASE=busybox
ARG VERSION=1.0
FROM ${BASE} AS builder
ARG VERSION
ENV BUILT_VERSION=$VERSION
WORKDIR /work
RUN echo "building $VERSION" > version.txt && echo built-marker
COPY src/ ./src/
ADD arch.tar.gz /extracted/

FROM busybox AS unused
RUN echo this-stage-must-not-run && exit 1

FROM ${BASE}
LABEL org.example.title="demo app"
MAINTAINER someone@example.com
ENV APP_HOME=/app PATH=/app/bin:/usr/bin:/bin:/usr/sbin:/sbin
ARG VERSION
ARG EXTRA=default
LABEL version=$VERSION
WORKDIR $APP_HOME
COPY --from=builder /work/version.txt ./
COPY --from=builder --chown=user:users /work/src ./src
COPY --chmod=0755 <<EOF /app/bin/hello
#!/bin/sh
echo hello from heredoc
EOF
RUN <<EOF
echo "extra=$EXTRA" > /app/extra.txt
EOF
EXPOSE 8080 9090/udp
VOLUME ["/data"]
USER user
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD test -f /app/version.txt
STOPSIGNAL SIGINT
ONBUILD RUN echo triggered > /onbuild.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/version.txt"]
'''


def _ok(r) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r.stdout


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _inspect(d, ref: str) -> dict:
    return json.loads(_ok(d.cli("image", "inspect", ref)))[0]


def _ctx(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def _containers(d) -> set[str]:
    return set(_ok(d.docker("ps", "-aq", "--no-trunc")).split())


def _dangling(d) -> set[str]:
    return set(_ok(d.docker("images", "-q", "--no-trunc", "--filter", "dangling=true")).split())


def _all_ctx(tmp_path: Path) -> Path:
    ctx = _ctx(tmp_path, ALL_INSTRUCTIONS, {"src/one.txt": "one\n", "src/sub/two.txt": "two\n",
                                            "secret.txt": "secret\n", "x.log": "log\n",
                                            ".dockerignore": "secret.txt\n*.log\n"})
    with tarfile.open(ctx / "arch.tar.gz", "w:gz") as tf:
        tf.add(ctx / "src", arcname=".")
    return ctx


def test_minimal_build_through_sampan_cli(sampand, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nRUN echo hi > /made\nCOPY a.txt /a.txt\nCMD [\"cat\", \"/a.txt\"]\n",
               {"a.txt": "hello from the context\n"})
    tag = _tag("minimal")
    out = _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    assert "Step 1/4 : FROM busybox" in out
    assert "Step 2/4 : RUN echo hi > /made" in out and " ---> Running in " in out
    assert "Successfully built " in out and f"Successfully tagged {tag}:latest" in out
    assert _ok(sampand.cli("run", "--rm", tag)) == "hello from the context\n"
    assert _ok(sampand.cli("run", "--rm", tag, "cat", "/made")) == "hi\n"
    hist = json.loads(sampand.api("GET", f"/images/{tag}/history")[1])
    assert hist[0]["CreatedBy"] == '/bin/sh -c #(nop)  CMD ["cat" "/a.txt"]'
    assert hist[1]["CreatedBy"].startswith("/bin/sh -c #(nop) COPY file:")
    assert hist[1]["CreatedBy"].endswith(" in /a.txt ")
    assert hist[2]["CreatedBy"] == "/bin/sh -c echo hi > /made"


def test_docker_cli_every_instruction_multistage(sampand, tmp_path):
    ctx = _all_ctx(tmp_path)
    tag = _tag("every")
    before = _containers(sampand)
    r = sampand.docker("build", "-t", tag, "--build-arg", "VERSION=2.5", "--build-arg", "UNUSED=1",
                       "--label", "built.by=test", str(ctx), timeout=180)
    out = _ok(r)
    assert "built-marker" in out
    assert "this-stage-must-not-run" not in out and "AS unused" not in out  # skipped stage
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in out
    assert _containers(sampand) == before  # --rm is the default
    info = _inspect(sampand, tag)
    cfg = info["Config"]
    # dockerd's default PATH is set at FROM (the base has none), then replaced in place
    assert cfg["Env"] == ["PATH=/app/bin:/usr/bin:/bin:/usr/sbin:/sbin", "APP_HOME=/app"]
    assert cfg["Cmd"] == ["cat /app/version.txt"] and cfg["Entrypoint"] == ["/bin/sh", "-c"]
    assert cfg["User"] == "user" and cfg["WorkingDir"] == "/app"
    assert cfg["Labels"] == {"org.example.title": "demo app", "version": "2.5", "built.by": "test"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "9090/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /app/version.txt"],
                                  "Interval": 5_000_000_000, "Timeout": 3_000_000_000, "Retries": 3}
    assert cfg["StopSignal"] == "SIGINT" and cfg["Shell"] == ["/bin/sh", "-ec"]
    assert cfg["OnBuild"] == ["RUN echo triggered > /onbuild.txt"]
    assert info["Author"] == "someone@example.com"
    # busybox + WORKDIR /app + 3 COPY + RUN: one layer each; metadata steps add none
    assert len(info["RootFS"]["Layers"]) == 6
    hist = json.loads(sampand.api("GET", f"/images/{tag}/history")[1])
    by = [h["CreatedBy"] for h in hist]
    assert "|2 EXTRA=default VERSION=2.5 /bin/sh -c echo \"extra=$EXTRA\" > /app/extra.txt\n" in by
    assert '/bin/sh -ec #(nop)  STOPSIGNAL SIGINT' in by
    assert '/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]' in by
    assert '/bin/sh -c #(nop)  EXPOSE 8080 9090/udp' in by
    assert any(b.startswith('/bin/sh -c #(nop) COPY --chown=user:usersdir:') for b in by)
    assert '/bin/sh -c #(nop) WORKDIR /app' in by
    out = _ok(sampand.docker("run", "--rm", tag))
    assert out == "building 2.5\n"
    script = "id -un; cat /app/extra.txt; hello; stat -c '%U:%G' /app/src/one.txt; ls /app/src/sub"
    out = _ok(sampand.docker("run", "--rm", tag, script))
    assert out.split("\n")[:5] == ["user", "extra=default", "hello from heredoc", "user:users", "two.txt"]


def test_target_builds_only_what_it_needs(sampand, tmp_path):
    ctx = _all_ctx(tmp_path)
    tag = _tag("target")
    out = _ok(sampand.cli("build", "--target", "builder", "-t", tag, str(ctx), timeout=120))
    assert "Step 9/9 : ADD arch.tar.gz /extracted/" in out
    assert "this-stage-must-not-run" not in out
    out = _ok(sampand.cli("run", "--rm", tag, "sh", "-c",
                          "cat /work/version.txt; ls /extracted; ls /work/src; echo $BUILT_VERSION"))
    assert out.split() == ["building", "1.0", "one.txt", "sub", "one.txt", "sub", "1.0"]
    r = sampand.cli("build", "--target", "nosuch", str(ctx))
    assert r.returncode != 0 and "failed to reach build target nosuch in Dockerfile" in r.stderr


def test_build_args_and_arg_scoping(sampand, tmp_path):
    df = ("ARG TAG=latest\nARG GLOBAL=g\nFROM busybox:${TAG}\n"
          "RUN echo \"global-unset=[${GLOBAL}]\" > /a\n"
          "ARG GLOBAL\nARG LOCAL=l-default\nENV SHADOW=from-env\nARG SHADOW=from-arg\n"
          "RUN echo \"global=$GLOBAL local=$LOCAL shadow=$SHADOW\" >> /a\n"
          "ENV FROM_ARG=${LOCAL}-x\nCMD cat /a\n")
    ctx = _ctx(tmp_path, df)
    tag = _tag("args")
    _ok(sampand.cli("build", "-t", tag, "--build-arg", "LOCAL=given", str(ctx), timeout=120))
    assert _ok(sampand.cli("run", "--rm", tag)) == "global-unset=[]\nglobal=g local=given shadow=from-env\n"
    env = _inspect(sampand, tag)["Config"]["Env"]
    assert "FROM_ARG=given-x" in env and "SHADOW=from-env" in env
    assert not any(e.startswith(("LOCAL=", "GLOBAL=")) for e in env)  # ARGs are not persisted


def test_cache_noop_rebuild_change_and_no_cache(sampand, tmp_path):
    df = ("FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\n"
          "COPY b.txt /b.txt\nENV X=1\nCMD cat /copy /b.txt\n")
    ctx = _ctx(tmp_path, df, {"a.txt": "a1\n", "b.txt": "b1\n"})
    tag = _tag("cache")
    first = _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    assert "Using cache" not in first
    image1 = _inspect(sampand, tag)["Id"]
    again = _ok(sampand.docker("build", "-t", tag, str(ctx), timeout=120))
    assert again.count(" ---> Using cache") == 6 and "Running in" not in again
    assert _inspect(sampand, tag)["Id"] == image1
    (ctx / "a.txt").write_text("a2\n")
    changed = _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    steps = changed.split("Step ")[1:]
    assert [" ---> Using cache" in s for s in steps] == [False, True, False, False, False, False, False]
    assert _ok(sampand.cli("run", "--rm", tag)) == "a2\nb1\n"
    nocache = _ok(sampand.cli("build", "--no-cache", "-t", tag, str(ctx), timeout=120))
    assert "Using cache" not in nocache and nocache.count("Running in") == 2
    # -q prints only the image ID
    quiet = _ok(sampand.cli("build", "-q", "-t", tag, str(ctx), timeout=120))
    assert quiet.strip() == _inspect(sampand, tag)["Id"]


def test_failing_run_step(sampand, tmp_path):
    ctx = _ctx(tmp_path, f"FROM busybox\nRUN echo {uuid.uuid4().hex} > /first\n"
                         "RUN echo failing-now; exit 3\nRUN echo never\n")
    containers, dangling = _containers(sampand), _dangling(sampand)
    r = sampand.docker("build", "--force-rm", "-t", _tag("fail"), str(ctx), timeout=120)
    assert r.returncode == 3, r.stderr
    assert "failing-now" in r.stdout
    assert "The command '/bin/sh -c echo failing-now; exit 3' returned a non-zero code: 3" in r.stderr
    assert _containers(sampand) == containers  # --force-rm: the failed container is gone too
    assert _dangling(sampand) == dangling      # and the steps' images that nothing uses
    r = sampand.cli("build", str(ctx), timeout=120)
    assert r.returncode == 3 and "returned a non-zero code: 3" in r.stderr
    # Docker's default (--rm without --force-rm) keeps the failed step's container
    left = _containers(sampand) - containers
    assert len(left) == 1
    _ok(sampand.docker("rm", *left))


def test_dockerfile_outside_context_and_on_stdin(sampand, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nCMD [\"echo\", \"inside\"]\n", {"f.txt": "file\n"})
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM busybox\nCOPY f.txt /f.txt\nCMD [\"cat\", \"/f.txt\"]\n")
    for client in (sampand.cli, sampand.docker):
        tag = _tag("outside")
        _ok(client("build", "-f", str(outside), "-t", tag, str(ctx), timeout=120))
        assert _ok(sampand.cli("run", "--rm", tag)) == "file\n"
        tag = _tag("stdin-df")
        _ok(client("build", "-f", "-", "-t", tag, str(ctx), timeout=120,
                   input="FROM busybox\nCOPY f.txt /g.txt\nCMD [\"cat\", \"/g.txt\"]\n"))
        assert _ok(sampand.cli("run", "--rm", tag)) == "file\n"
        # the Dockerfile's random name in the context is ignored, so `COPY .` never takes it
        lister = tmp_path / "lister.Dockerfile"
        lister.write_text("FROM busybox\nCOPY . /ctx\nCMD [\"ls\", \"-A\", \"/ctx\"]\n")
        for ignore in (None, "*.md\n"):
            (ctx / "README.md").write_text("not sent\n")
            if ignore is not None:
                (ctx / ".dockerignore").write_text(ignore)
            tag = _tag("outside-ls")
            _ok(client("build", "-f", str(lister), "-t", tag, str(ctx), timeout=120))
            listed = _ok(sampand.cli("run", "--rm", tag)).split()
            assert not [n for n in listed if n.startswith(".dockerfile.")], listed
            want = {"Dockerfile", "f.txt"} | ({".dockerignore"} if ignore else {"README.md"})
            assert set(listed) == want, (client, listed)
            (ctx / "README.md").unlink()
            (ctx / ".dockerignore").unlink(missing_ok=True)
        tag = _tag("stdin-only")
        _ok(client("build", "-t", tag, "-", timeout=120, input="FROM busybox\nCMD [\"echo\", \"piped\"]\n"))
        assert _ok(sampand.cli("run", "--rm", tag)) == "piped\n"
    # a context tar on stdin
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(ctx, arcname=".")
    tag = _tag("stdin-tar")
    _ok(sampand.cli("build", "-t", tag, "-", timeout=120, input=buf.getvalue()))
    assert _ok(sampand.cli("run", "--rm", tag)) == "inside\n"


def _raw_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _api_build(d, body: bytes, **query) -> tuple[int, list]:
    q = urllib.parse.urlencode(query, doseq=True)
    status, data = d.api("POST", f"/build?{q}", body, headers={"Content-Type": "application/x-tar"},
                         timeout=120)
    if status != 200:
        return status, [json.loads(data)]
    return status, [json.loads(x) for x in data.decode().splitlines() if x.strip()]


def test_dockerignore_applied_by_the_daemon(sampand):
    # A client that ignores .dockerignore still cannot get the ignored files into the image.
    body = _raw_tar({"Dockerfile": b"FROM busybox\nCOPY . /ctx/\n", ".dockerignore": b"secret*\nlogs/\n",
                     "secret.key": b"k", "logs/a.log": b"l", "keep.txt": b"keep"})
    tag = _tag("ignore")
    status, msgs = _api_build(sampand, body, t=tag)
    assert status == 200 and not any("error" in m for m in msgs), msgs
    assert any("aux" in m for m in msgs)
    out = _ok(sampand.cli("run", "--rm", tag, "ls", "-A", "/ctx"))
    assert out.split() == [".dockerignore", "Dockerfile", "keep.txt"]


def test_api_errors_before_and_during_the_stream(sampand):
    status, msgs = _api_build(sampand, _raw_tar({"Dockerfile": b"FROM busybox\nFROB x\n"}))
    assert status == 400 and "unknown instruction" in msgs[0]["message"].lower()
    status, msgs = _api_build(sampand, _raw_tar({"Dockerfile": b"FROM busybox\n"}), t="Bad:Tag:x")
    assert status == 400
    status, msgs = _api_build(sampand, _raw_tar({"Dockerfile": b"FROM busybox\nCOPY nothere /x\n"}))
    assert status == 200 and "error" in msgs[-1] and "nothere" in msgs[-1]["error"]
    status, msgs = _api_build(sampand, _raw_tar({"Dockerfile": b"FROM busybox\nCOPY ../../etc/passwd /x\n"}))
    assert "error" in msgs[-1]
    status, msgs = _api_build(sampand, b"not a tar and not a dockerfile \x00\xff" * 10)
    assert status == 400 or "error" in msgs[-1]


def test_onbuild_triggers_run_in_the_child(sampand, tmp_path):
    parent = _tag("onbuild-parent")
    ctx = _ctx(tmp_path, "FROM busybox\nONBUILD COPY f.txt /from-child.txt\nONBUILD RUN echo ran > /trigger\n",
               {"f.txt": "child context\n"})
    _ok(sampand.cli("build", "-t", parent, str(ctx), timeout=120))
    (ctx / "Dockerfile").write_text(f"FROM {parent}\nCMD cat /trigger /from-child.txt\n")
    child = _tag("onbuild-child")
    out = _ok(sampand.cli("build", "-t", child, str(ctx), timeout=120))
    assert "# Executing 2 build triggers" in out
    assert _ok(sampand.cli("run", "--rm", child)) == "ran\nchild context\n"
    assert _inspect(sampand, child)["Config"]["OnBuild"] in (None, [])


def test_onbuild_triggers_and_labels_ignore_the_childs_escape(sampand, tmp_path):
    # dockerd parses a trigger afresh (default escape `\`: `hello\ world` is one word) and
    # expands it with the child's lexer (backtick: the backslash stays); its --label values
    # are single-quoted, so no escape character touches them.
    parent = _tag("onbuild-esc-parent")
    ctx = _ctx(tmp_path, "FROM busybox\nONBUILD ENV GREETING=hello\\ world\n")
    _ok(sampand.cli("build", "-t", parent, str(ctx), timeout=120))
    (ctx / "Dockerfile").write_text(f"# escape=`\nFROM {parent}\nCMD echo $GREETING\n")
    child = _tag("onbuild-esc-child")
    _ok(sampand.cli("build", "-t", child, "--label", 'quote=a"b\\c', str(ctx), timeout=120))
    cfg = _inspect(sampand, child)["Config"]
    assert "GREETING=hello\\ world" in cfg["Env"], cfg["Env"]
    assert cfg["Labels"]["quote"] == 'a"b\\c'


def test_a_client_killed_at_any_moment_leaves_no_container(sampand, tmp_path):
    """Killed while its RUN container is being created or started: the build still notices
    (EOF, or a write that found the socket closed) and removes the container."""
    import subprocess
    import time
    for i in range(6):
        d = tmp_path / str(i)
        d.mkdir()
        ctx = _ctx(d, f"FROM busybox\nRUN echo {uuid.uuid4().hex}; sleep 60\n")
        before = _containers(sampand)
        p = subprocess.Popen(["/usr/local/bin/docker", "build", str(ctx)], env=sampand.env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            for line in p.stdout:
                if line.startswith("Step 2/2"):
                    break
            time.sleep(0.02 * i)
        finally:
            p.kill()
            p.wait()
        assert _containers_back_to(sampand, before), f"a RUN container outlived its build ({i})"


def _containers_back_to(sampand, before: set, seconds: float = 20) -> bool:
    import time
    deadline = time.monotonic() + seconds
    while _containers(sampand) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    return _containers(sampand) == before


def test_docker_sdk_build(docker_client, tmp_path):
    ctx = _ctx(tmp_path, "FROM busybox\nLABEL sdk=yes\nRUN echo sdk > /sdk\n")
    tag = _tag("sdk")
    image, logs = docker_client.images.build(path=str(ctx), tag=tag, rm=True)
    assert image.labels == {"sdk": "yes"}
    assert any("Successfully built" in (x.get("stream") or "") for x in logs)
    assert docker_client.containers.run(tag, ["cat", "/sdk"], remove=True) == b"sdk\n"


def test_client_going_away_cancels_the_build(sampand, tmp_path):
    import subprocess
    ctx = _ctx(tmp_path, f"FROM busybox\nRUN echo {uuid.uuid4().hex}; echo sleeping-now; sleep 60\n")
    before = _containers(sampand)
    p = subprocess.Popen(["/usr/local/bin/docker", "build", str(ctx)], env=sampand.env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in p.stdout:
            if line.strip() == "sleeping-now":  # the RUN's own output, not its "Step 2/2" line
                break
        assert len(_containers(sampand) - before) == 1
    finally:
        p.kill()
        p.wait()
    assert _containers_back_to(sampand, before)  # the RUN container was killed and removed


def test_add_url_and_remote_context(sampand, tmp_path):
    import hashlib
    import http.server
    import threading
    served = tmp_path / "www"
    served.mkdir()
    (served / "payload.txt").write_text("fetched over http\n")
    remote_ctx = tmp_path / "remote"
    remote_ctx.mkdir()
    (remote_ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n")
    (remote_ctx / "hello.txt").write_text("from a remote context\n")
    with tarfile.open(served / "ctx.tar.gz", "w:gz") as tf:
        tf.add(remote_ctx, arcname=".")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **kw)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        digest = hashlib.sha256(b"fetched over http\n").hexdigest()
        ctx = _ctx(tmp_path, f"FROM busybox\nADD --checksum=sha256:{digest} {base}/payload.txt /p/\n"
                             f"ADD {base}/payload.txt /q.txt\n")
        tag = _tag("addurl")
        _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
        assert _ok(sampand.cli("run", "--rm", tag, "cat", "/p/payload.txt", "/q.txt")) == "fetched over http\n" * 2
        (ctx / "Dockerfile").write_text(f"FROM busybox\nADD --checksum=sha256:{'0' * 64} {base}/payload.txt /p/\n")
        r = sampand.cli("build", str(ctx), timeout=120)
        assert r.returncode != 0 and "checksum" in r.stderr.lower()
        tag = _tag("remote")
        _ok(sampand.docker("build", "-t", tag, f"{base}/ctx.tar.gz", timeout=120))
        assert _ok(sampand.cli("run", "--rm", tag)) == "from a remote context\n"
    finally:
        srv.shutdown()


def test_cache_from_an_image_without_local_cache(sampand, tmp_path):
    df = (f"FROM busybox\nRUN echo {uuid.uuid4().hex} > /r\nCOPY f.txt /f.txt\nENV A=1\n"
          "WORKDIR /w\nCMD [\"cat\", \"/r\"]\n")
    ctx = _ctx(tmp_path, df, {"f.txt": "f\n"})
    src = _tag("cachesrc")
    _ok(sampand.cli("build", "-t", src, str(ctx), timeout=120))
    src_id = _inspect(sampand, src)["Id"]
    _ok(sampand.cli("builder", "prune", "-a", "-f"))   # the local cache is gone
    out = _ok(sampand.docker("build", "--cache-from", src, "-t", _tag("cachedst"), str(ctx), timeout=120))
    assert out.count(" ---> Using cache") == 5 and "Running in" not in out
    assert f"Successfully built {src_id[7:19]}" in out  # the same image in the end
    _ok(sampand.cli("builder", "prune", "-a", "-f"))
    plain = _ok(sampand.cli("build", str(ctx), timeout=120))   # without --cache-from: rebuilt
    assert "Using cache" not in plain


def test_hostile_context_cannot_reach_the_host(sampand, tmp_path):
    # symlinks in the context are never followed out of it, by COPY or by the daemon's unpack
    secret = "host-secret-" + uuid.uuid4().hex
    outside = tmp_path / "outside.txt"
    outside.write_text(secret)
    ctx = _ctx(tmp_path, "FROM busybox\nCOPY . /ctx/\n")
    (ctx / "abs").symlink_to(outside)
    (ctx / "rel").symlink_to("../outside.txt")
    tag = _tag("hostile")
    _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    out = _ok(sampand.cli("run", "--rm", tag, "sh", "-c", "readlink /ctx/abs /ctx/rel; cat /ctx/abs /ctx/rel 2>&1; true"))
    assert secret not in out
    for df in ("COPY abs /x\n", "COPY rel /x\n", "COPY ../outside.txt /x\n"):
        (ctx / "Dockerfile").write_text("FROM busybox\n" + df + "CMD [\"cat\", \"/x\"]\n")
        r = sampand.cli("build", "-t", tag + "-2", str(ctx), timeout=120)
        if r.returncode == 0:
            assert secret not in _ok(sampand.cli("run", "--rm", tag + "-2", "sh", "-c", "cat /x 2>&1; true"))
    # an ADD of a tar whose members climb out stays inside the image
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w") as tf:
        for name in ("../../escaped.txt", "/abs-escaped.txt", "ok.txt"):
            ti = tarfile.TarInfo(name)
            ti.size = 2
            tf.addfile(ti, io.BytesIO(b"x\n"))
    (ctx / "evil.tar").write_bytes(evil.getvalue())
    (ctx / "Dockerfile").write_text("FROM busybox\nADD evil.tar /dst/\n")
    r = sampand.cli("build", str(ctx), timeout=120)
    assert not (Path("/escaped.txt").exists() or Path("/abs-escaped.txt").exists())
    assert not (tmp_path / "escaped.txt").exists()
    # refused with a clear message, or confined below the destination
    assert (r.returncode != 0 and "escaped.txt" in r.stderr) or r.returncode == 0


def test_independent_stages_build_concurrently_output_in_order(sampand, tmp_path):
    # Each stage notes the (shared) uptime clock around a sleep: the windows overlap when the
    # stages ran at the same time. The output still lists the steps in Dockerfile order.
    run = "RUN cat /proc/uptime > /t; sleep 2; cat /proc/uptime >> /t; echo {m}"
    df = (f"FROM busybox AS a\n{run.format(m='stage-a-done')}\n"
          f"FROM busybox AS b\n{run.format(m='stage-b-done')}\n"
          "FROM busybox\nCOPY --from=a /t /a.t\nCOPY --from=b /t /b.t\nCMD cat /a.t /b.t\n")
    df = df.replace("RUN cat", f"RUN echo {uuid.uuid4().hex} >/dev/null; cat")
    ctx = _ctx(tmp_path, df)
    tag = _tag("concurrent")
    out = _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    steps = [int(x.split("/")[0]) for x in out.split("Step ")[1:]]
    assert steps == list(range(1, 9))
    assert out.index("stage-a-done") < out.index("Step 3/8") < out.index("stage-b-done")
    t = [float(line.split()[0]) for line in _ok(sampand.cli("run", "--rm", tag)).split("\n") if line]
    a, b = (t[0], t[1]), (t[2], t[3])
    assert a[0] < b[1] and b[0] < a[1], (a, b)  # the two RUNs overlapped in time


def test_git_remote_context(sampand, tmp_path):
    import shutil
    import socket
    import subprocess
    import time
    if not shutil.which("git"):
        pytest.skip("git not installed")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "Dockerfile").write_text("FROM busybox\nCOPY top.txt /top.txt\nCMD [\"cat\", \"/top.txt\"]\n")
    (work / "top.txt").write_text("from the repository root\n")
    (work / "sub" / "Dockerfile").write_text("FROM busybox\nCOPY s.txt /s.txt\nCMD [\"cat\", \"/s.txt\"]\n")
    (work / "sub" / "s.txt").write_text("from the subdirectory\n")
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "ctx"]):
        subprocess.run(git + cmd, cwd=work, check=True, env=env, capture_output=True)
    served = tmp_path / "served"
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "repo.git")], check=True,
                   env=env, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
                               f"--port={port}", f"--base-path={served}", str(served)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        url = f"git://127.0.0.1:{port}/repo.git"
        tag = _tag("git")
        _ok(sampand.cli("build", "-t", tag, url, timeout=120))
        assert _ok(sampand.cli("run", "--rm", tag)) == "from the repository root\n"
        _ok(sampand.cli("build", "-t", tag, url + "#main:sub", timeout=120))
        assert _ok(sampand.cli("run", "--rm", tag)) == "from the subdirectory\n"
        r = sampand.cli("build", url + "#main:../..", timeout=120)
        assert r.returncode != 0 and "subdirectory" in r.stderr
        r = sampand.cli("build", url + "#nosuchbranch", timeout=120)
        assert r.returncode != 0 and "git clone" in r.stderr
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def test_run_sees_user_workdir_env_and_shell(sampand, tmp_path):
    df = ("FROM busybox\nWORKDIR /srv/app\nENV GREETING=hi\nUSER user\n"
          "RUN echo \"$(id -un) $(pwd) $GREETING\" > /tmp/seen\n"
          "SHELL [\"/bin/sh\", \"-c\", \"echo shell-was-used >> /tmp/seen; eval \\\"$0\\\"\"]\n"
          "RUN true\nUSER root\nRUN ls -ld /srv/app | awk '{print $3}' >> /tmp/seen\n"
          "CMD [\"cat\", \"/tmp/seen\"]\n")
    ctx = _ctx(tmp_path, df)
    tag = _tag("runctx")
    _ok(sampand.cli("build", "-t", tag, str(ctx), timeout=120))
    assert _ok(sampand.cli("run", "--rm", tag)).split("\n")[:3] == ["user /srv/app hi", "shell-was-used", "shell-was-used"]
