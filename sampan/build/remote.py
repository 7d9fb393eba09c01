"""`POST /build?remote=`: a context from a git repository or an http(s) tarball.

Git URLs are Docker's forms (`https://host/repo.git`, `git://host/repo`, `git@host:repo`,
`github.com/user/repo`) with an optional `#ref:subdir` fragment. The clone is shallow, runs
with no user or system git config (no hooks, no credential helpers, no `file://` or `ext::`
transports, so a remote cannot make the daemon read local repositories), and the checkout's
.git is dropped before it becomes the context.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import InvalidParameter

_GIT_URL = re.compile(r"^(?:(?:https?|git)://.+?\.git(?:#.*)?|git://.+|git@[^:]+:.+|github\.com/.+)$")


def is_git_url(url: str) -> bool:
    return bool(_GIT_URL.match(url))


def _split(url: str) -> tuple[str, str, str]:
    """-> (repository URL, ref, subdirectory) from `url#ref:subdir`."""
    repo, _, frag = url.partition("#")
    ref, _, subdir = frag.partition(":")
    if repo.startswith("github.com/"):
        repo = "https://" + repo
    return repo, ref, subdir


def clone(url: str, dest: Path, timeout: float = 600) -> Path:
    """Check `url` out under `dest`; returns the context directory (the subdir, if given)."""
    repo, ref, subdir = _split(url)
    if repo.startswith("-") or ref.startswith("-"):
        raise InvalidParameter(f"invalid git URL {url!r}")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(dest),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
           "GIT_PROTOCOL_FROM_USER": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
    opts = ["-c", "protocol.file.allow=never", "-c", "protocol.ext.allow=never",
            "-c", "core.hooksPath=/dev/null"]
    checkout = dest / "checkout"
    cmd = ["git", *opts, "clone", "--quiet", "--depth", "1", "--no-tags"]
    if ref:
        cmd += ["--branch", ref]
    cmd += ["--", repo, str(checkout)]
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InvalidParameter(f"unable to prepare context: git clone of {repo} timed out") from None
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["failed"]
        raise InvalidParameter(f"unable to prepare context: unable to 'git clone' to temporary "
                               f"context directory: {msg[0]}")
    shutil.rmtree(checkout / ".git", ignore_errors=True)
    root = checkout
    if subdir:
        root = (checkout / subdir).resolve()
        if not str(root).startswith(str(checkout.resolve()) + os.sep) or not root.is_dir():
            raise InvalidParameter(f"unable to prepare context: subdirectory {subdir!r} "
                                   "is not a directory of the repository")
    return root
