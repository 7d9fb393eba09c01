"""The classic builder: a Dockerfile's stages run step by step into images.

Every instruction makes a new image from the one before, as dockerd's classic builder does:
RUN is a real container whose changes are committed as a layer, COPY/ADD make their layer
straight from the context (copy.py), WORKDIR a layer only when it creates the directory, and
the other instructions a config-only image (history `empty_layer`). Each step is looked up in
the build cache first (cache.py), keyed by its parent image and what the step does.

Only the stages the target needs are built. A failed build removes what it made that nothing
uses (so no dangling images stay behind) and, as Docker, its containers unless --rm=false (the
failing one is kept unless --force-rm).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from .. import reference as refs
from ..errors import InvalidParameter, NotFound, SampanError
from ..images.timefmt import rfc3339_nano
from . import stage as S
from .cache import BuildCache
from .progress import Progress, short_id
from .rootfs import image_view, write_mkdir_layer
from .memo import memo, pad_tar as _pad_tar
from .run import StepFailed, container_body, host_config, remove_quietly, run_container
from .run import run_argv as _run_argv

log = logging.getLogger("sampan.build")


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    target: str = ""
    nocache: bool = False
    pull: bool = False
    rm: bool = True
    forcerm: bool = False
    quiet: bool = False
    network_mode: str = ""
    platform: str = ""
    cache_from: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    memory: int = 0
    memswap: int = 0
    cpushares: int = 0
    cpusetcpus: str = ""
    cpuperiod: int = 0
    cpuquota: int = 0
    shmsize: int = 0
    remote: str = ""
    registry_auth: dict[str, Any] = field(default_factory=dict)   # X-Registry-Config


async def _thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args, **kw))


def _platform(opts: BuildOptions) -> tuple[str, str, str]:
    from ..images.service import parse_platform
    return parse_platform(opts.platform or None)


class Builder:
    def __init__(self, engine: Any, opts: BuildOptions, progress: Progress,
                 cache: BuildCache | None = None) -> None:
        self.engine = engine
        self.images = engine.images
        self.opts = opts
        self.out = progress
        self.cache = cache or BuildCache(engine.db, self._image_exists)
        self.workdir = Path(tempfile.mkdtemp(prefix="build-", dir=engine.config.tmp_dir))
        self.made_images: list[str] = []         # images this build registered, in order
        self.containers: list[str] = []          # build containers not yet removed
        self.used_args: set[str] = set()
        self.stages: dict[int, S.StageState] = {}
        self.df: Any = None
        self.meta: dict[str, str | None] = {}
        self._step = 0
        self._failed_container = ""
        self._total = 0
        self._ctx: Any = None
        self._ctx_lock = asyncio.Lock()
        self._src: Path | str | None = None
        self.digest = ""
        self.memo = memo(engine)

    def _image_exists(self, image_id: str) -> bool:
        return self.images.exists(image_id) if refs.is_full_id(image_id) else False

    # -- the whole build ----------------------------------------------------------------------
    async def run(self, context_tar: Path | str | None, digest: str = "") -> str:
        """Build from a context tar (or `opts.remote`); returns the image ID.

        `digest` (sha256 of the tar as received) lets a rebuild of a byte-identical context
        skip unpacking it: the Dockerfile and each COPY's content key are remembered per
        digest, and the context is only unpacked when a step actually has to run.
        """
        t0 = time.monotonic()
        self._src = context_tar
        self.digest = "" if self.opts.remote else digest
        try:
            for t in self.opts.tags:
                refs.parse(t)  # a bad tag fails before any work
            text, filename = await self._dockerfile()
            t1 = time.monotonic()
            from .dockerfile import parse
            self.df = parse(text, filename)
            image_id = await self._build()
            log.debug("build %s: context %.3f s, steps %.3f s (context unpacked: %s)",
                      short_id(image_id), t1 - t0, time.monotonic() - t1, self._ctx is not None)
        except asyncio.CancelledError:
            log.debug("build cancelled: cleaning up %d container(s)", len(self.containers))
            # shielded: a second cancel (the handler itself going away) must not cut it short
            await asyncio.shield(self._failed(cancelled=True))
            raise
        except BaseException:
            await asyncio.shield(self._failed())
            raise
        finally:
            self._cleanup_workdir()
        return image_id

    def memo_key(self, *parts: Any) -> tuple | None:
        """A key for facts that depend only on the context's bytes (and the Dockerfile name,
        which picks the ignore file); None when the context has no digest."""
        if not self.digest:
            return None
        return (self.digest, self.opts.dockerfile or "Dockerfile", *parts)

    async def context(self) -> Any:
        """The unpacked context, unpacked on first use."""
        if self._ctx is None:
            async with self._ctx_lock:
                if self._ctx is None:
                    await self._open_context(self._src)
        return self._ctx

    async def _dockerfile(self) -> tuple[str, str]:
        key = self.memo_key("dockerfile")
        got = self.memo.get(key)
        if got is None:
            ctx = await self.context()
            got = await _thread(ctx.read_dockerfile, self.opts.dockerfile or "Dockerfile")
            self.memo.put(key, got)
        return got

    async def _open_context(self, context_tar: Path | str | None) -> Any:
        from .context import BuildContext
        from .remote import clone, is_git_url
        src = context_tar
        if self.opts.remote and is_git_url(self.opts.remote):
            d = self.workdir / "git"
            d.mkdir(parents=True, exist_ok=True)
            root = await _thread(clone, self.opts.remote, d)
            self._ctx = await _thread(BuildContext.from_dir, root, self.workdir / "context",
                                      dockerfile=self.opts.dockerfile or "Dockerfile")
            return self._ctx
        if self.opts.remote:
            src = await self._fetch_remote(self.opts.remote)
        if src is None:
            raise InvalidParameter("no build context: send a tar of it as the request body")
        if isinstance(src, (str, Path)):
            await _thread(_pad_tar, Path(src))
        self._ctx = await _thread(BuildContext.from_tar, src, self.workdir / "context",
                                  dockerfile=self.opts.dockerfile or "Dockerfile")
        return self._ctx

    async def _fetch_remote(self, url: str) -> Path:
        if not url.startswith(("http://", "https://")):
            raise InvalidParameter(f"unsupported remote context {url!r}: a git URL or an http(s) "
                                   "tarball is")
        from .copy import fetch_url
        d = self.workdir / "remote"
        d.mkdir(parents=True, exist_ok=True)
        return await _thread(fetch_url, url, d, None)

    async def _build(self) -> str:
        df = self.df
        if not df.stages:
            raise InvalidParameter("the Dockerfile has no FROM instruction")
        from .dockerfile import expand, parse_kv
        ba = self.opts.build_args
        # ARGs before the first FROM: usable in FROM lines, and as defaults for `ARG x` later.
        for ins in df.meta_args:
            for raw, default in parse_kv(list(ins.args), "ARG"):
                env = {k: v for k, v in self.meta.items() if v is not None}
                name = expand(raw, env, df.escape)
                value = expand(default, env, df.escape) if default is not None else None
                if ba.get(name) is not None:
                    value = ba[name]
                    self.used_args.add(name)
                self.meta[name] = value
        target = self._target_index()
        needed = self._needed(target)
        self._total = len(df.meta_args) + sum(1 + len(df.stages[i].instructions) for i in needed)
        if self.opts.labels:
            self._total += 1
        for ins in df.meta_args:
            self._step += 1
            self.out.step(self._step, self._total, ins.original)
        await self._build_stages(sorted(needed), target)
        st = self.stages[target]
        if not st.image_id:
            raise InvalidParameter("No image was generated. Is your Dockerfile empty?")
        image_id = st.image_id
        tags = await self._tag(image_id)
        unused = sorted(k for k in ba if k not in self.used_args and k not in S.PROXY_ARGS)
        if unused:
            self.out.stream(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        self.out.aux(image_id)
        self.out.final(image_id, tags)
        return image_id

    def _target_index(self) -> int:
        if not self.opts.target:
            return len(self.df.stages) - 1
        for s in self.df.stages:
            if s.name == self.opts.target.lower():
                return s.index
        raise InvalidParameter(f"failed to reach build target {self.opts.target} in Dockerfile")

    def _stage_ref(self, word: str, before: int) -> int | None:
        """A stage named (or numbered) `word` defined before stage `before`, else None."""
        w = word.lower()
        for s in self.df.stages[:before]:
            if s.name == w or (s.name is None and w == str(s.index)) or w == str(s.index):
                return s.index
        return None

    def _base_word(self, s: Any) -> str:
        from .dockerfile import expand
        env = {k: v for k, v in self.meta.items() if v is not None}
        for k, v in self.opts.build_args.items():
            if k in self.meta and v is not None:
                env[k] = v
        base = expand(s.base, env, self.df.escape).strip()
        if not base:
            raise InvalidParameter(f"base name ({s.base}) should not be blank")
        return base

    def _deps(self, i: int) -> set[int]:
        """The earlier stages stage `i` uses, through FROM and COPY --from."""
        s = self.df.stages[i]
        out = set()
        ref = self._stage_ref(self._base_word(s), i)
        if ref is not None:
            out.add(ref)
        for ins in s.instructions:
            frm = ins.flags.get("from") if ins.cmd in ("COPY", "ADD") else None
            if frm:
                ref = self._stage_ref(frm, i)
                if ref is not None:
                    out.add(ref)
        return out

    def _needed(self, target: int) -> set[int]:
        """The target and the stages it uses: the rest is skipped."""
        need: set[int] = set()
        todo = [target]
        while todo:
            i = todo.pop()
            if i not in need:
                need.add(i)
                todo.extend(self._deps(i))
        return need

    async def _build_stages(self, order: list[int], target: int) -> None:
        """Independent stages concurrently, their output in Dockerfile order (schedule.py)."""
        from .schedule import OrderedOutput, run_stages
        ordered = OrderedOutput(self.out.forward, order)
        first = self._step
        for i in order:
            st = S.StageState(index=i, name=self.df.stages[i].name)
            st.out = Progress(functools.partial(ordered.emit, i), quiet=self.out.quiet)
            st.step = first
            first += 1 + len(self.df.stages[i].instructions) + (1 if i == target and self.opts.labels else 0)
            self.stages[i] = st

        async def build(i: int) -> None:
            await self._build_stage(self.df.stages[i], label_step=(i == target))
            ordered.finish(i)

        try:
            await run_stages(order, {i: self._deps(i) for i in order}, build)
        finally:
            ordered.flush()

    def _next_step(self, st: S.StageState, original: str) -> None:
        st.step += 1
        st.out.step(st.step, self._total, original)

    # -- one stage ------------------------------------------------------------------------------
    async def _build_stage(self, s: Any, label_step: bool) -> None:
        from .dockerfile import parse_line
        st = self.stages[s.index]
        self._next_step(st, _from_line(s))
        await self._from(st, s)
        triggers = list(st.config.get("OnBuild") or [])
        if triggers:
            # The base's ONBUILD triggers run first; the new image does not inherit them.
            st.config["OnBuild"] = None
            st.out.stream(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for t in triggers:
                # parsed afresh, as dockerd does: the default escape, not this Dockerfile's
                await self._dispatch(st, parse_line(t))
        for ins in s.instructions:
            self._next_step(st, ins.original)
            await self._dispatch(st, ins)
            st.out.image(st.image_id)
        if label_step and self.opts.labels:
            # dockerd appends the --label values as one more LABEL step of the target stage
            items = sorted(self.opts.labels.items())
            self._next_step(st, "LABEL " + " ".join(f"{k}={v}" for k, v in items))
            # as dockerd's NodeFromLabels: values single-quoted, so neither variables nor the
            # Dockerfile's escape character touch them
            line = "LABEL " + " ".join(f"{json.dumps(k)}='{v}'" for k, v in items)
            await self._dispatch(st, parse_line(line))
            st.out.image(st.image_id)
        st.done = True

    async def _from(self, st: S.StageState, s: Any) -> None:
        base = self._base_word(s)
        ref = self._stage_ref(base, s.index)
        if ref is not None:
            src = self.stages[ref]
            st.image_id = src.image_id
            st.image = copy.deepcopy(src.image)
        elif base.lower() == "scratch":
            st.image = S.blank_image(_platform(self.opts))
        else:
            image_id = await self._base_image(base, s.platform, st.out)
            st.image_id = image_id
            st.image = copy.deepcopy(self.images.load_config(image_id))
        st.image.setdefault("config", {})
        st.image.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        S.set_default_path(st.image)
        st.out.image(st.image_id)

    async def _base_image(self, base: str, platform: str | None, out: Progress) -> str:
        if not self.opts.pull:
            with contextlib.suppress(NotFound):
                return self.images.lookup_id(base)
        if refs.is_full_id(base) or refs.is_id_prefix(base) and not _looks_named(base):
            return self.images.lookup_id(base)
        return await self._pull(base, platform, out)

    async def _pull(self, base: str, platform: str | None, out: Progress) -> str:
        from ..distribution.progress import Reporter
        engine = self.engine
        svc = getattr(engine, "distribution", None)
        if svc is None:
            from ..distribution.service import new_service
            svc = engine.distribution = new_service(engine)
        creds = self._creds_for(base)
        try:
            plan = await _thread(svc.prepare_pull, base, None, self.opts.platform or platform or None, creds)
        except SampanError:
            if not self.opts.pull:
                raise
            return self.images.lookup_id(base)  # --pull of a local-only image: use it
        return await _thread(svc.run_pull, plan, Reporter(out.status))

    def _creds_for(self, base: str) -> Any:
        from ..distribution.auth import Credentials, registry_key
        domain = refs.parse(base).domain
        for server, a in (self.opts.registry_auth or {}).items():
            if isinstance(a, dict) and registry_key(server) == registry_key(domain):
                return Credentials(str(a.get("username") or ""), str(a.get("password") or ""),
                                   str(a.get("identitytoken") or ""), str(a.get("registrytoken") or ""))
        return Credentials()

    # -- instructions -------------------------------------------------------------------------
    async def _dispatch(self, st: S.StageState, ins: Any) -> None:
        cmd = ins.cmd
        if cmd == "ARG":
            from .dockerfile import parse_kv
            for name, _ in parse_kv(list(ins.args), "ARG"):
                self.used_args.add(name)
        if cmd in S.METADATA:
            img, comment = S.apply_metadata(ins, st, self.opts.build_args, self.df.escape, self.meta)
            if cmd == "CMD":
                st.cmd_set = True
            # ENTRYPOINT's result also depends on whether this stage set CMD (not in the image)
            extra = "|cmd-set" if cmd == "ENTRYPOINT" and st.cmd_set else ""
            await self._step_image(st, img, S.nop_created_by(_shell_of(img), comment),
                                   "nop:" + comment + extra)
        elif cmd == "RUN":
            await self._run(st, ins)
        elif cmd in ("COPY", "ADD"):
            from .steps import copy_step
            await copy_step(self, st, ins)
        elif cmd == "WORKDIR":
            await self._workdir(st, ins)
        else:
            raise InvalidParameter(f"Dockerfile:{ins.line}: unknown instruction: {cmd}")

    async def _step_image(self, st: S.StageState, img: dict[str, Any], created_by: str,
                          signature: str, layer: Any = None) -> None:
        """Make (or take from the cache) the image a step produces from `img`."""
        if await self._from_cache(st, signature, created_by, img):
            if layer is not None:
                self.images.release_layers([layer.chain_id])
            return
        new_id = await self._commit(st, img, created_by, signature, layer)
        st.image_id = new_id

    async def _from_cache(self, st: S.StageState, signature: str, created_by: str = "",
                          result: dict[str, Any] | None = None) -> bool:
        """Take the step's image from the cache (or a --cache-from image) if it has one."""
        if self.opts.nocache:
            return False
        hit = self.cache.get(st.image_id, signature)
        if hit is None and created_by and self.opts.cache_from:
            from .cachefrom import lookup
            hit = await _thread(lookup, self.images, self.opts.cache_from, st.image_id,
                                st.image if st.image_id else None, created_by,
                                result if result is not None else st.image)
            if hit is not None:
                self.cache.put(st.image_id, signature, hit)
        if hit is None:
            return False
        st.out.stream(" ---> Using cache\n")
        st.image_id = hit
        st.image = copy.deepcopy(self.images.load_config(hit))
        return True

    async def _commit(self, st: S.StageState, img: dict[str, Any], created_by: str,
                      signature: str, layer: Any) -> str:
        img = copy.deepcopy(img)
        created = rfc3339_nano(time.time_ns())
        entry: dict[str, Any] = {"created": created}
        if created_by:
            entry["created_by"] = created_by
        rootfs = img.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        rootfs["diff_ids"] = list(rootfs.get("diff_ids") or [])
        if layer is None:
            entry["empty_layer"] = True
        else:
            rootfs["diff_ids"].append(layer.diff_id)
        img["history"] = list(img.get("history") or []) + [entry]
        img["created"] = created
        img["docker_version"] = __version__
        img.pop("container", None)
        img.pop("container_config", None)
        img["config"] = dict(img.get("config") or {})
        img["config"]["Image"] = st.image_id
        try:
            new_id = await _thread(self.images.create_image, img, st.image_id or "")
        except BaseException:
            if layer is not None:
                self.images.release_layers([layer.chain_id])
            raise
        self.made_images.append(new_id)
        if signature:
            self.cache.put(st.image_id, signature, new_id)
        st.image = img
        return new_id

    def _parent_chain(self, st: S.StageState) -> str | None:
        if not st.image_id:
            return None
        chains = self.images.record(st.image_id).chain_ids
        return chains[-1] if chains else None

    async def add_layer_tar(self, st: S.StageState, tar_path: Path) -> Any:
        parent = self._parent_chain(st)

        def add() -> Any:
            with open(tar_path, "rb") as f:
                return self.images.add_layer(parent, f)
        return await _thread(add)

    @contextlib.asynccontextmanager
    async def view(self, image_id: str):
        """A read-only view of an image's filesystem (see rootfs.image_view)."""
        dirs = self.images.record(image_id).layer_dirs if image_id else []
        cm = image_view(dirs, self.workdir / "views", self.engine.storage_driver)
        root = await _thread(cm.__enter__)
        try:
            yield root
        finally:
            await _thread(cm.__exit__, None, None, None)

    async def _run(self, st: S.StageState, ins: Any) -> None:
        argv = _run_argv(ins, st.shell)
        arg_env = st.run_args(self.opts.build_args)
        self.used_args.update(k for k, _ in arg_env)
        created_by = S.run_created_by(argv, arg_env)
        if await self._from_cache(st, "run:" + created_by, created_by, st.image):
            return
        if not st.image_id:
            raise InvalidParameter("cannot run a command in an empty image (FROM scratch): "
                                   "add files with COPY first")
        env = st.env_list() + [f"{k}={v}" for k, v in arg_env]
        env += [f"{k}={v}" for k, v in self.opts.build_args.items()
                if k in S.PROXY_ARGS and v is not None]
        body = container_body(st.image_id, st.config, argv, env, host_config(self.opts))
        cid, code = await run_container(
            self.engine, body,
            on_created=lambda c: st.out.stream(f" ---> Running in {short_id(c)}\n"),
            on_output=st.out.output, track=self.containers.append)
        if code != 0:
            self._failed_container = cid
            raise StepFailed(f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code)
        c = self.engine.containers.get(cid)
        layer = await _thread(self.engine.containerfs._make_layer, c, self._parent_chain(st))
        new_id = await self._commit(st, st.image, created_by, "run:" + created_by, layer)
        st.image_id = new_id
        if self.opts.rm or self.opts.forcerm:
            if await remove_quietly(self.engine, cid):
                self.containers.remove(cid)
                st.out.stream(f" ---> Removed intermediate container {short_id(cid)}\n")

    async def _workdir(self, st: S.StageState, ins: Any) -> None:
        from .dockerfile import expand
        env = st.expansion_env(self.opts.build_args)
        path = S.workdir(st.config.get("WorkingDir") or "", expand(" ".join(ins.args).strip(), env,
                                                                    self.df.escape))
        img = copy.deepcopy(st.image)
        img.setdefault("config", {})["WorkingDir"] = path
        comment = "WORKDIR " + path
        signature = "workdir:" + path
        created_by = S.nop_created_by_string(_shell_of(img), comment)
        if await self._from_cache(st, signature, created_by, img):
            return
        tar = self.workdir / f"workdir-{st.index}-{st.step}.tar"
        layer = None
        async with self.view(st.image_id) as root:
            made = await _thread(write_mkdir_layer, root, path, tar)
        if made:
            try:
                layer = await self.add_layer_tar(st, tar)
            finally:
                tar.unlink(missing_ok=True)
        st.image_id = await self._commit(st, img, created_by, signature, layer)

    async def _tag(self, image_id: str) -> list[str]:
        out = []
        for t in self.opts.tags:
            r = refs.parse(t)
            if r.digest is not None:
                raise InvalidParameter(f"refusing to create a tag with a digest reference: {t}")
            full = r.with_default_tag()
            name = await _thread(self.images.tag, image_id, full.name, full.tag)
            events = getattr(self.engine, "events", None)
            if events is not None:
                with contextlib.suppress(Exception):
                    events.image(image_id, "tag", name)
            out.append(name)
        return out

    # -- failure and cleanup ----------------------------------------------------------------------
    async def _failed(self, cancelled: bool = False) -> None:
        """Containers as Docker leaves them; images this build made that nothing uses go.
        A cancelled build (the client went away) leaves no container either."""
        keep = self.opts.rm and not self.opts.forcerm and not cancelled
        for cid in list(self.containers):
            if not self.opts.rm and not self.opts.forcerm and not cancelled:
                continue
            if keep and cid == self._failed_container:
                continue  # the failing step's container, for inspection (Docker's default)
            if await remove_quietly(self.engine, cid):
                self.containers.remove(cid)
        removed = []
        for image_id in reversed(self.made_images):
            try:
                rec = self.images.record(image_id)
            except NotFound:
                continue
            if rec.repo_tags or self.images._children(image_id) or self.engine.containers.users_of_image(image_id):
                continue
            with contextlib.suppress(SampanError):
                await _thread(self.images.remove, image_id, False, True)
                removed.append(image_id)
        if removed:
            self.cache.forget_images(removed)

    def _cleanup_workdir(self) -> None:
        if self._ctx is not None:
            with contextlib.suppress(Exception):
                self._ctx.cleanup()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _looks_named(ref: str) -> bool:
    return "/" in ref or ":" in ref


def _shell_of(img: dict[str, Any]) -> list[str]:
    return list((img.get("config") or {}).get("Shell") or S.DEFAULT_SHELL)


def _from_line(s: Any) -> str:
    if getattr(s, "original", ""):
        return s.original
    line = f"FROM {s.base}"
    if s.platform:
        line = f"FROM --platform={s.platform} {s.base}"
    if s.name:
        line += f" AS {s.name}"
    return line


__all__ = ["Builder", "BuildOptions", "StepFailed"]
