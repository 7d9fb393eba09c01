"""Tables, units and the formatting contexts, checked against docker's own output."""

import pytest

from sampan.cli.format import (ContainerCtx, HistoryCtx, ImageCtx, display_ports, ellipsis,
                               human_duration, human_size, image_rows, parse_time, render_list,
                               tabwrite, bytes_size)


@pytest.mark.parametrize("size,prec,want", [
    (0, 4, "0B"), (999, 4, "999B"), (1000, 4, "1kB"), (4_260_000, 4, "4.26MB"),
    (1_982_000, 3, "1.98MB"), (1_234_567_890, 4, "1.235GB"), (1_995_000, 3, "2MB"),
    (10**15, 4, "1PB"),
])
def test_human_size(size, prec, want):
    assert human_size(size, prec) == want


def test_bytes_size():
    assert bytes_size(2 * 1024**3) == "2GiB"
    assert bytes_size(25_273_856_000) == "23.54GiB"


@pytest.mark.parametrize("secs,want", [
    (0.4, "Less than a second"), (1, "1 second"), (5, "5 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"),
    (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"), (48 * 3600, "2 days"),
    (14 * 86400, "2 weeks"), (60 * 86400, "2 months"), (800 * 86400, "2 years"),
])
def test_human_duration(secs, want):
    assert human_duration(secs) == want


def test_ellipsis_uses_one_char():
    assert ellipsis("abcdef", 4) == "abc…"
    assert ellipsis("abc", 4) == "abc"


def test_tabwrite_matches_docker_padding():
    text = "CONTAINER ID\tIMAGE\tNAMES\nabc\tbusybox\tweb\n"
    assert tabwrite(text) == ("CONTAINER ID   IMAGE     NAMES\n"
                              "abc            busybox   web\n")


def test_tabwrite_min_width_and_ragged_lines():
    # minwidth 10 applies; a line with fewer cells ends the column block as Go's does
    assert tabwrite("a\tb\nc\n") == "a         b\nc\n"


def test_parse_time_forms():
    assert parse_time(1700000000) == 1700000000
    assert parse_time("2023-11-14T22:13:20Z") == 1700000000
    assert parse_time("2023-11-14T22:13:20.5Z") == 1700000000.5
    assert parse_time("2023-11-15T00:13:20+02:00") == 1700000000
    assert parse_time("2023-11-14T22:13:20.123456789+00:00") == pytest.approx(1700000000.123456789)
    assert parse_time("0001-01-01T00:00:00Z") == 0


def _container(**kw):
    c = {"Id": "a" * 64, "Names": ["/web", "/other/alias"], "Image": "busybox",
         "Command": "sh -c 'echo out; echo err'", "Created": 1000, "Status": "Exited (3) 5 seconds ago",
         "State": "exited", "Ports": [], "Labels": {"k": "v"}, "Mounts": [],
         "NetworkSettings": {"Networks": {"bridge": {}, "alt": {}}}}
    c.update(kw)
    return c


def test_ps_default_table():
    rows = [ContainerCtx(_container(), now=1010)]
    from sampan.cli.format import DEFAULT_PS
    text = render_list(DEFAULT_PS, rows, ContainerCtx.HEADERS)
    assert text.splitlines() == [
        "CONTAINER ID   IMAGE     COMMAND                  CREATED          STATUS                     PORTS     NAMES",
        "aaaaaaaaaaaa   busybox   \"sh -c 'echo out; ec…\"   10 seconds ago   Exited (3) 5 seconds ago             web",
    ]


def test_ps_fields():
    c = ContainerCtx(_container(SizeRw=0, SizeRootFs=1_990_000), now=1010)
    assert c.Networks == "alt,bridge"
    assert c.Labels == "k=v"
    assert c.Size == "0B (virtual 1.99MB)"
    assert ContainerCtx(_container(), trunc=False).Names == "web,other/alias"
    assert render_list("{{.Names}}: {{.State}}", [c], ContainerCtx.HEADERS) == "web: exited\n"
    assert render_list("table {{.Names}}\\t{{.Label \"k\"}}", [c], ContainerCtx.HEADERS) == \
        "NAMES     k\nweb       v\n"


def test_json_format_is_all_fields_sorted():
    import json
    c = ContainerCtx(_container(), now=1010)
    line = render_list("json", [c], ContainerCtx.HEADERS)
    d = json.loads(line)
    assert list(d) == sorted(d)
    assert d["ID"] == "a" * 12 and d["Names"] == "web"


def test_ports_display():
    ports = [
        {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"IP": "0.0.0.0", "PrivatePort": 81, "PublicPort": 8081, "Type": "tcp"},
        {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
        {"PrivatePort": 53, "Type": "udp"},
        {"PrivatePort": 443, "Type": "tcp"},
    ]
    s = display_ports(ports)
    assert "0.0.0.0:8080-8081->80-81/tcp" in s
    assert "[::]:8080->80/tcp" in s
    assert "53/udp" in s and "443/tcp" in s


def test_image_rows_and_table():
    imgs = [
        {"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest", "bb:1"], "RepoDigests": [],
         "Created": 100, "Size": 1_982_000},
        {"Id": "sha256:" + "c" * 64, "RepoTags": [], "RepoDigests": [], "Created": 100, "Size": 5},
        {"Id": "sha256:" + "d" * 64, "RepoTags": None, "RepoDigests": ["reg/x@sha256:" + "e" * 64],
         "Created": 0, "Size": 5},
    ]
    rows = [ImageCtx(i, r, t, d, now=160) for i, r, t, d in image_rows(imgs)]
    from sampan.cli.format import DEFAULT_IMAGES
    text = render_list(DEFAULT_IMAGES, rows, ImageCtx.HEADERS).splitlines()
    assert text[0] == "REPOSITORY   TAG       IMAGE ID       CREATED              SIZE"
    assert text[1] == "busybox      latest    bbbbbbbbbbbb   About a minute ago   1.98MB"
    assert text[2].startswith("bb           1 ")
    assert text[3].startswith("<none>       <none>    cccccccccccc")
    assert text[4].startswith("reg/x        <none>    dddddddddddd   N/A")
    assert rows[3].Digest == "sha256:" + "e" * 64


def test_history_ctx():
    h = HistoryCtx({"Id": "<missing>", "Created": 0, "CreatedBy": "/bin/sh -c #(nop)\tCMD [\"sh\"] " + "x" * 60,
                    "Size": 1000, "Comment": ""}, now=3600 * 3)
    assert h.ID == "<missing>"
    assert len(h.CreatedBy) == 45 and h.CreatedBy.endswith("…") and "\t" not in h.CreatedBy
    assert h.Size == "1kB"
    assert HistoryCtx({"Size": 1000}, human=False).Size == "1000"


def test_header_of_unknown_field_is_uppercased():
    assert render_list("table {{.Foo}}", [], {}) == "FOO\n"
