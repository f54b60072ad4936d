#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The cost of the private-memory check on ordinary RAM, side by side.

The check sits where the memory API turns an access to RAM into a host
pointer (patch "memory: fail host accesses to private guest memory").
This compares QEMU with the series against QEMU built from the commit
before that patch (in build/bench-base-obj, built here on first
use), in one run:

1. Instructions, counted by callgrind (qtest accelerator), of a memsave
   of 4 MiB of memory-backend-memfd RAM, per 1 KiB read: memsave reads
   through cpu_memory_rw_debug() and address_space_read(), code that the
   series does not change but for the check.  The count is exact, where
   times move by a few percent from VM to VM.  Goal: with / without
   <= 1.02.  The same for pmemsave, which the series changed to report
   errors, is printed for information.
2. Times: VMS paused VMs of each with SIZE of memfd RAM and, REPS times,
   each in turn, a memsave of READ_MB to /dev/null; and, in the QEMU with
   the series, the same on memory-backend-guest-memfd RAM that cannot be
   private (this host cannot convert it), which keeps the fast paths of
   ordinary RAM.  The reads stay within the
   host's caches, so that the per-access cost is not lost in the cost of
   memory.  Each figure is the median of the VMS * REPS runs.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
from qmp import Qmp  # noqa: E402

OBJ = os.path.abspath(sys.argv[1])
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(TOP, 'build', 'qemu')
BASE_WT = os.path.join(TOP, 'build', 'bench-base')
BASE_OBJ = os.path.join(TOP, 'build', 'bench-base-obj')
REPS = int(os.environ.get('REPS', '25'))
VMS = int(os.environ.get('VMS', '4'))
SIZE = os.environ.get('SIZE', '256M')
READ = int(os.environ.get('READ_MB', '32')) << 20
CG_READ = 4 << 20
FIRMWARE = os.path.join(OBJ, 'qemu-bundle/usr/local/share/qemu')
SUBJECT = 'memory: fail host accesses to private guest memory'


def git(*args):
    return subprocess.run(['git', '-C', SRC] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def base_binary():
    """QEMU built from the parent of the check's commit."""
    commit = git('log', '--format=%H', '--grep=^' + SUBJECT, 'base..gmem')
    if not commit:
        sys.exit('bench: central-check: no commit "%s"' % SUBJECT)
    parent = git('rev-parse', commit + '^')
    if not os.path.isdir(BASE_WT):
        git('worktree', 'add', '-q', '--detach', BASE_WT, parent)
    subprocess.run(['git', '-C', BASE_WT, 'checkout', '-q', '--detach',
                    parent], check=True)
    if not os.path.exists(os.path.join(BASE_OBJ, 'build.ninja')):
        flags = subprocess.run(['make', '-s', '-C', TOP,
                                'print-configure-flags'], check=True,
                               capture_output=True, text=True).stdout.strip()
        os.makedirs(BASE_OBJ, exist_ok=True)
        subprocess.run('"%s/configure" %s >configure.log 2>&1' %
                       (BASE_WT, flags), shell=True, cwd=BASE_OBJ,
                       check=True)
    print('bench: central-check: building QEMU without the check '
          '(first time: several minutes)', flush=True)
    subprocess.run(['ninja', '-C', BASE_OBJ, 'qemu-system-x86_64'],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(BASE_OBJ, 'qemu-system-x86_64')


class Vm:
    """A paused VM whose RAM is a SIZE @backend, preallocated"""

    def __init__(self, d, qemu, backend):
        path = os.path.join(d, '%d.qmp' % len(os.listdir(d)))
        self.proc = subprocess.Popen(
            [qemu, '-accel', 'kvm', '-nodefaults', '-display', 'none', '-S',
             '-m', SIZE, '-object', '%s,id=m0,size=%s,prealloc=on' %
             (backend, SIZE), '-machine', 'q35,memory-backend=m0',
             '-L', FIRMWARE, '-qmp', 'unix:%s,server=on,wait=off' % path],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            if os.path.exists(path):
                break
            if self.proc.poll() is not None:
                sys.exit('bench: central-check: %s failed' % qemu)
            time.sleep(0.05)
        self.qmp = Qmp(path)

    def memsave_seconds(self):
        t0 = time.monotonic()
        rsp = self.qmp.cmd('memsave', val=0, size=READ,
                           filename='/dev/null')
        t = time.monotonic() - t0
        assert 'return' in rsp, rsp
        return t

    def quit(self):
        self.qmp.cmd('quit')
        self.proc.wait(timeout=30)


def instructions_per_read(qemu, command):
    """Instructions of @command (memsave, pmemsave), under callgrind, per
    1 KiB read

    valgrind runs QEMU with the qtest accelerator: the check sits in the
    memory API, whatever the accelerator, and the count does not depend
    on what else the machine is doing.
    """
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'qmp')
        out = os.path.join(d, 'callgrind.out')
        p = subprocess.Popen(
            ['valgrind', '--tool=callgrind', '--toggle-collect=qmp_' + command,
             '--callgrind-out-file=' + out, qemu, '-accel', 'qtest',
             '-nodefaults', '-display', 'none', '-S', '-m', '64M',
             '-object', 'memory-backend-memfd,id=m0,size=64M',
             '-machine', 'q35,memory-backend=m0',
             '-L', FIRMWARE, '-qmp', 'unix:%s,server=on,wait=off' % path],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        s = Qmp(path, timeout=300)          # QEMU starts slowly in valgrind
        s.cmd(command, val=1 << 20, size=CG_READ, filename='/dev/null')
        s.cmd('quit')
        p.wait(timeout=120)
        with open(out) as f:
            for line in f:
                if line.startswith('summary:') or line.startswith('totals:'):
                    return int(line.split()[1]) / (CG_READ >> 10)
    sys.exit('bench: central-check: no callgrind totals for %s' % qemu)


def main():
    base = base_binary()
    new = os.path.join(OBJ, 'qemu-system-x86_64')
    runs = {'without': [], 'with': [], 'gmem': []}
    with tempfile.TemporaryDirectory() as d:
        # Several VMs a side: where a VM's memory lies moves its figures
        vms = []
        for _ in range(VMS):
            vms += [('without', Vm(d, base, 'memory-backend-memfd')),
                    ('with', Vm(d, new, 'memory-backend-memfd')),
                    ('gmem', Vm(d, new, 'memory-backend-guest-memfd'))]
        for _ in range(REPS):
            for k, vm in vms:
                runs[k].append(vm.memsave_seconds())
        for _, vm in vms:
            vm.quit()
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med['with'] / med['without']
    print('bench: central-check: memsave of %d MiB of memfd RAM: without '
          'the check %.2f ms, with it %.2f ms: ratio %.3f (times move by a '
          'few percent from VM to VM)'
          % (READ >> 20, med['without'] * 1e3, med['with'] * 1e3, ratio))
    for command in ('memsave', 'pmemsave') if shutil.which('valgrind') else ():
        ins = {'without': instructions_per_read(base, command),
               'with': instructions_per_read(new, command)}
        ratio = ins['with'] / ins['without']
        print('bench: central-check: instructions per 1 KiB %s read of '
              'memfd RAM (callgrind): without the check %.0f, with it %.0f: '
              'ratio %.3f%s' %
              (command, ins['without'], ins['with'], ratio,
               ' (goal <= 1.02) ' + ('ok' if ratio <= 1.02 else 'MISSED')
               if command == 'memsave' else
               ' (the series changed pmemsave to report errors)'))
    print('bench: central-check: memsave of %d MiB of guest_memfd RAM '
          '(shared) %.2f ms: guest_memfd / memfd %.3f' %
          (READ >> 20, med['gmem'] * 1e3, med['gmem'] / med['with']))


if __name__ == '__main__':
    main()
