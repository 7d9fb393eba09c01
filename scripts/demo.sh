#!/usr/bin/env bash
# README command one (as root, on a fresh Debian 12): install, start sampand in the background,
# make a busybox image from Debian's busybox-static and import it, then a short tour with
# sampan's CLI and the real docker CLI, and images through sampan's own registry server. Exits non-zero as soon as a step fails; leaves the
# daemon running.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
SOCK=/run/sampan/sampan.sock
LOG="${SAMPAN_LOG:-/var/log/sampan.log}"
IMAGE_TAR="${IMAGE_TAR:-/tmp/sampan-busybox.tar}"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "$*"; "$@"; }

run bash scripts/install.sh

step "sampand &   (log: $LOG)"
pid="$(SAMPAN_LOG="$LOG" bash scripts/daemon-up.sh)"
echo "sampand is up (pid $pid), socket $SOCK"

run bash scripts/mkimage-busybox.sh "$IMAGE_TAR"
run sampan import "$IMAGE_TAR" busybox:latest
run sampan images

# A web container left over from an earlier demo would make `--name web` a conflict.
sampan rm -f web >/dev/null 2>&1 || true

run sampan run --rm busybox echo hello
run sampan run -d --name web busybox httpd -f -p 8080
run sampan ps
run sampan logs web
run sampan exec web ps
run sampan stop web
run sampan rm web

if [ -x /usr/local/bin/docker ] || command -v docker >/dev/null; then
    step "DOCKER_HOST=unix://$SOCK docker run --rm busybox sh -c 'echo \$\$; hostname'"
    DOCKER_HOST="unix://$SOCK" docker run --rm busybox sh -c 'echo $$; hostname'
else
    echo "(docker CLI not installed: skipping the docker part of the tour)"
fi

# --- images through a registry: sampan's own server, sampan's client, docker and skopeo --------
free_port() { "$REPO/.venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_v2() {  # a registry answers /v2/ (200, or 401 with auth)
    "$REPO/.venv/bin/python" - "$1" <<'PY'
import sys, time, urllib.error, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"no registry at {sys.argv[1]}")
PY
}
REG_DIR="$(mktemp -d /tmp/sampan-demo-registry.XXXXXX)"
reg_pids=()
stop_registries() {
    for p in "${reg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$REG_DIR"
    [ -n "${DOCKER_CONFIG_DEMO:-}" ] && rm -rf "$DOCKER_CONFIG_DEMO"
}
trap stop_registries EXIT
R="127.0.0.1:$(free_port)"
step "sampan registry serve --addr $R --root $REG_DIR/open &"
sampan registry serve --addr "$R" --root "$REG_DIR/open" 2>"$REG_DIR/open.log" &
reg_pids+=($!)
wait_v2 "$R"
run sampan tag busybox "$R/library/busybox:1.36"
run sampan push "$R/library/busybox:1.36"
run sampan rmi "$R/library/busybox:1.36"
run sampan pull "$R/library/busybox:1.36"
run sampan run --rm "$R/library/busybox:1.36" echo "ran from the pulled image"
run sampan search --limit 5 "$R/busy"
if command -v skopeo >/dev/null; then
    run skopeo list-tags --tls-verify=false "docker://$R/library/busybox"
fi

# a second registry with htpasswd (bcrypt) basic auth: login, push, logout
A="127.0.0.1:$(free_port)"
"$REPO/.venv/bin/python" -c 'import bcrypt,sys; print("ann:" + bcrypt.hashpw(b"demo-secret", bcrypt.gensalt()).decode())' \
    > "$REG_DIR/htpasswd"
step "sampan registry serve --addr $A --root $REG_DIR/auth --htpasswd $REG_DIR/htpasswd &"
sampan registry serve --addr "$A" --root "$REG_DIR/auth" --htpasswd "$REG_DIR/htpasswd" 2>"$REG_DIR/auth.log" &
reg_pids+=($!)
wait_v2 "$A"
DOCKER_CONFIG_DEMO="$(mktemp -d /tmp/sampan-demo-dockercfg.XXXXXX)"  # not your ~/.docker
export DOCKER_CONFIG="$DOCKER_CONFIG_DEMO"
step "echo demo-secret | sampan login $A -u ann --password-stdin"
echo demo-secret | sampan login "$A" -u ann --password-stdin
run sampan tag busybox "$A/team/app:1"
run sampan push "$A/team/app:1"
run sampan logout "$A"
unset DOCKER_CONFIG

cat <<MSG

The tour is done. sampand is still running (pid $pid, log $LOG).
  Use it:   sampan run --rm -it busybox sh        or   export DOCKER_HOST=unix://$SOCK; docker ps
  Stop it:  kill \$(cat /run/sampan/sampand.pid)
MSG
