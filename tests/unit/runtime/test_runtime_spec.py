"""build_spec: Docker's Config/HostConfig + image config -> OCI config.json, without root."""

from __future__ import annotations

import resource

import pytest

from sampan.errors import InvalidParameter
from sampan.linux import caps
from sampan.runtime.spec import (ANN_GROUPS, ANN_USER, DEFAULT_MASKED_PATHS, DEFAULT_PATH,
                                 DEFAULT_READONLY_PATHS, build_exec_process, build_spec,
                                 replace_or_append_env, resolve_args)

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def spec(config=None, host_config=None, image=None, etc=None, **kw):
    return build_spec(config=config if config is not None else {"Cmd": ["sh"]},
                      host_config=host_config or {}, image_config=image or {},
                      rootfs="/r", hostname="abc123", etc_files=etc or {},
                      container_id="abc123def", **kw)


def mounts_by_dest(s):
    return {m["destination"]: m for m in s["mounts"]}


# --- Entrypoint / Cmd (moby's merge + getEntrypointAndArgs) ---------------------------------

IMG = {"Entrypoint": ["/ep", "-x"], "Cmd": ["img-cmd"]}


@pytest.mark.parametrize("config,image,expected", [
    ({}, {"Cmd": ["sh"]}, ["sh"]),
    ({"Cmd": ["ls", "-l"]}, {"Cmd": ["sh"]}, ["ls", "-l"]),
    ({}, IMG, ["/ep", "-x", "img-cmd"]),
    ({"Cmd": ["arg"]}, IMG, ["/ep", "-x", "arg"]),
    # A container entrypoint replaces the image's, and then the image Cmd is NOT used...
    ({"Entrypoint": ["/mine"]}, IMG, ["/mine"]),
    # ...unless the container gives its own Cmd.
    ({"Entrypoint": ["/mine"], "Cmd": ["a"]}, IMG, ["/mine", "a"]),
    # `--entrypoint ""` ([""]) drops the image entrypoint; image Cmd applies if no Cmd.
    ({"Entrypoint": [""]}, IMG, ["img-cmd"]),
    ({"Entrypoint": [""], "Cmd": ["echo", "hi"]}, IMG, ["echo", "hi"]),
    ({"Entrypoint": []}, IMG, ["img-cmd"]),
    # Strings are accepted as one-element StrSlices.
    ({"Entrypoint": "/s", "Cmd": "c"}, {}, ["/s", "c"]),
    # Null Cmd in the container means "unset", not "empty".
    ({"Cmd": None}, {"Cmd": ["x"]}, ["x"]),
])
def test_entrypoint_cmd_matrix(config, image, expected):
    assert resolve_args(config, image) == expected
    assert spec(config, image=image)["process"]["args"] == expected


def test_image_config_may_be_wrapped():
    assert resolve_args({}, {"config": {"Cmd": ["wrapped"]}}) == ["wrapped"]
    assert resolve_args({}, {"Config": {"Cmd": ["wrapped"]}}) == ["wrapped"]


@pytest.mark.parametrize("config,image", [({}, {}), ({"Entrypoint": [""]}, {"Entrypoint": ["x"]}),
                                          ({"Cmd": []}, {})])
def test_no_command(config, image):
    with pytest.raises(InvalidParameter, match="no command specified"):
        resolve_args(config, image)


def test_bad_cmd_type():
    with pytest.raises(InvalidParameter):
        resolve_args({"Cmd": [1, 2]}, {})


def test_init_prefix_and_mount():
    s = spec({"Cmd": ["sleep", "1"]}, {"Init": True})
    assert s["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    m = mounts_by_dest(s)["/sbin/docker-init"]
    assert m["source"] == "/usr/bin/tini-static" and "ro" in m["options"]
    s = spec({"Cmd": ["x"]}, {"Init": True}, init_path="/opt/tini")
    assert mounts_by_dest(s)["/sbin/docker-init"]["source"] == "/opt/tini"


# --- Env ------------------------------------------------------------------------------------

def test_env_defaults_and_merge():
    s = spec({"Cmd": ["x"], "Env": ["A=1", "PATH=/mine"]},
             image={"Env": ["A=img", "B=2", "PATH=/img"]})
    env = s["process"]["env"]
    assert env[0] == "PATH=/mine"  # replaced in place
    assert "HOSTNAME=abc123" in env
    assert "A=1" in env and "A=img" not in env
    assert "B=2" in env
    assert not any(e.startswith("TERM=") for e in env)


def test_env_tty_and_default_path():
    env = spec({"Cmd": ["x"], "Tty": True})["process"]["env"]
    assert env == ["PATH=" + DEFAULT_PATH, "HOSTNAME=abc123", "TERM=xterm"]


def test_env_unset_by_bare_key():
    assert replace_or_append_env(["PATH=/x", "HOSTNAME=h"], ["HOSTNAME", "A=1"]) == [
        "PATH=/x", "A=1"]


def test_image_env_used_when_container_has_none():
    env = spec({"Cmd": ["x"]}, image={"Env": ["PATH=/img/bin", "LANG=C"]})["process"]["env"]
    assert env == ["PATH=/img/bin", "HOSTNAME=abc123", "LANG=C"]


# --- WorkingDir / User ----------------------------------------------------------------------

def test_workdir():
    assert spec({"Cmd": ["x"]})["process"]["cwd"] == "/"
    assert spec({"Cmd": ["x"]}, image={"WorkingDir": "/app"})["process"]["cwd"] == "/app"
    assert spec({"Cmd": ["x"], "WorkingDir": "/a/../b/"})["process"]["cwd"] == "/b"
    with pytest.raises(InvalidParameter, match="absolute path"):
        spec({"Cmd": ["x"], "WorkingDir": "rel"})


def test_user_kept_symbolic():
    s = spec({"Cmd": ["x"], "User": "www:staff"}, {"GroupAdd": ["audio", 44]})
    assert s["annotations"][ANN_USER] == "www:staff"
    assert s["annotations"][ANN_GROUPS] == "audio,44"
    assert s["process"]["user"] == {"uid": 0, "gid": 0}
    assert spec({"Cmd": ["x"]}, image={"User": "1000"})["annotations"][ANN_USER] == "1000"


# --- capabilities ---------------------------------------------------------------------------

def caps_of(hc):
    c = spec({"Cmd": ["x"]}, hc)["process"]["capabilities"]
    assert c["bounding"] == c["effective"] == c["permitted"]
    return c["bounding"]


def test_default_caps_are_dockers():
    assert caps_of({}) == DEFAULT_CAPS
    assert hex(caps.to_mask(DEFAULT_CAPS)) == "0xa80425fb"


@pytest.mark.parametrize("hc,present,absent", [
    ({"CapAdd": ["NET_ADMIN"]}, ["CAP_NET_ADMIN", "CAP_CHOWN"], []),
    ({"CapAdd": ["cap_sys_admin"]}, ["CAP_SYS_ADMIN"], []),
    ({"CapDrop": ["CHOWN", "CAP_KILL"]}, ["CAP_MKNOD"], ["CAP_CHOWN", "CAP_KILL"]),
    ({"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"]}, ["CAP_NET_BIND_SERVICE"],
     ["CAP_CHOWN"]),
    ({"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]}, ["CAP_SYS_PTRACE", "CAP_NET_ADMIN"],
     ["CAP_SYS_ADMIN"]),
])
def test_cap_add_drop(hc, present, absent):
    got = caps_of(hc)
    for c in present:
        assert c in got
    for c in absent:
        assert c not in got
    assert len(got) == len(set(got))


def test_cap_drop_all_alone():
    assert caps_of({"CapDrop": ["all"]}) == []


def test_unknown_cap():
    with pytest.raises(InvalidParameter, match='unknown capability: "CAP_BOGUS"'):
        caps_of({"CapAdd": ["BOGUS"]})


def test_privileged():
    s = spec({"Cmd": ["x"]}, {"Privileged": True})
    assert s["process"]["capabilities"]["bounding"] == caps.all_caps()
    assert s["linux"]["maskedPaths"] == [] and s["linux"]["readonlyPaths"] == []
    m = mounts_by_dest(s)
    assert "ro" not in m["/sys"]["options"]
    assert s["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


# --- mounts ---------------------------------------------------------------------------------

def test_default_mounts():
    s = spec()
    m = mounts_by_dest(s)
    assert list(m)[:7] == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
                           "/dev/shm"]
    assert m["/dev/pts"]["options"] == ["nosuid", "noexec", "newinstance", "ptmxmode=0666",
                                        "mode=0620", "gid=5"]
    assert "size=67108864" in m["/dev/shm"]["options"]
    assert "ro" in m["/sys"]["options"] and "ro" in m["/sys/fs/cgroup"]["options"]
    assert s["linux"]["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert s["linux"]["readonlyPaths"] == list(DEFAULT_READONLY_PATHS)
    assert s["root"] == {"path": "/r", "readonly": False}


def test_shm_size_and_ipc_modes():
    assert "size=1048576" in mounts_by_dest(spec(host_config={"ShmSize": 1048576}))[
        "/dev/shm"]["options"]
    assert "/dev/shm" not in mounts_by_dest(spec(host_config={"IpcMode": "none"}))
    host = spec(host_config={"IpcMode": "host"})
    assert mounts_by_dest(host)["/dev/shm"]["source"] == "/dev/shm"
    assert "ipc" not in [n["type"] for n in host["linux"]["namespaces"]]


def test_etc_files_and_readonly_rootfs():
    etc = {"/etc/hosts": "/c/hosts", "/etc/resolv.conf": "/c/resolv.conf",
           "/etc/hostname": "/c/hostname"}
    m = mounts_by_dest(spec(etc=etc))
    assert m["/etc/hosts"]["source"] == "/c/hosts" and "ro" not in m["/etc/hosts"]["options"]
    s = spec(etc=etc, host_config={"ReadonlyRootfs": True})
    assert s["root"]["readonly"] is True
    assert "ro" in mounts_by_dest(s)["/etc/resolv.conf"]["options"]


def test_tmpfs_options_and_override():
    s = spec(host_config={"Tmpfs": {"/run": "rw,exec,size=10m", "/dev/shm": ""}})
    m = mounts_by_dest(s)
    assert m["/run"]["type"] == "tmpfs"
    assert "exec" in m["/run"]["options"] and "noexec" not in m["/run"]["options"]
    assert "nosuid" in m["/run"]["options"] and "size=10m" in m["/run"]["options"]
    # A user tmpfs on /dev/shm replaces the default one: one mount at that destination.
    assert [x["destination"] for x in s["mounts"]].count("/dev/shm") == 1
    assert m["/dev/shm"]["source"] == "tmpfs"


def test_extra_mounts_sorted_and_user_dev_replaces_defaults():
    s = spec(mounts=[{"destination": "/a/b", "type": "bind", "source": "/x", "options": []},
                     {"destination": "/a", "type": "bind", "source": "/y", "options": []}])
    dests = [m["destination"] for m in s["mounts"]]
    assert dests.index("/a") < dests.index("/a/b")
    s = spec(mounts=[{"destination": "/dev", "type": "bind", "source": "/dev",
                      "options": ["rbind"]}])
    dests = [m["destination"] for m in s["mounts"]]
    assert "/dev/pts" not in dests and "/dev/shm" not in dests and dests.count("/dev") == 1


def test_hostile_mount_destinations():
    with pytest.raises(InvalidParameter):
        spec(host_config={"Tmpfs": {"relative": ""}})
    with pytest.raises(InvalidParameter):
        spec(mounts=[{"destination": "x/../y", "type": "bind", "source": "/"}])
    m = mounts_by_dest(spec(host_config={"Tmpfs": {"/a/../../../etc": ""}}))
    assert "/etc" in m  # normalised: always inside the container's root


def test_masked_readonly_overrides():
    s = spec(host_config={"MaskedPaths": ["/proc/x"], "ReadonlyPaths": []})
    assert s["linux"]["maskedPaths"] == ["/proc/x"] and s["linux"]["readonlyPaths"] == []


# --- namespaces -----------------------------------------------------------------------------

def ns_types(s):
    return [n["type"] for n in s["linux"]["namespaces"]]


def test_namespaces_default_and_host_modes():
    assert ns_types(spec()) == ["pid", "network", "ipc", "uts", "mount", "cgroup"]
    s = spec(host_config={"NetworkMode": "host", "PidMode": "host", "UTSMode": "host",
                          "IpcMode": "host", "CgroupnsMode": "host"})
    assert ns_types(s) == ["mount"]
    assert "hostname" not in s
    assert spec()["hostname"] == "abc123"
    assert spec(host_config={"NetworkMode": "none"})["linux"]["namespaces"][1] == {
        "type": "network"}


def test_container_mode_needs_path():
    with pytest.raises(InvalidParameter):
        spec(host_config={"NetworkMode": "container:abc"})
    s = spec(host_config={"NetworkMode": "container:abc"},
             ns_paths={"network": "/proc/42/ns/net"})
    assert {"type": "network", "path": "/proc/42/ns/net"} in s["linux"]["namespaces"]


def test_domainname():
    assert spec({"Cmd": ["x"], "Domainname": "example.org"})["domainname"] == "example.org"


# --- rlimits, sysctls, security opts --------------------------------------------------------

def test_ulimits_and_clamp():
    s = spec(host_config={"Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}]})
    assert s["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}]
    own = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if own != resource.RLIM_INFINITY:
        s = spec(host_config={"Ulimits": [{"Name": "nofile", "Soft": own + 10,
                                           "Hard": own + 10}]})
        assert s["process"]["rlimits"][0]["hard"] == own
        assert s["process"]["rlimits"][0]["soft"] == own


@pytest.mark.parametrize("ul", [[{"Name": "bogus", "Soft": 1, "Hard": 1}],
                                [{"Name": "nofile", "Soft": 5, "Hard": 1}],
                                [{"Name": "nofile", "Soft": "x", "Hard": 1}], ["nofile"]])
def test_bad_ulimits(ul):
    with pytest.raises(InvalidParameter):
        spec(host_config={"Ulimits": ul})


def test_sysctls():
    s = spec(host_config={"Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": 100}})
    assert s["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shmmax": "100"}
    for bad in ({"kernel.hostname": "x"}, {"vm.swappiness": "1"},
                {"net/../../etc": "1"}, {"net..ipv4": "1"}, {"net": "1"}):
        with pytest.raises(InvalidParameter):
            spec(host_config={"Sysctls": bad})
    with pytest.raises(InvalidParameter, match="host network"):
        spec(host_config={"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"})


def test_security_opts():
    assert spec()["process"]["noNewPrivileges"] is False
    for o in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
        assert spec(host_config={"SecurityOpt": [o]})["process"]["noNewPrivileges"] is True
    assert spec(host_config={"SecurityOpt": ["seccomp=unconfined"]})
    with pytest.raises(InvalidParameter):
        spec(host_config={"SecurityOpt": ["bogus"]})


def test_the_daemons_seccomp_profile_is_the_default_a_container_can_override():
    import json
    deny = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []})
    builtin = spec()["linux"]["seccomp"]
    assert builtin["syscalls"]
    assert spec(default_seccomp=deny)["linux"]["seccomp"]["syscalls"] == []
    assert "seccomp" not in spec(default_seccomp="unconfined")["linux"]
    for default in (deny, "unconfined"):
        assert spec(host_config={"SecurityOpt": ["seccomp=builtin"]},
                    default_seccomp=default)["linux"]["seccomp"] == builtin
    assert "seccomp" not in spec(host_config={"SecurityOpt": ["seccomp=unconfined"]},
                                 default_seccomp=deny)["linux"]
    assert "seccomp" not in spec(host_config={"Privileged": True}, default_seccomp=deny)["linux"]


def test_terminal_and_stop_signal():
    s = spec({"Cmd": ["x"], "Tty": True, "StopSignal": "SIGINT"})
    assert s["process"]["terminal"] is True
    assert s["annotations"]["org.sampan.stop-signal"] == "SIGINT"


def test_devices_listed():
    devs = {d["path"]: (d["major"], d["minor"]) for d in spec()["linux"]["devices"]}
    assert devs == {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}


# --- exec -----------------------------------------------------------------------------------

def test_build_exec_process():
    s = spec({"Cmd": ["x"], "User": "app", "Env": ["A=1"], "WorkingDir": "/w"},
             {"GroupAdd": ["g"]})
    p = build_exec_process(s, cmd=["ls"], env=["A=2", "B=3"], tty=True)
    assert p["args"] == ["ls"] and p["username"] == "app" and p["cwd"] == "/w"
    assert "A=2" in p["env"] and "B=3" in p["env"] and "TERM=xterm" in p["env"]
    assert p["groupAdd"] == ["g"]
    p = build_exec_process(s, cmd=["ls"], user="0", workdir="/tmp", privileged=True)
    assert p["username"] == "0" and p["cwd"] == "/tmp"
    assert p["capabilities"]["bounding"] == caps.all_caps()
    with pytest.raises(InvalidParameter):
        build_exec_process(s, cmd=[])


def test_user_devices_and_root_destination():
    s = spec(host_config={"Devices": [{"PathOnHost": "/dev/null",
                                       "PathInContainer": "/dev/xnull",
                                       "CgroupPermissions": "rw"}]})
    d = {x["path"]: x for x in s["linux"]["devices"]}["/dev/xnull"]
    assert (d["type"], d["major"], d["minor"]) == ("c", 1, 3)
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in \
        s["linux"]["resources"]["devices"]
    for bad in ([{"PathOnHost": "/etc/passwd"}], [{"PathOnHost": "/dev/null",
                                                   "CgroupPermissions": "rwx"}], ["x"]):
        with pytest.raises(InvalidParameter):
            spec(host_config={"Devices": bad})
    with pytest.raises(InvalidParameter, match="destination can't be '/'"):
        spec(host_config={"Tmpfs": {"/": ""}})
    with pytest.raises(InvalidParameter, match="destination can't be '/'"):
        spec(mounts=[{"destination": "/a/..", "type": "bind", "source": "/x"}])
