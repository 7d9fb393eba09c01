"""Fuzz: image references (sampan/reference.py). Any string either parses to a Reference
whose rendering parses back to the same thing, or is refused with InvalidParameter."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from sampan import reference
from sampan.errors import InvalidParameter

_PIECES = st.sampled_from(["busybox", "library", "docker.io", "localhost:5000", "a.b", "x",
                           "/", ":", "@", "sha256:", "a" * 64, "0" * 64, "..", "-", "_", "__",
                           ".", "Upper", "latest", "v1.0", "", "\x00", "é", " ", "index.docker.io"])
_REFISH = st.lists(_PIECES, max_size=8).map("".join)


def _check(s: str) -> None:
    try:
        ref = reference.parse(s)
    except InvalidParameter:
        return
    again = reference.parse(str(ref))
    assert (again.domain, again.path, again.tag, again.digest) == (
        ref.domain, ref.path, ref.tag, ref.digest)
    first = ref.path.split("/")[0]
    if not any(c in first for c in ".:") and first != "localhost":
        # The short form names the same thing - except where the path's first component looks
        # like a registry (docker.io/docker.io/x), which Docker's familiar form leaves
        # ambiguous as well.
        fam = reference.parse(ref.familiar())
        assert (fam.domain, fam.path, fam.tag, fam.digest) == (
            ref.domain, ref.path, ref.tag, ref.digest)
    assert ".." not in ref.path.split("/")


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=300), _REFISH))
def test_parse_returns_a_reference_or_invalid_parameter(s):
    _check(s)


@settings(max_examples=200, deadline=None)
@given(_REFISH, st.booleans())
def test_parse_tagged_and_familiar(s, tagged):
    try:
        ref = reference.parse_tagged(s) if tagged else reference.parse(s)
    except InvalidParameter:
        return
    if tagged:
        assert ref.tag or ref.digest
    reference.familiar(str(ref))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(r"sha256:[0-9a-fA-F]{60,70}", fullmatch=True)))
def test_validate_digest_is_strict(s):
    try:
        d = reference.validate_digest(s)
    except InvalidParameter:
        return
    # Digests become paths under the content store: only sha256 + 64 lower-case hex.
    assert d.startswith("sha256:") and len(d) == 71 and "/" not in d
