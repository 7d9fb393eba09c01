"""images, import, load, save, tag, rmi, image prune, history."""

from __future__ import annotations

import os
import sys

from .args import BOOL, LIST, STR, Opt, UsageError
from .common import CliError, Spec, err, filters_json, out, qimg, write_tar


def show_messages(resp, quiet: bool = False, to_err: bool = False) -> None:
    """Print a JSON message stream (jsonmessage): `stream` text, `id: status` lines; an
    `error` message ends the command with that message."""
    write = err if to_err else out
    for msg in resp.json_stream():
        if not isinstance(msg, dict):
            continue
        if msg.get("error") or msg.get("errorDetail"):
            detail = msg.get("errorDetail") or {}
            raise CliError(msg.get("error") or detail.get("message") or "unknown error")
        if quiet:
            continue
        if "stream" in msg:
            write(str(msg["stream"]))
        elif "status" in msg:
            line = str(msg["status"])
            if msg.get("id"):
                line = f"{msg['id']}: {line}"
            if msg.get("progress"):
                line += " " + str(msg["progress"])
            write(line + "\n")
        sys.stdout.flush()


# -- images ----------------------------------------------------------------------------------------

def cmd_images(ctx, ns, args) -> int:
    from .format import DEFAULT_IMAGES, ImageCtx, image_rows, render_list
    from .template import TemplateError
    query = {"all": True if ns.all else None}
    f = filters_json(ns.filter, {"reference": args[0]} if args else None)
    if f:
        query["filters"] = f
    images = ctx.client.get("/images/json", query) or []
    if ns.quiet:
        seen = set()
        for img in images:
            i = img.get("Id", "")
            if i in seen:
                continue
            seen.add(i)
            out((i if ns.no_trunc else _short(i)) + "\n")
        return 0
    fmt = ns.format or DEFAULT_IMAGES
    if not ns.format and ns.digests:
        fmt = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    rows = [ImageCtx(img, repo, tag, dg, trunc=not ns.no_trunc) for img, repo, tag, dg in image_rows(images)]
    try:
        out(render_list(fmt, rows, ImageCtx.HEADERS))
    except TemplateError as e:
        raise CliError(str(e)) from None
    return 0


def _short(i: str) -> str:
    from .format import trunc_id
    return trunc_id(i)


# -- import / load / save ----------------------------------------------------------------------------

def _split_ref(ref: str) -> tuple[str, str]:
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if "@" in ref:
        raise UsageError("refusing to create a tag with a digest reference")
    if colon > slash:
        return ref[:colon], ref[colon + 1:]
    return ref, ""


def cmd_import(ctx, ns, args) -> int:
    src = args[0]
    ref = args[1] if len(args) > 1 else ""
    if ref:
        _check_ref(ref)
    query = [("fromSrc", "-" if src == "-" or "://" not in src else src), ("repo", ref),
             ("message", ns.message or "")]
    for change in ns.change or []:
        query.append(("changes", change))
    if ns.platform:
        query.append(("platform", ns.platform))
    body = None
    f = None
    if src == "-":
        body = sys.stdin.buffer
    elif "://" not in src:
        try:
            f = open(src, "rb")
        except OSError as e:
            raise CliError(f"open {src}: {(e.strerror or str(e)).lower()}") from None
        body = f
    try:
        resp = ctx.client.request("POST", "/images/create", query, body,
                                  {"Content-Type": "application/x-tar"} if body is not None else None,
                                  stream=True)
        show_messages(resp)
    finally:
        if f:
            f.close()
    return 0


def _check_ref(ref: str) -> None:
    import re
    name, tag = _split_ref(ref)
    if not re.fullmatch(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
                        r"|[a-zA-Z0-9.-]+(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+", name) or \
            (tag and not re.fullmatch(r"[\w][\w.-]{0,127}", tag)):
        if name.lower() != name:
            raise CliError(f'invalid reference format: repository name ({name}) must be lowercase')
        raise CliError("invalid reference format")


def cmd_load(ctx, ns, args) -> int:
    f = None
    if ns.input:
        try:
            f = open(ns.input, "rb")
        except OSError as e:
            raise CliError(f"open {ns.input}: {(e.strerror or str(e)).lower()}") from None
        body = f
    else:
        if os.isatty(0):
            raise CliError("requested load from stdin, but stdin is empty")
        body = sys.stdin.buffer
    try:
        resp = ctx.client.request("POST", "/images/load", {"quiet": True if ns.quiet else None}, body,
                                  {"Content-Type": "application/x-tar"}, stream=True)
        if resp.content_type == "application/json":
            show_messages(resp, quiet=False)
        else:
            out(resp.read().decode("utf-8", "replace"))
    finally:
        if f:
            f.close()
    return 0


def cmd_save(ctx, ns, args) -> int:
    if not ns.output and os.isatty(1):
        raise CliError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    resp = ctx.client.request("GET", "/images/get", [("names", a) for a in args], stream=True)
    write_tar(resp, ns.output, "save image")
    return 0


# -- tag / rmi / prune / history -----------------------------------------------------------------------

def cmd_tag(ctx, ns, args) -> int:
    src, target = args
    _check_ref(target)
    repo, tag = _split_ref(target)
    ctx.client.request("POST", f"/images/{qimg(src)}/tag", {"repo": repo, "tag": tag or "latest"})
    return 0


def cmd_rmi(ctx, ns, args) -> int:
    from .client import APIError
    rc = 0
    for name in args:
        try:
            items = ctx.client.delete(f"/images/{qimg(name)}",
                                      {"force": True if ns.force else None,
                                       "noprune": True if ns.no_prune else None}) or []
        except APIError as e:
            err(f"Error response from daemon: {e.message}\n")
            rc = 1
            continue
        for it in items:
            if it.get("Untagged"):
                out(f"Untagged: {it['Untagged']}\n")
            if it.get("Deleted"):
                out(f"Deleted: {it['Deleted']}\n")
    return rc


def _confirm(message: str) -> bool:
    err(message)  # docker prints the prompt on stdout; stderr keeps stdout for results
    sys.stderr.flush()
    try:
        line = sys.stdin.readline()
    except (OSError, KeyboardInterrupt):
        return False
    return line.strip().lower() in ("y", "yes")


def cmd_image_prune(ctx, ns, args) -> int:
    from .format import human_size
    if not ns.force:
        msg = ("WARNING! This will remove all images without at least one container associated to them."
               if ns.all else "WARNING! This will remove all dangling images.")
        if not _confirm(msg + "\nAre you sure you want to continue? [y/N] "):
            return 0
    f = filters_json(ns.filter, {"dangling": "false" if ns.all else "true"})
    report = ctx.client.post("/images/prune", {"filters": f}) or {}
    deleted = report.get("ImagesDeleted") or []
    if deleted:
        out("Deleted Images:\n")
        for it in deleted:
            if it.get("Untagged"):
                out(f"untagged: {it['Untagged']}\n")
            if it.get("Deleted"):
                out(f"deleted: {it['Deleted']}\n")
        out("\n")
    out(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")
    return 0


def cmd_history(ctx, ns, args) -> int:
    from .format import DEFAULT_HISTORY, HistoryCtx, render_list
    from .template import TemplateError
    items = ctx.client.get(f"/images/{qimg(args[0])}/history") or []
    rows = [HistoryCtx(h, trunc=not ns.no_trunc, human=ns.human) for h in items]
    if ns.quiet:
        for r in rows:
            out(r.ID + "\n")
        return 0
    try:
        out(render_list(ns.format or DEFAULT_HISTORY, rows, HistoryCtx.HEADERS))
    except TemplateError as e:
        raise CliError(str(e)) from None
    return 0


_FORMAT = Opt("--format", STR, "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template")

_IMAGES_OPTS = [
    Opt("-a --all", BOOL, "Show all images (default hides intermediate images)"),
    Opt("--digests", BOOL, "Show digests"),
    Opt("-f --filter", LIST, "Filter output based on conditions provided", metavar="filter"),
    _FORMAT,
    Opt("--no-trunc", BOOL, "Don't truncate output"),
    Opt("-q --quiet", BOOL, "Only show image IDs"),
]

SPECS = {
    "images": Spec(cmd_images, "[OPTIONS] [REPOSITORY[:TAG]]", "List images", _IMAGES_OPTS,
                   max_args=1, aliases="sampan image ls, sampan image list, sampan images"),
    "import": Spec(cmd_import, "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
                   "Import the contents from a tarball to create a filesystem image",
                   [Opt("-c --change", LIST, "Apply Dockerfile instruction to the created image"),
                    Opt("-m --message", STR, "Set commit message for imported image"),
                    Opt("--platform", STR, "Set platform if server is multi-platform capable")],
                   min_args=1, max_args=2),
    "load": Spec(cmd_load, "[OPTIONS]", "Load an image from a tar archive or STDIN",
                 [Opt("-i --input", STR, "Read from tar archive file, instead of STDIN"),
                  Opt("-q --quiet", BOOL, "Suppress the load output")], max_args=0),
    "save": Spec(cmd_save, "[OPTIONS] IMAGE [IMAGE...]",
                 "Save one or more images to a tar archive (streamed to STDOUT by default)",
                 [Opt("-o --output", STR, "Write to a file, instead of STDOUT")], min_args=1),
    "tag": Spec(cmd_tag, "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
                "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", [], min_args=2, max_args=2),
    "rmi": Spec(cmd_rmi, "[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images",
                [Opt("-f --force", BOOL, "Force removal of the image"),
                 Opt("--no-prune", BOOL, "Do not delete untagged parents")], min_args=1),
    "image prune": Spec(cmd_image_prune, "[OPTIONS]", "Remove unused images",
                        [Opt("-a --all", BOOL, "Remove all unused images, not just dangling ones"),
                         Opt("--filter", LIST, "Provide filter values (e.g. \"until=<timestamp>\")", metavar="filter"),
                         Opt("-f --force", BOOL, "Do not prompt for confirmation")], max_args=0),
    "history": Spec(cmd_history, "[OPTIONS] IMAGE", "Show the history of an image",
                    [_FORMAT,
                     Opt("-H --human", BOOL, "Print sizes and dates in human readable format", default=True),
                     Opt("--no-trunc", BOOL, "Don't truncate output"),
                     Opt("-q --quiet", BOOL, "Only show image IDs")], min_args=1, max_args=1),
}
