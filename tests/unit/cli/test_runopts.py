"""`run`/`create` flags -> the POST /containers/create body, as the docker CLI builds it."""

import pytest

from sampan.cli.args import UsageError, parse
from sampan.cli.runopts import (RUN_OPTS, build_create, parse_bytes, parse_mount, parse_port_spec,
                                parse_ulimit)


def body_for(*argv, env=None):
    ns, pos = parse(list(argv), RUN_OPTS, interspersed=False, help_short=False)
    return build_create(ns, pos[0], pos[1:])


def test_minimal_attached_run():
    body, query = body_for("busybox", "echo", "hi")
    assert body["Image"] == "busybox" and body["Cmd"] == ["echo", "hi"]
    assert body["AttachStdout"] and body["AttachStderr"] and not body["AttachStdin"]
    assert not body["OpenStdin"] and not body["StdinOnce"] and not body["Tty"]
    assert body["Entrypoint"] is None
    hc = body["HostConfig"]
    assert hc["NetworkMode"] == "default" and hc["AutoRemove"] is False
    assert hc["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
    assert query == {}
    assert "NetworkingConfig" not in body


def test_no_command_sends_null_cmd():
    body, _ = body_for("busybox")
    assert body["Cmd"] is None


def test_interactive_tty_detach():
    body, _ = body_for("-it", "busybox")
    assert body["AttachStdin"] and body["OpenStdin"] and body["StdinOnce"] and body["Tty"]
    body, _ = body_for("-d", "-i", "busybox")
    assert not body["AttachStdin"] and not body["AttachStdout"] and body["OpenStdin"] and not body["StdinOnce"]


def test_everything(tmp_path, monkeypatch):
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROMFILE=1\n\nPASS_ME\nUNSET_ONE\n")
    monkeypatch.setenv("PASS_ME", "yes")
    monkeypatch.delenv("UNSET_ONE", raising=False)
    monkeypatch.setenv("HOSTVAR", "hv")
    body, query = body_for(
        "--name", "web", "--rm", "-e", "A=1", "-e", "HOSTVAR", "--env-file", str(envf), "-w", "/srv",
        "-u", "1000:1000", "-h", "box", "--entrypoint", "/bin/sh", "-l", "a=b", "--label", "c",
        "--network", "none", "--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
        "--read-only", "--init", "--ulimit", "nofile=1024:2048", "--runtime", "runc",
        "--group-add", "audio", "-p", "127.0.0.1:8080:80/udp", "-p", "9000:90", "--expose", "7000-7001",
        "-v", "/host:/ctr:ro", "-v", "named:/data", "-v", "/anon",
        "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/run:size=64k",
        "-m", "512m", "--cpus", "1.5", "--pids-limit", "100", "--stop-signal", "SIGUSR1",
        "--add-host", "db=10.0.0.2", "--dns", "1.1.1.1", "--platform", "linux/amd64",
        "busybox", "-c", "true")
    assert query == {"name": "web", "platform": "linux/amd64"}
    assert body["Env"] == ["FROMFILE=1", "PASS_ME=yes", "A=1", "HOSTVAR=hv"]
    assert body["WorkingDir"] == "/srv" and body["User"] == "1000:1000" and body["Hostname"] == "box"
    assert body["Entrypoint"] == ["/bin/sh"] and body["Cmd"] == ["-c", "true"]
    assert body["Labels"] == {"a": "b", "c": ""}
    assert body["StopSignal"] == "SIGUSR1"
    assert body["Volumes"] == {"/anon": {}}
    assert body["ExposedPorts"] == {"80/udp": {}, "90/tcp": {}, "7000/tcp": {}, "7001/tcp": {}}
    hc = body["HostConfig"]
    assert hc["AutoRemove"] and hc["NetworkMode"] == "none" and hc["Privileged"]
    assert hc["CapAdd"] == ["NET_ADMIN"] and hc["CapDrop"] == ["ALL"]
    assert hc["ReadonlyRootfs"] and hc["Init"] is True and hc["Runtime"] == "runc"
    assert hc["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert hc["GroupAdd"] == ["audio"]
    assert hc["PortBindings"] == {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                                  "90/tcp": [{"HostIp": "", "HostPort": "9000"}]}
    assert hc["Binds"] == ["/host:/ctr:ro", "named:/data"]
    assert hc["Mounts"] == [{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1 << 20}}]
    assert hc["Tmpfs"] == {"/run": "size=64k"}
    assert hc["Memory"] == 512 << 20 and hc["NanoCpus"] == 1_500_000_000 and hc["PidsLimit"] == 100
    assert hc["ExtraHosts"] == ["db:10.0.0.2"] and hc["Dns"] == ["1.1.1.1"]


def test_empty_entrypoint_resets_it():
    body, _ = body_for("--entrypoint", "", "busybox")
    assert body["Entrypoint"] == [""]


def test_user_network_gets_endpoint_config():
    body, _ = body_for("--network", "mynet", "--network-alias", "db", "--ip", "10.1.0.5", "busybox")
    assert body["HostConfig"]["NetworkMode"] == "mynet"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"mynet": {
        "Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.1.0.5"}}}}


def test_restart_policies():
    body, _ = body_for("--restart", "on-failure:3", "busybox")
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    with pytest.raises(UsageError, match="Conflicting options: --restart and --rm"):
        body_for("--restart", "always", "--rm", "busybox")
    with pytest.raises(UsageError):
        body_for("--restart", "sometimes", "busybox")


def test_relative_bind_source_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body, _ = body_for("-v", "./data:/data", "busybox")
    assert body["HostConfig"]["Binds"] == [f"{tmp_path}/data:/data"]


@pytest.mark.parametrize("spec,want", [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("0.0.0.0::80", [("80/tcp", {"HostIp": "0.0.0.0", "HostPort": ""})]),
    ("[::1]:8080:80/udp", [("80/udp", {"HostIp": "::1", "HostPort": "8080"})]),
    ("8000-8001:80-81", [("80/tcp", {"HostIp": "", "HostPort": "8000"}),
                         ("81/tcp", {"HostIp": "", "HostPort": "8001"})]),
    ("8000-8010:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8010"})]),
])
def test_port_specs(spec, want):
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize("spec", ["80/icmp", "a:b:c:d", "99999", "8000-8002:80-81", ":", "x"])
def test_bad_port_specs(spec):
    with pytest.raises(UsageError):
        parse_port_spec(spec)


def test_mounts():
    assert parse_mount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rprivate") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True,
        "BindOptions": {"Propagation": "rprivate"}}
    assert parse_mount("source=v,target=/d,volume-label=x=y,volume-nocopy") == {
        "Type": "volume", "Source": "v", "Target": "/d",
        "VolumeOptions": {"Labels": {"x": "y"}, "NoCopy": True}}
    for bad in ("type=bind,target=/b", "type=nope,target=/x", "source=/a", "bogus=1,target=/x", "target"):
        with pytest.raises(UsageError):
            parse_mount(bad)


@pytest.mark.parametrize("v,want", [("512m", 512 << 20), ("1g", 1 << 30), ("1.5GiB", int(1.5 * (1 << 30))),
                                    ("100", 100), ("2kb", 2048), ("-1", -1)])
def test_bytes(v, want):
    assert parse_bytes(v, "--memory") == want


@pytest.mark.parametrize("v", ["lots", "1x", "", "-5m"])
def test_bad_bytes(v):
    with pytest.raises(UsageError):
        parse_bytes(v, "--memory")


def test_ulimits():
    assert parse_ulimit("nproc=10") == {"Name": "nproc", "Soft": 10, "Hard": 10}
    for bad in ("nofile", "nofile=a", "nofile=10:5"):
        with pytest.raises(UsageError):
            parse_ulimit(bad)


def test_bad_volume_specs():
    for bad in ("relative", "a:b", "/a:/b:ro:extra", "/a:"):
        with pytest.raises(UsageError):
            body_for("-v", bad, "busybox")


def test_env_file_missing_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="open"):
        body_for("--env-file", str(tmp_path / "nope"), "busybox")
