#!/usr/bin/env bash
# README command one (as root, on a fresh Debian 12): install, start sampand in the background,
# make a busybox image from Debian's busybox-static and import it, then a short tour with
# sampan's CLI and the real docker CLI. Exits non-zero as soon as a step fails; leaves the
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

cat <<MSG

The tour is done. sampand is still running (pid $pid, log $LOG).
  Use it:   sampan run --rm -it busybox sh        or   export DOCKER_HOST=unix://$SOCK; docker ps
  Stop it:  kill \$(cat /run/sampan/sampand.pid)
MSG
