"""COPY and ADD as build steps: sources resolved and hashed by copy.py, the layer made from its
tar without any container. The cache key is the content hash of what is copied (plus the
destination and flags), computed before anything is written, so a cached step costs one hash.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter
from . import stage as S

_COPY_FLAGS = {"from", "chown", "chmod", "link", "parents", "exclude"}
# (--checksum and --keep-git-dir are ADD's; --link is accepted: layers here are always
# independent of what is below them in content, only their parents differ)
_ADD_FLAGS = {"chown", "chmod", "link", "checksum", "keep-git-dir", "exclude", "from"}


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _heredoc_name(word: str) -> str | None:
    if not word.startswith("<<"):
        return None
    w = word[2:].lstrip("-")
    if len(w) >= 2 and w[0] == w[-1] and w[0] in "'\"":
        w = w[1:-1]
    return w or None


def _chmod(spec: str | None) -> int | None:
    if not spec:
        return None
    try:
        mode = int(spec, 8)
    except ValueError:
        raise InvalidParameter(f"invalid chmod parameter: {spec}") from None
    if not 0 <= mode <= 0o7777:
        raise InvalidParameter(f"invalid chmod parameter: {spec}")
    return mode


def _kind(src_root: Path, sources: list[str]) -> str:
    """`file:`, `dir:` or `multi:`, as the classic builder names a COPY's sources in history."""
    if len(sources) != 1 or any(c in sources[0] for c in "*?["):
        return "multi"
    try:
        st = os.lstat(os.path.join(src_root, sources[0].lstrip("/")))
    except OSError:
        return "file"
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


async def copy_step(b: Any, st: S.StageState, ins: Any) -> None:
    from .builder import _shell_of, _thread
    from .dockerfile import expand

    cmd = ins.cmd
    add = cmd == "ADD"
    for f in ins.flags:
        if f not in (_ADD_FLAGS if add else _COPY_FLAGS):
            raise InvalidParameter(f"Unknown flag: {f}")
    env = st.expansion_env(b.opts.build_args)
    esc = b.df.escape
    words = [expand(w, env, esc) for w in ins.args]  # each written word stays one word
    if len(words) < 2:
        raise InvalidParameter(f"{cmd} requires at least two arguments, but only one was provided. "
                               "Destination could not be determined.")
    sources, dest = words[:-1], words[-1]
    chmod = _chmod(ins.flags.get("chmod"))
    chown = ins.flags.get("chown") or None
    frm = ins.flags.get("from") or ""
    parents = ins.flags.get("parents", "false").lower() in ("", "true")
    exclude = [e for e in (ins.flags.get("exclude") or "").split("\n") if e]
    workdir = st.config.get("WorkingDir") or "/"
    scratch = b.workdir / f"step-{st.index}-{st.step}"
    scratch.mkdir(parents=True, exist_ok=True)
    follow = False
    docs = {h.name: h for h in getattr(ins, "heredocs", None) or []}
    plan = None
    try:
        async with contextlib.AsyncExitStack() as stack:
            memo_key = None
            if docs and any(_heredoc_name(s) for s in sources):
                src_root = scratch / "heredocs"
                src_root.mkdir()
                mapped = []
                for s in sources:
                    name = _heredoc_name(s)
                    if name is None or name not in docs or "/" in name or name in (".", ".."):
                        raise InvalidParameter(f"{cmd}: cannot mix here-documents with other sources ({s})")
                    (src_root / name).write_text(docs[name].content)
                    mapped.append(name)
                sources = mapped
                use_add = False
            elif any(_is_url(s) for s in sources):
                if not add:
                    raise InvalidParameter("source can't be a URL for COPY")
                # plan_copy downloads them (their content is part of the key): no memo
                if all(_is_url(s) for s in sources):
                    src_root = scratch / "urls"
                    src_root.mkdir()
                else:
                    src_root = (await b.context()).root
                use_add = add
            elif frm:
                from_id = await _from_image(b, st, frm)
                src_root = await stack.enter_async_context(b.view(from_id))
                follow = True
                use_add = add
            else:
                src_root = None  # the context: unpacked only if the memo cannot answer
                use_add = add
                memo_key = b.memo_key("copy", cmd, tuple(sources), dest, workdir, use_add, chmod,
                                      parents, tuple(exclude))
            from .copy import plan_copy, resolve_chown, write_copy_layer
            plan_kw = dict(workdir=workdir, add=use_add, follow_from_image=follow, chmod=chmod,
                           tmp_dir=scratch, checksum=ins.flags.get("checksum") or None,
                           parents=parents, exclude=exclude)
            known = b.memo.get(memo_key)
            if known is None:
                if src_root is None:
                    src_root = (await b.context()).root
                plan = await _thread(functools.partial(plan_copy, src_root, sources, dest, **plan_kw))
                known = (await _thread(plan.cache_key), _kind(src_root, sources))
                b.memo.put(memo_key, known)
            key, kind = known
            hexkey = str(key).split(":")[-1]
            # dockerd writes a --chown flag glued to the hash (`--chown=a:bdir:<hash>`): kept
            flag = f"--chown={chown}" if chown else ""
            created_by = S.nop_created_by_string(_shell_of(st.image),
                                                 f"{cmd} {flag}{kind}:{hexkey} in {dest} ")
            signature = f"copy:{cmd}:{key}:{dest}:{workdir}:{chown}:{chmod}:{frm}"
            if await b._from_cache(st, signature, created_by, st.image):
                return
            if plan is None:
                src_root = (await b.context()).root
                plan = await _thread(functools.partial(plan_copy, src_root, sources, dest, **plan_kw))
            tar = scratch / "layer.tar"
            async with b.view(st.image_id) as root:
                owner = await _thread(resolve_chown, chown, root) if chown else None
                res = await _thread(write_copy_layer, plan, tar, chown=owner, chmod=chmod,
                                    dest_rootfs=root, add=use_add)
            layer = await b.add_layer_tar(st, Path(res.tar_path))
        st.image_id = await b._commit(st, st.image, created_by, signature, layer)
    finally:
        import shutil
        if plan is not None and hasattr(plan, "cleanup"):
            plan.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


async def _from_image(b: Any, st: S.StageState, frm: str) -> str:
    """COPY --from's source: an earlier stage (by name or index), else an image."""
    ref = None
    for s in b.df.stages:
        if s.index < st.index and (s.name == frm.lower() or str(s.index) == frm):
            ref = s.index
    if ref is not None:
        return b.stages[ref].image_id  # built already: run_stages waited for it
    return await b._base_image(frm, None, st.out)
