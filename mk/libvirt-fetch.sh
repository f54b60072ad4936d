#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Put the pinned libvirt orig tarball into $DL (default build/dl) and verify
# it.  Order: $LIBVIRT_TARBALL if set; an already verified download; in CI
# the shared cache first; Debian's source package (apt-get source, from the
# bookworm-backports deb-src entry mk/setup.sh adds); the shared cache.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
eval "$(sed -n 's/^\([A-Z0-9_]*\) *:= *\(.*\)$/\1="\2"/p' "$top/libvirt-base.mk")"
DL=${DL:-$top/build/dl}
CACHE=${LIBVIRT_CACHE:-$top/../shared/cache}
out=$DL/$LIBVIRT_ORIG

die() { echo "libvirt-fetch: $*" >&2; exit 1; }

verify() {
    [ -f "$1" ] || return 1
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    [ "$sum" = "$LIBVIRT_ORIG_SHA256" ]
}

if [ -n "${LIBVIRT_SRC:-}" ]; then
    echo "libvirt-fetch: using LIBVIRT_SRC=$LIBVIRT_SRC"
    exit 0
fi
if [ -n "${LIBVIRT_TARBALL:-}" ]; then
    [ -f "$LIBVIRT_TARBALL" ] || die "LIBVIRT_TARBALL=$LIBVIRT_TARBALL does not exist"
    echo "libvirt-fetch: using LIBVIRT_TARBALL=$LIBVIRT_TARBALL"
    exit 0
fi

mkdir -p "$DL"
if verify "$out"; then
    exit 0
fi
rm -f "$out"

from_cache() {
    if verify "$CACHE/$LIBVIRT_ORIG"; then
        cp "$CACHE/$LIBVIRT_ORIG" "$out.tmp" && mv "$out.tmp" "$out"
        echo "libvirt-fetch: using the cached copy $CACHE/$LIBVIRT_ORIG (sha256 ok)"
        return 0
    fi
    return 1
}

if [ "${CI:-}" = true ] && from_cache; then
    exit 0
fi

echo "libvirt-fetch: apt-get source --download-only $LIBVIRT_DEB_SOURCE"
tmp=$(mktemp -d "$DL/apt.XXXXXX")
# Debian serves only the orig tarball of this version: apt-get may fail on
# the rest after fetching it, so the exit status is not trusted alone.
(cd "$tmp" && apt-get source --download-only "$LIBVIRT_DEB_SOURCE") \
    >"$tmp.log" 2>&1 || true
if [ -f "$tmp/$LIBVIRT_ORIG" ]; then
    if verify "$tmp/$LIBVIRT_ORIG"; then
        mv "$tmp/$LIBVIRT_ORIG" "$out"
        rm -rf "$tmp" "$tmp.log"
        echo "libvirt-fetch: $LIBVIRT_ORIG downloaded, sha256 ok"
        exit 0
    fi
    rm -rf "$tmp" "$tmp.log"
    die "downloaded $LIBVIRT_ORIG has the wrong sha256 (want $LIBVIRT_ORIG_SHA256)"
fi
reason=$(grep -E '^(E|W):' "$tmp.log" | head -1)
rm -rf "$tmp" "$tmp.log"

if from_cache; then
    exit 0
fi
die "cannot fetch $LIBVIRT_DEB_SOURCE (${reason:-no deb-src entry?}); run 'make setup' to add the deb-src entry, or point the build at a libvirt $LIBVIRT_VERSION source with LIBVIRT_TARBALL=/path/to/tarball or LIBVIRT_SRC=/path/to/tree"
