from __future__ import annotations

import pytest

from sampan.engine import createconfig as cc
from sampan.engine.container import Container, human_duration, validate_name
from sampan.errors import InvalidParameter

IMG = {"Env": ["PATH=/usr/bin:/bin", "A=image"], "Cmd": ["sh"], "Entrypoint": None,
       "WorkingDir": "/srv", "Labels": {"from": "image", "x": "1"}, "ExposedPorts": {"80/tcp": {}}}


def test_cmd_and_env_come_from_the_image_when_absent():
    m = cc.merge_image_config({"Image": "busybox", "Env": ["A=user", "B=2"]}, IMG)
    assert m["Cmd"] == ["sh"] and m["Entrypoint"] is None
    assert m["Env"] == ["A=user", "B=2", "PATH=/usr/bin:/bin"]
    assert m["WorkingDir"] == "/srv"
    assert m["ExposedPorts"] == {"80/tcp": {}}


def test_entrypoint_given_drops_the_image_cmd():
    m = cc.merge_image_config({"Image": "x", "Entrypoint": ["/bin/echo"]}, {**IMG, "Cmd": ["ignored"]})
    assert m["Entrypoint"] == ["/bin/echo"] and m["Cmd"] is None
    assert cc.command_of(m) == ("/bin/echo", [])


def test_user_cmd_keeps_image_entrypoint():
    m = cc.merge_image_config({"Image": "x", "Cmd": ["a", "b"]}, {"Entrypoint": ["/init"], "Cmd": ["z"]})
    assert cc.command_of(m) == ("/init", ["a", "b"])


def test_labels_merge_container_wins():
    m = cc.merge_image_config({"Image": "x", "Labels": {"x": "2"}}, IMG)
    assert m["Labels"] == {"from": "image", "x": "2"}


def test_no_command_is_an_error():
    with pytest.raises(InvalidParameter, match="No command specified"):
        cc.command_of(cc.merge_image_config({"Image": "x"}, {}))


@pytest.mark.parametrize("body", [
    None, [], "x", {"HostConfig": []}, {"Cmd": 5}, {"Env": "A=1"}, {"Env": [1]}, {"Env": ["=x"]},
    {"Tty": "yes"}, {"HostConfig": {"Privileged": 1}}, {"HostConfig": {"ShmSize": -1}},
    {"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
    {"HostConfig": {"AutoRemove": True, "RestartPolicy": {"Name": "always"}}},
    {"HostConfig": {"Ulimits": ["nofile=1"]}}, {"HostConfig": {"Memory": True}},
])
def test_bad_create_bodies_are_invalid(body):
    with pytest.raises(InvalidParameter):
        cc.split_body(body)


def test_host_config_defaults_for_clients():
    h = cc.fill_host_config({"AutoRemove": True})
    assert h["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert h["RestartPolicy"]["Name"] == "no" and h["AutoRemove"] is True
    assert h["NetworkMode"] == "default"


@pytest.mark.parametrize("name,ok", [("web", True), ("/web", True), ("a", False), ("-x", False),
                                     ("web 1", False), ("my_app.v1-2", True), ("x/y", False)])
def test_container_names(name, ok):
    if ok:
        assert validate_name(name) == name.lstrip("/")
    else:
        with pytest.raises(InvalidParameter):
            validate_name(name)


@pytest.mark.parametrize("secs,text", [(0.5, "Less than a second"), (1, "1 second"), (5, "5 seconds"),
                                       (65, "About a minute"), (600, "10 minutes"), (3700, "About an hour"),
                                       (5 * 3600, "5 hours"), (3 * 86400, "3 days"), (20 * 86400, "2 weeks")])
def test_human_duration(secs, text):
    assert human_duration(secs) == text


def test_command_text_quotes_like_docker():
    c = Container(id="a" * 64, name="n", created="2026-01-01T00:00:00Z", image="busybox", image_id="sha256:x",
                  config={}, host_config={}, path="sh", args=["-c", "echo hi"])
    assert c.command_text() == "sh -c 'echo hi'"
    row = c.to_row()
    back = Container.from_row(row[2])
    assert back == c
    assert c.summary()["Names"] == ["/n"] and c.summary()["Status"] == "Created"
