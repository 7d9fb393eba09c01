"""cp, diff, export, commit, container prune, system df, system prune."""

from __future__ import annotations

import base64
import json
import os
import sys

from .args import BOOL, LIST, STR, Opt
from .common import CliError, Spec, err, filters_json, out, q, write_tar


# -- cp ---------------------------------------------------------------------------------------------

def _split_cp_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: ("container", "path") or ("", local path)."""
    if arg.startswith("/") or arg.startswith("."):
        return "", arg
    name, sep, path = arg.partition(":")
    if not sep:
        return "", arg
    return name, path


def _stat(ctx, container: str, path: str) -> dict | None:
    from .client import APIError
    try:
        resp = ctx.client.request("HEAD", f"/containers/{q(container)}/archive", {"path": path})
    except APIError as e:
        if e.status == 404:
            return None
        raise
    raw = resp.headers.get("x-docker-container-path-stat", "")
    try:
        return json.loads(base64.b64decode(raw)) if raw else {}
    except ValueError:
        raise CliError("unable to decode container path stat header") from None


def _is_dir(st: dict) -> bool:
    return bool(int(st.get("mode", 0)) & (1 << 31))


def _human(n: int) -> str:
    from .format import human_size
    return human_size(n)


def cmd_cp(ctx, ns, args) -> int:
    src, dst = args
    s_cont, s_path = _split_cp_arg(src)
    d_cont, d_path = _split_cp_arg(dst)
    if s_cont and d_cont:
        raise CliError("copying between containers is not supported")
    if not s_cont and not d_cont:
        raise CliError("must specify at least one container source")
    if s_cont:
        if not s_path:
            raise CliError("source path must not be empty")
        return _copy_from(ctx, ns, s_cont, s_path, d_path)
    if not d_path:
        raise CliError("destination path must not be empty")
    return _copy_to(ctx, ns, s_path, d_cont, d_path)


def _copy_from(ctx, ns, container: str, path: str, dst: str) -> int:
    from .client import APIError
    if ns.follow_link:
        st = _stat(ctx, container, path)
        if st and st.get("linkTarget"):
            path = st["linkTarget"]
    try:
        resp = ctx.client.request("GET", f"/containers/{q(container)}/archive", {"path": path},
                                  stream=True)
    except APIError as e:
        if e.status == 404:
            raise CliError(f"Error response from daemon: {e.message}") from None
        raise
    if dst == "-":
        from .stream import write_all
        sys.stdout.flush()
        for chunk in resp.chunks():
            write_all(1, chunk)
        return 0
    raw = resp.headers.get("x-docker-container-path-stat", "")
    st = json.loads(base64.b64decode(raw)) if raw else {}
    total = extract_to(resp.chunks(), st, path, dst, keep_owner=ns.archive)
    if not ns.quiet:
        err(f"Successfully copied {_human(total)} to {dst}\n")
    return 0


def _copy_to(ctx, ns, src: str, container: str, path: str) -> int:
    if src == "-":
        ctx.client.request("PUT", f"/containers/{q(container)}/archive",
                           {"path": path, "copyUIDGID": True if ns.archive else None},
                           sys.stdin.buffer, {"Content-Type": "application/x-tar"})
        return 0
    local = src if not ns.follow_link else os.path.realpath(src)
    try:
        lst = os.lstat(local)
    except OSError as e:
        raise CliError(f"lstat {src}: {(e.strerror or str(e)).lower()}") from None
    import stat as _st
    src_is_dir = _st.S_ISDIR(lst.st_mode)
    dst_stat = _stat(ctx, container, path)
    if dst_stat and dst_stat.get("linkTarget"):
        path = dst_stat["linkTarget"]
        dst_stat = _stat(ctx, container, path)
    contents_only = src_is_dir and (src.endswith("/.") or src == ".")
    if dst_stat is not None and _is_dir(dst_stat):
        target_dir, name = path, None
    elif dst_stat is not None:
        if src_is_dir:
            raise CliError("cannot copy a directory to a file")
        target_dir, name = os.path.dirname(path.rstrip("/")) or "/", os.path.basename(path)
        contents_only = False
    else:
        if path.endswith("/"):
            if not src_is_dir:
                raise CliError(f'destination "{container}:{path}" must be a directory')
        target_dir = os.path.dirname(path.rstrip("/")) or "/"
        name = os.path.basename(path.rstrip("/"))
        contents_only = False
    reader, counter = tar_reader(local, name, contents_only)
    try:
        ctx.client.request("PUT", f"/containers/{q(container)}/archive",
                           {"path": target_dir, "copyUIDGID": True if ns.archive else None,
                            "noOverwriteDirNonDir": True},
                           reader, {"Content-Type": "application/x-tar"})
    finally:
        reader.close()
    if not ns.quiet:
        err(f"Successfully copied {_human(counter[0])} to {container}:{path}\n")
    return 0


# -- diff / export / commit ----------------------------------------------------------------------------

def cmd_diff(ctx, ns, args) -> int:
    changes = ctx.client.get(f"/containers/{q(args[0])}/changes") or []
    letters = {0: "C", 1: "A", 2: "D"}
    for ch in changes:
        out(f"{letters.get(ch.get('Kind'), '?')} {ch.get('Path', '')}\n")
    return 0


def cmd_export(ctx, ns, args) -> int:
    if not ns.output and os.isatty(1):
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = ctx.client.request("GET", f"/containers/{q(args[0])}/export", stream=True)
    write_tar(resp, ns.output, "export container")
    return 0
    target = os.path.abspath(ns.output)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            for chunk in resp.chunks():
                f.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return 0


def cmd_commit(ctx, ns, args) -> int:
    container = args[0]
    repo = tag = ""
    if len(args) > 1:
        ref = args[1]
        slash, colon = ref.rfind("/"), ref.rfind(":")
        repo, tag = (ref[:colon], ref[colon + 1:]) if colon > slash else (ref, "")
    query = [("container", container), ("repo", repo), ("tag", tag),
             ("comment", ns.message or ""), ("author", ns.author or ""),
             ("pause", "1" if ns.pause else "0")]
    query += [("changes", c) for c in ns.change or []]
    res = ctx.client.post("/commit", query, {}) or {}
    out(res.get("Id", "") + "\n")
    return 0


# -- prune / df ----------------------------------------------------------------------------------------

def _confirm(message: str) -> bool:
    from .volume import confirm
    return confirm(message)


def _prune_containers(ctx, filters: list[str] | None) -> tuple[list[str], int]:
    f = filters_json(filters)
    r = ctx.client.post("/containers/prune", {"filters": f} if f else None) or {}
    return r.get("ContainersDeleted") or [], r.get("SpaceReclaimed") or 0


def cmd_container_prune(ctx, ns, args) -> int:
    if not ns.force and not _confirm("WARNING! This will remove all stopped containers.\n"
                                     "Are you sure you want to continue? [y/N] "):
        return 0
    deleted, space = _prune_containers(ctx, ns.filter)
    if deleted:
        out("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    out(f"Total reclaimed space: {_human(space)}\n")
    return 0


def cmd_system_prune(ctx, ns, args) -> int:
    from .client import APIError
    if not ns.force:
        lines = ["all stopped containers", "all networks not used by at least one container"]
        if ns.volumes:
            lines.append("all anonymous volumes not used by at least one container")
        lines.append("all images without at least one container associated to them"
                     if ns.all else "all dangling images")
        lines.append("unused build cache")
        msg = "WARNING! This will remove:\n" + "".join(f"  - {x}\n" for x in lines)
        if not _confirm(msg + "\nAre you sure you want to continue? [y/N] "):
            return 0
    total = 0
    deleted, space = _prune_containers(ctx, ns.filter)
    total += space
    if deleted:
        out("Deleted Containers:\n" + "".join(d + "\n" for d in deleted) + "\n")
    try:
        f = filters_json(ns.filter)
        r = ctx.client.post("/networks/prune", {"filters": f} if f else None) or {}
        if r.get("NetworksDeleted"):
            out("Deleted Networks:\n" + "".join(n + "\n" for n in r["NetworksDeleted"]) + "\n")
    except APIError as e:
        if e.status not in (404, 405):
            raise
    if ns.volumes:
        f = filters_json([x for x in ns.filter or [] if x.startswith("label")])
        r = ctx.client.post("/volumes/prune", {"filters": f} if f else None) or {}
        total += r.get("SpaceReclaimed") or 0
        if r.get("VolumesDeleted"):
            out("Deleted Volumes:\n" + "".join(n + "\n" for n in r["VolumesDeleted"]) + "\n")
    f = filters_json(ns.filter, {"dangling": "false" if ns.all else "true"})
    r = ctx.client.post("/images/prune", {"filters": f}) or {}
    total += r.get("SpaceReclaimed") or 0
    if r.get("ImagesDeleted"):
        out("Deleted Images:\n")
        for it in r["ImagesDeleted"]:
            if it.get("Untagged"):
                out(f"untagged: {it['Untagged']}\n")
            if it.get("Deleted"):
                out(f"deleted: {it['Deleted']}\n")
        out("\n")
    try:
        r = ctx.client.post("/build/prune", {"all": True if ns.all else None}) or {}
        total += r.get("SpaceReclaimed") or 0
    except APIError as e:
        if e.status not in (404, 405):
            raise
    out(f"Total reclaimed space: {_human(total)}\n")
    return 0


def cmd_system_df(ctx, ns, args) -> int:
    df = ctx.client.get("/system/df") or {}
    images = df.get("Images") or []
    conts = df.get("Containers") or []
    vols = df.get("Volumes") or []
    if ns.verbose:
        return _df_verbose(images, conts, vols)
    img_size = df.get("LayersSize") or 0
    img_active = [i for i in images if (i.get("Containers") or 0) > 0]
    img_recl = img_size - sum(i.get("Size", 0) - max(i.get("SharedSize", 0), 0) for i in img_active)
    c_size = sum(c.get("SizeRw") or 0 for c in conts)
    c_active = [c for c in conts if c.get("State") in ("running", "paused", "restarting")]
    c_recl = c_size - sum(c.get("SizeRw") or 0 for c in c_active)
    v_size = sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in vols)
    v_active = [v for v in vols if (v.get("UsageData") or {}).get("RefCount", 0) > 0]
    v_recl = v_size - sum(max((v.get("UsageData") or {}).get("Size", 0), 0) for v in v_active)

    def pct(r: int, t: int) -> str:
        return f"{_human(r)} ({int(r * 100 / t) if t else 0}%)"

    rows = [("Images", len(images), len(img_active), _human(img_size), pct(max(img_recl, 0), img_size)),
            ("Containers", len(conts), len(c_active), _human(c_size), pct(c_recl, c_size)),
            ("Local Volumes", len(vols), len(v_active), _human(v_size), pct(v_recl, v_size)),
            ("Build Cache", 0, 0, "0B", "0B")]
    from .format import tabwrite
    text = "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n" + "".join(
        "\t".join(str(x) for x in r) + "\n" for r in rows)
    out(tabwrite(text))
    return 0


def _df_verbose(images: list, conts: list, vols: list) -> int:
    from .format import tabwrite, trunc_id
    out("Images space usage:\n\n")
    text = "REPOSITORY\tTAG\tIMAGE ID\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n"
    for i in images:
        for ref in i.get("RepoTags") or ["<none>:<none>"]:
            repo, _, tag = ref.rpartition(":")
            shared = max(i.get("SharedSize", 0), 0)
            text += (f"{repo}\t{tag}\t{trunc_id(i.get('Id', ''))}\t{_human(i.get('Size', 0))}\t"
                     f"{_human(shared)}\t{_human(i.get('Size', 0) - shared)}\t{i.get('Containers', 0)}\n")
    out(tabwrite(text) + "\nContainers space usage:\n\n")
    text = "CONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tNAMES\n"
    for c in conts:
        nvol = sum(1 for m in c.get("Mounts") or [] if m.get("Type") == "volume")
        name = (c.get("Names") or ["/"])[0].lstrip("/")
        text += (f"{trunc_id(c.get('Id', ''))}\t{c.get('Image', '')}\t\"{c.get('Command', '')[:20]}\"\t"
                 f"{nvol}\t{_human(c.get('SizeRw') or 0)}\t{name}\n")
    out(tabwrite(text) + "\nLocal Volumes space usage:\n\n")
    text = "VOLUME NAME\tLINKS\tSIZE\n"
    for v in vols:
        u = v.get("UsageData") or {}
        text += f"{v.get('Name', '')}\t{u.get('RefCount', 0)}\t{_human(max(u.get('Size', 0), 0))}\n"
    out(tabwrite(text) + "\nBuild cache usage: 0B\n")
    return 0


# -- the local side of cp: extract what the daemon sends, tar what we send -------------------------

class _ChunkReader:
    """A file object over an iterator of byte chunks, counting what passes."""

    def __init__(self, chunks) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self.total = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            try:
                chunk = next(self._it)
            except StopIteration:
                break
            self.total += len(chunk)
            self._buf += chunk
        if n < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:n], self._buf[n:]
        return data


def _merge(src: str, dst: str) -> None:
    """Move `src` to `dst`; directories merge, anything else replaces."""
    import shutil
    if os.path.isdir(src) and not os.path.islink(src) and os.path.isdir(dst) and not os.path.islink(dst):
        for n in os.listdir(src):
            _merge(os.path.join(src, n), os.path.join(dst, n))
        shutil.copystat(src, dst, follow_symlinks=False)
        return
    if os.path.lexists(dst):
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        else:
            os.unlink(dst)
    os.rename(src, dst)


def extract_to(chunks, st: dict, src_path: str, dst: str, keep_owner: bool) -> int:
    """Place the tar from `GET archive` at `dst` with docker cp's rules; returns its size."""
    import shutil
    import tempfile
    from ..archive import extract_layer
    from ..errors import SampanError
    src_is_dir = _is_dir(st)
    name = st.get("name") or os.path.basename(src_path.rstrip("/")) or "."
    contents = src_path.endswith("/.") or name == "."
    if os.path.isdir(dst):
        parent, final = dst, (None if contents else os.path.join(dst, name))
    elif os.path.lexists(dst):
        if src_is_dir:
            raise CliError("cannot copy a directory to a file")
        parent, final = os.path.dirname(os.path.abspath(dst)), dst
    else:
        if dst.endswith("/") and not src_is_dir:
            raise CliError(f"no such directory: {dst}")
        parent, final = os.path.dirname(os.path.abspath(dst.rstrip("/"))), dst.rstrip("/")
        if not os.path.isdir(parent):
            raise CliError(f"destination directory {parent} does not exist")
    tmp = tempfile.mkdtemp(dir=parent, prefix=".sampan-cp-")
    reader = _ChunkReader(chunks)
    try:
        try:
            extract_layer(reader, tmp, whiteouts="apply", same_owner=keep_owner)
        except SampanError as e:
            raise CliError(f"Error: {e}") from None
        top = tmp if contents else os.path.join(tmp, name)
        if final is None:
            for n in os.listdir(top):
                _merge(os.path.join(top, n), os.path.join(dst, n))
        elif contents:
            os.makedirs(final, exist_ok=True)
            _merge(top, final)
        else:
            _merge(top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return reader.total


def tar_reader(local: str, name: str | None, contents_only: bool):
    """A pipe's read end streaming a tar of `local` (made by a thread), and a byte counter."""
    import tarfile
    import threading
    r, w = os.pipe()
    counter = [0]

    class _Counting:
        def __init__(self, f) -> None:
            self.f = f

        def write(self, b) -> int:
            counter[0] += len(b)
            return self.f.write(b)

    def produce() -> None:
        try:
            with os.fdopen(w, "wb") as f, \
                    tarfile.open(fileobj=_Counting(f), mode="w|", format=tarfile.PAX_FORMAT) as tar:
                if contents_only:
                    for n in sorted(os.listdir(local)):
                        tar.add(os.path.join(local, n), arcname=n)
                else:
                    tar.add(local, arcname=name or os.path.basename(local.rstrip("/")) or ".")
        except OSError:
            pass  # the reader went away (the daemon refused): the request reports it

    threading.Thread(target=produce, daemon=True).start()
    return os.fdopen(r, "rb"), counter


SPECS = {
    "cp": Spec(cmd_cp, "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tsampan cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
               "Copy files/folders between a container and the local filesystem",
               [Opt("-a --archive", BOOL, "Archive mode (copy all uid/gid information)"),
                Opt("-L --follow-link", BOOL, "Always follow symbol link in SRC_PATH"),
                Opt("-q --quiet", BOOL, "Suppress progress output during copy. Progress output is "
                    "automatically suppressed if no terminal is attached")],
               min_args=2, max_args=2),
    "diff": Spec(cmd_diff, "CONTAINER", "Inspect changes to files or directories on a container's filesystem",
                 [], min_args=1, max_args=1),
    "export": Spec(cmd_export, "[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive",
                   [Opt("-o --output", STR, "Write to a file, instead of STDOUT")],
                   min_args=1, max_args=1),
    "commit": Spec(cmd_commit, "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
                   "Create a new image from a container's changes",
                   [Opt("-a --author", STR, 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")'),
                    Opt("-c --change", LIST, "Apply Dockerfile instruction to the created image"),
                    Opt("-m --message", STR, "Commit message"),
                    Opt("-p --pause", BOOL, "Pause container during commit", default=True)],
                   min_args=1, max_args=2),
    "container prune": Spec(cmd_container_prune, "[OPTIONS]", "Remove all stopped containers",
                            [Opt("--filter", LIST, "Provide filter values (e.g. \"until=<timestamp>\")", metavar="filter"),
                             Opt("-f --force", BOOL, "Do not prompt for confirmation")], max_args=0),
    "system df": Spec(cmd_system_df, "[OPTIONS]", "Show sampan disk usage",
                      [Opt("--format", STR, "Format output using a custom template"),
                       Opt("-v --verbose", BOOL, "Show detailed information on space usage")],
                      max_args=0),
    "system prune": Spec(cmd_system_prune, "[OPTIONS]", "Remove unused data",
                         [Opt("-a --all", BOOL, "Remove all unused images not just dangling ones"),
                          Opt("--filter", LIST, "Provide filter values (e.g. \"label=<key>=<value>\")", metavar="filter"),
                          Opt("-f --force", BOOL, "Do not prompt for confirmation"),
                          Opt("--volumes", BOOL, "Prune anonymous volumes")], max_args=0),
}
