"""pull, push, login, logout, search, and `registry serve|gc` (sampan's own registry server)."""

from __future__ import annotations

import os
import sys

from .args import BOOL, INT, LIST, STR, Opt, UsageError
from .common import CliError, Spec, err, filters_json, out, qimg


# -- credentials -----------------------------------------------------------------------------------

def _server_of(image: str) -> str:
    """The `auths` key for an image's registry (Hub's is Docker's historical URL)."""
    from ..distribution.auth import INDEX_SERVER
    from ..reference import DEFAULT_DOMAIN, parse
    from ..errors import InvalidParameter
    try:
        d = parse(image).domain
    except InvalidParameter:
        raise CliError("invalid reference format") from None
    return INDEX_SERVER if d == DEFAULT_DOMAIN else d


def _auth_header(server: str) -> dict:
    from ..distribution.auth import ConfigFile, encode_registry_auth
    from ..errors import InvalidParameter
    try:
        creds = ConfigFile().get(server)
    except InvalidParameter as e:
        err(f"WARNING: {e}\n")
        return {}
    if creds.empty:
        return {}
    return {"X-Registry-Auth": encode_registry_auth(creds, server)}


# -- progress --------------------------------------------------------------------------------------

class Progress:
    """Docker's jsonmessage display: on a terminal one live line per layer id, redrawn in
    place with ANSI cursor moves; otherwise each status once, without the byte counts."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.f = stream or sys.stdout
        self.tty = self.f.isatty() if hasattr(self.f, "isatty") else False
        self.quiet = quiet
        self.ids: list[str] = []
        self.aux: list[dict] = []

    def _line(self, m: dict) -> str:
        s = f"{m['id']}: " if m.get("id") else ""
        s += str(m.get("status", ""))
        if self.tty and m.get("progress"):
            s += " " + str(m["progress"])
        return s

    def show(self, m: dict) -> None:
        if m.get("error") or m.get("errorDetail"):
            detail = m.get("errorDetail") or {}
            raise CliError(str(m.get("error") or detail.get("message") or "unknown error"))
        if "aux" in m:
            self.aux.append(m["aux"])
            return
        if self.quiet or "status" not in m and "stream" not in m:
            return
        if "stream" in m:
            self.f.write(str(m["stream"]))
            return
        mid = m.get("id")
        if not mid:
            self.f.write(self._line(m) + "\n")
        elif not self.tty:
            if m.get("progress") or m.get("progressDetail", {}).get("current"):
                return  # byte counts only make sense redrawn in place
            self.f.write(self._line(m) + "\n")
        elif mid not in self.ids:
            self.ids.append(mid)
            self.f.write(self._line(m) + "\n")
        else:
            up = len(self.ids) - self.ids.index(mid)
            self.f.write(f"\x1b[{up}A\r\x1b[2K{self._line(m)}\r\x1b[{up}B")
        self.f.flush()

    def run(self, resp) -> None:
        for m in resp.json_stream():
            if isinstance(m, dict):
                self.show(m)


# -- pull / push -----------------------------------------------------------------------------------

def _split(image: str) -> tuple[str, str]:
    from ..reference import parse
    from ..errors import InvalidParameter
    try:
        r = parse(image)
    except InvalidParameter as e:
        raise CliError(str(e)) from None
    name = r.familiar_name if r.domain == "docker.io" else r.name
    if r.digest:
        return name, r.digest
    return name, r.tag or ""


def pull_image(ctx, image: str, platform: str | None = None, quiet: bool = False,
               all_tags: bool = False, stream=None, announce: bool = True) -> str:
    """Pull through the daemon; returns the canonical reference Docker prints at the end.
    `run`/`create` of a missing image call this with stream=sys.stderr, as docker's CLI does."""
    from ..reference import parse
    name, tag = _split(image)
    if not tag and not all_tags:
        if announce and not quiet:
            (stream or sys.stdout).write("Using default tag: latest\n")
        tag = "latest"
    if tag and all_tags:
        raise CliError("tag can't be used with --all-tags/-a")
    query = [("fromImage", name), ("tag", tag)]
    if platform:
        query.append(("platform", platform))
    resp = ctx.client.request("POST", "/images/create", query, None, _auth_header(_server_of(image)),
                              stream=True)
    Progress(stream, quiet).run(resp)
    if all_tags:
        return str(parse(name))
    sep = "@" if tag.startswith("sha256:") else ":"
    return str(parse(name + sep + tag))


def cmd_pull(ctx, ns, args) -> int:
    ref = pull_image(ctx, args[0], ns.platform, ns.quiet, ns.all_tags)
    out(ref + "\n")
    return 0


def cmd_push(ctx, ns, args) -> int:
    name, tag = _split(args[0])
    if "@" in args[0]:
        raise CliError("invalid reference format: cannot push a digest reference")
    if not tag and not ns.all_tags:
        out("Using default tag: latest\n")
        tag = "latest"
    if tag and ns.all_tags:
        raise CliError("tag can't be used with --all-tags/-a")
    resp = ctx.client.request("POST", f"/images/{qimg(name)}/push", {"tag": tag or None}, None,
                              _auth_header(_server_of(args[0])), stream=True)
    p = Progress(quiet=ns.quiet)
    p.run(resp)
    if ns.quiet:
        for a in p.aux:
            out(f"{name}:{a.get('Tag')}\n")
    return 0


# -- login / logout --------------------------------------------------------------------------------

def cmd_login(ctx, ns, args) -> int:
    from ..distribution.auth import ConfigFile, Credentials, registry_key
    server = args[0] if args else ""
    key = registry_key(server)
    user, password = ns.username or "", ns.password or ""
    if ns.password and ns.password_stdin:
        raise CliError("--password and --password-stdin are mutually exclusive")
    if ns.password_stdin:
        if not user:
            raise CliError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif ns.password:
        err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
    if not user or not password:
        cfg = ConfigFile()
        stored = cfg.get(key)
        if not user and not password and not stored.empty and stored.username:
            user, password = stored.username, stored.password
        if not user:
            if not sys.stdin.isatty():
                raise CliError("Error: Cannot perform an interactive login from a non TTY device")
            user = input("Username: ").strip()
        if not password:
            import getpass
            password = getpass.getpass("Password: ")
    if not user:
        raise CliError("Error: Non-null Username Required")
    if not password:
        raise CliError("Error: Password Required")
    resp = ctx.client.post("/auth", None, {"username": user, "password": password, "serveraddress": key}) or {}
    c = Credentials(user, password, str(resp.get("IdentityToken") or ""))
    ConfigFile().store(key, c)
    out("Login Succeeded\n")
    return 0


def cmd_logout(ctx, ns, args) -> int:
    from ..distribution.auth import ConfigFile, registry_key
    key = registry_key(args[0] if args else "")
    shown = args[0] if args else key
    cfg = ConfigFile()
    if not cfg.get(key).empty or cfg.erase(key):
        cfg.erase(key)
        out(f"Removing login credentials for {shown}\n")
    else:
        out(f"Not logged in to {shown}\n")
    return 0


# -- search ----------------------------------------------------------------------------------------

def cmd_search(ctx, ns, args) -> int:
    term = args[0]
    server = term.split("/", 1)[0] if "/" in term and any(c in term.split("/", 1)[0] for c in ".:") else ""
    headers = _auth_header(server) if server else _auth_header("docker.io")
    query = {"term": term, "limit": ns.limit if ns.limit else None}
    f = filters_json(ns.filter)
    if f:
        query["filters"] = f
    results = ctx.client.request("GET", "/images/search", query, None, headers).json() or []
    if ns.format:
        from .template import TemplateError, render
        try:
            for r in results:
                ctx_obj = {"Name": r.get("name"), "Description": r.get("description"),
                           "StarCount": r.get("star_count"),
                           "IsOfficial": "[OK]" if r.get("is_official") else "",
                           "IsAutomated": "[OK]" if r.get("is_automated") else ""}
                out(render(ns.format, ctx_obj) + "\n")
        except TemplateError as e:
            raise CliError(str(e)) from None
        return 0
    rows = [("NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED")]
    for r in results:
        desc = str(r.get("description") or "").replace("\n", " ")
        if not ns.no_trunc and len(desc) > 45:
            desc = desc[:44] + "…"
        rows.append((str(r.get("name", "")), desc, str(r.get("star_count", 0)),
                     "[OK]" if r.get("is_official") else "", "[OK]" if r.get("is_automated") else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        out("   ".join(c.ljust(widths[i]) for i, c in enumerate(row[:4])) + "   " + row[4] + "\n")
    return 0


# -- registry serve / gc ---------------------------------------------------------------------------

def cmd_registry_serve(ctx, ns, args) -> int:
    import logging
    from pathlib import Path
    from ..registry.server import RegistryConfig, make_server
    logging.basicConfig(level=logging.DEBUG if ns.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = RegistryConfig(
        root=Path(ns.root), addr=ns.addr, htpasswd=Path(ns.htpasswd) if ns.htpasswd else None,
        token_auth=ns.token_auth, anonymous_pull=ns.anonymous_pull, read_only=ns.read_only,
        tls_cert=Path(ns.tls_cert) if ns.tls_cert else None, tls_key=Path(ns.tls_key) if ns.tls_key else None,
        proxy_remote=ns.proxy_remote, proxy_username=ns.proxy_username or "",
        proxy_password=ns.proxy_password or os.environ.get("SAMPAN_PROXY_PASSWORD", ""))
    try:
        srv, _ = make_server(cfg)
    except (ValueError, OSError) as e:
        raise CliError(f"registry: {e}") from None
    host, port = srv.server_address[:2]
    err(f"sampan registry listening on {'https' if cfg.tls_cert else 'http'}://{host}:{port} (root {cfg.root})\n")
    try:
        srv.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


def cmd_registry_gc(ctx, ns, args) -> int:
    from pathlib import Path
    from ..registry.gc import collect
    from ..registry.storage import Storage
    res = collect(Storage(Path(ns.root)), dry_run=ns.dry_run, delete_untagged=ns.delete_untagged,
                  grace=float(ns.grace) if ns.grace is not None else 0.0)
    verb = "would delete" if ns.dry_run else "deleted"
    for d in res.manifests:
        out(f"{verb} manifest {d}\n")
    for d in res.blobs:
        out(f"{verb} blob {d}\n")
    out(f"{len(res.marked)} blobs marked, {len(res.blobs)} blobs and {len(res.manifests)} manifests "
        f"{'eligible for deletion' if ns.dry_run else 'deleted'}, {res.freed} bytes\n")
    return 0


_ROOT = Opt("--root", STR, "Storage root directory", default="/var/lib/sampan-registry")

SPECS = {
    "pull": Spec(cmd_pull, "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry",
                 [Opt("-a --all-tags", BOOL, "Download all tagged images in the repository"),
                  Opt("--platform", STR, "Set platform if server is multi-platform capable"),
                  Opt("-q --quiet", BOOL, "Suppress verbose output")],
                 min_args=1, max_args=1, aliases="sampan image pull, sampan pull"),
    "push": Spec(cmd_push, "[OPTIONS] NAME[:TAG]", "Upload an image to a registry",
                 [Opt("-a --all-tags", BOOL, "Push all tags of an image to the repository"),
                  Opt("-q --quiet", BOOL, "Suppress verbose output")],
                 min_args=1, max_args=1, aliases="sampan image push, sampan push"),
    "login": Spec(cmd_login, "[OPTIONS] [SERVER]", "Log in to a registry",
                  [Opt("-u --username", STR, "Username"), Opt("-p --password", STR, "Password"),
                   Opt("--password-stdin", BOOL, "Take the password from stdin")], max_args=1),
    "logout": Spec(cmd_logout, "[SERVER]", "Log out from a registry", [], max_args=1),
    "search": Spec(cmd_search, "[OPTIONS] TERM", "Search registries for images",
                   [Opt("-f --filter", LIST, "Filter output based on conditions provided", metavar="filter"),
                    Opt("--format", STR, "Pretty-print search using a Go template"),
                    Opt("--limit", INT, "Max number of search results"),
                    Opt("--no-trunc", BOOL, "Don't truncate output")], min_args=1, max_args=1),
    "registry serve": Spec(cmd_registry_serve, "[OPTIONS]", "Run sampan's registry server",
                           [Opt("--addr", STR, "Address to listen on (host:port)", default="127.0.0.1:5000"),
                            _ROOT,
                            Opt("--htpasswd", STR, "htpasswd file (bcrypt) for basic auth"),
                            Opt("--token-auth", BOOL, "Issue and require bearer tokens (users from --htpasswd)"),
                            Opt("--anonymous-pull", BOOL, "With --token-auth: let anyone pull"),
                            Opt("--read-only", BOOL, "Refuse pushes and deletes"),
                            Opt("--tls-cert", STR, "TLS certificate (PEM)"),
                            Opt("--tls-key", STR, "TLS private key (PEM)"),
                            Opt("--proxy-remote", STR, "Pull-through cache of this registry URL"),
                            Opt("--proxy-username", STR, "Username for the remote"),
                            Opt("--proxy-password", STR, "Password for the remote (or $SAMPAN_PROXY_PASSWORD)"),
                            Opt("-D --debug", BOOL, "Log every request")], max_args=0),
    "registry gc": Spec(cmd_registry_gc, "[OPTIONS]", "Delete blobs no manifest needs (mark and sweep)",
                        [_ROOT, Opt("--dry-run", BOOL, "Only say what would be deleted"),
                         Opt("-m --delete-untagged", BOOL, "Delete manifests no tag points at"),
                         Opt("--grace", STR, "Keep blobs written in the last N seconds (default 0)")],
                        max_args=0),
}

__all__ = ["SPECS", "Progress", "pull_image", "UsageError"]
