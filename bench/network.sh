#!/usr/bin/env bash
# Networking figures, side by side in one run (issue 3), never asserted anywhere:
#   1. network setup cost per container: `run --rm busybox true` on the default bridge vs
#      `--network none`, for sampand and (when installed) dockerd;
#   2. published-port throughput (MB/s through 127.0.0.1:PORT into a container) and
#      connection rate (requests/s with ab against busybox httpd), sampand (kernel DNAT)
#      vs dockerd (docker-proxy for loopback), as ratios.
#
#   sudo bash bench/network.sh            RUNS=50 MB=500 sudo bash bench/network.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
RUNS="${RUNS:-30}"
MB="${MB:-300}"
REQS="${REQS:-3000}"
SOCK=/run/sampan/sampan.sock
DOCKERD_SOCK="${DOCKERD_SOCK:-/var/run/docker.sock}"
PY="$REPO/.venv/bin/python"
[ -x "$PY" ] || PY=python3
out="$(mktemp -d)"
for tool in hyperfine ab; do
    command -v "$tool" >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine apache2-utils >/dev/null; }
done

pid="$(bash scripts/daemon-up.sh)"
tar="$out/busybox.tar"
bash scripts/mkimage-busybox.sh "$tar"
S=(/usr/local/bin/docker -H "unix://$SOCK")
"${S[@]}" image inspect busybox:latest >/dev/null 2>&1 || "${S[@]}" import "$tar" busybox:latest >/dev/null

dockerd_pid=""
cleanup() {
    for c in bench-net-s bench-net-d; do
        "${S[@]}" rm -f "$c" >/dev/null 2>&1 || true
        [ -z "${D:-}" ] || "${D[@]}" rm -f "$c" >/dev/null 2>&1 || true
    done
    [ -z "$dockerd_pid" ] || { kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true; }
    rm -rf "$out"
}
trap cleanup EXIT
D=()
if command -v dockerd >/dev/null && [ -x /usr/local/bin/docker ]; then
    if ! /usr/local/bin/docker -H "unix://$DOCKERD_SOCK" version >/dev/null 2>&1; then
        dockerd -H "unix://$DOCKERD_SOCK" >"$out/dockerd.log" 2>&1 &
        dockerd_pid=$!
        for _ in $(seq 1 100); do
            /usr/local/bin/docker -H "unix://$DOCKERD_SOCK" version >/dev/null 2>&1 && break
            sleep 0.2
        done
    fi
    D=(/usr/local/bin/docker -H "unix://$DOCKERD_SOCK")
    "${D[@]}" image inspect busybox:latest >/dev/null 2>&1 || "${D[@]}" import "$tar" busybox:latest >/dev/null
fi

# --- 1. setup cost ------------------------------------------------------------------------
args=(-n "sampand bridge" "${S[*]} run --rm busybox true" -n "sampand none" "${S[*]} run --rm --network none busybox true")
if [ ${#D[@]} -gt 0 ]; then
    args+=(-n "dockerd bridge" "${D[*]} run --rm busybox true" -n "dockerd none" "${D[*]} run --rm --network none busybox true")
fi
hyperfine -N --style basic --warmup 3 --runs "$RUNS" --export-json "$out/setup.json" "${args[@]}" >"$out/hf.txt" 2>&1 \
    || { cat "$out/hf.txt"; exit 1; }
"$PY" - "$out/setup.json" <<'PY'
import json, sys
med = {r["command"]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
print(f"{'run --rm busybox true':24} {'median':>9}")
for k, v in med.items():
    print(f"{k:24} {v:7.1f}ms")
print(f"\nbridge setup cost per container: sampand {med['sampand bridge'] - med['sampand none']:+.1f} ms"
      + (f", dockerd {med['dockerd bridge'] - med['dockerd none']:+.1f} ms" if "dockerd none" in med else "")
      + "  (target: sampand <= 10 ms)")
PY

# --- 2. published port: throughput and connection rate --------------------------------------
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
measure() {  # $1 label, rest: docker command prefix
    local label="$1"; shift
    local name="bench-net-${label:0:1}" p1 p2
    p1="$(free_port)"; p2="$(free_port)"
    "$@" rm -f "$name" >/dev/null 2>&1 || true
    "$@" run -d --name "$name" -p "$p1:80" -p "$p2:81" busybox sh -c \
        'mkdir -p /www; echo ok > /www/index.html; httpd -p 80 -h /www; while true; do nc -l -p 81 > /dev/null; done' >/dev/null
    sleep 1
    local mbs rps
    mbs="$("$PY" - "$p2" "$MB" <<'PY'
import socket, sys, time
port, mb = int(sys.argv[1]), int(sys.argv[2])
buf = b"x" * (1 << 20)
try:
    s = socket.create_connection(("127.0.0.1", port))
    t = time.perf_counter()
    for _ in range(mb):
        s.sendall(buf)
    s.shutdown(socket.SHUT_WR)
    try:
        s.recv(1)  # the end: the server closes (a proxy may close with a reset)
    except OSError:
        pass
    print(f"{mb / (time.perf_counter() - t):.0f}")
except OSError as e:  # reported, not fatal: the other figures still count
    print(f"failed({e.errno})")
PY
)"
    rps="$(ab -q -n "$REQS" -c 8 "http://127.0.0.1:$p1/" 2>/dev/null | awk '/Requests per second/{print $4}' || true)"
    rps="${rps:-failed}"
    "$@" rm -f "$name" >/dev/null
    echo "$label $mbs $rps"
}
{
    measure sampand "${S[@]}"
    [ ${#D[@]} -eq 0 ] || measure dockerd "${D[@]}"
} > "$out/pub.txt"
"$PY" - "$out/pub.txt" <<'PY'
import sys
rows = {l.split()[0]: l.split()[1:] for l in open(sys.argv[1]) if l.strip()}
print(f"\n{'published port':12} {'MB/s':>8} {'req/s':>9}")
for k, (mbs, rps) in rows.items():
    print(f"{k:12} {mbs:>8} {rps:>9}")
if "dockerd" in rows and all(x.replace(".", "").isdigit() for x in rows["sampand"] + rows["dockerd"]):
    s, d = rows["sampand"], rows["dockerd"]
    print(f"ratios sampand/dockerd: throughput {float(s[0]) / float(d[0]):.2f} x, "
          f"connection rate {float(s[1]) / float(d[1]):.2f} x  (target: >= 1)")
PY
