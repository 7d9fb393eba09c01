#!/usr/bin/env bash
# `run --rm busybox true` end to end, side by side in one run (DESIGN "Where the time goes"):
#   sampan CLI -> sampand, docker CLI -> sampand, and docker CLI -> dockerd / podman when they
#   are installed and running. Prints medians and ratios, then sampand's idle memory and the
#   memory of idle containers' monitors and of the zygote they are forked from. Timings are
#   never asserted anywhere.
#
#   sudo bash bench/run_rm.sh            RUNS=50 sudo bash bench/run_rm.sh
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
RUNS="${RUNS:-30}"
WARMUP="${WARMUP:-3}"
SOCK=/run/sampan/sampan.sock
DOCKERD_SOCK="${DOCKERD_SOCK:-/var/run/docker.sock}"
PY="$REPO/.venv/bin/python"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if ! command -v hyperfine >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
[ -x "$PY" ] || bash scripts/install.sh
command -v sampan >/dev/null || bash scripts/install.sh

pid="$(bash scripts/daemon-up.sh)"
tar="$out/busybox.tar"
bash scripts/mkimage-busybox.sh "$tar"
sampan image inspect busybox:latest >/dev/null 2>&1 || sampan import "$tar" busybox:latest >/dev/null

names=() cmds=()
add() { names+=("$1"); cmds+=("$2"); }
add "sampan -> sampand" "sampan run --rm busybox true"
add "sampan -> sampand, --network none" "sampan run --rm --network none busybox true"
# A dockerd that is installed (Debian's docker.io) but not running is started for the run and
# stopped afterwards; one that was already running is left alone.
dockerd_pid=""
stop_dockerd() { [ -z "$dockerd_pid" ] || { kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true; }; }
trap 'stop_dockerd; rm -rf "$out"' EXIT
if [ -x /usr/local/bin/docker ] && command -v dockerd >/dev/null \
   && ! /usr/local/bin/docker -H "unix://$DOCKERD_SOCK" version >/dev/null 2>&1; then
    dockerd -H "unix://$DOCKERD_SOCK" >"$out/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 1 100); do
        /usr/local/bin/docker -H "unix://$DOCKERD_SOCK" version >/dev/null 2>&1 && break
        sleep 0.2
    done
fi
if [ -x /usr/local/bin/docker ]; then
    add "docker -> sampand" "/usr/local/bin/docker -H unix://$SOCK run --rm busybox true"
    if [ -S "$DOCKERD_SOCK" ] && /usr/local/bin/docker -H "unix://$DOCKERD_SOCK" version >/dev/null 2>&1; then
        d=(/usr/local/bin/docker -H "unix://$DOCKERD_SOCK")
        "${d[@]}" image inspect busybox:latest >/dev/null 2>&1 || "${d[@]}" import "$tar" busybox:latest >/dev/null
        add "docker -> dockerd" "/usr/local/bin/docker -H unix://$DOCKERD_SOCK run --rm busybox true"
    fi
fi
if command -v podman >/dev/null; then
    podman image exists busybox:latest 2>/dev/null || podman import "$tar" busybox:latest >/dev/null
    add "podman" "podman run --rm busybox true"
fi

args=()
for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
echo "hyperfine: ${#names[@]} commands, $RUNS runs each (warmup $WARMUP)"
hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$out/times.json" "${args[@]}" >"$out/hyperfine.txt" 2>&1 \
    || { cat "$out/hyperfine.txt"; exit 1; }

"$PY" - "$out/times.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: r["median"] * 1000 for r in results}
base = med.get("docker -> dockerd")
ref = "docker -> dockerd" if base else None
print()
print(f"{'command':40} {'median':>9} {'min':>9} {'max':>9}  ratio")
for r in results:
    m = r["median"] * 1000
    ratio = f"{m / base:5.2f} x dockerd" if base else ""
    print(f"{r['command']:40} {m:7.1f}ms {r['min']*1000:7.1f}ms {r['max']*1000:7.1f}ms  {ratio}")
if not base:
    # No dockerd here: DESIGN's figure for Docker 20.10 + runc on this kind of machine.
    m = med["sampan -> sampand"]
    print(f"\n(no dockerd running: against DESIGN's 276 ms for Docker on this machine kind, "
          f"sampan is {m / 276:.2f} x; target <= 0.35 x)")
PY

mem() {  # RSS, PSS and private (dirty) memory from smaps_rollup
    awk '/^Rss:/{r=$2} /^Pss:/{p=$2} /^Private_Dirty:/{d=$2} END{printf "RSS %.1f MB, PSS %.1f MB, private %.1f MB", r/1024, p/1024, d/1024}' "/proc/$1/smaps_rollup"
}
echo
if [ -r "/proc/$pid/smaps_rollup" ]; then
    echo "sampand idle (pid $pid): $(mem "$pid")"
fi
# Five idle containers: a monitor's private memory is what each more container costs; the
# monitors are forked from one small zygote process, whose memory they share.
cids=()
for _ in 1 2 3 4 5; do cids+=("$(sampan run -d busybox sleep 600)"); done
sleep 0.5
mon=""
for cid in "${cids[@]}"; do
    cpid="$(sampan inspect -f '{{.State.Pid}}' "$cid" 2>/dev/null || true)"
    if [ -n "$cpid" ] && [ "$cpid" != 0 ] && [ -r "/proc/$cpid/stat" ]; then
        mon="$(awk '{print $4}' "/proc/$cpid/stat")"
    fi
done
if [ -n "$mon" ] && [ -r "/proc/$mon/smaps_rollup" ] && [ "$mon" != "$pid" ]; then
    echo "one of 5 idle containers' monitors (pid $mon): $(mem "$mon")"
fi
zyg="$(pgrep -P "$pid" -f 'sampan-monitors:' | head -1 || true)"  # monitors share its command line
if [ -n "$zyg" ]; then
    echo "the monitor zygote (pid $zyg, once per daemon): $(mem "$zyg")"
fi
sampan rm -f "${cids[@]}" >/dev/null
