#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The libvirt series against a real daemon: virtqemud from the libvirt
# build tree runs as root with its configuration and state under
# build/libvirt-root (no security driver, no cgroups, no namespaces), and
# virsh drives it.  A domain whose emulator is our QEMU and whose memory is
# <source type='guest-memfd'/> boots the test guest from <os><kernel>; the
# host sees QEMU's guest RAM mapped from anon_inode:[kvm-gmem], QEMU's
# query-kvm-guest-memfd answers through virsh, the guest reports PASS, a
# guest-memfd DIMM is hotplugged with attach-device and an nvdimm is
# refused, dumpxml keeps the element; then destroy and undefine.  A domain libvirt must refuse is
# refused with its message.  Prints TAP.  Everything it starts it stops by
# PID, also on failure.
#
# Usage: mk/libvirt-daemon-test.sh QEMU_OBJ LIBVIRT_OBJ
set -u

QOBJ=$(cd "$1" && pwd)
LOBJ=$(cd "$2" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${LIBVIRT_ROOT:-$top/build/libvirt-root}
QEMU=$QOBJ/qemu-system-x86_64
GUEST=$QOBJ/tests/qtest/gmem-guest.elf
DOM=gmem-virsh-test
URI=qemu:///system
T=$ROOT/test
PLAN=12

n=0
ok()   { n=$((n + 1)); echo "ok $n - $1"; }
nok()  { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; }
skip_rest() {
    while [ $n -lt $PLAN ]; do n=$((n + 1)); echo "ok $n # SKIP $1"; done
    exit 0
}
bail() { echo "Bail out! $*"; exit 1; }

echo "1..$PLAN"

# The lines of /proc/PID/maps whose mapping is $2 bytes long
maps_of_size() {
    python3 -c '
import sys
for line in open("/proc/%s/maps" % sys.argv[1]):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if hi - lo == int(sys.argv[2]):
        print(line.rstrip())' "$1" "$2" 2>/dev/null
}

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
    skip_rest "/dev/kvm is not usable"
fi
[ "$(id -u)" = 0 ] || bail "must run as root (the daemon runs privileged)"
for f in "$QEMU" "$GUEST" "$LOBJ/src/virtqemud" "$LOBJ/tools/virsh"; do
    [ -e "$f" ] || bail "$f is missing"
done

# The daemon's whole world lives under $ROOT: the meson build's prefix,
# sysconfdir, localstatedir and runstatedir.
daemon_pid=
qemu_pid=
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null
        sleep 1
        kill -9 "$qemu_pid" 2>/dev/null
    fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill "$daemon_pid"
        i=0
        while kill -0 "$daemon_pid" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -9 "$daemon_pid" 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# A daemon that an earlier run could not stop (killed itself) still holds
# its pid file: stop that PID if it is still our virtqemud.
old=$(cat "$ROOT/run/virtqemud.pid" 2>/dev/null)
if [ -n "$old" ] && [ "$(readlink "/proc/$old/exe" 2>/dev/null)" = "$LOBJ/src/virtqemud" ]; then
    kill "$old" 2>/dev/null
    sleep 1
fi
rm -rf "$ROOT"
mkdir -p "$ROOT/etc/libvirt" "$ROOT/run" "$ROOT/var/log" "$ROOT/var/lib" \
         "$ROOT/var/cache" "$T"
ln -s ../run "$ROOT/var/run"
cat >"$ROOT/etc/libvirt/qemu.conf" <<CONF
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
cat >"$ROOT/etc/libvirt/virtqemud.conf" <<CONF
log_outputs = "3:file:$ROOT/var/log/virtqemud.log"
CONF

export LIBVIRT_DIR_OVERRIDE=1
export LD_LIBRARY_PATH="$LOBJ/src${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
VIRSH="$LOBJ/tools/virsh -q -c $URI"

# Our QEMU first on its PATH: it is also the daemon's default emulator
PATH="$QOBJ:$PATH" "$LOBJ/src/virtqemud" >"$T/virtqemud.out" 2>&1 &
daemon_pid=$!
i=0
until $VIRSH list --all >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
        nok "virtqemud starts and virsh connects" "$(tail -5 "$T/virtqemud.out")"
        bail "virtqemud did not come up"
    fi
    sleep 0.1
done
ok "virtqemud (pid $daemon_pid) starts from the build tree and virsh connects"

# 2. domain capabilities of our QEMU list the source type
if $VIRSH domcapabilities --emulatorbin "$QEMU" --virttype kvm --machine q35 \
        >"$T/domcaps.xml" 2>&1 &&
   sed -n '/<memoryBacking/,/<\/memoryBacking>/p' "$T/domcaps.xml" |
        grep -q "<value>guest-memfd</value>"; then
    ok "domcapabilities of our QEMU list memoryBacking sourceType guest-memfd"
else
    nok "domcapabilities of our QEMU list memoryBacking sourceType guest-memfd" \
        "$(sed -n '/<memoryBacking/,/<\/memoryBacking>/p' "$T/domcaps.xml" | head -12)"
fi

cat >"$T/dom.xml" <<XML
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$DOM</name>
  <maxMemory slots='2' unit='MiB'>1024</maxMemory>
  <memory unit='MiB'>64</memory>
  <memoryBacking>
    <source type='guest-memfd'/>
  </memoryBacking>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$GUEST</kernel>
    <cmdline>mode=halt mb=4</cmdline>
  </os>
  <cpu mode='maximum'>
    <numa>
      <cell id='0' cpus='0' memory='64' unit='MiB'/>
    </numa>
  </cpu>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$QEMU</emulator>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-chardev'/>
    <qemu:arg value='file,id=gmemdbg,path=$T/debugcon.log'/>
    <qemu:arg value='-device'/>
    <qemu:arg value='isa-debugcon,iobase=0xe9,chardev=gmemdbg'/>
  </qemu:commandline>
</domain>
XML

# 3. define
if $VIRSH define "$T/dom.xml" >"$T/define.out" 2>&1; then
    ok "virsh define: a domain whose memory is <source type='guest-memfd'/>"
else
    nok "virsh define: a domain whose memory is <source type='guest-memfd'/>" "$(cat "$T/define.out")"
    bail "cannot define the domain"
fi

# 4. start
start=$(date +%s)
if $VIRSH start "$DOM" >"$T/start.out" 2>&1; then
    qemu_pid=$(cat "$ROOT/run/libvirt/qemu/$DOM.pid" 2>/dev/null)
    ok "virsh start (QEMU pid $qemu_pid)"
else
    nok "virsh start" "$(cat "$T/start.out")" \
        "$(tail -5 "$ROOT/var/log/libvirt/qemu/$DOM.log" 2>/dev/null)"
    $VIRSH undefine "$DOM" >/dev/null 2>&1
    bail "cannot start the domain"
fi
grep -o -- "-object '{\"qom-type\":\"memory-backend-guest-memfd\"[^ ]*" \
    "$ROOT/var/log/libvirt/qemu/$DOM.log" | sed 's/^/# /'

# 5. the host: guest RAM is QEMU's mapping of a guest_memfd
size=$((64 << 20))
maps=$(maps_of_size "$qemu_pid" $size)
if echo "$maps" | grep -Eq '(anon_inode:|/)\[kvm-gmem\]'; then
    ok "QEMU maps the 64 MiB of guest RAM from anon_inode:[kvm-gmem]"
    echo "$maps" | grep 'kvm-gmem' | sed 's/^/# /'
else
    nok "QEMU maps the 64 MiB of guest RAM from anon_inode:[kvm-gmem]" "$maps"
fi

# 6. QEMU's own account, through libvirt's monitor
# $1: the backend id query-kvm-guest-memfd must list
query_gmem() {
    $VIRSH qemu-monitor-command "$DOM" '{"execute":"query-kvm-guest-memfd"}' \
        >"$T/qkgm.json" 2>&1 &&
    python3 - "$T/qkgm.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))['return']
names = [b['name'] for b in r['backends']]
print('# query-kvm-guest-memfd: mode %s, guest-memfd-flags %#x, backends %s'
      % (r['mode'], r['guest-memfd-flags'], names))
# MMAP|INIT_SHARED: what memory-backend-guest-memfd needs
sys.exit(0 if r['mode'] != 'none' and r['guest-memfd-flags'] & 3 == 3 and
         sys.argv[2] in names else 1)
PY
}
if query_gmem ram-node0; then
    ok "virsh qemu-monitor-command query-kvm-guest-memfd lists ram-node0"
else
    nok "virsh qemu-monitor-command query-kvm-guest-memfd lists ram-node0" "$(cat "$T/qkgm.json")"
fi

# 7. the guest tests its RAM and reports on the debug console
i=0
while ! grep -q 'gmem-guest: \(PASS\|FAIL\)' "$T/debugcon.log" 2>/dev/null &&
      [ $i -lt 120 ]; do
    sleep 1; i=$((i + 1))
done
if grep -q 'gmem-guest: PASS' "$T/debugcon.log" 2>/dev/null; then
    ok "the guest reports PASS ($(( $(date +%s) - start )) s after start)"
else
    nok "the guest reports PASS" "$(tail -5 "$T/debugcon.log" 2>/dev/null)"
fi

# 8. hotplug a DIMM: libvirt gives it memory-backend-guest-memfd
cat >"$T/dimm.xml" <<XML
<memory model='dimm'>
  <target>
    <size unit='MiB'>128</size>
    <node>0</node>
  </target>
</memory>
XML
if $VIRSH attach-device "$DOM" "$T/dimm.xml" --live >"$T/attach.out" 2>&1 &&
   maps_of_size "$qemu_pid" $((128 << 20)) | grep -Eq '(anon_inode:|/)\[kvm-gmem\]' &&
   query_gmem memdimm0; then
    ok "virsh attach-device: a 128 MiB DIMM, mapped from anon_inode:[kvm-gmem], listed by query-kvm-guest-memfd"
else
    nok "virsh attach-device: a 128 MiB DIMM, mapped from anon_inode:[kvm-gmem], listed by query-kvm-guest-memfd" \
        "$(cat "$T/attach.out")" "$(tail -3 "$ROOT/var/log/libvirt/qemu/$DOM.log")"
fi

# 9. a file-backed memory device cannot be hotplugged into it
cat >"$T/nvdimm.xml" <<XML
<memory model='nvdimm'>
  <source>
    <path>$T/nvdimm.img</path>
  </source>
  <target>
    <size unit='MiB'>128</size>
    <node>0</node>
  </target>
</memory>
XML
want="unsupported configuration: 'nvdimm' memory devices are backed by a host file and are not supported with 'guest-memfd' memory source"
if $VIRSH attach-device "$DOM" "$T/nvdimm.xml" --live >"$T/nvdimm.out" 2>&1; then
    nok "virsh attach-device of an nvdimm is refused" "virsh attach-device accepted it"
elif grep -qF "$want" "$T/nvdimm.out"; then
    ok "virsh attach-device of an nvdimm is refused: $want"
else
    nok "virsh attach-device of an nvdimm is refused: $want" "$(cat "$T/nvdimm.out")"
fi

# 10. dumpxml keeps the element, and shows the DIMM
$VIRSH dumpxml "$DOM" >"$T/dump.xml" 2>&1
if grep -q "<source type='guest-memfd'/>" "$T/dump.xml" &&
   grep -q "<memory model='dimm'" "$T/dump.xml"; then
    ok "virsh dumpxml keeps <source type='guest-memfd'/> and lists the DIMM"
else
    nok "virsh dumpxml keeps <source type='guest-memfd'/> and lists the DIMM" \
        "$(grep -n 'source\|memory' "$T/dump.xml")"
fi

# 11. destroy and undefine; QEMU is gone
if $VIRSH destroy "$DOM" >"$T/destroy.out" 2>&1 &&
   $VIRSH undefine "$DOM" >>"$T/destroy.out" 2>&1 &&
   ! kill -0 "$qemu_pid" 2>/dev/null; then
    ok "virsh destroy and undefine; QEMU (pid $qemu_pid) has exited"
    qemu_pid=
else
    nok "virsh destroy and undefine; QEMU has exited" "$(cat "$T/destroy.out")"
fi

# 12. a domain libvirt must refuse, with its message
sed -e "s|<source type='guest-memfd'/>|<hugepages/>\n    <source type='guest-memfd'/>|" \
    -e "s|<name>$DOM</name>|<name>$DOM-refused</name>|" "$T/dom.xml" >"$T/refused.xml"
want="unsupported configuration: hugepages are not allowed with 'guest-memfd' memory source"
if $VIRSH define "$T/refused.xml" >"$T/refused.out" 2>&1; then
    $VIRSH undefine "$DOM-refused" >/dev/null 2>&1
    nok "guest-memfd with hugepages is refused" "virsh define accepted it"
elif grep -qF "$want" "$T/refused.out"; then
    ok "guest-memfd with hugepages is refused: $want"
else
    nok "guest-memfd with hugepages is refused: $want" "$(cat "$T/refused.out")"
fi
