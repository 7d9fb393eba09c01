#!/usr/bin/env bash
# Build times (issue 8's figures): a 10-step Dockerfile over a generated context of 2000 files /
# 50 MB, uncached (--no-cache) and fully cached (a no-op rebuild), through the docker CLI's
# classic builder (DOCKER_BUILDKIT=0) against sampand and, when a dockerd answers on
# /var/run/docker.sock, against dockerd too (classic builder, and BuildKit when buildx is
# installed), side by side in one run. Prints figures and ratios only; nothing asserts them.
# START_DOCKERD=1 starts a private dockerd (--iptables=false --bridge=none: the host's firewall
# and bridges are left alone); every build runs its RUN steps with --network none on both sides.
#
#   sudo bash bench/build.sh        START_DOCKERD=1 BASE_TAR=/path/debian-rootfs.tar sudo -E bash bench/build.sh
#
# The base image is BASE_TAR if given (e.g. a Debian rootfs from mmdebstrap), else the busybox
# image the test suite builds (scripts/mkimage-busybox.sh). RUNS cached rebuilds are timed (5).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PY:-python3}"
RUNS="${RUNS:-5}"
SAMPAND="${SAMPAND:-$PY -m sampan.daemon.main}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export DOCKER_CLI_HINTS=false
# short: monitor sockets (<exec root>/monitors/<64 hex>.sock) must fit in 107 bytes
work="$(mktemp -d /tmp/bb.XXXXXX)"
pids=()
cleanup() {
    [ -n "${KEEP:-}" ] && { echo "kept $work" >&2; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; return; }
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$PY" -c 'import sys; from sampan.network.cleanup import purge; purge(sys.argv[1], sys.argv[2])' \
        "$work/sd/root" "$work/sd/run" 2>/dev/null || true
    umount -R "$work"/sd/run/netns 2>/dev/null || true
    umount -R "$work"/sd/root 2>/dev/null || true
    umount -R "$work"/dd/x 2>/dev/null || true
    umount -R "$work"/dd/data 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { "$PY" -c "print(f'{$2-$1:.3f}')"; }
median() { "$PY" -c 'import sys, statistics; print(f"{statistics.median(map(float, sys.argv[1:])):.3f}")' "$@"; }

# --- base image and context --------------------------------------------------------------------------
base_tar="${BASE_TAR:-$work/busybox.tar}"
[ -n "${BASE_TAR:-}" ] || bash scripts/mkimage-busybox.sh "$base_tar"
ctx="$work/ctx"
mkdir -p "$ctx/data"
"$PY" - "$ctx/data" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(40):                      # 40 dirs x 50 files x 25 KiB = 2000 files, ~51 MB
    os.makedirs(f"{root}/d{d:02}", exist_ok=True)
    for f in range(50):
        with open(f"{root}/d{d:02}/f{f:02}.bin", "wb") as fh:
            fh.write(os.urandom(25 * 1024))
EOF
echo "small file" > "$ctx/small.txt"
cat > "$ctx/Dockerfile" <<'EOF'
FROM bench-base
ENV APP=/app
WORKDIR /app
COPY data/ /app/data/
RUN find /app/data -type f | wc -l > /count
COPY small.txt /app/
RUN sha256sum /app/small.txt > /sum
LABEL bench=build
EXPOSE 8080
CMD ["cat", "/count"]
EOF
echo "context: $(du -sh "$ctx" | cut -f1), $(find "$ctx" -type f | wc -l) files; base: $(du -h "$base_tar" | cut -f1)"

# --- sampand ---------------------------------------------------------------------------------------
mkdir -p "$work/sd"
echo '{}' > "$work/sd/daemon.json"
$SAMPAND --data-root "$work/sd/root" --exec-root "$work/sd/run" \
    -H "unix://$work/sd/run/s.sock" --pidfile "$work/sd/run/pid" --config-file "$work/sd/daemon.json" \
    >"$work/sd/log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do [ -S "$work/sd/run/s.sock" ] && break; sleep 0.05; done
SD="unix://$work/sd/run/s.sock"

measure() {  # label, DOCKER_HOST, extra env -> prints uncached and cached median
    local label="$1" host="$2" env="$3"
    local c="env DOCKER_HOST=$host DOCKER_CONFIG=$work/dc $env docker"
    $c import "$base_tar" bench-base >/dev/null
    b() { $c build -q --network none "$@" "$ctx" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; echo "$label: build failed" >&2; exit 1; }; }
    b --no-cache -t bench-warm   # page cache, base image in place
    local t0 t1 un cached=()
    t0="$(now)"; b --no-cache -t bench-img; t1="$(now)"
    un="$(secs "$t0" "$t1")"
    for _ in $(seq "$RUNS"); do
        t0="$(now)"; b -t bench-img; t1="$(now)"
        cached+=("$(secs "$t0" "$t1")")
    done
    local cm; cm="$(median "${cached[@]}")"
    printf '%-40s uncached %7s s   cached %7s s\n' "$label" "$un" "$cm" >&2
    $c rmi -f bench-img bench-warm bench-base >/dev/null 2>&1 || true
    echo "$un $cm"
}

res_s="$(measure "sampand, docker CLI (classic)" "$SD" "DOCKER_BUILDKIT=0")"
SAMPAN_HOST="$SD" "$PY" -m sampan.cli.main import "$base_tar" bench-base >/dev/null
SAMPAN_HOST="$SD" "$PY" -m sampan.cli.main build -q --network none -t bench-cli "$ctx" >/dev/null
cli=()
for _ in $(seq "$RUNS"); do
    t0="$(now)"; SAMPAN_HOST="$SD" "$PY" -m sampan.cli.main build -q --network none -t bench-cli "$ctx" >/dev/null; t1="$(now)"
    cli+=("$(secs "$t0" "$t1")")
done
printf '%-40s                      cached %7s s\n' "sampand, sampan CLI" "$(median "${cli[@]}")" >&2

DD="unix:///var/run/docker.sock"
if ! docker -H "$DD" version >/dev/null 2>&1 && [ "${START_DOCKERD:-}" = 1 ] && command -v dockerd >/dev/null; then
    mkdir -p "$work/dd"
    dockerd -H "unix://$work/dd/d.sock" --data-root "$work/dd/data" --exec-root "$work/dd/x" \
        --pidfile "$work/dd/pid" --iptables=false --ip6tables=false --bridge=none >"$work/dd/log" 2>&1 &
    pids+=($!)
    DD="unix://$work/dd/d.sock"
    for _ in $(seq 300); do docker -H "$DD" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if docker -H "$DD" version >/dev/null 2>&1; then
    res_d="$(measure "dockerd, classic builder" "$DD" "DOCKER_BUILDKIT=0")"
    read -r su sc <<<"$res_s"
    read -r du dc <<<"$res_d"
    printf '%-40s uncached %7sx  cached %7sx\n' "ratio sampand/dockerd (classic)" \
        "$("$PY" -c "print(round($su/$du, 2))")" "$("$PY" -c "print(round($sc/$dc, 2))")"
    if docker buildx version >/dev/null 2>&1; then
        res_b="$(measure "dockerd, BuildKit" "$DD" "DOCKER_BUILDKIT=1")"
        read -r bu bc <<<"$res_b"
        printf '%-40s uncached %7sx  cached %7sx\n' "ratio sampand/BuildKit" \
            "$("$PY" -c "print(round($su/$bu, 2))")" "$("$PY" -c "print(round($sc/$bc, 2))")"
    else
        echo "BuildKit: skipped (no buildx plugin)"
    fi
else
    echo "dockerd: skipped (nothing answers on /var/run/docker.sock; START_DOCKERD=1 starts one)"
fi
