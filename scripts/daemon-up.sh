#!/usr/bin/env bash
# Start the system sampand (default roots, socket unix:///run/sampan/sampan.sock) in the
# background unless one already answers /_ping, and wait until it does. Used by demo.sh and
# bench/. Prints the daemon's pid. Log: $SAMPAN_LOG (default /var/log/sampan.log).
set -euo pipefail

SOCK="${SAMPAN_SOCK:-/run/sampan/sampan.sock}"
PIDFILE="${SAMPAN_PIDFILE:-/run/sampan/sampand.pid}"
LOG="${SAMPAN_LOG:-/var/log/sampan.log}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$REPO/.venv/bin/python"
[ -x "$PY" ] || PY=python3

# /_ping over the unix socket, without curl (not on a fresh Debian).
ping_daemon() {
    "$PY" - "$SOCK" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.1\r\nHost: sampan\r\nConnection: close\r\n\r\n")
data = b""
while chunk := s.recv(4096):
    data += chunk
sys.exit(0 if data.startswith(b"HTTP/1.1 200") and data.endswith(b"OK") else 1)
PY
}

if ping_daemon; then
    cat "$PIDFILE" 2>/dev/null || echo "?"
    exit 0
fi

SAMPAND="$(command -v sampand || true)"
[ -n "$SAMPAND" ] || { echo "daemon-up: sampand not installed (run scripts/install.sh)" >&2; exit 1; }
mkdir -p "$(dirname "$SOCK")" "$(dirname "$LOG")"
# setsid + nohup: the daemon must outlive this script and the terminal that ran it.
nohup setsid "$SAMPAND" -H "unix://$SOCK" --pidfile "$PIDFILE" >>"$LOG" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 300); do
    if ping_daemon; then
        echo "$pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "daemon-up: sampand exited during start-up; the end of $LOG:" >&2
        tail -n 30 "$LOG" >&2
        exit 1
    fi
    sleep 0.1
done
echo "daemon-up: sampand (pid $pid) did not answer /_ping on $SOCK within 30s; the end of $LOG:" >&2
tail -n 30 "$LOG" >&2
exit 1
