#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the gmem-guest multiboot test kernel.
#
# Usage: build.sh OUT.elf [CC]
#
# Needs a gcc that can target -m32 (on Debian: lib32gcc-<ver>-dev);
# the guest does not link against libgcc or any C library.

set -e

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUT.elf [CC]" >&2
    exit 1
fi

out=$1
cc=${2:-gcc}
srcdir=$(cd "$(dirname "$0")" && pwd)

exec $cc -m32 -march=i386 -ffreestanding -fno-pic -fno-pie -no-pie \
    -fno-stack-protector -fno-asynchronous-unwind-tables \
    -fno-builtin -nostdlib -static -O2 -Wall -Wextra -Werror \
    -Wl,-T,"$srcdir/gmem-guest.ld" -Wl,--build-id=none \
    -DGMEM_GUEST_BUILD -I"$srcdir" -o "$out" "$srcdir/gmem-guest.c"
