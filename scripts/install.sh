#!/usr/bin/env bash
# Install sampan on a fresh Debian 12 (run as root). Idempotent: a second run changes nothing
# and takes a second or two.
#
#   - Debian packages the runtime and tests need (busybox-static for the test image, tini for
#     `--init`, iproute2, ca-certificates), python3-venv only where `python3 -m venv` can't work;
#   - a virtual environment in <repo>/.venv made with the python3 on PATH (pyenv's is fine),
#     holding sampan (editable) and its test extras;
#   - /usr/local/bin/sampan and /usr/local/bin/sampand linked to the venv's scripts;
#   - /etc/sampan/daemon.json (`{}`) if there is none.
#
# It never installs docker.io: the docker CLI client at /usr/local/bin/docker is only a client,
# and the e2e tests that need it skip when it is absent.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PY="${PYTHON:-python3}"

log() { printf 'install: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs Debian packages and links into /usr/local/bin)"
    exit 1
fi
command -v "$PY" >/dev/null || { log "no $PY on PATH"; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { log "$("$PY" -V 2>&1) is too old: sampan needs Python >= 3.11"; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
pkgs=(busybox-static tini iproute2 nftables ca-certificates stress-ng docker-registry skopeo openssl uidmap slirp4netns git)

# `python3 -m venv` needs ensurepip, which Debian's own python3 splits into python3-venv; a
# pyenv or python.org build has it built in. Try it for real rather than guess from the path.
venv_works() {
    local t; t="$(mktemp -d)"
    if "$PY" -m venv "$t/v" >/dev/null 2>&1; then rm -rf "$t"; return 0; fi
    rm -rf "$t"; return 1
}
if [ ! -x "$VENV/bin/python" ] && ! venv_works; then
    pkgs+=(python3-venv)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in /bin/busybox /usr/bin/tini-static; do
    [ -x "$f" ] || { log "$f missing after install"; exit 1; }
done

# --- virtual environment ---------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    log "recreating $VENV (broken or too old)"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $("$PY" -V 2>&1)"
    "$PY" -m venv "$VENV"
fi

# Reinstall only when pyproject.toml changed or the install is incomplete: pip on every run
# would cost seconds and a network round trip.
stamp="$VENV/.sampan-installed"
want="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1) $REPO"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
   || ! "$VENV/bin/python" -c 'import sampan, pytest, docker, hypothesis' 2>/dev/null \
   || [ ! -x "$VENV/bin/sampan" ] || [ ! -x "$VENV/bin/sampand" ]; then
    log "pip install -e '.[test]'"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip >/dev/null 2>&1 || true
    # compat mode puts the repo on sys.path with a plain .pth line, where the default mode adds
    # an import hook: the CLI's start-up time is part of every `sampan run`.
    # (That hook costs ~12 ms a start here.) Fall back to the default mode where a newer
    # setuptools has dropped compat.
    pip_log="$(mktemp)"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            --config-settings editable_mode=compat -e "$REPO[test]" >"$pip_log" 2>&1; then
        if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
                -e "$REPO[test]" >"$pip_log" 2>&1; then
            cat "$pip_log" >&2; rm -f "$pip_log"
            log "pip install failed"; exit 1
        fi
    fi
    rm -f "$pip_log"
    printf '%s\n' "$want" > "$stamp.tmp" && mv -f "$stamp.tmp" "$stamp"
fi

# --- commands and config ---------------------------------------------------------------------
for cmd in sampan sampand; do
    ln -sfn "$VENV/bin/$cmd" "/usr/local/bin/$cmd"
done

if [ ! -e /etc/sampan/daemon.json ]; then
    mkdir -p /etc/sampan
    printf '{}\n' > /etc/sampan/daemon.json.tmp && mv -f /etc/sampan/daemon.json.tmp /etc/sampan/daemon.json
fi

log "ok: $(readlink /usr/local/bin/sampan), $(readlink /usr/local/bin/sampand)"
