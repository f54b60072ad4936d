/*
 * convert-rate: the raw rate of guest_memfd in-place conversions
 *
 * A plain loop of KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd of a
 * KVM_X86_SW_PROTECTED_VM, alternately to private and back to shared, on
 * ranges of 4 KiB and of 2 MiB walking over a 64 MiB file whose pages
 * the host has written (so that every conversion to private checks real
 * folios).  Prints one line per range size with the conversions per
 * second, for comparison with the rate QEMU reaches through its engine.
 *
 * Usage: convert-rate [SECONDS-PER-SIZE]   (default 2)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KVMIO                       0xAE
#define KVM_CREATE_VM_              _IO(KVMIO, 0x01)

struct attrs2 {
    uint64_t offset, size, attributes, flags, error_offset, reserved[11];
};
#define SET_MEMORY_ATTRIBUTES2      _IOWR(KVMIO, 0xd2, struct attrs2)

struct create_gmem {
    uint64_t size, flags, reserved[6];
};
#define CREATE_GUEST_MEMFD          _IOWR(KVMIO, 0xd4, struct create_gmem)

#define FILE_SIZE   (64ULL << 20)
#define PRIVATE     (1ULL << 3)

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int convert(int fd, uint64_t offset, uint64_t size, uint64_t attr)
{
    struct attrs2 a = { .offset = offset, .size = size, .attributes = attr };

    return ioctl(fd, SET_MEMORY_ATTRIBUTES2, &a) ? -errno : 0;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    static const uint64_t sizes[] = { 4096, 2ULL << 20 };
    struct create_gmem g = { .size = FILE_SIZE, .flags = 3 };
    int kvm, vm, fd, failed = 0;
    uint8_t *map;

    kvm = open("/dev/kvm", O_RDWR);
    vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM_, 1UL);
    fd = vm < 0 ? -1 : ioctl(vm, CREATE_GUEST_MEMFD, &g);
    if (fd < 0) {
        printf("convert-rate: no SW-protected VM with an in-place "
               "guest_memfd: %s\n", strerror(errno));
        return 2;
    }
    map = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        printf("convert-rate: mmap: %s\n", strerror(errno));
        return 1;
    }
    memset(map, 0x5a, FILE_SIZE);

    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t size = sizes[i], n = 0, slots = FILE_SIZE / size;
        double t0 = now(), t;

        do {
            for (int k = 0; k < 64; k++) {
                uint64_t off = (n / 2 % slots) * size;
                int r = convert(fd, off, size, n % 2 ? 0 : PRIVATE);

                if (r) {
                    printf("convert-rate: size %llu offset 0x%llx: %s\n",
                           (unsigned long long)size,
                           (unsigned long long)off, strerror(-r));
                    failed = 1;
                    goto out;
                }
                n++;
            }
            t = now() - t0;
        } while (t < secs);
        printf("convert-rate size=%llu conversions=%llu seconds=%.3f "
               "per_second=%.0f bytes_per_second=%.0f\n",
               (unsigned long long)size, (unsigned long long)n, t, n / t,
               n * (double)size / t);
        /* leave the file shared for the next size */
        if (convert(fd, 0, FILE_SIZE, 0)) {
            failed = 1;
        }
    }
out:
    return failed;
}
