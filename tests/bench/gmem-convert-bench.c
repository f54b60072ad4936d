/*
 * Conversion bookkeeping in RamBlockAttributes, the shared/private state
 * of guest_memfd RAM
 *
 * On a map of guest memory (1 TiB by default), a random sequence of
 * conversions, of 4 KiB, of 2 MiB and of mixed ranges, goes through the
 * state and one listener, after a kernel call to a model that only checks
 * the range, as kvm_convert_memory() does; twice, cold and warm.  Then a
 * new listener is registered, which is told about all shared memory.
 * Once more with a listener that makes a system call per notification, as
 * VFIO's DMA map and unmap do.
 *
 * It uses only the interface that RamBlockAttributes had before this
 * series, so that the same source can be built against either version and
 * the two run side by side (bench/rba.py in qemu-gmem does).  Prints one
 * line per figure: case, pass, seconds, notifications.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/syscall.h>
#include "qemu/module.h"
#include "qemu/units.h"
#include "qom/object.h"
#include "system/memory.h"
#include "system/ramblock.h"

/* The kernel model: checks the range, as the kernel does first */

static uint64_t kernel_calls;

static int model_check(uint64_t offset, uint64_t size)
{
    kernel_calls++;
    return (offset | size) & (qemu_real_host_page_size() - 1) ? -EINVAL : 0;
}

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

static Result run(uint64_t map, Op **ops, int n)
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

int main(int argc, char **argv)
{
    uint64_t map = (argc > 1 ? g_ascii_strtoull(argv[1], NULL, 0) : 1024) *
                   GiB;
    int n = argc > 2 ? atoi(argv[2]) : 200000;
    static const uint64_t sizes[] = { 4 * KiB, 2 * MiB, 0 };
    static const char *const names[] = { "4k", "2m", "mixed" };

    module_call_init(MODULE_INIT_QOM);
    for (int k = 0; k < 2 * ARRAY_SIZE(sizes); k++) {
        int i = k % ARRAY_SIZE(sizes);
        GRand *r = g_rand_new_with_seed(42 + i);
        Op *ops[2];
        Result res;

        listener_syscall = k >= ARRAY_SIZE(sizes);
        ops[0] = make_ops(map, n, sizes[i], r);
        ops[1] = make_ops(map, n, sizes[i], r);
        res = run(map, ops, n);
        for (int pass = 0; pass < 2; pass++) {
            printf("%s%s %s %.6f %" PRIu64 "\n", names[i],
                   listener_syscall ? "+syscall" : "",
                   pass ? "warm" : "cold", res.ops_s[pass],
                   res.notifications[pass]);
        }
        printf("%s%s replay %.6f 0\n", names[i],
               listener_syscall ? "+syscall" : "", res.replay_s);
        g_free(ops[0]);
        g_free(ops[1]);
        g_rand_free(r);
    }
    return 0;
}
