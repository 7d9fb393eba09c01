"""Image actions show up in `docker events` as dockerd reports them."""

from __future__ import annotations

import json
import time


def test_image_events_tag_untag_import_save(sampand, busybox_tar, tmp_path):
    since = str(int(time.time()) - 1)
    assert sampand.docker("tag", "busybox", "evtag:1").returncode == 0
    assert sampand.docker("rmi", "evtag:1").returncode == 0
    r = sampand.docker("import", str(busybox_tar), "evimp:1")
    assert r.returncode == 0, r.stderr
    imported = r.stdout.strip()
    assert sampand.docker("save", "-o", str(tmp_path / "s.tar"), "evimp:1").returncode == 0
    assert sampand.docker("rmi", "evimp:1").returncode == 0
    until = str(int(time.time()) + 1)
    r = sampand.docker("events", "--since", since, "--until", until, "--filter", "type=image",
                       "--format", "{{json .}}")
    assert r.returncode == 0, r.stderr
    evs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    seen = [(e["Action"], e["Actor"]["Attributes"].get("name")) for e in evs]
    assert ("tag", "evtag:1") in seen
    assert ("untag", "evtag:1") in seen
    assert ("import", imported) in seen
    assert ("save", "evimp:1") in seen
    assert ("untag", "evimp:1") in seen
    assert any(a == "delete" for a, _ in seen)
    assert all(e["Type"] == "image" for e in evs)
