#!/usr/bin/env bash
# Make a root filesystem tarball holding Debian's stress-ng and exactly what it links against:
#
#   examples/stress-ng/mkimage.sh OUT.tar      then   sampan import OUT.tar stress-ng:latest
#
# The binary is the host's (apt-get install stress-ng); its shared libraries and the dynamic
# loader come from `ldd`, copied at the paths the loader looks them up at. The entrypoint is
# stress-ng itself, so `sampan run stress-ng --cpu 1 -t 5s` works as the README shows.
set -euo pipefail

out="${1:?usage: mkimage.sh OUT.tar}"
BIN="${STRESS_NG:-$(command -v stress-ng || true)}"
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "mkimage: stress-ng missing (apt-get install stress-ng)" >&2; exit 1; }

umask 022
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
r="$work/rootfs"
mkdir -p "$r"/{usr/bin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$r/tmp"
cp -L "$BIN" "$r/usr/bin/stress-ng"
ln -s usr/bin "$r/bin"

# `ldd` lines: "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)".
ldd "$BIN" | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i}' | sort -u | while read -r lib; do
    dest="$r$lib"
    mkdir -p "$(dirname "$dest")"
    cp -L "$lib" "$dest"
done

printf 'root:x:0:0:root:/root:/usr/bin/stress-ng\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$r/etc/group"
: > "$r/etc/hosts"; : > "$r/etc/hostname"; : > "$r/etc/resolv.conf"

# Deterministic: sorted names, fixed mtime, numeric root owner.
tar --sort=name --mtime='2024-01-01 00:00:00' --owner=0 --group=0 --numeric-owner \
    -C "$r" -cf "$out" .
