#!/usr/bin/env bash
# A Debian 13 (trixie) root with GIMP 3 and its plug-in development files,
# for the GIMP 3 plug-in's build and tests on a Debian 12 host (as root).
#
#   tools/trixie-root.sh path            builds the root if needed, prints its path
#   tools/trixie-root.sh run DIR -- CMD  runs CMD (bash -c) in the root, with
#                                        DIR bind-mounted at /job and /job
#                                        as the current folder; the checkout
#                                        is mounted read-only at its own path
#                                        (the library built here finds
#                                        libtorch and the models by it)
#
# The root is made by mmdebstrap from deb.debian.org and cached under
# .cache/trixie-HASH, HASH being this script's content hash: a changed
# recipe builds a new root (the old ones are removed). It is built in a
# temporary folder and renamed, so an interrupted build leaves nothing that
# looks finished. `run` mounts proc, sysfs, a new devpts and a tmpfs
# /dev/shm in a private mount namespace (never the host's /dev), and
# unmounts them in a trap; the namespace drops them even after kill -9.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=$(cd "$HERE/.." && pwd)/.cache
PACKAGES=gimp,libgimp-3.0-dev,gcc,libc6-dev,pkg-config,xvfb,xauth,xdotool,imagemagick
MIRROR=http://deb.debian.org/debian

die() { echo "trixie-root: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it uses chroot and mount)"

root_path() {
    local hash
    hash=$(sha256sum "$HERE/trixie-root.sh" | cut -c1-12)
    echo "$CACHE/trixie-$hash"
}

# Builds the root unless the cached one for this recipe exists.
build() {
    local root tmp
    root=$(root_path)
    [ -x "$root/usr/bin/gimp-console-3.0" ] && return 0
    command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (Debian: apt-get install mmdebstrap)"
    mkdir -p "$CACHE"
    tmp="$root.partial"
    rm -rf "$tmp"
    echo "trixie-root: building $root (Debian 13, gimp and libgimp-3.0-dev)" >&2
    mmdebstrap --quiet --variant=minbase --include="$PACKAGES" trixie "$tmp" "$MIRROR" >&2 ||
        { rm -rf "$tmp"; die "mmdebstrap could not build the Debian 13 root from $MIRROR"; }
    [ -x "$tmp/usr/bin/gimp-console-3.0" ] || { rm -rf "$tmp"; die "the new root has no gimp-console-3.0"; }
    mv "$tmp" "$root"
    for old in "$CACHE"/trixie-*; do
        [ "$old" = "$root" ] || rm -rf --one-file-system "$old"
    done
}

# Mounts, runs the command in the root, unmounts (inside `unshare -m`).
run_inside() {
    local root=$1 dir=$2 checkout=$3 cmd=$4
    mounted=()
    cleanup() {
        local i
        for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    }
    trap cleanup EXIT
    mount --make-rprivate /
    mount -t proc proc "$root/proc" && mounted+=("$root/proc")
    mount -t sysfs sysfs "$root/sys" && mounted+=("$root/sys")
    mkdir -p "$root/dev/pts" "$root/dev/shm" "$root/job" "$root$checkout"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts" && mounted+=("$root/dev/pts")
    mount -t tmpfs -o mode=1777,size=2g tmpfs "$root/dev/shm" && mounted+=("$root/dev/shm")
    mount --bind "$dir" "$root/job" && mounted+=("$root/job")
    mount --bind "$checkout" "$root$checkout" && mounted+=("$root$checkout")
    mount -o remount,bind,ro "$root$checkout"
    chroot "$root" /usr/bin/env -i HOME=/job PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        /bin/bash -c "cd /job && $cmd"
}

case "${1:-}" in
path)
    build
    root_path
    ;;
run)
    [ $# -ge 4 ] && [ "$3" = -- ] || die "usage: $0 run DIR -- COMMAND"
    [ -d "$2" ] || die "no folder '$2' to mount at /job"
    build
    export -f run_inside
    exec unshare --mount --propagation private bash -c 'set -euo pipefail; run_inside "$@"' run \
        "$(root_path)" "$(cd "$2" && pwd)" "$(cd "$HERE/.." && pwd)" "$4"
    ;;
*)
    die "usage: $0 path | run DIR -- COMMAND"
    ;;
esac
