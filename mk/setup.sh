#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Install what building and testing qemu-gmem needs on Debian 12 (bookworm).
#
# Adds exactly two apt sources: a deb-src entry for the suite that carries
# qemu 1:10.2.2+ds-1 (source only, no binaries), and bookworm-backports, from
# which only meson, python3-pycotap and seabios are taken (backports is
# NotAutomatic, so nothing else is pulled from it).
set -eu

if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "setup: must run as root (or with sudo available)" >&2
    exit 1
fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
    echo "setup: warning: written for Debian 12 (bookworm), this is ${PRETTY_NAME:-unknown}" >&2
fi

SRC_SUITE=${QEMU_SRC_SUITE:-sid}
LIST=/etc/apt/sources.list.d/qemu-gmem.sources
want=$(cat <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $SRC_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
)
if [ ! -f "$LIST" ] || [ "$(cat "$LIST")" != "$want" ]; then
    printf '%s\n' "$want" > "$LIST"
    stamp=
else
    stamp=$(find /var/lib/apt/lists -maxdepth 1 -name '*bookworm-backports*Packages*' -mmin -1440 2>/dev/null | head -1)
fi
[ -n "$stamp" ] || apt-get update -q

export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends \
    build-essential ninja-build pkg-config python3-venv xz-utils dpkg-dev \
    libglib2.0-dev zlib1g-dev libpixman-1-dev libslirp-dev libfdt-dev \
    lib32gcc-12-dev ipxe-qemu ccache perl git libnuma-dev \
    clang libclang-rt-14-dev \
    meson/bookworm-backports python3-pycotap/bookworm-backports \
    seabios/bookworm-backports
