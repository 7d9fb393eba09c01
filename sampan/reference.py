"""Docker image references: parse, normalise, show them the way Docker does.

Grammar (distribution/reference): `[domain/]path[:tag][@digest]`. Internally every name is
fully qualified (`docker.io/library/busybox`), because that is what identifies a repository;
users and the API see the "familiar" form (`busybox:latest`), exactly like Docker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
_TAG_RE = re.compile(rf"^{_TAG}$")
_DIGEST_RE = re.compile(rf"^{_DIGEST}$")
_SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_ID_PREFIX_RE = re.compile(r"^(?:sha256:)?[0-9a-f]{1,64}$")

INVALID = "invalid reference format"


@dataclass(frozen=True)
class Reference:
    """A normalised reference: `domain` + `path` always set; `tag`/`digest` optional."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Full repository name, `docker.io/library/busybox`."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """Repository as Docker shows it: `busybox`, `user/app`, `host:5000/a/b`."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_PREFIX) and self.path.count("/") == 1:
                return self.path[len(OFFICIAL_PREFIX):]
            return self.path
        return self.name

    def __str__(self) -> str:
        return self._render(self.name)

    def familiar(self) -> str:
        return self._render(self.familiar_name)

    def _render(self, name: str) -> str:
        s = name
        if self.tag is not None:
            s += ":" + self.tag
        if self.digest is not None:
            s += "@" + self.digest
        return s

    def with_tag(self, tag: str) -> "Reference":
        if not _TAG_RE.match(tag):
            raise InvalidParameter(f"{INVALID}: invalid tag {tag!r}")
        return Reference(self.domain, self.path, tag, None)

    def with_default_tag(self) -> "Reference":
        """Docker's TagNameOnly: a bare name means `:latest`; a digest reference stays as is."""
        if self.tag is None and self.digest is None:
            return Reference(self.domain, self.path, DEFAULT_TAG, None)
        return self

    @property
    def name_only(self) -> bool:
        return self.tag is None and self.digest is None


def _split_domain(name: str) -> tuple[str, str]:
    i = name.find("/")
    first = name[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(s: str) -> Reference:
    """Parse and normalise a reference (Docker's ParseNormalizedNamed); no default tag added.

    Raises InvalidParameter("invalid reference format...") on anything Docker would refuse.
    """
    if not isinstance(s, str) or not s or len(s) > 4096:
        raise InvalidParameter(INVALID)
    if _HEX64_RE.match(s):
        raise InvalidParameter(
            f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    rest, digest = s, None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        if not _DIGEST_RE.match(digest):
            raise InvalidParameter(INVALID)
        if digest.startswith("sha256:") and not _SHA256_RE.match(digest):
            raise InvalidParameter(f"{INVALID}: invalid digest {digest!r}")
    tag = None
    # A tag is after the last ':' that comes after the last '/', so `host:5000/a` is no tag.
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidParameter(INVALID)
    if not rest:
        raise InvalidParameter(INVALID)
    domain, path = _split_domain(rest)
    if path.lower() != path:
        raise InvalidParameter(f"{INVALID}: repository name ({path}) must be lowercase")
    if not _PATH_RE.match(path) or not _DOMAIN_RE.match(domain):
        raise InvalidParameter(INVALID)
    if len(domain) + 1 + len(path) > NAME_TOTAL_MAX:
        raise InvalidParameter(f"{INVALID}: repository name must not be more than {NAME_TOTAL_MAX} characters")
    return Reference(domain, path, tag, digest)


def parse_tagged(s: str) -> Reference:
    """Parse with Docker's default tag applied (`busybox` -> `docker.io/library/busybox:latest`)."""
    return parse(s).with_default_tag()


def familiar(s: str) -> str:
    """Familiar string of a stored, fully qualified reference."""
    return parse(s).familiar()


def is_full_id(s: str) -> bool:
    return bool(_SHA256_RE.match(s))


def is_id_prefix(s: str) -> bool:
    """`abc123`, `sha256:abc1...`: something that may name an image by (a prefix of) its ID."""
    return bool(_ID_PREFIX_RE.match(s))


def validate_digest(d: str) -> str:
    """A `sha256:<64 hex>` digest, else InvalidParameter (digests become paths: be strict)."""
    if not isinstance(d, str) or not _SHA256_RE.match(d):
        raise InvalidParameter(f"invalid digest {d!r}: expected sha256:<64 hex digits>")
    return d
