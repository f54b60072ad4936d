#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A QEMU run from its build tree looks for firmware only in its qemu-bundle
# directory.  The +ds source has no prebuilt firmware: link Debian's SeaBIOS
# and iPXE ROMs there, and the option ROMs this build made.
set -eu
OBJ=$1
dst=$(find "$OBJ/qemu-bundle" -type d -path '*/share/qemu' 2>/dev/null | head -1)
[ -n "$dst" ] || dst=$OBJ/qemu-bundle/usr/local/share/qemu
mkdir -p "$dst"
for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom \
         "$OBJ"/pc-bios/optionrom/*.bin; do
    [ -e "$f" ] && ln -sf "$f" "$dst/"
done
for rom in bios-256k.bin multiboot_dma.bin linuxboot_dma.bin kvmvapic.bin; do
    [ -e "$dst/$rom" ] || {
        echo "firmware: $rom missing (run 'make setup': seabios, lib32gcc-12-dev)" >&2
        exit 1
    }
done
