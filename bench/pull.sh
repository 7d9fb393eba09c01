#!/usr/bin/env bash
# Pull and push of a big image through a loopback registry, side by side in one run
# (issue 7's figures): sampan (docker CLI -> sampand) vs dockerd (when installed) vs skopeo
# (download + verify only), MB/s of compressed bytes and ratios; then blob-serving throughput
# of sampan's registry vs the CNCF registry (docker-registry) with 20 concurrent clients.
# Never asserted anywhere.
#
#   sudo bash bench/pull.sh                    IMAGE_TAR=/path/rootfs.tar sudo bash bench/pull.sh
#   ROUNDS=4 sudo bash bench/pull.sh           (pull rounds, alternating who goes first; default 2)
#
# The image is IMAGE_TAR if given (e.g. a Debian rootfs from mmdebstrap), else a tar of a
# few big /usr trees (~150 MB compressed, ~15,000 files).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PY="${PY:-python3}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
work="$(mktemp -d /tmp/bench-pull.XXXXXX)"
pids=()
daemons=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for d in "${daemons[@]}"; do
        umount -R "$d/root" 2>/dev/null || true
        # the daemon's named network namespaces live under a mount of their own
        "$PY" -c 'import sys; from sampan.network.cleanup import purge; purge(sys.argv[1], sys.argv[2])' \
            "$d/root" "$d/run" 2>/dev/null || true
        umount -R "$d/run/netns" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
# Each timed pull starts with the disk quiet: written back, so one side does not pay for the
# other's (or its own import's) writeback.
settle() { sync; sleep 1; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "http://$1/v2/" && return 0; sleep 0.05; done; echo "no registry at $1" >&2; exit 1; }

# --- the image -------------------------------------------------------------------------------------
tar="${IMAGE_TAR:-$work/image.tar}"
if [ -z "${IMAGE_TAR:-}" ]; then
    tar -C / -cf "$tar" usr/share/doc usr/share/locale usr/share/perl usr/share/i18n usr/lib/python3 2>/dev/null || true
fi
echo "image: $(du -h "$tar" | cut -f1) uncompressed, $(tar tf "$tar" | wc -l) entries"

# --- registries ------------------------------------------------------------------------------------
sport="$(free_port)"
"$PY" -m sampan.registry serve --addr "127.0.0.1:$sport" --root "$work/sreg" 2>"$work/sreg.log" &
pids+=($!)
wait_http "127.0.0.1:$sport"
cport=""
if command -v docker-registry >/dev/null; then
    cport="$(free_port)"
    printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/creg" "$cport" > "$work/creg.yml"
    docker-registry serve "$work/creg.yml" >"$work/creg.log" 2>&1 &
    pids+=($!)
    wait_http "127.0.0.1:$cport"
fi

# --- sampand ---------------------------------------------------------------------------------------
# start_sampand NAME: a daemon on its own roots under $work/NAME; sets S to a docker CLI for it.
start_sampand() {
    local d="$work/$1"
    mkdir -p "$d"
    echo '{}' > "$d/daemon.json"
    "$PY" -m sampan.daemon.main --data-root "$d/root" --exec-root "$d/run" \
        -H "unix://$d/run/s.sock" --pidfile "$d/run/pid" --config-file "$d/daemon.json" \
        >"$d/log" 2>&1 &
    pids+=($!)
    daemons+=("$d")
    for _ in $(seq 200); do [ -S "$d/run/s.sock" ] && break; sleep 0.05; done
    S="env DOCKER_HOST=unix://$d/run/s.sock DOCKER_CONFIG=$work/dc docker"
}
secs() { "$PY" -c "print(round($2-$1, 2))"; }

# The pusher imports and pushes; every timed pull then goes to a daemon with a fresh data root.
# Never `rmi` and pull again in a timed run: ext4 will not reuse an inode freed in the last 60 s
# (300 s while its table block is dirty) and scans past every such inode on each create, so
# unpacking 15,000 files right after deleting 15,000 others is about 8x slower (measured:
# 1.3 s vs 10.5 s for this image's layer), whatever the engine.
start_sampand push
ref="127.0.0.1:$sport/bench/img:1"
$S import "$tar" "$ref" >/dev/null
t0="$(now)"; $S push "$ref" >/dev/null; t1="$(now)"
blob="$(du -sb "$work/sreg/blobs" | cut -f1)"
mb="$("$PY" -c "print(round($blob/1e6, 1))")"
push_s="$(secs "$t0" "$t1")"
echo "compressed size: $mb MB"
printf '%-34s %8s s  %7s MB/s\n' "sampan push (imported image)" "$push_s" "$("$PY" -c "print(round($mb/$push_s,1))")"

if command -v skopeo >/dev/null; then
    settle
    t0="$(now)"; skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$work/skopeo" >/dev/null; t1="$(now)"
    sk_s="$(secs "$t0" "$t1")"
    printf '%-34s %8s s  %7s MB/s\n' "skopeo copy (download+verify)" "$sk_s" "$("$PY" -c "print(round($mb/$sk_s,1))")"
fi

have_dockerd=""
if command -v dockerd >/dev/null && [ -x /usr/local/bin/docker ]; then have_dockerd=1; fi
# start_dockerd NAME: a private dockerd on its own roots; loopback registries are insecure for it too.
start_dockerd() {
    local d="$work/$1"
    mkdir -p "$d"
    dockerd --data-root "$d/root" --exec-root "$d/run" -H "unix://$d/d.sock" \
        --pidfile "$d/pid" --bridge none --iptables=false >"$d/log" 2>&1 &
    dpid=$!
    pids+=($dpid)
    for _ in $(seq 300); do [ -S "$d/d.sock" ] && break; sleep 0.1; done
    D="env DOCKER_HOST=unix://$d/d.sock DOCKER_CONFIG=$work/dc docker"
    $D version >/dev/null 2>&1 || { echo "dockerd did not start; see $d/log"; have_dockerd=""; }
}

# ROUNDS (default 2) alternate who pulls first, each pull into a fresh data root after a sync.
sampan_pulls=()
docker_pulls=()
# After round 1's pull, each engine pushes what it pulled to an empty registry of its own: a
# push to a new registry, with nothing to mount or skip. (sampan sends the gzip blobs it pulled;
# dockerd compresses the layers again.)
empty_registry() {  # sets EMPTY; not called in a $(...) subshell: its pid must reach `pids`
    local port; port="$(free_port)"
    "$PY" -m sampan.registry serve --addr "127.0.0.1:$port" --root "$work/empty$port" 2>/dev/null &
    pids+=($!)
    wait_http "127.0.0.1:$port"
    EMPTY="127.0.0.1:$port"
}
# repush CLI REGISTRY: seconds the CLI takes to push the image it pulled to REGISTRY, empty.
repush() {
    local to="$2/bench/copy:1"
    $1 tag "$ref" "$to"
    settle >&2
    local t0 t1; t0="$(now)"; $1 push -q "$to" >/dev/null; t1="$(now)"
    secs "$t0" "$t1"
}
empty_registry; sampan_empty="$EMPTY"
empty_registry; docker_empty="$EMPTY"
pull_sampan() {
    start_sampand "pull$1"
    settle
    t0="$(now)"; $S pull -q "$ref" >/dev/null; t1="$(now)"
    sampan_pulls+=("$(secs "$t0" "$t1")")
    if [ "$1" = 1 ]; then sampan_repush_s="$(repush "$S" "$sampan_empty")"; fi
}
pull_dockerd() {
    [ -n "$have_dockerd" ] || return 0
    start_dockerd "dd$1"
    [ -n "$have_dockerd" ] || return 0
    settle
    t0="$(now)"; $D pull -q "$ref" >/dev/null; t1="$(now)"
    docker_pulls+=("$(secs "$t0" "$t1")")
    if [ "$1" = 1 ]; then docker_push_s="$(repush "$D" "$docker_empty")"; fi
    kill "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null || true
}
for r in $(seq "${ROUNDS:-2}"); do
    if [ $((r % 2)) = 1 ]; then pull_sampan "$r"; pull_dockerd "$r"; else pull_dockerd "$r"; pull_sampan "$r"; fi
done
best() { printf '%s\n' "$@" | sort -n | head -1; }
pull_s="$(best "${sampan_pulls[@]}")"
printf '%-34s %8s s  %7s MB/s  (each round: %s)\n' "sampan pull (sampand)" "$pull_s" \
    "$("$PY" -c "print(round($mb/$pull_s,1))")" "${sampan_pulls[*]}"
if [ -n "${sk_s:-}" ]; then
    echo "  sampan pull = $("$PY" -c "print(round($pull_s/$sk_s,2))")x skopeo's download-only time"
fi
if [ "${#docker_pulls[@]}" -gt 0 ]; then
    d_s="$(best "${docker_pulls[@]}")"
    printf '%-34s %8s s  %7s MB/s  (each round: %s; sampan pull = %sx its speed)\n' "dockerd pull" "$d_s" \
        "$("$PY" -c "print(round($mb/$d_s,1))")" "${docker_pulls[*]}" "$("$PY" -c "print(round($d_s/$pull_s,2))")"
fi
printf '%-34s %8s s\n' "sampan push of the pulled image" "$sampan_repush_s"
if [ -n "${docker_push_s:-}" ]; then
    printf '%-34s %8s s  (sampan = %sx its speed)\n' "dockerd push of the pulled image" "$docker_push_s" \
        "$("$PY" -c "print(round($docker_push_s/$sampan_repush_s,2))")"
fi

# --- server throughput: 20 clients fetching the big blob at once ------------------------------------
serve_bench() {
    "$PY" - "$1" "$2" <<'EOF'
import http.client, json, sys, threading, time
host, repo = sys.argv[1], sys.argv[2]
def get(path, headers=None):
    c = http.client.HTTPConnection(*host.split(":"), timeout=120)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse(); return r, c
r, c = get(f"/v2/{repo}/manifests/1", {"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
m = json.loads(r.read()); c.close()
digest = max(m["layers"], key=lambda l: l["size"])["digest"]
total = [0]
lock = threading.Lock()
def worker():
    r, c = get(f"/v2/{repo}/blobs/{digest}")
    n = 0
    while True:
        b = r.read(1 << 20)
        if not b: break
        n += len(b)
    c.close()
    with lock: total[0] += n
ts = [threading.Thread(target=worker) for _ in range(20)]
t0 = time.time()
for t in ts: t.start()
for t in ts: t.join()
dt = time.time() - t0
print(f"{total[0]/dt/1e6:.0f}")
EOF
}
s_rate="$(serve_bench "127.0.0.1:$sport" bench/img)"
printf '%-34s %8s MB/s\n' "sampan registry, 20 clients" "$s_rate"
if [ -n "$cport" ]; then
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$ref" "docker://127.0.0.1:$cport/bench/img:1"
    c_rate="$(serve_bench "127.0.0.1:$cport" bench/img)"
    printf '%-34s %8s MB/s  (sampan = %sx)\n' "CNCF registry, 20 clients" "$c_rate" \
        "$("$PY" -c "print(round($s_rate/$c_rate,2))")"
fi
