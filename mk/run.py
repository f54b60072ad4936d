#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The main job: boot a VM whose RAM is one guest_memfd, under KVM.

The VM starts paused.  Before the guest runs, this shows, from the host,
what QEMU built: the backend (query-memdev), the guest_memfd it created
(trace), that QEMU's mapping of guest RAM is that file (/proc/PID/maps
and /proc/PID/fd), and that KVM runs the guest from the same file (the
memslots bound with KVM_MEM_GUEST_MEMFD).  Then the test guest runs,
fills its RAM with a pattern, verifies it and reports on the debug
console, which is shown as it comes, and exits through isa-debug-exit.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

PASS_STATUS = 33                 # GMEM_GUEST_STATUS_PASS
KVM_MEM_GUEST_MEMFD = 1 << 2


def qmp_open(path, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)
    f = s.makefile('rw')
    json.loads(f.readline())                       # greeting
    qmp(f, 'qmp_capabilities')
    return f


def qmp(f, cmd, **args):
    f.write(json.dumps({'execute': cmd, 'arguments': args}) + '\n')
    f.flush()
    while True:
        r = json.loads(f.readline())
        if 'return' in r:
            return r['return']
        if 'error' in r:
            raise RuntimeError('%s: %s' % (cmd, r['error']['desc']))


def main():
    obj = sys.argv[1]
    ram = os.environ.get('RAM', '32M')
    machine = os.environ.get('MACHINE', 'q35')
    append = os.environ.get('GUEST_ARGS', 'mode=exit')
    qemu = os.path.join(obj, 'qemu-system-x86_64')
    guest = os.path.join(obj, 'tests/qtest/gmem-guest.elf')

    tmp = tempfile.mkdtemp(prefix='qemu-gmem-run-')
    sock = os.path.join(tmp, 'qmp.sock')
    trace = os.path.join(tmp, 'trace.log')
    cmd = [qemu, '-accel', 'kvm', '-cpu', 'max', '-nodefaults',
           '-display', 'none', '-S',
           '-machine', '%s,memory-backend=m0' % machine, '-m', ram,
           '-object', 'memory-backend-guest-memfd,id=m0,size=%s' % ram,
           '-kernel', guest, '-append', append,
           '-chardev', 'stdio,id=dbg',
           '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg',
           '-device', 'isa-debug-exit,iobase=0xf4,iosize=4',
           '-qmp', 'unix:%s,server=on,wait=off' % sock,
           '-trace', 'guest_memfd_backend_alloc',
           '-trace', 'kvm_set_user_memory', '-D', trace]
    print('run: ' + ' '.join(cmd[:cmd.index('-qmp')]), flush=True)
    vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        f = qmp_open(sock)
    except OSError:
        sys.exit('run: QEMU did not start (exit status %s)' % vm.wait())

    pid = vm.pid
    md = [m for m in qmp(f, 'query-memdev') if m.get('id') == 'm0'][0]
    size = md['size']
    with open(trace) as t:
        log = t.read()
    alloc = re.search(r'guest_memfd_backend_alloc .*size (0x[0-9a-f]+) '
                      r'flags (0x[0-9a-f]+) fd (\d+)', log)
    gmem_fd = int(alloc.group(3))
    flags = int(alloc.group(2), 16)
    fd_ino = os.stat('/proc/%d/fd/%d' % (pid, gmem_fd)).st_ino
    fd_link = os.readlink('/proc/%d/fd/%d' % (pid, gmem_fd))
    maps = []
    with open('/proc/%d/maps' % pid) as m:
        for line in m:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split('-'))
            if len(fields) >= 6 and hi - lo == size:
                maps.append((line.strip(), int(fields[4]), fields[5]))
    ram_maps = [x for x in maps if x[1] == fd_ino]
    slots = {}
    for m in re.finditer(r'kvm_set_user_memory AddrSpace#(\d+) Slot#(\d+) '
                         r'flags=(0x[0-9a-f]+) gpa=(0x[0-9a-f]+) '
                         r'size=(0x[0-9a-f]+) ua=0x[0-9a-f]+ '
                         r'guest_memfd=(-?\d+) guest_memfd_offset='
                         r'(0x[0-9a-f]+) ret=(-?\d+)', log):
        asid, slot, sflags, gpa, ssize, sfd, off, ret = m.groups()
        if int(ssize, 16) and int(ret) == 0:
            slots[(asid, slot)] = (asid, sflags, gpa, ssize, int(sfd), off)
        else:
            slots.pop((asid, slot), None)
    # guest RAM slots: those that map part of the backend's file
    ram_slots = []
    for asid, sflags, gpa, ssize, sfd, off in sorted(slots.values()):
        ino = os.stat('/proc/%d/fd/%d' % (pid, sfd)).st_ino if sfd >= 0 \
            else None
        ram_slots.append((asid, sflags, gpa, ssize, sfd, off, ino))

    names = [n for b, n in ((1, 'MMAP'), (2, 'INIT_SHARED')) if flags & b]
    print('host: backend memory-backend-guest-memfd id=m0 size=%d MiB '
          'share=%s prealloc=%s policy=%s' %
          (size >> 20, md['share'], md['prealloc'], md['policy']))
    print('host: guest_memfd fd %d (%s, inode %d) created with flags '
          '0x%x (GUEST_MEMFD_FLAG_%s)' %
          (gmem_fd, fd_link, fd_ino, flags, '|GUEST_MEMFD_FLAG_'.join(names)))
    for line, _, _ in ram_maps:
        print('host: guest RAM mapping: %s' % line)
    bound = [x for x in ram_slots if x[6] == fd_ino]
    for asid, sflags, gpa, ssize, sfd, off, ino in ram_slots:
        if ino != fd_ino and asid == '0':
            continue                    # ROM and other non-RAM memory
        if ino == fd_ino:
            how = 'KVM_MEM_GUEST_MEMFD, guest_memfd fd %d offset %s' % (sfd,
                                                                       off)
        else:
            how = 'mapped through QEMU\'s address space'
        print('host: KVM memslot as=%s gpa=%s size=%s flags=%s: %s' %
              (asid, gpa, ssize, sflags, how))
    # an anonymous inode up to Linux 6.18, a deleted file on later ones
    gmem_names = ('anon_inode:[kvm-gmem]', '/[kvm-gmem] (deleted)')
    ok = (len(ram_maps) == 1 and fd_link in gmem_names and
          bound and all(int(x[1], 16) & KVM_MEM_GUEST_MEMFD for x in bound) and
          all(x[6] in (None, fd_ino) for x in ram_slots))
    print('host: the RAM QEMU maps is the guest_memfd KVM runs the guest '
          'from: %s' % ('yes' if ok else 'NO'), flush=True)

    print('guest output (debug console):', flush=True)
    start = time.time()
    qmp(f, 'cont')
    status = vm.wait()
    elapsed = time.time() - start
    print('run: guest finished in %.1f s, QEMU exit status %d (%s)' %
          (elapsed, status,
           'PASS' if status == PASS_STATUS else 'FAIL'))
    if not ok or status != PASS_STATUS:
        sys.exit(1)


if __name__ == '__main__':
    main()
