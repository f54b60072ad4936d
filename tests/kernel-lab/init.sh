#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /init of the kernel lab's L1 (busybox).  Runs the lab's tests against the
# kernel it booted and prints, on the serial console, one line per test:
#   LAB-RESULT pass|fail|skip NAME [detail]
# with the output of each test between LAB-BEGIN NAME and LAB-END NAME.
# mk/kernel-lab.sh reads these lines; then L1 powers off.

export PATH=/lab/bin:/lab/qemu/bin:/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/tmp TMPDIR=/tmp

QEMU=/lab/qemu/bin/qemu-system-x86_64
FW=/lab/qemu/share/qemu
GUEST=/lab/guest/gmem-guest.elf

result() {
    echo "LAB-RESULT $*"
}

# run NAME SECONDS FUNCTION [ARG]: the test passes when FUNCTION, run by
# a child shell under timeout, exits 0, is skipped when it exits 77 (it
# prints why), fails otherwise
run() {
    name=$1 secs=$2
    shift 2
    echo "LAB-BEGIN $name"
    t0=$(date +%s)
    timeout "$secs" /bin/sh /init test "$@" 2>&1
    st=$?
    # an L2 QEMU that outlived its test (timeout) would slow the next ones
    if [ -f /tmp/l2.pid ]; then
        kill -9 "$(cat /tmp/l2.pid)" 2>/dev/null
        rm -f /tmp/l2.pid
    fi
    t1=$(date +%s)
    echo "LAB-END $name"
    case $st in
    0) result pass "$name" "($((t1 - t0)) s)" ;;
    77) result skip "$name" "(see its output)" ;;
    124|143) result fail "$name" "timed out after $secs s" ;;
    *) result fail "$name" "exit status $st ($((t1 - t0)) s)" ;;
    esac
}


test_param() {
    p=/sys/module/kvm/parameters/gmem_in_place_conversion
    if [ ! -e /dev/kvm ]; then
        echo "no /dev/kvm (is kvm_amd up? dmesg:)"
        dmesg | grep -i -e kvm -e svm | tail -5
        return 1
    fi
    if [ ! -e $p ]; then
        echo "$p missing: this kernel has no in-place conversion series (v8)"
        return 1
    fi
    echo "gmem_in_place_conversion=$(cat $p)"
    [ "$(cat $p)" = Y ]
}

test_gmem_diff() {
    gmem-diff
}

test_rate() {
    convert-rate 2
}

# L2: our QEMU under KVM in L1, RAM in memory-backend-guest-memfd, the
# test guest, and query-kvm-guest-memfd over QMP (stdio) before it runs
l2_run() {
    trap '' PIPE
    name=$1
    shift
    rm -f /tmp/qmp.in /tmp/$name.dbg
    mkfifo /tmp/qmp.in
    $QEMU -L $FW -accel kvm -cpu qemu64 -nodefaults -display none -S \
        -m 32M -kernel $GUEST -append "mode=exit mb=4" \
        -chardev file,id=dbg,path=/tmp/$name.dbg \
        -device isa-debugcon,iobase=0xe9,chardev=dbg \
        -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -qmp stdio "$@" </tmp/qmp.in >/tmp/$name.qmp 2>/tmp/$name.err &
    qpid=$!
    echo $qpid >/tmp/l2.pid
    exec 3>/tmp/qmp.in
    printf '%s\n' '{"execute":"qmp_capabilities"}' \
        '{"execute":"query-kvm-guest-memfd"}' >&3
    # QEMU's mappings of guest_memfd while the VM is paused
    for i in 1 2 3 4 5 6 7 8 9 10; do
        grep -q '"guest-memfd-flags"\|"error"' /tmp/$name.qmp 2>/dev/null && break
        kill -0 $qpid 2>/dev/null || break
        sleep 1
    done
    echo "--- guest_memfd mappings of QEMU (paused)"
    grep kvm-gmem /proc/$qpid/maps
    printf '%s\n' '{"execute":"cont"}' >&3
    wait $qpid
    st=$?
    rm -f /tmp/l2.pid
    exec 3>&-
    echo "QEMU exit status $st (33: the guest passed)"
    echo "--- QMP"
    cat /tmp/$name.qmp
    echo "--- QEMU stderr"
    cat /tmp/$name.err
    echo "--- guest debug console"
    cat /tmp/$name.dbg
    [ $st = 33 ]
}

test_l2_gmem() {
    l2_run l2-gmem -machine q35,memory-backend=m0 \
        -object memory-backend-guest-memfd,id=m0,size=32M
}

test_l2_swprot() {
    if ! $QEMU -object sw-protected-guest,id=x,help >/tmp/swp.help 2>&1; then
        echo "this QEMU has no sw-protected-guest object:"
        cat /tmp/swp.help
        return 77
    fi
    cat /tmp/swp.help
    l2_run l2-swprot \
        -object sw-protected-guest,id=sw0 \
        -machine q35,memory-backend=m0,confidential-guest-support=sw0 \
        -object memory-backend-guest-memfd,id=m0,size=32M
}

# the same with SMM off: KVM gives a VM with private memory one address
# space only, so q35's SMM memory slot cannot be registered
test_l2_swprot_smm_off() {
    if ! $QEMU -object sw-protected-guest,id=x,help >/dev/null 2>&1; then
        echo "this QEMU has no sw-protected-guest object"
        return 77
    fi
    l2_run l2-swprot-nosmm \
        -object sw-protected-guest,id=sw0 \
        -machine q35,memory-backend=m0,confidential-guest-support=sw0,smm=off \
        -object memory-backend-guest-memfd,id=m0,size=32M
}

test_qtest() {
    if [ ! -x /lab/qtest/guest-memfd-test ]; then
        echo "no guest-memfd-test in the initramfs"
        return 77
    fi
    cd /lab/qtest
    # the binary of the concern that has the path
    bin=
    for b in ./guest-memfd*-test; do
        if QTEST_QEMU_BINARY=$QEMU "$b" -l 2>/dev/null | grep -qx "$1"; then
            bin=$b
            break
        fi
    done
    if [ -z "$bin" ]; then
        echo "no qtest binary has $1"
        return 1
    fi
    QTEST_QEMU_BINARY=$QEMU GMEM_GUEST_ELF=$GUEST \
        GMEM_KVM_MODEL=/lab/qtest/guest-memfd-kvm-model.so \
        GMEM_PIN_LIB=/lab/qtest/guest-memfd-pin.so \
        "$bin" --tap -k -p "$1" >/tmp/qtest.out 2>&1
    st=$?
    cat /tmp/qtest.out
    # a path that names no test runs nothing and exits 0: not a pass
    if ! grep -q '^ok ' /tmp/qtest.out; then
        echo "no test ran"
        return 1
    fi
    if grep -q '^ok .*# SKIP' /tmp/qtest.out; then
        return 77
    fi
    return $st
}

# one of the kernel tree's KVM selftests (kselftest: 4 means skipped)
test_selftest() {
    /lab/selftests/"$1"
    st=$?
    [ $st = 4 ] && return 77
    return $st
}

if [ "$1" = test ]; then
    shift
    "$@"
    exit $?
fi

# PID 1
/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /usr/sbin /sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug
echo "LAB-KERNEL $(uname -r) $(uname -v)"
echo "LAB-CPUS $(grep -c ^processor /proc/cpuinfo)"

run kvm-param 30 test_param
run gmem-diff 300 test_gmem_diff
run convert-rate 120 test_rate
run l2-gmem 600 test_l2_gmem
run l2-sw-protected 600 test_l2_swprot
run l2-sw-protected-smm-off 600 test_l2_swprot_smm_off
for t in $(cat /lab/selftests-list 2>/dev/null); do
    run "selftest/$t" 600 test_selftest "$t"
done
for p in $(cat /lab/qtest-paths 2>/dev/null); do
    run "qtest$p" 600 test_qtest "$p"
done
echo "LAB-DONE"
sync
poweroff -f
