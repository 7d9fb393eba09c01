"""The `sampan` commands as a real process against a scripted Engine API peer: what they send,
what they print and how they exit."""

import json
import time

import pytest

CID = "c" * 64


def _container_json(tty=False, running=True, exit_code=0, open_stdin=False):
    return {"Id": CID, "Name": "/web", "Config": {"Tty": tty, "OpenStdin": open_stdin},
            "State": {"Running": running, "Paused": False, "ExitCode": exit_code, "Pid": 77},
            "HostConfig": {"AutoRemove": False}}


def _attached_run(fake, output_frames: bytes, exit_code: int, echo_stdin: bool = False):
    """Script create -> wait -> attach -> start like a daemon; the wait answers after attach ends."""
    done = []

    def attach(sock, req, f):
        data = b""
        if echo_stdin:
            while True:
                b = f.read1(65536)
                if not b:
                    break
                data += b
        sock.sendall(output_frames + (fake.frame(1, b"stdin:" + data) if echo_stdin else b""))
        sock.close()
        done.append(time.monotonic())

    def wait(req):
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        return fake.json({"StatusCode": exit_code})

    fake.route("POST", "/containers/create", fake.json({"Id": CID, "Warnings": []}, 201))
    fake.route("POST", f"/containers/{CID}/wait", wait)
    fake.route("POST", f"/containers/{CID}/attach", fake.hijack(attach, "application/vnd.docker.multiplexed-stream"))
    fake.route("POST", f"/containers/{CID}/start", lambda r: ("full", 204, {}, b""))


def test_run_attached_order_output_and_exit_code(fake, cli):
    _attached_run(fake, fake.frame(1, b"out\n") + fake.frame(2, b"err\n"), 3)
    r = cli("run", "--name", "web", "busybox", "sh", "-c", "echo")
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n" and r.stderr == "err\n"
    paths = [(q.method, q.path.split("/")[-1]) for q in fake.requests]
    # What matters (and what docker's CLI guarantees): create first, and start only once the
    # wait and the attach are both in place. The fake server's threads may log those two in
    # either order.
    assert paths[0] == ("POST", "create")
    start = paths.index(("POST", "start"))
    assert paths.index(("POST", "wait")) < start and paths.index(("POST", "attach")) < start
    create = fake.find("POST", "/v1.45/containers/create")[0]
    assert create.q("name") == "web" and create.json()["Cmd"] == ["sh", "-c", "echo"]
    attach = fake.find("POST", f"/v1.45/containers/{CID}/attach")[0]
    assert attach.q("stream") == "1" and attach.q("stdout") == "1" and attach.q("stdin") == "0"
    assert fake.find("POST", f"/v1.45/containers/{CID}/wait")[0].q("condition") == "next-exit"


def test_run_rm_waits_for_removal(fake, cli):
    _attached_run(fake, b"", 0)
    r = cli("run", "--rm", "busybox", "true")
    assert r.returncode == 0, r.stderr
    assert fake.find("POST", f"/v1.45/containers/{CID}/wait")[0].q("condition") == "removed"
    assert fake.find("POST", "/v1.45/containers/create")[0].json()["HostConfig"]["AutoRemove"] is True


def test_run_interactive_forwards_stdin_then_half_closes(fake, cli):
    _attached_run(fake, b"", 0, echo_stdin=True)
    r = cli("run", "-i", "busybox", "cat", input="line1\nline2\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "stdin:line1\nline2\n"
    assert fake.find("POST", f"/v1.45/containers/{CID}/attach")[0].q("stdin") == "1"


def test_run_detached_prints_full_id(fake, cli):
    fake.route("POST", "/containers/create", fake.json({"Id": CID, "Warnings": ["careful"]}, 201))
    fake.route("POST", f"/containers/{CID}/start", lambda r: ("full", 204, {}, b""))
    r = cli("run", "-d", "busybox", "sleep", "9")
    assert r.returncode == 0 and r.stdout == CID + "\n"
    assert "WARNING: careful" in r.stderr
    assert not fake.find("POST", f"/v1.45/containers/{CID}/attach")


def test_run_missing_image(fake, cli):
    # docker's CLI: say so, pull, and report the pull's failure
    denied = "pull access denied for nope, repository does not exist or may require 'docker login'"
    fake.route("POST", "/containers/create", fake.error(404, "No such image: nope:latest"))
    fake.route("POST", "/images/create", fake.error(404, denied))
    r = cli("run", "nope")
    assert r.returncode == 125
    assert r.stderr == ("Unable to find image 'nope:latest' locally\n"
                        f"Error response from daemon: {denied}\n")
    req = fake.find("POST", "/v1.45/images/create")[0]
    assert (req.q("fromImage"), req.q("tag")) == ("nope", "latest")
    r = cli("run", "--pull", "never", "nope")
    assert r.returncode == 125 and r.stderr.endswith("No such image: nope:latest\n")


@pytest.mark.parametrize("msg,code", [('exec: "x": executable file not found in $PATH', 127),
                                      ("exec /etc: permission denied", 126), ("boom", 125)])
def test_run_start_failure_exit_codes(fake, cli, msg, code):
    _attached_run(fake, b"", 0)
    fake.route("POST", f"/containers/{CID}/start", fake.error(400, msg))
    r = cli("run", "busybox", "x")
    assert r.returncode == code and f"Error response from daemon: {msg}" in r.stderr


def test_create_prints_id_and_cidfile(fake, cli, tmp_path):
    fake.route("POST", "/containers/create", fake.json({"Id": CID, "Warnings": None}, 201))
    r = cli("create", "--cidfile", str(tmp_path / "cid"), "-t", "busybox")
    assert r.returncode == 0 and r.stdout == CID + "\n"
    assert (tmp_path / "cid").read_text() == CID
    r = cli("create", "--cidfile", str(tmp_path / "cid"), "busybox")
    assert r.returncode == 125 and "Container ID file found" in r.stderr


def test_daemon_unreachable(cli, tmp_path):
    r = cli("ps", env={"SAMPAN_HOST": f"unix://{tmp_path}/nothing.sock"})
    assert r.returncode == 1
    assert r.stderr == (f"Cannot connect to the sampan daemon at unix://{tmp_path}/nothing.sock: "
                        "Is the sampan daemon running?\n")


def test_host_flag_beats_env(fake, cli, tmp_path):
    fake.route("GET", "/containers/json", fake.json([]))
    r = cli("-H", fake.host, "ps", "-q", env={"SAMPAN_HOST": f"unix://{tmp_path}/x.sock"})
    assert r.returncode == 0 and r.stdout == ""


def test_ps_table_quiet_and_filters(fake, cli):
    items = [{"Id": CID, "Names": ["/web"], "Image": "busybox", "Command": "sleep 100",
              # 30 minutes: a CLI slow to start on a busy host still prints the same words.
              "Created": int(time.time()) - 1800, "Status": "Up 5 seconds", "State": "running",
              "Ports": [], "Labels": {}, "Mounts": [], "NetworkSettings": {"Networks": {"bridge": {}}}}]
    fake.route("GET", "/containers/json", fake.json(items))
    r = cli("ps", "-a", "--filter", "status=running", "--filter", "name=web")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert lines[1].startswith("cccccccccccc   busybox   \"sleep 100\"   30 minutes ago   Up 5 seconds")
    q = fake.requests[-1]
    assert q.q("all") == "1" and json.loads(q.q("filters")) == {"status": {"running": True}, "name": {"web": True}}
    assert cli("ps", "-q").stdout == "cccccccccccc\n"
    assert cli("container", "ls", "-q", "--no-trunc").stdout == CID + "\n"
    assert cli("ps", "--format", "{{.Names}}|{{.State}}").stdout == "web|running\n"
    assert cli("ps", "-l", "-q").returncode == 0 and fake.requests[-1].q("limit") == "1"
    r = cli("ps", "--format", "{{.Nope}}")
    assert r.returncode == 1 and "can't evaluate field Nope" in r.stderr


def test_multi_target_commands_continue_and_fail(fake, cli):
    fake.route("DELETE", "/containers/a", lambda r: ("full", 204, {}, b""))
    fake.route("DELETE", "/containers/b", fake.error(404, "No such container: b"))
    r = cli("rm", "-f", "-v", "a", "b")
    assert r.returncode == 1
    assert r.stdout == "a\n" and r.stderr == "Error response from daemon: No such container: b\n"
    q = fake.find("DELETE", "/v1.45/containers/a")[0]
    assert q.q("force") == "1" and q.q("v") == "1"


def test_stop_kill_restart_wait_rename(fake, cli):
    ok = lambda r: ("full", 204, {}, b"")  # noqa: E731
    for verb in ("stop", "kill", "restart", "rename"):
        fake.route("POST", f"/containers/web/{verb}", ok)
    fake.route("POST", "/containers/web/wait", fake.json({"StatusCode": 4}))
    assert cli("stop", "-t", "3", "-s", "USR1", "web").stdout == "web\n"
    q = fake.requests[-1]
    assert q.q("t") == "3" and q.q("signal") == "USR1"
    assert cli("kill", "-s", "HUP", "web").stdout == "web\n"
    assert fake.requests[-1].q("signal") == "HUP"
    assert cli("restart", "web").returncode == 0
    assert cli("wait", "web").stdout == "4\n"
    assert cli("rename", "web", "new").returncode == 0 and fake.requests[-1].q("name") == "new"


def test_exec_flow(fake, cli):
    fake.route("POST", "/containers/web/exec", fake.json({"Id": "e1"}, 201))

    def start(sock, req, f):
        sock.sendall(fake.frame(1, b"exec-out\n") + fake.frame(2, b"exec-err\n"))
        sock.close()
    fake.route("POST", "/exec/e1/start", fake.hijack(start, "application/vnd.docker.multiplexed-stream"))
    fake.route("GET", "/exec/e1/json", fake.json({"ExitCode": 42, "Running": False}))
    r = cli("exec", "-e", "A=1", "-u", "nobody", "-w", "/tmp", "web", "sh", "-c", "x")
    assert r.returncode == 42 and r.stdout == "exec-out\n" and r.stderr == "exec-err\n"
    body = fake.find("POST", "/v1.45/containers/web/exec")[0].json()
    assert body["Cmd"] == ["sh", "-c", "x"] and body["Env"] == ["A=1"] and body["User"] == "nobody"
    assert body["WorkingDir"] == "/tmp" and body["AttachStdout"] and not body["AttachStdin"]
    assert fake.find("POST", "/v1.45/exec/e1/start")[0].json() == {"Detach": False, "Tty": False}


def test_logs_demux_and_query(fake, cli):
    fake.route("GET", "/containers/web/logs", fake.chunked(
        [fake.frame(1, b"a\n"), fake.frame(2, b"b\n")], content_type="application/vnd.docker.multiplexed-stream"))
    r = cli("logs", "--tail", "5", "-t", "--since", "10m", "web")
    assert r.returncode == 0 and r.stdout == "a\n" and r.stderr == "b\n"
    q = fake.requests[-1]
    assert q.q("tail") == "5" and q.q("timestamps") == "1"
    assert abs(float(q.q("since")) - (time.time() - 600)) < 30


def test_logs_tty_container_is_raw(fake, cli):
    fake.route("GET", "/containers/web/logs", fake.raw(b"\x01raw", content_type="application/octet-stream"))
    fake.route("GET", "/containers/web/json", fake.json(_container_json(tty=True)))
    r = cli("logs", "web")
    assert r.stdout == "\x01raw"


def test_inspect(fake, cli):
    fake.route("GET", "/containers/web/json", fake.json(_container_json()))
    fake.route("GET", "/containers/busybox/json", fake.error(404, "No such container: busybox"))
    fake.route("GET", "/images/busybox/json", fake.json({"Id": "sha256:" + "b" * 64, "Config": {"Cmd": ["sh"]}}))
    fake.route("GET", "/containers/nope/json", fake.error(404, "No such container: nope"))
    fake.route("GET", "/images/nope/json", fake.error(404, "No such image: nope"))
    r = cli("inspect", "-f", "{{.State.Pid}}", "web")
    assert r.stdout == "77\n"
    r = cli("inspect", "busybox")
    assert json.loads(r.stdout)[0]["Config"]["Cmd"] == ["sh"] and r.stdout.startswith("[\n    {")
    r = cli("inspect", "nope")
    assert r.returncode == 1 and r.stdout == "[]\n" and r.stderr == "Error: No such object: nope\n"
    r = cli("image", "inspect", "-f", "{{json .Config.Cmd}}", "busybox")
    assert r.stdout == '["sh"]\n'
    r = cli("container", "inspect", "nope")
    assert r.returncode == 1 and "No such container: nope" in r.stderr


def test_images_and_image_commands(fake, cli, tmp_path):
    img = {"Id": "sha256:" + "b" * 64, "RepoTags": ["busybox:latest"], "RepoDigests": [],
           "Created": int(time.time()) - 120, "Size": 1982000}
    fake.route("GET", "/images/json", fake.json([img]))
    r = cli("images")
    assert r.stdout.splitlines()[1].split() == ["busybox", "latest", "b" * 12, "2", "minutes", "ago", "1.98MB"]
    assert cli("images", "-q").stdout == "b" * 12 + "\n"
    cli("images", "busybox")
    assert json.loads(fake.requests[-1].q("filters")) == {"reference": {"busybox": True}}
    assert cli("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout == "busybox:latest\n"

    fake.route("POST", "/images/busybox/tag", lambda r: ("full", 201, {}, b""))
    assert cli("tag", "busybox", "reg.local:5000/me/bb:v1").returncode == 0
    q = fake.requests[-1]
    assert q.q("repo") == "reg.local:5000/me/bb" and q.q("tag") == "v1"
    assert cli("tag", "busybox", "Bad/Name").returncode == 1

    fake.route("DELETE", "/images/bb:v1", fake.json([{"Untagged": "bb:v1"}, {"Deleted": "sha256:x"}]))
    r = cli("rmi", "bb:v1")
    assert r.stdout == "Untagged: bb:v1\nDeleted: sha256:x\n"

    fake.route("POST", "/images/create", fake.chunked([b'{"status":"sha256:abc"}\n']))
    tar = tmp_path / "rootfs.tar"
    tar.write_bytes(b"T" * 5000)
    r = cli("import", "-c", "CMD [\"sh\"]", "-m", "msg", str(tar), "mine:1")
    assert r.returncode == 0 and r.stdout == "sha256:abc\n"
    q = fake.requests[-1]
    assert q.body == b"T" * 5000 and q.q("fromSrc") == "-" and q.q("repo") == "mine:1"
    assert q.query["changes"] == ['CMD ["sh"]'] and q.q("message") == "msg"

    fake.route("POST", "/images/load", fake.chunked([b'{"stream":"Loaded image: busybox:latest\\n"}\n']))
    r = cli("load", "-i", str(tar))
    assert r.stdout == "Loaded image: busybox:latest\n" and fake.requests[-1].body == b"T" * 5000
    fake.route("POST", "/images/load", fake.chunked([b'{"errorDetail":{"message":"bad tar"},"error":"bad tar"}\n']))
    r = cli("load", input=b"x")
    assert r.returncode == 1 and r.stderr == b"bad tar\n"

    fake.route("GET", "/images/get", fake.chunked([b"TARDATA", b"MORE"], content_type="application/x-tar"))
    out = tmp_path / "o.tar"
    assert cli("save", "-o", str(out), "busybox").returncode == 0
    assert out.read_bytes() == b"TARDATAMORE" and fake.requests[-1].query["names"] == ["busybox"]
    r = cli("save", "-o", str(tmp_path / "no" / "dir.tar"), "busybox")
    assert r.returncode == 1 and not (tmp_path / "no").exists()

    fake.route("POST", "/images/prune", fake.json({"ImagesDeleted": [{"Deleted": "sha256:y"}], "SpaceReclaimed": 2000}))
    r = cli("image", "prune", "-f")
    assert r.stdout == "Deleted Images:\ndeleted: sha256:y\n\nTotal reclaimed space: 2kB\n"
    assert json.loads(fake.requests[-1].q("filters")) == {"dangling": {"true": True}}

    fake.route("GET", "/images/busybox/history", fake.json(
        [{"Id": img["Id"], "Created": img["Created"], "CreatedBy": "/bin/sh", "Size": 5, "Comment": "c", "Tags": []}]))
    r = cli("history", "busybox")
    assert r.stdout.splitlines()[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert cli("history", "-q", "busybox").stdout == "b" * 12 + "\n"


def test_version_without_daemon_prints_client(cli, tmp_path):
    r = cli("version", env={"SAMPAN_HOST": f"unix://{tmp_path}/none.sock"})
    assert r.returncode == 1 and r.stdout.startswith("Client:\n Version:")
    assert "Cannot connect" in r.stderr


def test_version_format(fake, cli):
    fake.route("GET", "/version", fake.json({"Version": "9.9", "ApiVersion": "1.45"}))
    r = cli("version", "-f", "{{.Server.Version}} {{.Client.ApiVersion}}")
    assert r.stdout == "9.9 1.45\n"


@pytest.mark.parametrize("cmd", ["run", "create", "start", "stop", "kill", "restart", "rm", "ps", "logs",
                                 "exec", "attach", "wait", "rename", "images", "import", "load", "save",
                                 "tag", "rmi", "history", "version", "info", "inspect",
                                 "container ls", "image prune", "image inspect", "container inspect"])
def test_help_for_every_command(cli, cmd):
    r = cli(*cmd.split(), "--help")
    assert r.returncode == 0 and f"Usage:  sampan {cmd}" in r.stdout


def test_usage_errors(cli):
    r = cli("ps", "--bogus")
    assert r.returncode == 125 and "unknown flag: --bogus" in r.stderr and "See 'sampan ps --help'." in r.stderr
    r = cli("rm")
    assert r.returncode == 1 and '"sampan rm" requires at least 1 argument.' in r.stderr
    r = cli("rename", "a")
    assert r.returncode == 1 and "requires exactly 2 arguments" in r.stderr
    r = cli("frobnicate")
    assert r.returncode == 1 and "'frobnicate' is not a sampan command" in r.stderr
    r = cli("run", "--restart", "always", "--rm", "busybox")
    assert r.returncode == 125 and "Conflicting options" in r.stderr


def test_run_tty_needs_terminal(fake, cli):
    r = cli("run", "-it", "busybox", input="")
    assert r.returncode == 1 and "the input device is not a TTY" in r.stderr
    assert not fake.requests


def test_save_refuses_terminal(fake, cli, tmp_path):
    import os
    import pty
    import subprocess
    import sys
    master, slave = pty.openpty()
    env = dict(os.environ, SAMPAN_HOST=fake.host, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    p = subprocess.run([sys.executable, "-m", "sampan.cli", "save", "busybox"], stdout=slave,
                       stderr=subprocess.PIPE, env=env, timeout=20)
    os.close(slave)
    os.close(master)
    assert p.returncode == 1 and b"cowardly refusing to save to a terminal" in p.stderr
    assert not fake.requests


def test_attach_flow_and_refusals(fake, cli):
    states = iter([_container_json(running=True), _container_json(running=False, exit_code=8)])
    last = {}

    def inspect(req):
        try:
            last["v"] = next(states)
        except StopIteration:
            pass
        return fake.json(last["v"])

    fake.route("GET", "/containers/web/json", inspect)
    fake.route("GET", f"/containers/{CID}/json", inspect)

    def attach(sock, req, f):
        sock.sendall(fake.frame(1, b"tick\n"))
        sock.close()
    fake.route("POST", f"/containers/{CID}/attach", fake.hijack(attach, "application/vnd.docker.multiplexed-stream"))
    r = cli("attach", "--no-stdin", "web")
    assert r.returncode == 8 and r.stdout == "tick\n", r.stderr
    assert fake.find("POST", f"/v1.45/containers/{CID}/attach")[0].q("stdin") == "0"

    fake.route("GET", "/containers/web/json", fake.json(_container_json(running=False)))
    r = cli("attach", "web")
    assert r.returncode == 1 and "You cannot attach to a stopped container, start it first" in r.stderr


def test_tcp_host(tmp_path):
    import socket
    import subprocess
    import sys
    import threading
    from pathlib import Path
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    seen = []

    def run():
        c, _ = srv.accept()
        seen.append(c.recv(65536))
        body = b"[]"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body)
        c.close()
    threading.Thread(target=run, daemon=True).start()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
           "DOCKER_HOST": f"tcp://127.0.0.1:{port}"}
    r = subprocess.run([sys.executable, "-m", "sampan.cli", "ps", "-q"], env=env, capture_output=True,
                       text=True, timeout=20)
    srv.close()
    assert r.returncode == 0, r.stderr
    assert seen and seen[0].startswith(b"GET /v1.45/containers/json HTTP/1.1\r\n")


def test_import_from_stdin_streams_chunked(fake, cli):
    fake.route("POST", "/images/create", fake.chunked([b'{"status":"sha256:def"}\n']))
    r = cli("import", "-", "piped:latest", input=b"S" * 70000)
    assert r.returncode == 0 and r.stdout == b"sha256:def\n"
    q = fake.requests[-1]
    assert q.headers.get("transfer-encoding") == "chunked" and q.body == b"S" * 70000
    assert q.q("fromSrc") == "-" and q.q("repo") == "piped:latest"
