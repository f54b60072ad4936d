#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Precopy migration of guest_memfd RAM against memfd RAM, side by side.

A VM with MIG_SIZE_MB of RAM, all but 40 MiB of which the host fills
through the qtest protocol before the VM starts (a different non-zero byte
in each MiB, so that every page is sent whole), runs the test guest
(tests/qtest/gmem-guest) until it has written its own data and halted, and
then migrates over a UNIX socket to a second QEMU on this machine, with
the bandwidth unlimited.  Source and destination have the same backend:
memory-backend-guest-memfd on one side of the comparison,
memory-backend-memfd on the other.  Both run in the same QEMU binary,
alternately (which goes first alternates too), in one run.

Two cases: "fresh", migrated as soon as the guest has halted (REPS pairs),
and "idle", migrated after the VM has sat idle for IDLE_S seconds
(IDLE_REPS pairs; 0 pairs leave a case out).  Throughput is the RAM
migration's bytes over its total time; each figure is the median of its
case.  Goal for both: guest_memfd / memfd >= 0.95.

Each round of both cases has a third, control, run: memfd again,
while the benchmark itself holds HOLD_MB (by default as much as a
guest_memfd pair has) of guest_memfd memory, half of it from just
before the source starts and half from just before the destination
does, as a guest_memfd pair's comes.  guest_memfd pages cannot
be moved, so they come from, and use up, the kernel's free memory for
unmovable allocations, which the migration's socket buffers need too.
The control's ratio to memfd tells how much of the loss comes with that
alone, whichever backend the VMs have.  HOLD_MB=0 leaves it out.

Before the migrations, a case without QEMU (HOST_REPS rounds; it is
left out with HOST_REPS=0 or HOLD_MB=0): SIZE_MB of written anonymous
memory sent through a UNIX stream socket to a process that discards it,
with nothing held, and while HOLD_MB of memfd, of guest_memfd and of
pipe buffers is held, one kind at a time.  Pipe buffers cannot be moved
either but have nothing to do with guest_memfd or KVM (holding them
needs root, or a raised fs.pipe-user-pages-soft; without either they
are left out, with a message).  This tells what the host does to a
migration's socket traffic when that much unmovable memory is in use.

And, when there is an idle case, another without QEMU (IDLE_READ_REPS
rounds, 0 leaves it out): SIZE_MB of guest_memfd and SIZE_MB of memfd,
both written, read through their mappings once before and once after
IDLE_S seconds of idle time (which is read first alternates), and then
once more.  The idle case's migration is such a first read after idle
time; this tells what the host makes it cost for each kind of memory.
"""

import contextlib
import ctypes
import fcntl
import mmap
import os
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'lib'))
from qmp import Qmp  # noqa: E402

OBJ = os.path.abspath(sys.argv[1])
QEMU = os.path.join(OBJ, 'qemu-system-x86_64')
REPS = int(os.environ.get('REPS', '6'))
IDLE_REPS = int(os.environ.get('IDLE_REPS', '3'))
HOST_REPS = int(os.environ.get('HOST_REPS', '8'))
IDLE_READ_REPS = int(os.environ.get('IDLE_READ_REPS', '3'))
IDLE_S = float(os.environ.get('IDLE_S', '60'))
SIZE_MB = int(os.environ.get('MIG_SIZE_MB', '1024'))
HOLD_MB = int(os.environ.get('HOLD_MB', str(2 * SIZE_MB)))
GUEST = os.path.join(OBJ, 'tests/qtest/gmem-guest.elf')
MAILBOX_GUEST_MAGIC = 0xf0000c      # gmem-guest.h
DONE_MAGIC = 0x444f4e45
BACKENDS = ('memory-backend-guest-memfd', 'memory-backend-memfd')

KVM_CREATE_VM = 0xae01
KVM_CREATE_GUEST_MEMFD = 0xc040aed4     # _IOWR(KVMIO, 0xd4, 64 bytes)
GUEST_MEMFD_FLAG_MMAP = 1 << 0
GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1
FALLOC_FL_KEEP_SIZE = 1


class Held:
    """@mb MiB of memory of one @kind, allocated on entry, freed on exit
    (none for 0): 'guest_memfd' (cannot be moved), 'memfd' (can be), or
    'pipe buffers', which are kernel memory that cannot be moved either
    but is not guest_memfd: full 1 MiB pipes"""

    def __init__(self, kind, mb):
        self.kind = kind
        self.size = mb << 20
        self.fds = []

    def __enter__(self):
        if not self.size:
            return self
        try:
            {'guest_memfd': self.guest_memfd, 'memfd': self.memfd,
             'pipe buffers': self.pipes}[self.kind]()
        except OSError as e:
            self.__exit__()
            raise OSError('cannot hold %d MiB of %s: %s'
                          % (self.size >> 20, self.kind, e)) from e
        return self

    def guest_memfd(self):
        self.fds.append(os.open('/dev/kvm', os.O_RDWR | os.O_CLOEXEC))
        self.fds.append(fcntl.ioctl(self.fds[0], KVM_CREATE_VM, 0))
        arg = bytearray(struct.pack('=8Q', self.size,
                                    GUEST_MEMFD_FLAG_MMAP |
                                    GUEST_MEMFD_FLAG_INIT_SHARED,
                                    0, 0, 0, 0, 0, 0))
        self.fds.append(fcntl.ioctl(self.fds[1], KVM_CREATE_GUEST_MEMFD,
                                    arg, True))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.fallocate(self.fds[2], FALLOC_FL_KEEP_SIZE,
                          ctypes.c_long(0), ctypes.c_long(self.size)):
            raise OSError(ctypes.get_errno(), 'fallocate')

    def memfd(self):
        self.fds.append(os.memfd_create('bench-held', os.MFD_CLOEXEC))
        os.posix_fallocate(self.fds[0], 0, self.size)

    def pipes(self):
        n = self.size >> 20
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 2 * n + 256:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (min(hard, 2 * n + 256), hard))
        data = b'\x5a' * (1 << 20)
        for _ in range(n):
            r, w = os.pipe2(os.O_CLOEXEC)
            self.fds += [r, w]
            # beyond fs.pipe-user-pages-soft only CAP_SYS_RESOURCE may
            if fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 20) < 1 << 20:
                raise OSError('pipes of 1 MiB refused')
            os.write(w, data)

    def __exit__(self, *exc):
        for fd in reversed(self.fds):
            os.close(fd)
        self.fds = []


class Vm:
    def __init__(self, d, name, backend, extra):
        self.qmp_path = os.path.join(d, name + '.qmp')
        qtest_path = os.path.join(d, name + '.qtest')
        cmd = [QEMU, '-accel', 'kvm', '-cpu', 'max', '-nodefaults',
               '-display', 'none',
               '-L', os.path.join(OBJ, 'qemu-bundle/usr/local/share/qemu'),
               '-machine', 'q35,memory-backend=m0', '-m', '%dM' % SIZE_MB,
               '-object', '%s,id=m0,size=%dM,prealloc=on' %
               (backend, SIZE_MB),
               '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
               '-qtest', 'unix:%s,server=on,wait=off' % qtest_path,
               '-qtest-log', '/dev/null'] + extra
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(600):
            if os.path.exists(self.qmp_path) and os.path.exists(qtest_path):
                break
            if self.proc.poll() is not None:
                sys.exit('bench: migrate: QEMU failed: %s' % ' '.join(cmd))
            time.sleep(0.05)
        self.qmp = Qmp(self.qmp_path)
        self.qtest = socket.socket(socket.AF_UNIX)
        self.qtest.connect(qtest_path)
        self.qtest_file = self.qtest.makefile('rw')

    def cmd(self, name, **args):
        rsp = self.qmp.cmd(name, **args)
        if 'error' in rsp:
            sys.exit('bench: migrate: %s: %s' % (name, rsp['error']))
        return rsp['return']

    def fill(self):
        """Non-zero data from 32 MiB up (the guest's own memory is below),
        to 8 MiB before the end (the firmware's), one byte value per MiB"""
        for mib in range(32, SIZE_MB - 8):
            self.qtest_cmd('memset 0x%x 0x100000 0x%x' %
                           (mib << 20, 1 + mib % 255))

    def qtest_cmd(self, line):
        self.qtest_file.write(line + '\n')
        self.qtest_file.flush()
        rsp = self.qtest_file.readline()
        if not rsp.startswith('OK'):
            sys.exit('bench: migrate: qtest %s: %s' % (line, rsp))
        return rsp.split()[1:] if len(rsp.split()) > 1 else []

    def wait_guest_done(self):
        """Until the test guest has written its data and halted"""
        for _ in range(6000):
            if int(self.qtest_cmd('readl 0x%x' % MAILBOX_GUEST_MAGIC)[0],
                   16) == DONE_MAGIC:
                return
            time.sleep(0.05)
        sys.exit('bench: migrate: the test guest did not finish')

    def quit(self):
        self.cmd('quit')
        self.proc.wait(timeout=60)


def migrate(backend, idle, hold_mb=0):
    """Bytes per second of one migration of a filled VM that has been
    idle for @idle seconds; with @hold_mb, while that much guest_memfd is
    held, half of it from just before the source starts and half from
    just before the destination does, as a guest_memfd pair's is"""
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as held:
        uri = 'unix:%s/mig' % d
        guest = ['-kernel', GUEST, '-append', 'mode=halt mb=0']
        held.enter_context(Held('guest_memfd', hold_mb // 2))
        src = Vm(d, 'src', backend, ['-S'] + guest)
        src.fill()
        src.cmd('cont')
        src.wait_guest_done()
        time.sleep(idle)
        held.enter_context(Held('guest_memfd', hold_mb - hold_mb // 2))
        dst = Vm(d, 'dst', backend, ['-incoming', 'defer'] + guest)
        dst.cmd('migrate-incoming', uri=uri)
        src.cmd('migrate-set-parameters', **{'max-bandwidth': 1 << 40})
        src.cmd('migrate', uri=uri)
        while True:
            info = src.cmd('query-migrate')
            if info['status'] == 'completed':
                break
            if info['status'] in ('failed', 'cancelled'):
                sys.exit('bench: migrate: %s' % info)
            time.sleep(0.02)
        ram = info['ram']
        secs = info['total-time'] / 1000.0
        if ram['normal'] < (SIZE_MB - 40) * 256:
            sys.exit('bench: migrate: only %d pages sent' % ram['normal'])
        for _ in range(500):
            if dst.cmd('query-status')['status'] == 'running':
                break
            time.sleep(0.01)
        else:
            sys.exit('bench: migrate: the destination does not run: %s' %
                     dst.cmd('query-status'))
        dst.quit()
        src.quit()
        return ram['transferred'] / secs


def compare(case, reps, idle, hold_mb=0):
    """The median throughputs of @reps pairs of migrations, and their
    ratio; with @hold_mb, also of memfd while that much guest_memfd is
    held, in the same rounds"""
    runs = [(b, 0) for b in BACKENDS] + ([(BACKENDS[1], hold_mb)]
                                         if hold_mb else [])
    res = {r: [] for r in runs}
    for i in range(reps):
        for b, mb in runs if i % 2 == 0 else runs[::-1]:
            try:
                res[(b, mb)].append(migrate(b, idle, mb))
            except OSError as e:
                sys.exit('bench: migrate: %s' % e)
    med = {r: statistics.median(v) for r, v in res.items()}
    fig = {r: '%.0f MiB/s (%.0f-%.0f)' % tuple(x / 2**20 for x in
                                              (med[r], min(v), max(v)))
           for r, v in res.items()}
    ratio = med[runs[0]] / med[runs[1]]
    print('bench: migrate: precopy of %d MiB, %s (%d pairs): guest_memfd '
          '%s, memfd %s: ratio %.3f (goal >= 0.95) %s' %
          (SIZE_MB, case, reps, fig[runs[0]], fig[runs[1]], ratio,
           'ok' if ratio >= 0.95 else 'MISSED'), flush=True)
    if hold_mb:
        print('bench: migrate: control, %s: memfd while %d MiB of guest_memfd '
              'is held: %s, %.3f of memfd\'s' %
              (case, hold_mb, fig[runs[2]], med[runs[2]] / med[runs[1]]),
              flush=True)


def write_all(ram):
    """Write all of the mapping @ram, 1 MiB at a time"""
    data = b'\x5a' * (1 << 20)
    for off in range(0, len(ram), 1 << 20):
        ram[off:off + (1 << 20)] = data


def socket_copy(mb):
    """Seconds to send @mb MiB of written anonymous memory through a UNIX
    stream socket to a process that discards it, 256 KiB at a time: a
    migration's socket traffic without QEMU"""
    tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        tx.close()
        buf = bytearray(1 << 16)
        while rx.recv_into(buf):
            pass
        os._exit(0)
    rx.close()
    size = mb << 20
    with mmap.mmap(-1, size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as ram:
        write_all(ram)
        with memoryview(ram) as view:
            start = time.monotonic()
            for off in range(0, size, 1 << 18):
                tx.sendall(view[off:off + (1 << 18)])
            tx.close()
            os.waitpid(pid, 0)
            return time.monotonic() - start


def host_control(reps, hold_mb):
    """The same socket copies with nothing held, and while @hold_mb MiB
    of each kind of memory is held, alternately: how much the host's
    state alone slows what a migration does"""
    kinds = ('nothing', 'memfd', 'guest_memfd', 'pipe buffers')
    try:
        with Held('pipe buffers', hold_mb):
            pass
    except OSError as e:
        print('bench: migrate: host: pipe buffers left out: %s (run as '
              'root, or raise fs.pipe-user-pages-soft, to have them)' % e,
              flush=True)
        kinds = kinds[:-1]
    res = {k: [] for k in kinds}
    for i in range(reps):
        for k in kinds if i % 2 == 0 else kinds[::-1]:
            try:
                with Held(k, 0 if k == 'nothing' else hold_mb):
                    res[k].append(SIZE_MB / socket_copy(SIZE_MB))
            except OSError as e:
                sys.exit('bench: migrate: host: %s' % e)
    med = {k: statistics.median(v) for k, v in res.items()}
    print('bench: migrate: host, without QEMU: %d MiB through a UNIX socket '
          '(%d rounds): %.0f MiB/s (%.0f-%.0f) with nothing held; with %d '
          'MiB held, one kind at a time (median to that; slowest): %s' %
          (SIZE_MB, reps, med['nothing'], min(res['nothing']),
           max(res['nothing']), hold_mb,
           ', '.join('%s %.3f (%.0f MiB/s)' %
                     (k, med[k] / med['nothing'], min(res[k]))
                     for k in kinds[1:])), flush=True)


def read_time(ram):
    """Seconds to read all of @ram through its mapping, 1 MiB at a time"""
    buf = bytearray(1 << 20)
    start = time.monotonic()
    with memoryview(ram) as view:
        for off in range(0, len(ram), 1 << 20):
            buf[:] = view[off:off + (1 << 20)]
    return time.monotonic() - start


def host_idle_read(reps, idle):
    """Reads of written guest_memfd and memfd before and after @idle
    seconds without access, without QEMU"""
    kinds = ('guest_memfd', 'memfd')
    res = {(k, w): [] for k in kinds for w in ('before', 'after', 'again')}
    for i in range(reps):
        with contextlib.ExitStack() as stack:
            rams = {}
            for k in kinds:
                held = stack.enter_context(Held(k, SIZE_MB))
                # the memory's own file is the last one Held opened
                rams[k] = stack.enter_context(
                    mmap.mmap(held.fds[-1], SIZE_MB << 20, mmap.MAP_SHARED,
                              mmap.PROT_READ | mmap.PROT_WRITE))
                write_all(rams[k])
            order = kinds if i % 2 == 0 else kinds[::-1]
            for k in order:
                res[(k, 'before')].append(read_time(rams[k]))
            time.sleep(idle)
            for w in ('after', 'again'):
                for k in order:
                    res[(k, w)].append(read_time(rams[k]))
    med = {r: statistics.median(v) * 1000 for r, v in res.items()}
    print('bench: migrate: host, without QEMU: first read of %d MiB after '
          '%.0f s idle (%d rounds; median, slowest): guest_memfd %.0f ms '
          '(%.0f), memfd %.0f ms (%.0f); before the idle time %.0f and %.0f, '
          'read again %.0f and %.0f' %
          (SIZE_MB, idle, reps, med[('guest_memfd', 'after')],
           max(res[('guest_memfd', 'after')]) * 1000,
           med[('memfd', 'after')], max(res[('memfd', 'after')]) * 1000,
           med[('guest_memfd', 'before')], med[('memfd', 'before')],
           med[('guest_memfd', 'again')], med[('memfd', 'again')]),
          flush=True)


def main():
    if HOST_REPS and HOLD_MB:
        host_control(HOST_REPS, HOLD_MB)
    if REPS:
        compare('fresh', REPS, 0, HOLD_MB)
    if IDLE_REPS and IDLE_READ_REPS:
        try:
            host_idle_read(IDLE_READ_REPS, IDLE_S)
        except OSError as e:
            sys.exit('bench: migrate: host: %s' % e)
    if IDLE_REPS:
        compare('idle %.0f s' % IDLE_S, IDLE_REPS, IDLE_S, HOLD_MB)


if __name__ == '__main__':
    main()
