"""The local side of `sampan cp`: argument splitting and docker cp's placement rules."""

import io
import os
import tarfile

import pytest

from sampan.cli.common import CliError
from sampan.cli.storage import _split_cp_arg, extract_to, tar_reader

DIR = {"mode": (1 << 31) | 0o755}
FILE = {"mode": 0o644}


def _tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return [raw[i:i + 1000] for i in range(0, len(raw), 1000)]


def test_split():
    assert _split_cp_arg("c:/etc") == ("c", "/etc")
    assert _split_cp_arg("/abs:with:colons") == ("", "/abs:with:colons")
    assert _split_cp_arg("./rel:x") == ("", "./rel:x")
    assert _split_cp_arg("plain") == ("", "plain")


def test_file_into_dir_and_rename(tmp_path):
    extract_to(_tar([("hostname", b"h")]), FILE | {"name": "hostname"}, "/etc/hostname", str(tmp_path), False)
    assert (tmp_path / "hostname").read_bytes() == b"h"
    extract_to(_tar([("hostname", b"x")]), FILE | {"name": "hostname"}, "/etc/hostname",
               str(tmp_path / "other"), False)
    assert (tmp_path / "other").read_bytes() == b"x"


def test_dir_new_name_and_contents(tmp_path):
    entries = [("data", None), ("data/a", b"1"), ("data/sub", None), ("data/sub/b", b"2")]
    extract_to(_tar(entries), DIR | {"name": "data"}, "/data", str(tmp_path / "copy"), False)
    assert (tmp_path / "copy" / "sub" / "b").read_bytes() == b"2"
    extract_to(_tar(entries), DIR | {"name": "data"}, "/data", str(tmp_path), False)
    assert (tmp_path / "data" / "a").read_bytes() == b"1"
    dot = [(".", None), ("./a", b"1")]
    (tmp_path / "into").mkdir()
    extract_to(_tar(dot), DIR | {"name": "."}, "/data/.", str(tmp_path / "into"), False)
    assert os.listdir(tmp_path / "into") == ["a"]


def test_errors_and_hostile(tmp_path):
    (tmp_path / "file").write_text("f")
    with pytest.raises(CliError, match="cannot copy a directory to a file"):
        extract_to(_tar([("d", None)]), DIR | {"name": "d"}, "/d", str(tmp_path / "file"), False)
    with pytest.raises(CliError, match="does not exist"):
        extract_to(_tar([("f", b"")]), FILE | {"name": "f"}, "/f", str(tmp_path / "no" / "f"), False)
    outside = tmp_path.parent / "cp-outside-victim"
    with pytest.raises(CliError):
        extract_to(_tar([("f", None), ("../../cp-outside-victim", b"x")]), DIR | {"name": "f"}, "/f",
                   str(tmp_path / "t"), False)
    assert not outside.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".sampan-cp-")]


def test_tar_reader(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("x")
    r, counter = tar_reader(str(tmp_path / "src"), "renamed", False)
    names = tarfile.open(fileobj=io.BytesIO(r.read())).getnames()
    assert names == ["renamed", "renamed/x"] and counter[0] > 0
    r, _ = tar_reader(str(tmp_path / "src"), None, True)
    assert tarfile.open(fileobj=io.BytesIO(r.read())).getnames() == ["x"]
