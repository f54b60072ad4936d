/*
 * KVM guest_memfd: RAM blocks converted in place
 *
 * A RAM block that is a guest_memfd mapped in place gets a KvmGmemRam: the
 * conversion engine, over the RamBlockAttributes that keep the block's
 * state (shared memory is "populated", private memory "discarded") and
 * are its memory region's RamDiscardManager.  Guest conversions
 * (KVM_EXIT_MEMORY_FAULT, KVM_HC_MAP_GPA_RANGE) reach it through
 * kvm_convert_memory() when KVM converts in place.
 * query-kvm-guest-memfd reports the host's table and each block's state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include "qapi/error.h"
#include "qapi/qapi-commands-accelerator.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "hw/boards.h"
#include "system/confidential-guest-support.h"
#include "system/kvm.h"
#include "system/kvm-gmem-convert.h"
#include "system/kvm-gmem-uapi.h"
#include "system/kvm_int.h"
#include "system/memory.h"
#include "system/address-spaces.h"
#include "exec/ramlist.h"
#include "system/ramblock.h"
#include "trace.h"

/* The conversion engine behind a RAM_GUEST_MEMFD_INPLACE block */
typedef struct KvmGmemRam {
    RAMBlock *ram_block;
    KvmGmemFile file;
    QLIST_ENTRY(KvmGmemRam) next;
} KvmGmemRam;

static QLIST_HEAD(, KvmGmemRam) kvm_gmem_rams =
    QLIST_HEAD_INITIALIZER(kvm_gmem_rams);

/* The kernel, for the conversion engine */

static int kvm_gmem_ioctl_set_attributes(void *opaque, int fd,
                                         uint64_t offset, uint64_t size,
                                         uint64_t attributes, uint64_t flags,
                                         uint64_t *error_offset)
{
    struct kvm_memory_attributes2 attrs = {
        .offset = offset,
        .size = size,
        .attributes = attributes,
        .flags = flags,
    };
    int ret;

    QEMU_BUILD_BUG_ON(sizeof(attrs) != 128);
    ret = ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, &attrs);
    ret = ret < 0 ? -errno : 0;
    if (ret == -EAGAIN && error_offset) {
        *error_offset = attrs.error_offset;
    }
    trace_kvm_gmem_set_attributes(fd, offset, size, attributes, flags, ret);
    return ret;
}

static int kvm_gmem_punch_hole(void *opaque, int fd, uint64_t offset,
                               uint64_t size)
{
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset,
                  size)) {
        return -errno;
    }
    return 0;
}

/*
 * Whether this thread took the BQL to convert memory (a vCPU handling a
 * guest request), and may let go of it while it waits
 */
static __thread bool kvm_gmem_may_unlock;

static void kvm_gmem_backoff(void *opaque, unsigned attempt)
{
    /* 0.1 ms, doubling: under 26 ms in all */
    unsigned long us = 100UL << attempt;

    trace_kvm_gmem_backoff(attempt, us, kvm_gmem_may_unlock);
    if (!kvm_gmem_may_unlock) {
        /* The caller holds the BQL for longer (launch, monitor) */
        g_usleep(us);
        return;
    }
    bql_unlock();
    g_usleep(us);
    bql_lock();
}

static const KvmGmemOps kvm_gmem_kernel_ops = {
    .set_attributes = kvm_gmem_ioctl_set_attributes,
    .punch_hole = kvm_gmem_punch_hole,
    .backoff = kvm_gmem_backoff,
};

/* Put the engine in front of the RamBlockAttributes of @rb */
static void kvm_gmem_ram_create(RAMBlock *rb)
{
    KvmGmemRam *g = g_new0(KvmGmemRam, 1);
    bool shared = !(rb->flags & RAM_GUEST_MEMFD_INIT_PRIVATE);

    g->ram_block = rb;
    /* Conversions are at host page granularity, as the file's pages */
    kvm_gmem_file_init(&g->file, rb->guest_memfd, rb->max_length,
                       ctz64(qemu_real_host_page_size()), rb->attributes,
                       &kvm_gmem_kernel_ops, g, kvm_gmem_get_table());
    trace_kvm_gmem_ram_create(memory_region_name(rb->mr), rb->guest_memfd,
                              rb->max_length, shared);
    if (!shared &&
        kvm_gmem_get_table()->mode != KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        warn_report("memory '%s' is private (init-shared=off) and this VM "
                    "cannot convert it: a guest cannot run from it, nor QEMU "
                    "read it", memory_region_name(rb->mr));
    }
    /* Shared memory that cannot be converted keeps the fast paths */
    memory_region_set_may_be_private(rb->mr, !shared ||
                                     kvm_gmem_get_table()->mode ==
                                     KVM_GUEST_MEMFD_MODE_IN_PLACE);
    QLIST_INSERT_HEAD(&kvm_gmem_rams, g, next);
}

static KvmGmemRam *kvm_gmem_ram_find(RAMBlock *rb)
{
    KvmGmemRam *g;

    QLIST_FOREACH(g, &kvm_gmem_rams, next) {
        if (g->ram_block == rb) {
            return g;
        }
    }
    return NULL;
}

/* RAM that is a guest_memfd mapped in place, with its RamBlockAttributes */
static RAMBlock *kvm_gmem_ram_block(void *host)
{
    ram_addr_t offset;
    RAMBlock *rb = qemu_ram_block_from_host(host, false, &offset);

    return rb && qemu_ram_is_guest_memfd_inplace(rb) && rb->attributes ?
           rb : NULL;
}

static void kvm_gmem_ram_block_added(RAMBlockNotifier *n, void *host,
                                     size_t size, size_t max_size)
{
    RAMBlock *rb = kvm_gmem_ram_block(host);

    if (rb && !kvm_gmem_ram_find(rb)) {
        kvm_gmem_ram_create(rb);
    }
}

static void kvm_gmem_ram_block_removed(RAMBlockNotifier *n, void *host,
                                       size_t size, size_t max_size)
{
    RAMBlock *rb = kvm_gmem_ram_block(host);
    KvmGmemRam *g = rb ? kvm_gmem_ram_find(rb) : NULL;

    if (g) {
        QLIST_REMOVE(g, next);
        memory_region_set_may_be_private(rb->mr, false);
        g_free(g);
    }
}

static RAMBlockNotifier kvm_gmem_ram_notifier = {
    .ram_block_added = kvm_gmem_ram_block_added,
    .ram_block_removed = kvm_gmem_ram_block_removed,
};

void kvm_gmem_ram_init(void)
{
    ram_block_notifier_add(&kvm_gmem_ram_notifier);
}

KvmGuestMemfdPhase kvm_gmem_phase(void)
{
    ConfidentialGuestSupport *cgs = current_machine ? current_machine->cgs :
                                                      NULL;

    /* Only guests that populate private memory at launch have a launch */
    if (cgs && cgs->require_guest_memfd && !cgs->launched) {
        return KVM_GUEST_MEMFD_PHASE_PRE_LAUNCH;
    }
    return KVM_GUEST_MEMFD_PHASE_RUNTIME;
}

/*
 * Convert part of RAM that is a guest_memfd mapped in place between shared
 * and private: @offset and @size page-aligned, in bytes from the block's
 * start.  Under the BQL.  Returns 0, or -errno with nothing changed.
 */
static int kvm_gmem_ram_convert(KvmGmemRam *g, uint64_t offset,
                                uint64_t size, bool to_private,
                                KvmGuestMemfdContent content, Error **errp)
{
    KvmGuestMemfdPhase phase = kvm_gmem_phase();
    KvmGuestMemfdDirection dir = to_private ?
        KVM_GUEST_MEMFD_DIRECTION_TO_PRIVATE :
        KVM_GUEST_MEMFD_DIRECTION_TO_SHARED;
    uint64_t retries = g->file.retries;
    int ret;

    assert(bql_locked());
    ret = kvm_gmem_convert(&g->file, offset, size, to_private, phase,
                           content, errp);
    trace_kvm_gmem_convert(memory_region_name(g->ram_block->mr), offset, size,
                           KvmGuestMemfdDirection_str(dir),
                           KvmGuestMemfdContent_str(content),
                           KvmGuestMemfdMeans_str(
                               g->file.table->means[phase][dir][content]),
                           ret, g->file.retries - retries);
    return ret;
}

/*
 * Walk the guest-physical range [@start, @start + @size): check that all
 * of it can be converted, or (@convert) convert the guest_memfd RAM in it.
 */
static int kvm_gmem_walk_range(hwaddr start, hwaddr size, bool to_private,
                               KvmGuestMemfdContent content, bool convert,
                               Error **errp)
{
    while (size) {
        MemoryRegionSection section = memory_region_find(get_system_memory(),
                                                         start, size);
        MemoryRegion *mr = section.mr;
        KvmGmemRam *g;
        hwaddr hole = mr ? section.offset_within_address_space - start : size;
        uint64_t len;
        int ret = 0;

        if (hole) {
            /* Nothing there: it is not memory to make private */
            if (to_private) {
                error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%"
                           HWADDR_PRIx " to private: no memory there",
                           start, hole);
                if (mr) {
                    memory_region_unref(mr);
                }
                return -EINVAL;
            }
            if (!mr) {
                return 0;
            }
            start += hole;
            size -= hole;
        }
        len = int128_get64(section.size);
        g = mr->ram_block ? kvm_gmem_ram_find(mr->ram_block) : NULL;
        if (!g) {
            bool ram = memory_region_is_ram(mr) || memory_region_is_rom(mr) ||
                       memory_region_is_romd(mr);

            /* MMIO is shared already */
            if (to_private || ram) {
                error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%"
                           HWADDR_PRIx " to %s: %s is not guest_memfd "
                           "memory converted in place", start, len,
                           to_private ? "private" : "shared",
                           memory_region_name(mr));
                ret = -EINVAL;
            }
        } else if (convert) {
            ret = kvm_gmem_ram_convert(g,
                                       section.offset_within_region, len,
                                       to_private, content, errp);
        }
        memory_region_unref(mr);
        if (ret) {
            return ret;
        }
        start += len;
        size -= len;
    }
    return 0;
}

int kvm_gmem_convert_range(hwaddr start, hwaddr size, bool to_private,
                           KvmGuestMemfdContent content, Error **errp)
{
    bool took_bql = !bql_locked();
    int ret;

    BQL_LOCK_GUARD();

    if (start + size < start) {
        error_setg(errp, "cannot convert 0x%" HWADDR_PRIx "+0x%" HWADDR_PRIx
                   ": the range wraps around", start, size);
        return -EINVAL;
    }
    /* What QEMU refuses, it refuses whole, before anything is converted */
    ret = kvm_gmem_walk_range(start, size, to_private, content, false, errp);
    if (!ret) {
        kvm_gmem_may_unlock = took_bql;
        ret = kvm_gmem_walk_range(start, size, to_private, content, true,
                                  errp);
        kvm_gmem_may_unlock = false;
    }
    return ret;
}

/* Conversions the guest asked for and QEMU refused; under the BQL */
static uint64_t kvm_gmem_guest_errors;

/* At most this many of them logged per second */
#define KVM_GMEM_GUEST_ERROR_LINES 5

static int64_t kvm_gmem_guest_error_second;
static unsigned kvm_gmem_guest_error_lines;
static uint64_t kvm_gmem_guest_error_quiet;

void kvm_gmem_guest_error(Error *err)
{
    int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME);

    BQL_LOCK_GUARD();
    kvm_gmem_guest_errors++;
    if (now - kvm_gmem_guest_error_second >= 1000) {
        if (kvm_gmem_guest_error_quiet) {
            qemu_log_mask(LOG_GUEST_ERROR, "%" PRIu64 " more conversions "
                          "the guest asked for were refused, not logged\n",
                          kvm_gmem_guest_error_quiet);
        }
        kvm_gmem_guest_error_second = now;
        kvm_gmem_guest_error_lines = 0;
        kvm_gmem_guest_error_quiet = 0;
    }
    if (kvm_gmem_guest_error_lines < KVM_GMEM_GUEST_ERROR_LINES) {
        kvm_gmem_guest_error_lines++;
        qemu_log_mask(LOG_GUEST_ERROR, "%s\n", error_get_pretty(err));
    } else {
        kvm_gmem_guest_error_quiet++;
    }
    error_free(err);
}

KvmGuestMemfdInfo *qmp_query_kvm_guest_memfd(Error **errp)
{
    const KvmGmemCaps *caps = kvm_gmem_get_caps();
    const KvmGmemTable *table = kvm_gmem_get_table();
    KvmGuestMemfdConversionList **conv;
    KvmGuestMemfdBackendList **tail;
    KvmGuestMemfdInfo *info;
    KvmGmemRam *g;

    if (!kvm_enabled()) {
        error_setg(errp, "KVM is not enabled: use -accel kvm");
        return NULL;
    }

    info = g_new0(KvmGuestMemfdInfo, 1);
    info->mode = table->mode;
    info->guest_memfd_flags = caps->gmem_flags;
    info->vm_memory_attributes = caps->vm_attrs;
    info->guest_memfd_memory_attributes = caps->gmem_attrs;
    info->guest_errors = kvm_gmem_guest_errors;
    conv = &info->conversions;
    for (int p = 0; p < KVM_GUEST_MEMFD_PHASE__MAX; p++) {
        for (int d = 0; d < KVM_GUEST_MEMFD_DIRECTION__MAX; d++) {
            for (int c = 0; c < KVM_GUEST_MEMFD_CONTENT__MAX; c++) {
                KvmGuestMemfdConversion *kc = g_new(KvmGuestMemfdConversion,
                                                    1);

                kc->phase = p;
                kc->direction = d;
                kc->content = c;
                kc->means = table->means[p][d][c];
                QAPI_LIST_APPEND(conv, kc);
            }
        }
    }

    tail = &info->backends;
    QLIST_FOREACH(g, &kvm_gmem_rams, next) {
        KvmGuestMemfdBackend *b = g_new0(KvmGuestMemfdBackend, 1);

        b->name = g_strdup(memory_region_name(g->ram_block->mr));
        b->shared = kvm_gmem_file_shared_bytes(&g->file);
        b->q_private = kvm_gmem_file_private_bytes(&g->file);
        b->conversions = g->file.conversions;
        b->failures = g->file.failures;
        b->retries = g->file.retries;
        QAPI_LIST_APPEND(tail, b);
    }
    return info;
}

void kvm_gmem_report_private_ram(void)
{
    KvmGmemRam *g;

    if (kvm_gmem_get_table()->mode == KVM_GUEST_MEMFD_MODE_IN_PLACE) {
        return;
    }
    QLIST_FOREACH(g, &kvm_gmem_rams, next) {
        if (kvm_gmem_file_private_bytes(&g->file)) {
            error_report("memory '%s' is private (init-shared=off) and this "
                         "VM cannot convert it: the guest stopped where it "
                         "needs it", memory_region_name(g->ram_block->mr));
        }
    }
}
