#!/usr/bin/env bash
# Make a busybox root filesystem tarball from Debian's busybox-static:
#
#   scripts/mkimage-busybox.sh OUT.tar        then   sampan import OUT.tar busybox:latest
#
# /bin/busybox, one relative symlink per applet (`busybox --list-full`), /etc/passwd and
# /etc/group (root, daemon, nobody 65534, user 1000), empty /etc/hosts /etc/hostname
# /etc/resolv.conf as mount points for the runtime's bind mounts, /tmp 1777, /root, /home/user.
#
# The tarball is deterministic (sorted entries, fixed mtime, numeric root owners, no pax
# times), so importing it twice gives the same layer diff ID and, with the same config, the
# same image ID.
set -euo pipefail

out="${1:?usage: mkimage-busybox.sh OUT.tar}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
[ -x "$BUSYBOX" ] || { echo "mkimage-busybox: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }
# A dynamically linked busybox would not run inside an image with no libc.
if command -v file >/dev/null && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
    echo "mkimage-busybox: $BUSYBOX is dynamically linked; need busybox-static" >&2; exit 1
fi

umask 022
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
r="$work/rootfs"

mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,tmp,root,home/user,var/www,var/spool,run}
chmod 1777 "$r/tmp"
chmod 0700 "$r/root"
install -m 0755 "$BUSYBOX" "$r/bin/busybox"

# Relative links: they resolve the same inside the container and when the layer is inspected
# on the host, and no extractor can mistake them for links out of the rootfs.
"$BUSYBOX" --list-full | LC_ALL=C sort -u | while read -r applet; do
    case "$applet" in
        ""|/*|*..*|bin/busybox) continue ;;
        */*) ;;
        *) continue ;;   # `linuxrc` at the root: not an applet anyone runs
    esac
    dir="${applet%/*}"
    mkdir -p "$r/$dir"
    # busybox beside it in bin/, else ../ once per directory level, then bin/busybox.
    if [ "$dir" = bin ]; then
        target=busybox
    else
        target="$(printf '%s' "$dir" | sed 's|[^/][^/]*|..|g')/bin/busybox"
    fi
    [ -e "$r/$applet" ] || [ -L "$r/$applet" ] || ln -s "$target" "$r/$applet"
done
[ -L "$r/bin/sh" ] || ln -s busybox "$r/bin/sh"

cat > "$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$r/etc/group" <<'G'
root:x:0:
daemon:x:1:
wheel:x:10:root
www-data:x:33:
users:x:100:user
user:x:1000:
nogroup:x:65534:
G
printf 'root:*:19000:0:99999:7:::\nuser:*:19000:0:99999:7:::\n' > "$r/etc/shadow"
chmod 0640 "$r/etc/shadow"
: > "$r/etc/hosts"
: > "$r/etc/hostname"
: > "$r/etc/resolv.conf"
printf 'NAME=busybox\nID=busybox\nPRETTY_NAME="BusyBox %s (Debian busybox-static)"\n' \
    "$("$BUSYBOX" 2>&1 | sed -n '1s/^BusyBox v\([^ ]*\).*/\1/p')" > "$r/etc/os-release"
chmod 0644 "$r"/etc/*
chmod 0640 "$r/etc/shadow"

# Owners: everything root, /home/user user's. As root, set them on disk and let tar record
# them; otherwise force root for all (the home directory's owner is then lost, nothing else).
owner_opts=(--numeric-owner)
if [ "$(id -u)" -eq 0 ]; then
    chown -R 0:0 "$r"
    chown 1000:1000 "$r/home/user"
else
    owner_opts+=(--owner=0 --group=0)
fi

case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
tmp_out="$out.tmp.$$"
(
    cd "$r"
    # Sorted top-level names too: GNU tar's --sort only orders inside directories.
    # shellcheck disable=SC2046
    LC_ALL=C tar --format=gnu --sort=name --mtime='@0' "${owner_opts[@]}" \
        -cf "$tmp_out" $(LC_ALL=C ls -A | LC_ALL=C sort)
)
mv -f "$tmp_out" "$out"
