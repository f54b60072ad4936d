#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what building and testing qemu-gmem needs on Debian 12 (bookworm).
#
# The package mirror is the one this machine already uses: the URI of its
# existing apt source for Debian's main archive (the entry that serves the
# release's own suite, e.g. "bookworm"), read from /etc/apt/sources.list
# and /etc/apt/sources.list.d/ in either format.  A local mirror works the
# same way; APT_MIRROR=URI overrides the choice.
#
# Adds exactly two apt sources on that mirror: a deb-src entry for the
# suite that carries qemu 1:10.2.2+ds-1 (source only, no binaries), and
# bookworm-backports, from which only meson, python3-pycotap and seabios
# are taken (backports is NotAutomatic, so nothing else is pulled from it).
set -eu

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "setup: must run as root (or with sudo available)" >&2
    exit 1
fi

. /etc/os-release
CODENAME=${VERSION_CODENAME:-bookworm}
if [ "$CODENAME" != bookworm ]; then
    echo "setup: warning: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}" >&2
fi

LIST=/etc/apt/sources.list.d/qemu-gmem.sources

. "$(dirname "$0")/apt-mirror.sh"

MIRROR=${APT_MIRROR:-$(apt_uris_for_suite "$CODENAME" "$LIST" | head -1)}
if [ -z "$MIRROR" ]; then
    echo "setup: no apt source of this machine serves the suite '$CODENAME'" >&2
    echo "setup: add your Debian mirror to /etc/apt/sources.list, or give it as APT_MIRROR=URI" >&2
    exit 1
fi
echo "setup: using this machine's Debian mirror $MIRROR"

SRC_SUITE=${QEMU_SRC_SUITE:-sid}
want=$(cat <<SOURCES
Types: deb-src
URIs: $MIRROR
Suites: $SRC_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: $MIRROR
Suites: $CODENAME-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
)
if [ ! -f "$LIST" ] || [ "$(cat "$LIST")" != "$want" ]; then
    printf '%s\n' "$want" > "$LIST"
    stamp=
else
    stamp=$(find /var/lib/apt/lists -maxdepth 1 -name "*$CODENAME-backports*Packages*" -mmin -1440 2>/dev/null | head -1)
fi
[ -n "$stamp" ] || apt-get update -q

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends \
    build-essential ninja-build pkg-config python3-venv xz-utils dpkg-dev \
    libglib2.0-dev zlib1g-dev libpixman-1-dev libslirp-dev libfdt-dev \
    lib32gcc-12-dev ipxe-qemu ccache perl git libnuma-dev \
    clang libclang-rt-14-dev \
    libcap-ng-dev libattr1-dev \
    libjson-c-dev xsltproc libnl-3-dev libnl-route-3-dev libxml2-dev \
    libgnutls28-dev libtirpc-dev libxml2-utils \
    flex bison m4 bc cpio libelf-dev busybox-static \
    meson/$CODENAME-backports python3-pycotap/$CODENAME-backports \
    seabios/$CODENAME-backports
