"""`sampan build` (the classic builder's client, as `DOCKER_BUILDKIT=0 docker build`) and
`sampan builder prune`.

The context directory is sent as a tar with .dockerignore applied here too (the daemon applies
it again); the Dockerfile and the ignore file are always sent. A Dockerfile outside the
context, or from stdin (`-f -`), is added under a random name, as the docker CLI does.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import tempfile

from .args import BOOL, LIST, STR, Opt
from .common import CliError, Spec, err, out

_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")


def _is_archive(head: bytes) -> bool:
    if any(head.startswith(m) for m in _TAR_MAGIC):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _is_remote(ctx: str) -> bool:
    return ctx.startswith(("http://", "https://", "git://", "git@", "github.com/"))


def _random_name() -> str:
    return ".dockerfile." + os.urandom(10).hex()


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))


def _context_tar(context: str, dockerfile: str | None, stdin_dockerfile: bytes | None,
                 f) -> str:
    """Write the context tar to `f`; returns the `dockerfile` parameter to send."""
    from ..build.dockerignore import IgnoreMatcher

    root = os.path.abspath(context)
    if not os.path.isdir(root):
        raise CliError(f'unable to prepare context: path "{context}" not found')
    extra: tuple[str, bytes] | None = None
    if stdin_dockerfile is not None:
        rel = _random_name()
        extra = (rel, stdin_dockerfile)
    else:
        path = os.path.abspath(dockerfile) if dockerfile else os.path.join(root, "Dockerfile")
        if not dockerfile and not os.path.exists(path) and os.path.exists(os.path.join(root, "dockerfile")):
            path = os.path.join(root, "dockerfile")
        if not os.path.exists(path):
            shown = dockerfile or os.path.join(root, "Dockerfile")
            raise CliError(f"unable to prepare context: unable to evaluate symlinks in Dockerfile "
                           f"path: lstat {os.path.abspath(shown)}: no such file or directory")
        rel = os.path.relpath(path, root)
        if rel.startswith(".." + os.sep) or rel == "..":
            # Outside the context: sent under a random name the daemon reads it from.
            with open(path, "rb") as fh:
                extra = (_random_name(), fh.read())
            rel = extra[0]
    rel = rel.replace(os.sep, "/")
    ignore_text = None
    for name in (rel + ".dockerignore", ".dockerignore"):
        try:
            with open(os.path.join(root, name), "rb") as fh:
                ignore_text = fh.read()
            break
        except OSError:
            continue
    matcher = IgnoreMatcher.from_text(ignore_text) if ignore_text is not None else IgnoreMatcher([])
    always = {rel, ".dockerignore", rel + ".dockerignore"}
    sent_ignore: bytes | None = None
    if extra is not None:
        # As the docker CLI: the random name goes into the .dockerignore that is sent (made
        # when there is none), so the daemon drops it from the context after reading it and
        # `COPY .` never picks it up.
        try:
            with open(os.path.join(root, ".dockerignore"), "rb") as fh:
                sent_ignore = fh.read()
        except OSError:
            sent_ignore = b".dockerignore"
        sent_ignore += b"\n" + extra[0].encode() + b"\n"
    # GNU headers with whole-second times: no PAX record per file (half the tar's CPU time);
    # long names and big files still get GNU's own extensions.
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.GNU_FORMAT) as tf:
        for relpath, entry, included in matcher.walk(root):
            if not included and relpath not in always:
                continue
            if sent_ignore is not None and relpath == ".dockerignore":
                continue  # sent below, with the random name added
            ti = tf.gettarinfo(entry.path, arcname=relpath)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mtime = int(ti.mtime)
            if ti.isreg():
                with open(entry.path, "rb") as src:
                    tf.addfile(ti, src)
            elif ti.isdir() or ti.issym() or ti.islnk():
                tf.addfile(ti)
            # sockets, fifos, devices: not part of a build context
        if extra is not None:
            _add_bytes(tf, extra[0], extra[1])
            _add_bytes(tf, ".dockerignore", sent_ignore or b"")
    return rel


def _stdin_context(f) -> str:
    """`sampan build -`: stdin is a context archive, or else a Dockerfile alone."""
    data = sys.stdin.buffer.read()
    if _is_archive(data[:512]):
        f.write(data)
        return "Dockerfile"
    with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _add_bytes(tf, "Dockerfile", data)
    return "Dockerfile"


def _kv_list(items: list[str] | None, env_fallback: bool) -> dict:
    outd: dict = {}
    for item in items or []:
        k, eq, v = item.partition("=")
        if eq:
            outd[k] = v
        elif env_fallback:
            if k in os.environ:
                outd[k] = os.environ[k]  # `--build-arg X` takes X from the environment
        else:
            outd[k] = ""
    return outd


def _size(v: str | None, flag: str) -> int | None:
    if not v:
        return None
    from .runopts import parse_bytes
    return parse_bytes(v, flag)


def cmd_build(ctx, ns, args) -> int:
    context = args[0]
    if ns.squash:
        raise CliError("squash is only supported with experimental mode")
    stdin_dockerfile = None
    if ns.file == "-":
        if context == "-":
            raise CliError("invalid argument: can't use stdin for both build context and dockerfile")
        stdin_dockerfile = sys.stdin.buffer.read()
    query: list = [("t", t) for t in ns.tag or []]
    for t in ns.tag or []:
        from .images import _check_ref
        _check_ref(t)
    body = None
    tmp = tempfile.TemporaryFile(prefix="sampan-build-")
    try:
        if _is_remote(context):
            query.append(("remote", context))
            dockerfile = ns.file or None
        elif context == "-":
            dockerfile = _stdin_context(tmp)
            if ns.file:
                dockerfile = ns.file
        else:
            dockerfile = _context_tar(context, ns.file if ns.file != "-" else None,
                                      stdin_dockerfile, tmp)
        size = tmp.tell()
        tmp.seek(0)
        if size:
            body = tmp
        if dockerfile:
            query.append(("dockerfile", dockerfile))
        build_args = _kv_list(ns.build_arg, env_fallback=True)
        if build_args:
            query.append(("buildargs", json.dumps(build_args)))
        labels = _kv_list(ns.label, env_fallback=False)
        if labels:
            query.append(("labels", json.dumps(labels)))
        if ns.cache_from:
            query.append(("cachefrom", json.dumps(ns.cache_from)))
        for k, v in (("target", ns.target), ("networkmode", ns.network), ("platform", ns.platform),
                     ("cpusetcpus", ns.cpuset_cpus)):
            if v:
                query.append((k, v))
        for host in ns.add_host or []:
            query.append(("extrahosts", host))
        for k, flag, v in (("memory", "--memory", ns.memory), ("memswap", "--memory-swap", ns.memory_swap),
                           ("shmsize", "--shm-size", ns.shm_size)):
            n = _size(v, flag)
            if n:
                query.append((k, n))
        for k, v in (("cpushares", ns.cpu_shares), ("cpuperiod", ns.cpu_period), ("cpuquota", ns.cpu_quota)):
            if v:
                query.append((k, v))
        query += [("nocache", bool(ns.no_cache)), ("pull", bool(ns.pull)), ("q", bool(ns.quiet)),
                  ("rm", bool(ns.rm)), ("forcerm", bool(ns.force_rm))]
        if not ns.quiet and body is not None:
            from .format import human_size
            out(f"Sending build context to Docker daemon  {human_size(size)}\n")
            sys.stdout.flush()
        resp = ctx.client.request("POST", "/build", query, body,
                                  {"Content-Type": "application/x-tar"}, stream=True)
        return _show(resp, ns)
    finally:
        tmp.close()


def _show(resp, ns) -> int:
    image_id = ""
    quiet_out = []
    for msg in resp.json_stream():
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            sys.stdout.flush()
            err((msg.get("error") or detail.get("message") or "unknown error") + "\n")
            return int(detail.get("code") or 1)
        aux = msg.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
            continue
        if ns.quiet:
            if "stream" in msg:
                quiet_out.append(str(msg["stream"]))
            continue
        if "stream" in msg:
            out(str(msg["stream"]))
        elif "status" in msg:
            line = str(msg["status"])
            if msg.get("id"):
                line = f"{msg['id']}: {line}"
            out(line + "\n")
        sys.stdout.flush()
    if ns.quiet:
        out("".join(quiet_out) or (image_id + "\n" if image_id else ""))
    if ns.iidfile and image_id:
        tmpname = ns.iidfile + ".tmp"
        with open(tmpname, "w") as fh:
            fh.write(image_id)
        os.replace(tmpname, ns.iidfile)
    return 0


def cmd_builder_prune(ctx, ns, args) -> int:
    from .format import human_size
    if not ns.force:
        err("WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N] ")
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = ctx.client.post("/build/prune", {"all": True if ns.all else None}) or {}
    out(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


_BUILD_OPTS = [
    Opt("--add-host", LIST, "Add a custom host-to-IP mapping (\"host:ip\")"),
    Opt("--build-arg", LIST, "Set build-time variables"),
    Opt("--cache-from", LIST, "Images to consider as cache sources"),
    Opt("--cpu-period", STR, "Limit the CPU CFS (Completely Fair Scheduler) period"),
    Opt("--cpu-quota", STR, "Limit the CPU CFS (Completely Fair Scheduler) quota"),
    Opt("-c --cpu-shares", STR, "CPU shares (relative weight)"),
    Opt("--cpuset-cpus", STR, "CPUs in which to allow execution (0-3, 0,1)"),
    Opt("-f --file", STR, "Name of the Dockerfile (Default is \"PATH/Dockerfile\")"),
    Opt("--force-rm", BOOL, "Always remove intermediate containers"),
    Opt("--iidfile", STR, "Write the image ID to the file"),
    Opt("--label", LIST, "Set metadata for an image"),
    Opt("-m --memory", STR, "Memory limit"),
    Opt("--memory-swap", STR, "Swap limit equal to memory plus swap: -1 to enable unlimited swap"),
    Opt("--network", STR, "Set the networking mode for the RUN instructions during build"),
    Opt("--no-cache", BOOL, "Do not use cache when building the image"),
    Opt("--platform", STR, "Set platform if server is multi-platform capable"),
    Opt("--progress", STR, "Set type of progress output (accepted; the classic builder's is plain)"),
    Opt("--pull", BOOL, "Always attempt to pull a newer version of the image"),
    Opt("-q --quiet", BOOL, "Suppress the build output and print image ID on success"),
    Opt("--rm", BOOL, "Remove intermediate containers after a successful build", default=True),
    Opt("--shm-size", STR, "Size of /dev/shm"),
    Opt("--squash", BOOL, "Squash newly built layers into a single new layer", hidden=True),
    Opt("-t --tag", LIST, "Name and optionally a tag in the \"name:tag\" format"),
    Opt("--target", STR, "Set the target build stage to build."),
]

SPECS = {
    "build": Spec(cmd_build, "[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile",
                  _BUILD_OPTS, min_args=1, max_args=1,
                  aliases="sampan image build, sampan build, sampan builder build"),
    "builder prune": Spec(cmd_builder_prune, "", "Remove build cache",
                          [Opt("-a --all", BOOL, "Remove all unused build cache, not just dangling ones"),
                           Opt("--filter", LIST, "Provide filter values"),
                           Opt("-f --force", BOOL, "Do not prompt for confirmation")], max_args=0),
}
