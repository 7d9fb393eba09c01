"""The images routes over a real unix socket, driven by docker-py's low-level client."""

from __future__ import annotations

import asyncio
import io
import json
import os
import tarfile
import tempfile
import threading
import types

import docker
import pytest

from sampan.api import images as images_api
from sampan.api.http import App, Router, serve


@pytest.fixture
def api(svc):
    d = tempfile.mkdtemp()
    path = os.path.join(d, "s.sock")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    router = Router()
    images_api.register(router)
    engine = types.SimpleNamespace(images=svc, config=svc.config)

    servers = []

    async def main():
        servers.append(await serve(App(router, engine), "unix://" + path))
        ready.set()

    async def shutdown():
        servers[0].close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    client = docker.APIClient(base_url="unix://" + path, version="1.45", timeout=30)
    yield client
    client.close()
    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)


def test_import_list_inspect_tag_history_rmi(api, rootfs, svc):
    out = api.import_image_from_data(rootfs.read_bytes(), repository="busybox", tag="1",
                                     changes=['CMD ["sh"]', "ENV A=1"])
    image_id = json.loads(out.strip().splitlines()[-1])["status"]
    assert image_id == svc.lookup_id("busybox:1")
    [img] = api.images()
    assert img["Id"] == image_id and img["RepoTags"] == ["busybox:1"]
    d = api.inspect_image("busybox:1")
    assert d["Config"]["Cmd"] == ["sh"] and d["Config"]["Env"] == ["A=1"]
    assert api.tag("busybox:1", "localhost:5000/x/y", "t") is True
    assert api.images(name="localhost:5000/x/y")[0]["RepoTags"] == ["localhost:5000/x/y:t"]
    assert api.history("busybox:1")[0]["Id"] == image_id
    with pytest.raises(docker.errors.APIError) as e:
        api.remove_image(image_id)
    assert e.value.response.status_code == 409 and "must be forced" in str(e.value)
    assert api.remove_image("localhost:5000/x/y:t") == [{"Untagged": "localhost:5000/x/y:t"}]
    res = api.remove_image("busybox:1")
    assert {"Deleted": image_id} in res
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: busybox:1"):
        api.inspect_image("busybox:1")


def test_save_load_prune_and_errors(api, rootfs, svc):
    api.import_image_from_data(rootfs.read_bytes(), repository="a", tag="1")
    data = b"".join(api.get_image("a:1"))
    assert data[257:262] == b"ustar"
    api.remove_image("a:1")
    msgs = list(api.load_image(data))
    assert msgs == [{"stream": "Loaded image: a:1\n"}]
    api.tag("a:1", "b", "2")
    resp = api._get(api._url("/images/get"), params={"names": ["a:1", "b:2"]}, stream=True)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    assert [sorted(m["RepoTags"]) for m in manifest] == [["a:1", "b:2"]]
    api.tag("b:2", "a", "1")  # no-op move
    svc.import_tar(rootfs, "a", "1", ["LABEL x=y"], "")  # a:1 moves: the first image dangles
    assert api.prune_images()["ImagesDeleted"] is None  # b:2 still names it
    api.remove_image("b:2")
    assert svc.count() == 1
    # errors keep Docker's codes
    for call, code in ((lambda: api.inspect_image("nope"), 404),
                       (lambda: api.tag("nope", "x"), 404),
                       (lambda: api.images(filters={"bogus": "1"}), 400),
                       (lambda: api.import_image_from_data(b"junk" * 100, repository="x"), 400),
                       (lambda: api.import_image_from_data(b"", repository="BAD NAME"), 400),
                       (lambda: list(api.load_image(b"junk" * 100)), 400),
                       (lambda: b"".join(api.get_image("nope:1")), 404)):
        with pytest.raises(docker.errors.APIError) as e:
            call()
        assert e.value.response.status_code == code
    with pytest.raises(docker.errors.APIError) as e:
        list(api.pull("busybox", tag="latest", stream=True))
    # no internet here: Docker Hub cannot be reached, and that is a clear 503 before any stream
    assert e.value.response.status_code in (404, 503)
    assert os.listdir(svc.config.tmp_dir) == []
