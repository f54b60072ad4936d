#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The kernel lab: build an L1 kernel from KERNEL_SRC (a Linux tree with the
# guest_memfd in-place conversion series), boot it under our QEMU with TCG
# (-cpu EPYC: nested SVM, so L1 has KVM and KVM_X86_SW_PROTECTED_VM) from
# an initramfs that carries everything the tests need, run the tests of
# tests/kernel-lab/ in L1 and report one line per test.
#
#   KERNEL_SRC=/path/to/linux mk/kernel-lab.sh
#
# QEMU_OBJ     QEMU build directory (default build/obj): L0's QEMU, and the
#              QEMU, test guest and qtests that run in L1
# LAB_TIMEOUT  seconds L1 may run (default 1800)
# LAB_QTESTS   guest-memfd qtest paths (-p) to run in L1, space-separated;
#              "all" (default): every test it lists, "" none
# LAB_RECORD=1 store this run's gmem-diff transcript as the recorded one
#              (LAB_KERNEL_DESC: what the kernel is, for its header)
# LAB_RECORDED the recorded transcript to compare with (default: the one
#              of linux 7.1.8 with the v8 series)
# JOBS         kernel build jobs (default 2)
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
LAB=$TOP/tests/kernel-lab
OUT=$TOP/build/kernel-lab
KOBJ=$OUT/obj
QEMU_OBJ=${QEMU_OBJ:-$TOP/build/obj}
LAB_TIMEOUT=${LAB_TIMEOUT:-1800}
JOBS=${JOBS:-2}
LAB_QTESTS=${LAB_QTESTS-all}
RECORDED=${LAB_RECORDED:-$LAB/gmem-diff.linux-7.1.8-v8.txt}

die() {
    echo "kernel-lab: $*" >&2
    exit 1
}

if [ -z "${KERNEL_SRC:-}" ]; then
    cat >&2 <<EOF
kernel-lab: no kernel tree given, nothing to run.
The lab builds and boots a Linux kernel that has the guest_memfd in-place
conversion series (v8) and runs its tests against it; it needs that tree:

    make kernel-lab KERNEL_SRC=/path/to/linux

(for example Debian's linux 7.1.8 orig tarball with the v8 series applied)
EOF
    exit 1
fi
KERNEL_SRC=$(cd "$KERNEL_SRC" && pwd) || die "KERNEL_SRC=$KERNEL_SRC: no such directory"
[ -f "$KERNEL_SRC/Makefile" ] && [ -f "$KERNEL_SRC/virt/kvm/guest_memfd.c" ] ||
    die "KERNEL_SRC=$KERNEL_SRC is not a Linux tree with guest_memfd"
QEMU_OBJ=$(cd "$QEMU_OBJ" && pwd) || die "QEMU_OBJ: no such directory"
L0=$QEMU_OBJ/qemu-system-x86_64
[ -x "$L0" ] || die "$L0 missing: run 'make build' or pass QEMU_OBJ=<QEMU build dir>"
for t in gcc cpio flex bison bc; do
    command -v $t >/dev/null || die "$t missing (make setup installs it)"
done
file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
    die "/bin/busybox is not static: install busybox-static (make setup)"

mkdir -p "$OUT"

# --- the L1 kernel, rebuilt when the config fragment or the tree changes
if git -C "$KERNEL_SRC" rev-parse --verify -q HEAD >/dev/null; then
    src_id="git $(git -C "$KERNEL_SRC" rev-parse HEAD) $(git -C "$KERNEL_SRC" diff HEAD | sha256sum)"
else
    echo "kernel-lab: $KERNEL_SRC is not a git tree: hashing its sources"
    src_id="content $(cd "$KERNEL_SRC" && find . -type f \( -name '*.[chS]' \
        -o -name 'Kconfig*' -o -name 'Makefile*' -o -name '*.lds*' \) -print0 |
        sort -z | xargs -0 sha256sum | sha256sum)"
fi
key=$( { cat "$LAB/lab.config"; echo "$KERNEL_SRC"; echo "$src_id"; } | sha256sum | cut -c1-16)
BZ=$KOBJ/arch/x86/boot/bzImage
if [ -f "$BZ" ] && [ "$(cat "$KOBJ/.lab-key" 2>/dev/null)" = "$key" ]; then
    echo "kernel-lab: L1 kernel up to date ($key)"
else
    echo "kernel-lab: building the L1 kernel from $KERNEL_SRC ($key) in $KOBJ"
    t0=$(date +%s)
    mkdir -p "$KOBJ"
    rm -f "$KOBJ/.lab-key"
    make -s -C "$KERNEL_SRC" O="$KOBJ" tinyconfig >"$OUT/kconfig.log" 2>&1
    "$KERNEL_SRC/scripts/kconfig/merge_config.sh" -m -O "$KOBJ" \
        "$KOBJ/.config" "$LAB/lab.config" >>"$OUT/kconfig.log" 2>&1
    make -s -C "$KERNEL_SRC" O="$KOBJ" olddefconfig >>"$OUT/kconfig.log" 2>&1
    missing=0
    while read -r line; do
        case $line in
        CONFIG_*=*) grep -qx "$line" "$KOBJ/.config" || { echo "kernel-lab: $line did not take"; missing=1; } ;;
        esac
    done <"$LAB/lab.config"
    o=$(sed -n 's/^# \(CONFIG_[A-Z0-9_]*\) is not set$/\1/p' "$LAB/lab.config")
    for c in $o; do
        grep -q "^$c=y" "$KOBJ/.config" && { echo "kernel-lab: $c is set, the fragment says off"; missing=1; }
    done
    [ $missing = 0 ] || die "the config fragment does not apply to this tree (see $OUT/kconfig.log)"
    nice -n 10 make -C "$KERNEL_SRC" O="$KOBJ" -j"$JOBS" bzImage >"$OUT/kbuild.log" 2>&1 ||
        { tail -20 "$OUT/kbuild.log"; die "kernel build failed: $OUT/kbuild.log"; }
    echo "$key" >"$KOBJ/.lab-key"
    echo "kernel-lab: L1 kernel built in $(( $(date +%s) - t0 )) s"
fi
KVER=$(cat "$KOBJ/include/config/kernel.release" 2>/dev/null || echo unknown)

# --- the initramfs: busybox, the lab's programs, our QEMU with its
# libraries and firmware, the test guest and the qtests
ROOT=$OUT/initramfs
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,lab/bin,lab/qemu/bin,lab/qemu/share/qemu,lab/guest,lab/qtest}
cp /bin/busybox "$ROOT/bin/busybox"
install -m 0755 "$LAB/init.sh" "$ROOT/init"
for p in gmem-diff convert-rate; do
    gcc -O2 -Wall -static -o "$ROOT/lab/bin/$p" "$LAB/$p.c" ||
        die "cannot build $p statically (libc6-dev)"
done

# copy_elf FILE DEST: FILE, stripped, and the shared libraries it needs at
# their own paths
copy_elf() {
    cp -L "$1" "$2"
    strip -s "$2" 2>/dev/null || true
    ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
        [ -e "$ROOT$lib" ] && continue
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
}
copy_elf "$L0" "$ROOT/lab/qemu/bin/qemu-system-x86_64"
fwdir=$(find "$QEMU_OBJ/qemu-bundle" -type d -path '*/share/qemu' 2>/dev/null | head -1 || true)
for f in ${fwdir:+"$fwdir"/*.bin "$fwdir"/*.rom} /usr/share/seabios/*.bin \
         "$QEMU_OBJ"/pc-bios/optionrom/*.bin; do
    [ -e "$f" ] && [ ! -e "$ROOT/lab/qemu/share/qemu/$(basename "$f")" ] &&
        cp -L "$f" "$ROOT/lab/qemu/share/qemu/"
done
[ -e "$ROOT/lab/qemu/share/qemu/bios-256k.bin" ] || die "no bios-256k.bin (seabios)"
guest=$QEMU_OBJ/tests/qtest/gmem-guest.elf
[ -f "$guest" ] && cp "$guest" "$ROOT/lab/guest/"
qt=$QEMU_OBJ/tests/qtest/guest-memfd-test
if [ -x "$qt" ] && [ -n "$LAB_QTESTS" ]; then
    # one binary per concern; init.sh runs the one that lists a path
    for b in "$QEMU_OBJ"/tests/qtest/guest-memfd*-test; do
        copy_elf "$b" "$ROOT/lab/qtest/$(basename "$b")"
    done
    for so in guest-memfd-kvm-model.so guest-memfd-pin.so; do
        [ -f "$QEMU_OBJ/tests/qtest/$so" ] &&
            copy_elf "$QEMU_OBJ/tests/qtest/$so" "$ROOT/lab/qtest/$so"
    done
    if [ "$LAB_QTESTS" = all ]; then
        for b in "$QEMU_OBJ"/tests/qtest/guest-memfd*-test; do
            QTEST_QEMU_BINARY=$L0 "$b" -l 2>/dev/null | grep '^/' || true
        done >"$ROOT/lab/qtest-paths"
    else
        printf '%s\n' $LAB_QTESTS >"$ROOT/lab/qtest-paths"
    fi
fi
# the tree's own KVM selftests of guest_memfd, where it has them (the
# in-place series adds x86/guest_memfd_conversions_test)
ST=$OUT/selftests
SELFTESTS="guest_memfd_test x86/guest_memfd_conversions_test x86/private_mem_conversions_test x86/private_mem_kvm_exits_test"
if [ -f "$KERNEL_SRC/tools/testing/selftests/kvm/x86/guest_memfd_conversions_test.c" ]; then
    if make -s -C "$KERNEL_SRC" O="$KOBJ" headers >"$OUT/selftests.log" 2>&1 &&
       make -s -C "$KERNEL_SRC/tools/testing/selftests/kvm" OUTPUT="$ST" \
           KHDR_INCLUDES="-isystem $KOBJ/usr/include" -j"$JOBS" \
           $(for t in $SELFTESTS; do echo "$ST/$t"; done) >>"$OUT/selftests.log" 2>&1; then
        mkdir -p "$ROOT/lab/selftests"
        for t in $SELFTESTS; do
            copy_elf "$ST/$t" "$ROOT/lab/selftests/$(basename "$t")"
            basename "$t" >>"$ROOT/lab/selftests-list"
        done
    else
        echo "kernel-lab: the tree's KVM selftests did not build (see $OUT/selftests.log): not run"
    fi
fi
(cd "$ROOT" && find . | cpio -o -H newc --quiet) >"$OUT/initramfs.cpio"
echo "kernel-lab: initramfs $(( $(stat -c %s "$OUT/initramfs.cpio") >> 20 )) MiB, L1 kernel $KVER"

# --- boot L1 and wait for it, bounded in time
LOG=$OUT/serial.log
rm -f "$LOG"
QPID=
cleanup() {
    if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null || true
        sleep 1
        kill -9 "$QPID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

L0_ARGS=(-L "$ROOT/lab/qemu/share/qemu"
         -accel tcg -cpu EPYC -smp 2 -m 4G -nodefaults -display none
         -no-reboot -kernel "$BZ" -initrd "$OUT/initramfs.cpio"
         -append "console=ttyS0 quiet panic=-1 rdinit=/init"
         -serial "file:$LOG")
echo "kernel-lab: boot: $L0 ${L0_ARGS[*]}"
t0=$(date +%s)
"$L0" "${L0_ARGS[@]}" </dev/null 2>"$OUT/l0.err" &
QPID=$!
shown=0
while kill -0 "$QPID" 2>/dev/null; do
    if [ $(( $(date +%s) - t0 )) -ge "$LAB_TIMEOUT" ]; then
        echo "kernel-lab: L1 still running after $LAB_TIMEOUT s: killing QEMU (pid $QPID)"
        cleanup
        break
    fi
    sleep 2
    if [ -f "$LOG" ]; then
        n=$(grep -c '^LAB-RESULT' "$LOG" || true)
        if [ "$n" -gt "$shown" ]; then
            grep '^LAB-RESULT' "$LOG" | tr -d '\r' | sed -n "$((shown + 1)),${n}p" |
                sed "s/^LAB-RESULT /  L1: /"
            shown=$n
        fi
    fi
done
wait "$QPID" 2>/dev/null || true
QPID=
# TCG names the EPYC features it does not emulate: leave those out
grep -v "TCG doesn't support requested feature" "$OUT/l0.err" | sed 's/^/  L0: /' || true
echo "kernel-lab: L1 ran $(( $(date +%s) - t0 )) s; serial log: $LOG"

# --- results
tr -d '\r' <"$LOG" >"$OUT/serial.txt"
RES=$OUT/results.txt
grep '^LAB-RESULT ' "$OUT/serial.txt" | sed 's/^LAB-RESULT //' >"$RES" || true
grep -q '^LAB-DONE' "$OUT/serial.txt" ||
    echo "fail l1-run L1 did not finish its tests (see $LOG)" >>"$RES"

# the gmem-diff transcript, checked against what v8 is documented to do
# and against the recorded real-kernel transcript
TR=$OUT/gmem-diff.txt
sed -n '/^LAB-BEGIN gmem-diff$/,/^LAB-END gmem-diff$/p' "$OUT/serial.txt" |
    sed '1d;$d' >"$TR"
if [ -s "$TR" ]; then
    bad=$(awk -F' => ' '
        BEGIN { n = 0; m = 0 }
        FNR == NR { if ($0 !~ /^#/ && NF >= 2) { key[n] = $1; want[n++] = $2 } next }
        /^#/ { next }
        { line[m++] = $0 }
        END {
            for (i = 0; i < n; i++) {
                found = 0
                for (j = 0; j < m; j++) {
                    split(line[j], p, " => ")
                    if (index(p[1], key[i]) == 1) {
                        found = 1
                        if (index(p[2], want[i]) != 1)
                            printf "  %s => %s (expected %s)\n", p[1], p[2], want[i]
                        break
                    }
                }
                if (!found)
                    printf "  %s: no such line\n", key[i]
            }
        }' "$LAB/gmem-diff.expect" "$TR")
    if [ -z "$bad" ]; then
        echo "pass gmem-diff-expect ($(grep -vc '^#' "$LAB/gmem-diff.expect") expectations)" >>"$RES"
    else
        echo "fail gmem-diff-expect" >>"$RES"
        echo "kernel-lab: gmem-diff lines that differ from what v8 documents:"
        echo "$bad"
    fi
    if [ "${LAB_RECORD:-0}" = 1 ]; then
        {
            echo "# SPDX-License-Identifier: GPL-2.0-or-later"
            echo "# gmem-diff transcript recorded by 'make kernel-lab LAB_RECORD=1'"
            echo "# kernel: Linux $KVER, ${LAB_KERNEL_DESC:-tree $KERNEL_SRC ($src_id)}"
            echo "# L1 under QEMU TCG -cpu EPYC (kvm_amd, nested paging), $(date -u +%Y-%m-%d)"
            cat "$TR"
        } >"$RECORDED"
        echo "skip gmem-diff-recorded (recorded now: $RECORDED)" >>"$RES"
    elif [ -f "$RECORDED" ]; then
        if diff <(grep -v '^#' "$RECORDED") <(grep -v '^#' "$TR") >"$OUT/gmem-diff.diff"; then
            echo "pass gmem-diff-recorded" >>"$RES"
        else
            echo "fail gmem-diff-recorded (differs from $RECORDED: $OUT/gmem-diff.diff)" >>"$RES"
            head -20 "$OUT/gmem-diff.diff"
        fi
    else
        echo "skip gmem-diff-recorded (no recorded transcript; LAB_RECORD=1 makes one)" >>"$RES"
    fi
fi

echo "kernel-lab: L2 (QEMU under KVM in L1):"
sed -n '/^LAB-BEGIN l2-gmem$/,/^LAB-END l2-gmem$/p' "$OUT/serial.txt" | sed '1d;$d' | sed 's/^/  /'
echo "kernel-lab: conversion rate in L1:"
grep -E '^(# )?convert-rate' "$OUT/serial.txt" | sed 's/^# //; s/^/  /' || true

pass=0 fail=0 skip=0
while read -r st name rest; do
    echo "$st $name${rest:+ $rest}"
    case $st in
    pass) pass=$((pass + 1)) ;;
    skip) skip=$((skip + 1)) ;;
    *) fail=$((fail + 1)) ;;
    esac
done <"$RES"
echo "lab: $pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
