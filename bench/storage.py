"""Storage figures (issue 4), side by side in one run: sampand vs dockerd, both driven by the
real docker CLI on private roots.

  sudo python3 bench/storage.py            RUNS=5 sudo python3 bench/storage.py

- commit of a 50 MB change (a container that wrote 50 MB) on a 100+ MB image;
- `docker cp` of a 100 MB tree (1,000 files) into a container, and back out.

Prints medians and the ratio sampand/dockerd. dockerd (Debian's docker.io) is started on a
temp data root when installed; without it only sampan's figures are printed. Never asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.e2e.conftest import Sampand, _short_base  # noqa: E402  (the e2e harness's daemon)

DOCKER = "/usr/local/bin/docker"
RUNS = int(os.environ.get("RUNS", "3"))


def sh(env: dict, *args: str, check: bool = True) -> str:
    r = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {r.stderr}")
    return r.stdout


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def make_image_tar(work: Path) -> Path:
    """busybox plus 100 MB of incompressible files: a 100+ MB image."""
    tar = work / "busybox.tar"
    subprocess.run(["bash", str(REPO / "scripts/mkimage-busybox.sh"), str(tar)], check=True)
    big = work / "big"
    (big / "opt/payload").mkdir(parents=True)
    for i in range(20):
        (big / f"opt/payload/blob{i}").write_bytes(os.urandom(5 << 20))
    subprocess.run(["tar", "-C", str(big), "-rf", str(tar), "opt"], check=True)
    return tar


def make_tree(work: Path) -> Path:
    tree = work / "tree"
    for d in range(10):
        (tree / f"d{d}").mkdir(parents=True)
        for f in range(100):
            (tree / f"d{d}" / f"f{f}").write_bytes(os.urandom(100 << 10))
    return tree


def bench(env: dict, label: str, image_tar: Path, tree: Path, work: Path) -> dict[str, float]:
    sh(env, "import", str(image_tar), "bigbox:latest")
    out: dict[str, list[float]] = {"commit 50MB change": [], "cp 100MB in": [], "cp 100MB out": []}
    for i in range(RUNS):
        name = f"bench-{label}-{i}"
        sh(env, "run", "--name", name, "bigbox", "sh", "-c",
           "for i in 1 2 3 4 5; do dd if=/dev/urandom of=/opt/new$i bs=1M count=10 2>/dev/null; done")
        out["commit 50MB change"].append(timed(lambda: sh(env, "commit", name, f"bench-commit:{i}")))
        sh(env, "rm", name)
        sh(env, "run", "-d", "--name", name, "bigbox", "sleep", "1000")
        out["cp 100MB in"].append(timed(lambda: sh(env, "cp", str(tree), f"{name}:/tmp/tree")))
        dst = work / f"out-{label}-{i}"
        out["cp 100MB out"].append(timed(lambda: sh(env, "cp", f"{name}:/tmp/tree", str(dst))))
        shutil.rmtree(dst, ignore_errors=True)
        sh(env, "rm", "-f", name)
        sh(env, "rmi", f"bench-commit:{i}", check=False)
    return {k: statistics.median(v) for k, v in out.items()}


def start_dockerd(base: Path) -> tuple[subprocess.Popen | None, dict]:
    if not shutil.which("dockerd"):
        return None, {}
    sock = base / "docker.sock"
    proc = subprocess.Popen(["dockerd", "-H", f"unix://{sock}", "--data-root", str(base / "root"),
                             "--exec-root", str(base / "exec"), "--pidfile", str(base / "pid"),
                             "--bridge", "none", "--iptables=false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    for _ in range(150):
        if subprocess.run([DOCKER, "version"], env=env, capture_output=True).returncode == 0:
            return proc, env
        time.sleep(0.2)
    proc.terminate()
    return None, {}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    d = Sampand(_short_base("sb-"))
    dockerd, denv = None, {}
    dbase = _short_base("db-")
    try:
        image_tar, tree = make_image_tar(work), make_tree(work)
        d.start()
        results = {"sampand": bench(d.env, "sampan", image_tar, tree, work)}
        dockerd, denv = start_dockerd(dbase)
        if dockerd is not None:
            results["dockerd"] = bench(denv, "docker", image_tar, tree, work)
        print(f"\n{'operation':22} " + " ".join(f"{k:>10}" for k in results) + "   ratio")
        for op in results["sampand"]:
            row = " ".join(f"{results[k][op] * 1000:8.0f}ms" for k in results)
            ratio = (f"{results['sampand'][op] / results['dockerd'][op]:5.2f} x dockerd"
                     if "dockerd" in results else "")
            print(f"{op:22} {row}   {ratio}")
    finally:
        d.destroy()
        if dockerd is not None:
            dockerd.terminate()
            dockerd.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(dbase, ignore_errors=True)


if __name__ == "__main__":
    main()
