#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""memory-backend-guest-memfd against memory-backend-memfd, side by side.

Both run in the same QEMU binary, alternately, in one run; each figure is
the median of REPS runs, and the result is their ratio.

1. prealloc: the cost of prealloc=on for a SIZE backend: the time from
   exec until QEMU answers on QMP with prealloc=on, minus the same with
   prealloc=off.  Goal: guest_memfd / memfd <= 0.5.
2. boot: the time from exec to the first byte the guest prints (SeaBIOS
   on its debug port 0x402), and to the test guest's first line
   (gmem-guest through multiboot).  Goal: guest_memfd / memfd <= 1.05.
"""

import os
import select
import statistics
import subprocess
import sys
import time

OBJ = sys.argv[1]
QEMU = os.path.join(OBJ, 'qemu-system-x86_64')
GUEST = os.path.join(OBJ, 'tests/qtest/gmem-guest.elf')
REPS = int(os.environ.get('REPS', '7'))
SIZE = os.environ.get('SIZE', '4G')
BOOT_RAM = os.environ.get('BOOT_RAM', '64M')
BOOT_REPS = int(os.environ.get('BOOT_REPS', '21'))
WARM = os.environ.get('WARM', '12G')
BACKENDS = ('memory-backend-guest-memfd', 'memory-backend-memfd')


def qmp_ready(backend, prealloc):
    """Seconds from exec until QEMU's QMP greeting (init is done)."""
    cmd = [QEMU, '-accel', 'kvm', '-machine', 'none', '-nodefaults',
           '-display', 'none', '-qmp', 'stdio',
           '-object', '%s,id=m0,size=%s,prealloc=%s' %
           (backend, SIZE, 'on' if prealloc else 'off')]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    line = p.stdout.readline()
    t = time.monotonic() - t0
    if b'QMP' not in line:
        sys.exit('bench: QEMU failed: %s' % ' '.join(cmd))
    p.stdin.write(b'{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n')
    p.stdin.flush()
    p.wait()
    return t


def first_output(backend, kernel):
    """Seconds from exec until the guest's first debug console output."""
    cmd = [QEMU, '-accel', 'kvm', '-cpu', 'max', '-nodefaults',
           '-display', 'none', '-machine', 'q35,memory-backend=m0',
           '-m', BOOT_RAM,
           '-object', '%s,id=m0,size=%s' % (backend, BOOT_RAM),
           '-chardev', 'stdio,id=dbg']
    if kernel:
        cmd += ['-kernel', GUEST, '-append', 'mode=exit mb=0',
                '-device', 'isa-debugcon,iobase=0xe9,chardev=dbg']
    else:
        cmd += ['-device', 'isa-debugcon,iobase=0x402,chardev=dbg']
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE)
    r, _, _ = select.select([p.stdout], [], [], 60)
    t = time.monotonic() - t0
    ok = bool(r) and os.read(p.stdout.fileno(), 1)
    p.kill()
    p.wait()
    if not ok:
        sys.exit('bench: no guest output: %s' % ' '.join(cmd))
    return t


def warm_up():
    """Have the host back the memory the runs will use, once.

    The host may itself be a virtual machine, where the first touch of a
    page costs far more than any later one; without this, whichever
    backend runs first pays for it.
    """
    cmd = [QEMU, '-accel', 'kvm', '-machine', 'none', '-nodefaults',
           '-display', 'none', '-qmp', 'stdio', '-object',
           'memory-backend-ram,id=w,size=%s,prealloc=on' % WARM]
    t0 = time.monotonic()
    subprocess.run(cmd, input=b'{"execute":"qmp_capabilities"}\n'
                   b'{"execute":"quit"}\n', stdout=subprocess.DEVNULL,
                   check=True)
    print('bench: warm-up (%s touched once) took %.1f s' %
          (WARM, time.monotonic() - t0), flush=True)


def median_pair(fn, *args, reps=None):
    times = {b: [] for b in BACKENDS}
    for i in range(reps or REPS):
        # alternate, and alternate which one goes first
        for b in BACKENDS[::1 if i % 2 == 0 else -1]:
            times[b].append(fn(b, *args))
    return {b: statistics.median(t) for b, t in times.items()}


def report(name, gmem, memfd, goal, unit='s'):
    ratio = gmem / memfd
    verdict = 'meets' if ratio <= goal else 'MISSES'
    print('bench: %-28s guest_memfd %8.3f %s  memfd %8.3f %s  '
          'ratio %.3f (goal <= %.2f: %s)' %
          (name, gmem, unit, memfd, unit, ratio, goal, verdict), flush=True)


def main():
    print('bench: %s, %d runs each (boot: %d), alternating, medians' %
          (QEMU, REPS, BOOT_REPS))
    warm_up()
    on = median_pair(qmp_ready, True)
    off = median_pair(qmp_ready, False)
    cost = {b: on[b] - off[b] for b in BACKENDS}
    report('prealloc %s' % SIZE, cost[BACKENDS[0]], cost[BACKENDS[1]], 0.5)

    sea = median_pair(first_output, False, reps=BOOT_REPS)
    report('SeaBIOS start to output', sea[BACKENDS[0]], sea[BACKENDS[1]],
           1.05)
    guest = median_pair(first_output, True, reps=max(REPS, 5))
    report('test guest start to output', guest[BACKENDS[0]],
           guest[BACKENDS[1]], 1.05)


if __name__ == '__main__':
    main()
