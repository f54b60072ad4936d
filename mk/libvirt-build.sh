#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Configure (once) and build the patched libvirt of build/libvirt in
# build/libvirt-obj with meson and ccache: the QEMU driver, virtqemud,
# virsh and the tests, no docs.  The install prefix is build/libvirt-root,
# never installed into: a daemon run from the build tree keeps its
# configuration and state there (mk/libvirt-daemon-test.sh).
#
#   mk/libvirt-build.sh configure   (re)configure from scratch
#   mk/libvirt-build.sh build       build (configures first if needed)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
SRC=${LIBVIRT_TREE:-$top/build/libvirt}
OBJ=${LIBVIRT_OBJ:-$top/build/libvirt-obj}
ROOT=${LIBVIRT_ROOT:-$top/build/libvirt-root}
JOBS=${JOBS:-$(nproc)}

die() { echo "libvirt-build: $*" >&2; exit 1; }

# Everything but what the QEMU driver, virtqemud and the test suites need is
# off.  LXC stays (the build's driver consistency checks expect it); the
# test driver is built by default.
MESON_OPTS="-Dprefix=$ROOT -Dsysconfdir=etc -Dlocalstatedir=var -Drunstatedir=$ROOT/run
 -Dsystem=false -Dno_git=true -Ddocs=disabled -Dtests=enabled -Dnls=disabled
 -Dinit_script=none -Dqemu_user=root -Dqemu_group=root
 -Ddriver_qemu=enabled -Ddriver_libvirtd=enabled -Ddriver_remote=enabled
 -Ddriver_bhyve=disabled -Ddriver_esx=disabled -Ddriver_hyperv=disabled
 -Ddriver_libxl=disabled -Ddriver_ch=disabled -Ddriver_openvz=disabled
 -Ddriver_vbox=disabled -Ddriver_vmware=disabled -Ddriver_vz=disabled
 -Ddriver_network=disabled -Ddriver_interface=disabled
 -Dstorage_dir=disabled -Dstorage_disk=disabled -Dstorage_fs=disabled
 -Dstorage_gluster=disabled -Dstorage_iscsi=disabled
 -Dstorage_iscsi_direct=disabled -Dstorage_lvm=disabled -Dstorage_mpath=disabled
 -Dstorage_rbd=disabled -Dstorage_scsi=disabled -Dstorage_vstorage=disabled
 -Dstorage_zfs=disabled
 -Dpolkit=disabled -Dselinux=disabled -Dapparmor=disabled
 -Dsecdriver_apparmor=disabled -Dsecdriver_selinux=disabled -Dsasl=disabled
 -Dlibssh=disabled -Dlibssh2=disabled -Dfirewalld=disabled -Dnbdkit=disabled
 -Dudev=disabled -Dwireshark_dissector=disabled -Dsanlock=disabled
 -Dglusterfs=disabled -Dcurl=disabled -Dopenwsman=disabled -Dlibpcap=disabled
 -Dfuse=disabled -Dnss=disabled -Dbash_completion=disabled
 -Dhost_validate=disabled -Dlogin_shell=disabled -Dsysctl_config=disabled
 -Dlibiscsi=disabled -Dnetcf=disabled -Dnumad=disabled -Dpciaccess=disabled
 -Daudit=disabled"

configure() {
    [ -f "$SRC/meson.build" ] || die "$SRC is not prepared: run mk/libvirt-prepare.sh"
    cc=gcc
    command -v ccache >/dev/null 2>&1 && cc="ccache gcc"
    rm -rf "$OBJ"
    mkdir -p "$(dirname "$OBJ")"
    # Relative source path: the same compiler command lines, hence ccache
    # hits, wherever the checkout is.
    rel=$(realpath --relative-to="$(dirname "$OBJ")" "$SRC")
    # shellcheck disable=SC2086
    if ! (cd "$(dirname "$OBJ")" && CC="$cc" meson setup "$(basename "$OBJ")" "$rel" $MESON_OPTS) \
            >"$OBJ.configure.log" 2>&1; then
        tail -30 "$OBJ.configure.log"
        die "meson setup failed: see $OBJ.configure.log"
    fi
    grep -q "QEMU *: YES" "$OBJ.configure.log" ||
        die "meson left out the QEMU driver (libjson-c-dev missing?): see $OBJ.configure.log"
    mv "$OBJ.configure.log" "$OBJ/configure.log"
}

case ${1:-build} in
configure)
    configure ;;
build)
    [ -f "$OBJ/build.ninja" ] || configure
    start=$(date +%s)
    ninja -C "$OBJ" -j"$JOBS" >"$OBJ/build.log" 2>&1 || {
        grep -B2 -A12 -m3 'error:\|FAILED' "$OBJ/build.log" | head -60
        die "build failed: see $OBJ/build.log"
    }
    echo "libvirt-build: built in $(( $(date +%s) - start )) s ($(grep -c '^\[' "$OBJ/build.log") steps)" ;;
*)
    die "usage: $0 configure|build" ;;
esac
