"""Docker image reference parsing and normalisation."""

import pytest

from sampan import reference as refs
from sampan.errors import InvalidParameter


@pytest.mark.parametrize("given, full, familiar", [
    ("busybox", "docker.io/library/busybox", "busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
    ("index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"),
    ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("localhost/app", "localhost/app", "localhost/app"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("host.example.com/a/b", "host.example.com/a/b", "host.example.com/a/b"),
    ("Host.example.com/a", "Host.example.com/a", "Host.example.com/a"),
    ("[::1]:5000/a:t", "[::1]:5000/a:t", "[::1]:5000/a:t"),
    ("a-b_c.d__e:T_a.g-1", "docker.io/library/a-b_c.d__e:T_a.g-1", "a-b_c.d__e:T_a.g-1"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64,
     "busybox@sha256:" + "a" * 64),
    ("busybox:1@sha256:" + "b" * 64, "docker.io/library/busybox:1@sha256:" + "b" * 64,
     "busybox:1@sha256:" + "b" * 64),
])
def test_parse_normalises(given, full, familiar):
    r = refs.parse(given)
    assert str(r) == full
    assert r.familiar() == familiar


def test_default_tag_and_parts():
    r = refs.parse_tagged("localhost:5000/x/y")
    assert (r.domain, r.path, r.tag, r.digest) == ("localhost:5000", "x/y", "latest", None)
    assert refs.parse_tagged("busybox@sha256:" + "c" * 64).tag is None
    assert refs.parse("busybox").name_only
    assert refs.familiar("docker.io/library/busybox:latest") == "busybox:latest"


@pytest.mark.parametrize("bad", [
    "", "Busybox", "UPPER", "busybox:", ":tag", "busy box", "a//b", "/abs", "a/", "-a",
    "a:" + "t" * 129, "busybox@sha256:abc", "busybox@sha256:" + "A" * 64, "a:b:c", "a@b",
    "a" * 300, "a..b", "a/../b", "x\x00y",
])
def test_invalid_reference_format(bad):
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        refs.parse(bad)


def test_64_hex_is_not_a_name():
    with pytest.raises(InvalidParameter, match="64-byte hexadecimal"):
        refs.parse("a" * 64)


def test_id_prefix_and_digest_helpers():
    assert refs.is_id_prefix("abc123")
    assert refs.is_id_prefix("sha256:abc")
    assert not refs.is_id_prefix("busybox")
    assert refs.is_full_id("sha256:" + "0" * 64)
    assert not refs.is_full_id("sha256:" + "0" * 63)
    for bad in ("sha256:../../etc", "md5:" + "0" * 32, "sha256:" + "0" * 64 + "/x"):
        with pytest.raises(InvalidParameter):
            refs.validate_digest(bad)
