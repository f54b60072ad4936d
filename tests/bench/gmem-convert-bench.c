/*
 * Conversion bookkeeping: the in-place guest_memfd engine (KvmGmemFile)
 * against upstream's RamBlockAttributes, in the same binary
 *
 * On a map of guest memory (1 TiB by default), the same random sequence
 * of conversions, of 4 KiB and of 2 MiB ranges, goes through each: its
 * state, one listener, and a kernel call through the same model (which
 * only checks the range).  Then a new listener is registered, which is
 * told about all shared memory.  Prints the times and their ratios.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/kvm.h>
#include <sys/syscall.h>
#include "qemu/module.h"
#include "qemu/units.h"
#include "qom/object.h"
#include "system/memory.h"
#include "system/ramblock.h"
#include "system/kvm-gmem-convert.h"

/* What RamBlockAttributes needs of the memory API */

static const TypeInfo ram_discard_manager_info = {
    .parent = TYPE_INTERFACE,
    .name = TYPE_RAM_DISCARD_MANAGER,
    .class_size = sizeof(RamDiscardManagerClass),
};

static void bench_register_types(void)
{
    type_register_static(&ram_discard_manager_info);
}

type_init(bench_register_types)

int memory_region_set_ram_discard_manager(MemoryRegion *mr,
                                          RamDiscardManager *rdm)
{
    mr->rdm = rdm;
    return 0;
}

uint64_t memory_region_size(MemoryRegion *mr)
{
    return int128_get64(mr->size);
}

MemoryRegionSection *memory_region_section_new_copy(MemoryRegionSection *s)
{
    return g_memdup2(s, sizeof(*s));
}

void memory_region_section_free_copy(MemoryRegionSection *s)
{
    g_free(s);
}

/* The kernel model: checks the range, as the kernel does first */

static uint64_t kernel_calls;

static int model_check(uint64_t offset, uint64_t size)
{
    kernel_calls++;
    return (offset | size) & (qemu_real_host_page_size() - 1) ? -EINVAL : 0;
}

static int model_set_attributes(void *opaque, int fd, uint64_t offset,
                                uint64_t size, uint64_t attributes,
                                uint64_t flags, uint64_t *error_offset)
{
    return model_check(offset, size);
}

static int model_punch_hole(void *opaque, int fd, uint64_t offset,
                            uint64_t size)
{
    return 0;
}

static void model_backoff(void *opaque, unsigned attempt)
{
}

static const KvmGmemOps model_ops = {
    .set_attributes = model_set_attributes,
    .punch_hole = model_punch_hole,
    .backoff = model_backoff,
};

/*
 * Listeners that count what they are told; with listener_syscall, each
 * notification also makes one system call, as VFIO's DMA map and unmap do.
 */

static uint64_t notified_bytes, notifications;
static bool listener_syscall;

static void listener_work(uint64_t size)
{
    notifications++;
    notified_bytes += size;
    if (listener_syscall) {
        syscall(SYS_getppid);
    }
}

static int count_populate(RamDiscardListener *rdl, MemoryRegionSection *s)
{
    listener_work(int128_get64(s->size));
    return 0;
}

static void count_discard(RamDiscardListener *rdl, MemoryRegionSection *s)
{
    listener_work(int128_get64(s->size));
}

static int gmem_populate(KvmGmemListener *l, uint64_t offset, uint64_t size)
{
    listener_work(size);
    return 0;
}

static void gmem_discard(KvmGmemListener *l, uint64_t offset, uint64_t size)
{
    listener_work(size);
}

typedef struct Op {
    uint64_t offset;
    uint64_t size;
    bool to_private;
} Op;

/* @size 0: 4 KiB and 2 MiB ranges, mixed */
static Op *make_ops(uint64_t map, int n, uint64_t size, GRand *r)
{
    Op *ops = g_new(Op, n);

    for (int i = 0; i < n; i++) {
        ops[i].size = size ? size : g_rand_boolean(r) ? 4 * KiB : 2 * MiB;
        ops[i].offset = (uint64_t)g_rand_double_range(r, 0, map /
                                                      ops[i].size) *
                        ops[i].size;
        ops[i].to_private = g_rand_boolean(r);
    }
    return ops;
}

static double now(void)
{
    return g_get_monotonic_time() / 1e6;
}

/*
 * Two sequences run one after the other: the first cold, on a state just
 * created (whose bitmap pages the kernel faults in as they are first
 * touched), the second warm, on the state the first left.
 */
typedef struct Result {
    double ops_s[2];
    double replay_s;
    uint64_t notifications[2];
} Result;

static Result run_upstream(uint64_t map, Op **ops, int n)
{
    MemoryRegion mr = { .size = int128_make64(map) };
    RAMBlock rb = { .mr = &mr, .max_length = map, .used_length = map };
    MemoryRegionSection section = {
        .mr = &mr, .size = int128_make64(map),
    };
    RamDiscardListener l1 = {}, l2 = {};
    RamBlockAttributes *attr;
    RamDiscardManagerClass *rdmc;
    Result res;
    double t;

    mr.ram_block = &rb;
    attr = ram_block_attributes_create(&rb);
    rdmc = RAM_DISCARD_MANAGER_GET_CLASS(mr.rdm);
    ram_discard_listener_init(&l1, count_populate, count_discard, false);
    rdmc->register_listener(mr.rdm, &l1, &section);

    for (int pass = 0; pass < 2; pass++) {
        notifications = 0;
        t = now();
        for (int i = 0; i < n; i++) {
            /* as kvm_convert_memory() does: the kernel, then the state */
            Op *op = &ops[pass][i];

            if (!model_check(op->offset, op->size)) {
                ram_block_attributes_state_change(attr, op->offset,
                                                  op->size, op->to_private);
            }
        }
        res.ops_s[pass] = now() - t;
        res.notifications[pass] = notifications;
    }

    ram_discard_listener_init(&l2, count_populate, count_discard, false);
    t = now();
    rdmc->register_listener(mr.rdm, &l2, &section);
    res.replay_s = now() - t;

    rdmc->unregister_listener(mr.rdm, &l2);
    rdmc->unregister_listener(mr.rdm, &l1);
    ram_block_attributes_destroy(attr);
    return res;
}

static Result run_gmem(uint64_t map, Op **ops, int n)
{
    KvmGmemCaps caps = {
        .guest_memfd = true,
        .gmem_flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
        .gmem_attrs = KVM_MEMORY_ATTRIBUTE_PRIVATE,
    };
    KvmGmemListener l1 = {
        .size = map, .populate = gmem_populate, .discard = gmem_discard,
    };
    KvmGmemListener l2 = l1;
    KvmGmemTable table;
    KvmGmemFile f;
    Result res;
    double t;

    kvm_gmem_caps_table(&caps, &table);
    /* the same start as RamBlockAttributes: all private */
    kvm_gmem_file_init(&f, -1, map, ctz64(qemu_real_host_page_size()),
                       false, &model_ops, NULL, &table);
    kvm_gmem_listener_add(&f, &l1);

    for (int pass = 0; pass < 2; pass++) {
        notifications = 0;
        t = now();
        for (int i = 0; i < n; i++) {
            Op *op = &ops[pass][i];

            kvm_gmem_convert(&f, op->offset, op->size, op->to_private,
                             KVM_GUEST_MEMFD_PHASE_RUNTIME,
                             KVM_GUEST_MEMFD_CONTENT_UNSPECIFIED, NULL);
        }
        res.ops_s[pass] = now() - t;
        res.notifications[pass] = notifications;
    }

    t = now();
    kvm_gmem_listener_add(&f, &l2);
    res.replay_s = now() - t;

    kvm_gmem_listener_del(&f, &l2);
    kvm_gmem_listener_del(&f, &l1);
    kvm_gmem_file_destroy(&f);
    return res;
}

int main(int argc, char **argv)
{
    uint64_t map = (argc > 1 ? g_ascii_strtoull(argv[1], NULL, 0) : 1024) *
                   GiB;
    int n = argc > 2 ? atoi(argv[2]) : 200000;
    static const uint64_t sizes[] = { 4 * KiB, 2 * MiB, 0 };
    static const char *const names[] = { "4 KiB", "2 MiB", "mixed" };
    bool ok = true;

    module_call_init(MODULE_INIT_QOM);
    printf("bench: conversion bookkeeping on a %" PRIu64 " GiB map, %d "
           "random conversions per range size\n", map / GiB, n);
    for (int k = 0; k < 2 * ARRAY_SIZE(sizes); k++) {
        int i = k % ARRAY_SIZE(sizes);
        GRand *r = g_rand_new_with_seed(42 + i);

        if (k == ARRAY_SIZE(sizes)) {
            listener_syscall = true;
            printf("bench: with a listener that makes a system call per "
                   "notification, as VFIO does:\n");
        }
        Op *ops[2] = {
            make_ops(map, n, sizes[i], r), make_ops(map, n, sizes[i], r),
        };
        Result up = run_upstream(map, ops, n);
        Result gm = run_gmem(map, ops, n);
        for (int pass = 0; pass < 2; pass++) {
            double speedup = up.ops_s[pass] / gm.ops_s[pass];

            printf("bench: %-5s ranges, %s: RamBlockAttributes %.3f s "
                   "(%" PRIu64 " notifications)  KvmGmemFile %.3f s (%"
                   PRIu64 " notifications)  speed-up %.2fx (goal >= 2: "
                   "%s)\n", names[i], pass ? "warm" : "cold",
                   up.ops_s[pass], up.notifications[pass], gm.ops_s[pass],
                   gm.notifications[pass], speedup,
                   speedup >= 2 ? "meets" : "MISSES");
        }
        printf("bench: %-5s ranges: replay to a new listener: "
               "RamBlockAttributes %.1f ms  KvmGmemFile %.1f ms (goal <= 50 "
               "ms: %s)\n", names[i], up.replay_s * 1e3,
               gm.replay_s * 1e3, gm.replay_s <= 0.05 ? "meets" : "MISSES");
        ok &= gm.replay_s <= 0.05;
        g_free(ops[0]);
        g_free(ops[1]);
        g_rand_free(r);
    }
    return ok ? 0 : 1;
}
